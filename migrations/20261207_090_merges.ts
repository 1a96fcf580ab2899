import type { Knex } from 'knex';

/**
 * Merges in the evolution tree and the periodic fetch of a project's git remote.
 * - `checkpoints.merge_parent_id`: the second parent of a merge checkpoint (its first is parent_id).
 * - `checkpoints.status`: `ready` (every checkpoint so far), `conflicted` (a merge written with its
 *   conflict markers, the start of a resolving machine), `proposed` (a machine's resolution waiting
 *   for a human) and `rejected` (a proposal turned down, kept).
 * - `merge_resolutions`: a machine asked to resolve a merge's conflicts, and what came of it.
 * - `project_git_remotes.fetch_*`: the branches a Temporal Schedule fetches and how often, and the
 *   last scheduled fetch's outcome.
 */
export async function up(db: Knex): Promise<void> {
  await db.schema.alterTable('checkpoints', (t) => {
    t.text('merge_parent_id').references('checkpoints.id');
    t.text('status').notNullable().defaultTo('ready');
  });
  await db.schema.createTable('merge_resolutions', (t) => {
    t.text('id').primary();
    t.text('project_id').notNullable().references('id').inTable('projects').onDelete('CASCADE');
    t.text('conflict_checkpoint_id').notNullable().references('checkpoints.id');
    t.text('proposed_checkpoint_id').notNullable();
    t.text('machine_id').notNullable().unique();
    t.jsonb('paths').notNullable();
    t.text('message').notNullable();
    t.text('status').notNullable();
    t.text('error');
    t.text('created_by').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
    t.index(['project_id', 'created_at']);
  });
  await db.schema.alterTable('project_git_remotes', (t) => {
    t.jsonb('fetch_branches');
    t.integer('fetch_every_minutes');
    t.timestamp('last_fetch_at', { useTz: true });
    t.jsonb('last_fetch_result');
  });
}

export async function down(db: Knex): Promise<void> {
  await db.schema.alterTable('project_git_remotes', (t) => {
    t.dropColumns('fetch_branches', 'fetch_every_minutes', 'last_fetch_at', 'last_fetch_result');
  });
  await db.schema.dropTable('merge_resolutions');
  await db.schema.alterTable('checkpoints', (t) => {
    t.dropColumns('merge_parent_id', 'status');
  });
}

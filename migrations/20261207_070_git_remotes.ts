import type { Knex } from 'knex';

/**
 * A project's git remote: the URL (never with credentials in it) and, optionally, the user name
 * and token git sends to it over http(s). The token is only read by the host-side git commands
 * that push and fetch (store/git-remote.ts); no API answer, audit record or log carries it.
 */
export async function up(db: Knex): Promise<void> {
  await db.schema.createTable('project_git_remotes', (t) => {
    t.text('project_id').primary().references('id').inTable('projects').onDelete('CASCADE');
    t.text('url').notNullable();
    t.text('username');
    t.text('token');
    t.text('updated_by').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
  });
}

export async function down(db: Knex): Promise<void> {
  await db.schema.dropTable('project_git_remotes');
}

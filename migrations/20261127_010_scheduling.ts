import type { Knex } from 'knex';

/**
 * Scheduling and progress: a project's concurrent-machine limit and named resources, an
 * objective's completion criteria, sub-tasks, machine budget and resources, and its progress
 * recorded over time.
 */
export async function up(db: Knex): Promise<void> {
  await db.schema.alterTable('projects', (t) => {
    t.integer('max_concurrent_machines').notNullable().defaultTo(4);
    /** Named resources steps and objectives can hold exclusively: { name: capacity }. */
    t.jsonb('resources').notNullable().defaultTo('{}');
  });
  await db.schema.alterTable('objectives', (t) => {
    /** { command?, subtasks?: string[], verdict?: boolean } */
    t.jsonb('completion').notNullable().defaultTo('{}');
    /** Names of sub-tasks ticked off (by a user or by a machine's verdict file). */
    t.jsonb('subtasks_done').notNullable().defaultTo('[]');
    t.integer('max_machines').notNullable().defaultTo(1);
    t.jsonb('resources').notNullable().defaultTo('[]');
    /** Latest progress, 0..1 with 4 decimals; the history is in objective_progress. */
    t.decimal('progress', 5, 4).notNullable().defaultTo(0);
  });
  await db.schema.createTable('objective_progress', (t) => {
    t.bigIncrements('id');
    t.text('objective_id').notNullable().references('objectives.id');
    t.decimal('progress', 5, 4).notNullable();
    /** What was measured: { check?: { passed, exitCode, outputTail }, subtasks?: { done, total }, verdict?: {...} } */
    t.jsonb('criteria').notNullable();
    t.text('machine_id');
    t.text('checkpoint_id');
    t.text('note');
    /** One row per measurement: a retried activity records it once. */
    t.text('idempotency_key').notNullable().unique();
    t.timestamp('recorded_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
    t.index(['objective_id', 'recorded_at']);
  });
}

export async function down(db: Knex): Promise<void> {
  await db.schema.dropTableIfExists('objective_progress');
  await db.schema.alterTable('objectives', (t) => {
    t.dropColumns('completion', 'subtasks_done', 'max_machines', 'resources', 'progress');
  });
  await db.schema.alterTable('projects', (t) => {
    t.dropColumns('max_concurrent_machines', 'resources');
  });
}

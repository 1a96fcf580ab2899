import type { Knex } from 'knex';

/**
 * Task queues (README "Task queues and workers"): the queues workers serve, written by each worker
 * when it starts and while it runs, so the api's /metrics can report the backlog of every
 * machine queue, host queues included, without being told the hosts.
 */
export async function up(db: Knex): Promise<void> {
  await db.schema.createTable('task_queues', (t) => {
    t.text('name').primary();
    t.text('role').notNullable();
    t.text('provider');
    t.text('host');
    t.timestamp('seen_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
    t.index(['seen_at']);
  });
  await db.raw(`ALTER TABLE task_queues ADD CONSTRAINT task_queues_role CHECK (role IN ('control', 'machines'))`);
}

export async function down(db: Knex): Promise<void> {
  await db.schema.dropTable('task_queues');
}

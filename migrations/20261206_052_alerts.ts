import type { Knex } from 'knex';

/**
 * Alerts: conditions someone should look at (a budget past a threshold, a machine paused for a
 * decision, a failed payment, a provider gone unavailable). Each is a row here and an `alert.*`
 * event, written in the transaction of the change that raised it. `dedupe_key` makes an alert
 * that must be raised once (a budget threshold per period) unique even under concurrent spends.
 * `budgets.alert_percents`: the thresholds of each budget, in percent of its limit.
 */
export async function up(db: Knex): Promise<void> {
  await db.schema.createTable('alerts', (t) => {
    t.bigIncrements('id').primary();
    t.timestamp('at', { useTz: true }).notNullable().defaultTo(db.fn.now());
    t.text('kind').notNullable();
    t.text('severity').notNullable();
    t.text('project_id');
    t.text('subject_id').notNullable();
    t.text('message').notNullable();
    t.jsonb('data').notNullable().defaultTo('{}');
    t.text('dedupe_key').unique();
    t.index(['project_id', 'id']);
  });
  await db.raw(`ALTER TABLE alerts ADD CONSTRAINT alerts_severity CHECK (severity IN ('info', 'warning', 'critical'))`);
  await db.raw(`ALTER TABLE budgets ADD COLUMN alert_percents integer[] NOT NULL DEFAULT '{50,80,100}'`);
}

export async function down(db: Knex): Promise<void> {
  await db.raw('ALTER TABLE budgets DROP COLUMN alert_percents');
  await db.schema.dropTable('alerts');
}

import type { Knex } from 'knex';

/**
 * The alert engine (README "Alerts"): an alert is open until its condition clears, then resolved
 * (`resolved_at`, `resolution`). `dedupe_key` names the condition: at most one open alert per key
 * (a partial unique index), raised again only after the open one resolved. `alert_rules`: a
 * project's own thresholds on a metric. `rate_limit_samples`: the latest rate-limit headers a
 * model provider answered a project's machines with. `resource_samples`: the latest memory and
 * disk use of a running machine's sandbox beside its limits.
 */
export async function up(db: Knex): Promise<void> {
  await db.raw('ALTER TABLE alerts ADD COLUMN resolved_at timestamptz, ADD COLUMN resolution text');
  await db.raw('ALTER TABLE alerts DROP CONSTRAINT alerts_dedupe_key_unique');
  await db.raw('CREATE UNIQUE INDEX alerts_open_dedupe_key ON alerts (dedupe_key) WHERE resolved_at IS NULL');
  await db.raw('CREATE INDEX alerts_open_kind ON alerts (kind) WHERE resolved_at IS NULL');
  await db.schema.createTable('alert_rules', (t) => {
    t.text('id').primary();
    t.text('project_id').notNullable().references('projects.id').onDelete('CASCADE');
    t.text('name').notNullable();
    t.text('metric').notNullable();
    t.text('comparator').notNullable();
    t.decimal('threshold', 38, 18).notNullable();
    t.text('severity').notNullable();
    t.text('created_by').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
    t.index(['project_id', 'id']);
  });
  await db.raw(`ALTER TABLE alert_rules ADD CONSTRAINT alert_rules_severity CHECK (severity IN ('info', 'warning', 'critical'))`);
  await db.raw(`ALTER TABLE alert_rules ADD CONSTRAINT alert_rules_comparator CHECK (comparator IN ('>', '>=', '<', '<='))`);
  await db.schema.createTable('rate_limit_samples', (t) => {
    t.text('project_id').notNullable().references('projects.id').onDelete('CASCADE');
    t.text('provider').notNullable();
    t.text('machine_id');
    t.timestamp('at', { useTz: true }).notNullable();
    t.bigInteger('requests_remaining');
    t.bigInteger('requests_limit');
    t.bigInteger('tokens_remaining');
    t.bigInteger('tokens_limit');
    t.timestamp('reset_at', { useTz: true });
    t.primary(['project_id', 'provider']);
  });
  await db.schema.createTable('resource_samples', (t) => {
    t.text('machine_id').primary().references('machines.id').onDelete('CASCADE');
    t.text('project_id').notNullable().references('projects.id').onDelete('CASCADE');
    t.timestamp('at', { useTz: true }).notNullable();
    t.bigInteger('memory_bytes');
    t.bigInteger('memory_limit_bytes');
    t.bigInteger('disk_bytes');
    t.bigInteger('disk_limit_bytes');
  });
}

export async function down(db: Knex): Promise<void> {
  await db.schema.dropTable('resource_samples');
  await db.schema.dropTable('rate_limit_samples');
  await db.schema.dropTable('alert_rules');
  await db.raw('DROP INDEX alerts_open_kind');
  await db.raw('DROP INDEX alerts_open_dedupe_key');
  // Keys raised again after resolving are not unique any more: keep the newest of each.
  await db.raw('UPDATE alerts a SET dedupe_key = NULL WHERE EXISTS (SELECT 1 FROM alerts b WHERE b.dedupe_key = a.dedupe_key AND b.id > a.id)');
  await db.raw('ALTER TABLE alerts ADD CONSTRAINT alerts_dedupe_key_unique UNIQUE (dedupe_key)');
  await db.raw('ALTER TABLE alerts DROP COLUMN resolved_at, DROP COLUMN resolution');
}

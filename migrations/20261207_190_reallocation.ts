import type { Knex } from 'knex';

/**
 * Budget reallocation (README "Reallocation"): per cost center or department its settings, and every run (dry or
 * real) with the moves it planned, each with its explanation and the figures behind it. A real
 * run's moves are applied one by one, each marked applied in the transaction that changed the two
 * budgets, so a retried run never applies a move twice.
 */
export async function up(db: Knex): Promise<void> {
  await db.schema.createTable('reallocation_settings', (t) => {
    t.text('scope_type').notNullable();
    t.text('scope_id').notNullable();
    t.boolean('enabled').notNullable();
    t.boolean('dry_run').notNullable();
    t.integer('max_step_percent').notNullable();
    t.integer('lookback_days').notNullable();
    t.text('currency').notNullable();
    t.decimal('min_allocation', 38, 18).notNullable();
    t.decimal('max_allocation', 38, 18);
    t.text('updated_by').notNullable();
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
    t.primary(['scope_type', 'scope_id']);
  });
  await db.schema.createTable('reallocation_runs', (t) => {
    t.text('id').primary();
    t.text('scope_type').notNullable();
    t.text('scope_id').notNullable();
    t.boolean('dry_run').notNullable();
    t.text('trigger').notNullable();
    t.text('workflow_id');
    t.text('status').notNullable();
    t.text('reason');
    t.text('currency');
    t.text('period');
    t.decimal('limit_amount', 38, 18);
    t.decimal('allocated_before', 38, 18);
    t.decimal('allocated_after', 38, 18);
    t.jsonb('settings').notNullable();
    t.jsonb('projects').notNullable();
    t.text('created_by').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
    t.timestamp('finished_at', { useTz: true });
    t.index(['scope_type', 'scope_id', 'created_at']);
  });
  await db.raw(`ALTER TABLE reallocation_runs ADD CONSTRAINT reallocation_runs_status CHECK (status IN ('planned', 'applied', 'previewed', 'skipped'))`);
  await db.schema.createTable('reallocation_moves', (t) => {
    t.text('run_id').notNullable().references('reallocation_runs.id').onDelete('CASCADE');
    t.integer('seq').notNullable();
    t.text('from_project_id').notNullable();
    t.text('to_project_id').notNullable();
    t.decimal('amount', 38, 18).notNullable();
    t.decimal('from_before', 38, 18).notNullable();
    t.decimal('to_before', 38, 18).notNullable();
    t.text('explanation').notNullable();
    t.jsonb('figures').notNullable();
    t.text('status').notNullable();
    t.text('skip_reason');
    t.timestamp('applied_at', { useTz: true });
    t.primary(['run_id', 'seq']);
  });
  await db.raw(`ALTER TABLE reallocation_moves ADD CONSTRAINT reallocation_moves_status CHECK (status IN ('planned', 'applied', 'preview', 'skipped'))`);
}

export async function down(db: Knex): Promise<void> {
  await db.schema.dropTable('reallocation_moves');
  await db.schema.dropTable('reallocation_runs');
  await db.schema.dropTable('reallocation_settings');
}

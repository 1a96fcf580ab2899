import type { Knex } from 'knex';

/**
 * Spend forecasts, computed by the `forecastRefresh` workflow (a Temporal Schedule) and served by
 * GET …/forecast: the latest per scope (a project, a cost center or a department), as presented
 * (decimal strings rounded to the currency's minor unit). Never read by the ledger.
 */
export async function up(db: Knex): Promise<void> {
  await db.schema.createTable('forecasts', (t) => {
    t.text('scope_type').notNullable();
    t.text('scope_id').notNullable();
    t.text('currency').notNullable();
    t.timestamp('computed_at', { useTz: true }).notNullable();
    t.text('workflow_id');
    t.jsonb('body').notNullable();
    t.primary(['scope_type', 'scope_id']);
  });
  await db.raw(`ALTER TABLE forecasts ADD CONSTRAINT forecasts_scope_type CHECK (scope_type IN ('project', 'cost-center', 'department'))`);
}

export async function down(db: Knex): Promise<void> {
  await db.schema.dropTable('forecasts');
}

import type { Knex } from 'knex';

/**
 * Exchange rates as fetched, cost centers, and the provenance of converted amounts: the rate,
 * its source and time on every cost event and reservation made in another currency.
 */
export async function up(db: Knex): Promise<void> {
  await db.schema.createTable('fx_rates', (t) => {
    t.bigIncrements('seq').primary();
    t.text('source').notNullable();
    t.text('base').notNullable();
    t.text('quote').notNullable();
    // Kept as the source's exact decimal text: a rate is never rounded on the way in.
    t.text('rate').notNullable();
    t.timestamp('as_of', { useTz: true }).notNullable();
    t.timestamp('fetched_at', { useTz: true }).notNullable();
    t.index(['source', 'fetched_at']);
  });
  await db.schema.createTable('cost_centers', (t) => {
    t.text('id').primary();
    t.text('name').notNullable().unique();
    t.text('kind').notNullable();
    t.text('department').notNullable();
    t.text('created_by').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
    t.index(['department']);
  });
  await db.raw(`ALTER TABLE cost_centers ADD CONSTRAINT cost_centers_kind CHECK (kind IN ('development', 'testing', 'deployment'))`);
  await db.schema.alterTable('projects', (t) => {
    t.text('cost_center_id').references('cost_centers.id');
  });
  await db.schema.alterTable('machines', (t) => {
    t.text('cost_center_id').references('cost_centers.id');
  });
  await db.schema.alterTable('cost_events', (t) => {
    t.text('cost_center_id');
    t.text('fx_rate');
    t.text('fx_source');
    t.timestamp('fx_as_of', { useTz: true });
    t.index(['cost_center_id', 'created_at']);
  });
  await db.schema.alterTable('reservations', (t) => {
    // What was asked, in the requester's currency, when the budget is in another one.
    t.decimal('source_amount', 38, 18);
    t.text('source_currency');
    t.text('fx_rate');
    t.text('fx_source');
    t.timestamp('fx_as_of', { useTz: true });
  });
}

export async function down(db: Knex): Promise<void> {
  await db.schema.alterTable('reservations', (t) => {
    t.dropColumns('source_amount', 'source_currency', 'fx_rate', 'fx_source', 'fx_as_of');
  });
  await db.schema.alterTable('cost_events', (t) => {
    t.dropIndex(['cost_center_id', 'created_at']);
    t.dropColumns('cost_center_id', 'fx_rate', 'fx_source', 'fx_as_of');
  });
  await db.schema.alterTable('machines', (t) => t.dropColumn('cost_center_id'));
  await db.schema.alterTable('projects', (t) => t.dropColumn('cost_center_id'));
  await db.schema.dropTableIfExists('cost_centers');
  await db.schema.dropTableIfExists('fx_rates');
}

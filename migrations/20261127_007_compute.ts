import type { Knex } from 'knex';

/** Compute providers: what each can do here, per-project placement policies, warm pools. */
export async function up(db: Knex): Promise<void> {
  // Written by workers (they hold the providers), read by the api to place machines.
  await db.schema.createTable('compute_providers', (t) => {
    t.text('id').primary();
    t.boolean('available').notNullable();
    t.text('reason');
    t.timestamp('checked_at', { useTz: true }).notNullable();
  });
  await db.schema.createTable('placement_policies', (t) => {
    t.text('project_id').primary().references('projects.id');
    t.jsonb('policy').notNullable();
    t.text('updated_by').notNullable();
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
  });
  await db.schema.createTable('warm_instances', (t) => {
    t.text('instance_ref').primary();
    t.text('provider').notNullable();
    t.text('profile').notNullable();
    t.text('workspace').notNullable();
    t.jsonb('instance').notNullable();
    t.text('machine_id');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
    t.timestamp('claimed_at', { useTz: true });
    t.index(['provider', 'profile', 'machine_id']);
  });
  await db.schema.alterTable('machines', (t) => {
    t.boolean('spot').notNullable().defaultTo(false);
  });
}

export async function down(db: Knex): Promise<void> {
  await db.schema.alterTable('machines', (t) => {
    t.dropColumn('spot');
  });
  await db.schema.dropTableIfExists('warm_instances');
  await db.schema.dropTableIfExists('placement_policies');
  await db.schema.dropTableIfExists('compute_providers');
}

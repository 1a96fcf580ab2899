import type { Knex } from 'knex';

/**
 * Cost prediction (README "Cost prediction"): each machine's predicted cost and duration made
 * before it started (median and 80 % interval, the history it rests on), and, once it ended, its
 * actual cost and duration beside it (written once).
 */
export async function up(db: Knex): Promise<void> {
  await db.schema.createTable('machine_predictions', (t) => {
    t.text('machine_id').primary().references('machines.id').onDelete('CASCADE');
    t.text('project_id').notNullable().references('projects.id').onDelete('CASCADE');
    t.text('machine_type').notNullable();
    t.text('operation_class');
    t.text('scope').notNullable();
    t.integer('basis').notNullable();
    t.text('currency').notNullable();
    t.decimal('cost_p10', 38, 18).notNullable();
    t.decimal('cost_p50', 38, 18).notNullable();
    t.decimal('cost_p90', 38, 18).notNullable();
    t.double('duration_p10').notNullable();
    t.double('duration_p50').notNullable();
    t.double('duration_p90').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
    t.decimal('actual_cost', 38, 18);
    t.double('actual_duration_seconds');
    t.text('final_status');
    t.timestamp('settled_at', { useTz: true });
    t.index(['project_id', 'settled_at']);
  });
  await db.raw(`ALTER TABLE machine_predictions ADD CONSTRAINT machine_predictions_scope CHECK (scope IN ('project', 'deployment'))`);
  // A project's choice to refuse early every machine whose predicted lower bound does not fit.
  await db.schema.createTable('prediction_settings', (t) => {
    t.text('project_id').primary().references('projects.id').onDelete('CASCADE');
    t.boolean('refuse_if_predicted_over').notNullable();
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
  });
}

export async function down(db: Knex): Promise<void> {
  await db.schema.dropTable('prediction_settings');
  await db.schema.dropTable('machine_predictions');
}

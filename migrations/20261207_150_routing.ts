import type { Knex } from 'knex';

/**
 * Machine selection (README "Machine selection (type: auto)"): the bandit's arms (successes and
 * failures per operation class × machine type, deployment-wide), each routing decision with its
 * reason and, once the machine settled, its outcome (applied to the arm exactly once), and the
 * per-project quality-vs-cost knob and exploration budget.
 */
export async function up(db: Knex): Promise<void> {
  await db.schema.createTable('routing_arms', (t) => {
    t.text('operation_class').notNullable();
    t.text('machine_type').notNullable();
    t.integer('successes').notNullable().defaultTo(0);
    t.integer('failures').notNullable().defaultTo(0);
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
    t.primary(['operation_class', 'machine_type']);
  });
  await db.schema.createTable('routing_decisions', (t) => {
    t.text('machine_id').primary().references('machines.id').onDelete('CASCADE');
    t.text('project_id').notNullable().references('projects.id').onDelete('CASCADE');
    t.text('operation_class').notNullable();
    t.text('complexity');
    t.text('classifier').notNullable();
    t.text('chosen_type').notNullable();
    t.text('mode').notNullable();
    t.text('reason').notNullable();
    t.jsonb('candidates').notNullable();
    t.double('quality').notNullable();
    t.double('exploration').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
    t.text('outcome');
    t.text('final_status');
    /** Settled cost of the machine in `cost_currency` (the project's). */
    t.decimal('cost', 38, 18);
    t.text('cost_currency');
    t.timestamp('settled_at', { useTz: true });
    t.index(['project_id', 'created_at']);
    t.index(['created_at']);
  });
  await db.raw(`ALTER TABLE routing_decisions ADD CONSTRAINT routing_decisions_mode CHECK (mode IN ('exploit', 'explore', 'only'))`);
  await db.raw(`ALTER TABLE routing_decisions ADD CONSTRAINT routing_decisions_outcome CHECK (outcome IS NULL OR outcome IN ('success', 'failure'))`);
  await db.schema.createTable('routing_settings', (t) => {
    t.text('project_id').primary().references('projects.id').onDelete('CASCADE');
    /** 0: cheapest that might do, 1: best regardless of cost. */
    t.double('quality').notNullable();
    /** Share of decisions picked uniformly at random (continuous A/B). */
    t.double('exploration').notNullable();
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
  });
  await db.raw(`ALTER TABLE routing_settings ADD CONSTRAINT routing_settings_range CHECK (quality BETWEEN 0 AND 1 AND exploration BETWEEN 0 AND 1)`);
}

export async function down(db: Knex): Promise<void> {
  await db.schema.dropTable('routing_settings');
  await db.schema.dropTable('routing_decisions');
  await db.schema.dropTable('routing_arms');
}

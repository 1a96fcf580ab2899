import type { Knex } from 'knex';

/** Pipelines: DAGs of machine steps that hand checkpoints to each other. */
export async function up(db: Knex): Promise<void> {
  await db.schema.createTable('pipelines', (t) => {
    t.text('id').primary();
    t.text('project_id').notNullable().references('projects.id');
    t.text('status').notNullable();
    t.text('base_checkpoint_id').notNullable().references('checkpoints.id');
    t.text('error');
    t.text('created_by').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
    t.timestamp('ended_at', { useTz: true });
    t.index(['project_id', 'created_at']);
  });
  await db.schema.createTable('pipeline_steps', (t) => {
    t.text('pipeline_id').notNullable().references('pipelines.id');
    t.text('step_id').notNullable();
    t.integer('position').notNullable();
    t.text('type').notNullable();
    t.text('command');
    t.text('prompt');
    t.jsonb('depends_on').notNullable();
    t.jsonb('limits').notNullable();
    t.text('status').notNullable();
    t.text('machine_id');
    t.text('checkpoint_id');
    t.text('error');
    t.timestamp('started_at', { useTz: true });
    t.timestamp('ended_at', { useTz: true });
    t.primary(['pipeline_id', 'step_id']);
  });
}

export async function down(db: Knex): Promise<void> {
  await db.schema.dropTableIfExists('pipeline_steps');
  await db.schema.dropTableIfExists('pipelines');
}

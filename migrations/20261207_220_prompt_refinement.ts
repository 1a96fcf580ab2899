import type { Knex } from 'knex';

/**
 * Prompt refinement (README "Machine selection (type: auto)", "Prompt refinement"): failure
 * patterns learned per project, operation class and machine type from ended machines (errors in
 * their logs, files their failing runs touched, failed completion checks, negative feedback), a
 * failure summary per failed machine, which arm of the refinement A/B each routed machine was in
 * (and the instructions it was given), and each project's share of refined machines.
 */
export async function up(db: Knex): Promise<void> {
  await db.schema.createTable('failure_patterns', (t) => {
    t.text('project_id').notNullable().references('projects.id').onDelete('CASCADE');
    t.text('operation_class').notNullable();
    t.text('machine_type').notNullable();
    /** error (a log or error line), file (touched by a failing run), check (a failed completion check), feedback (a low rating's comment), stop (a limit it ran into). */
    t.text('kind').notNullable();
    t.text('detail').notNullable();
    t.integer('occurrences').notNullable().defaultTo(1);
    t.text('last_machine_id').notNullable();
    t.timestamp('first_seen_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
    t.timestamp('last_seen_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
    t.primary(['project_id', 'operation_class', 'machine_type', 'kind', 'detail']);
  });
  await db.raw(`ALTER TABLE failure_patterns ADD CONSTRAINT failure_patterns_kind CHECK (kind IN ('error', 'file', 'check', 'feedback', 'stop'))`);
  await db.schema.createTable('machine_failure_summaries', (t) => {
    t.text('machine_id').primary().references('machines.id').onDelete('CASCADE');
    t.text('project_id').notNullable().references('projects.id').onDelete('CASCADE');
    t.text('operation_class').notNullable();
    t.text('machine_type').notNullable();
    t.text('final_status').notNullable();
    t.text('summary').notNullable();
    /** { stopReason, error, errorLines, files } */
    t.jsonb('details').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
    t.index(['project_id', 'created_at']);
  });
  await db.schema.alterTable('routing_decisions', (t) => {
    /** refined / plain: the refinement A/B arm (null: no failure pattern to refine with). */
    t.text('prompt_arm');
    /** The instructions added to the prompt (refined arm only). */
    t.text('refinement');
  });
  await db.raw(`ALTER TABLE routing_decisions ADD CONSTRAINT routing_decisions_prompt_arm CHECK (prompt_arm IS NULL OR prompt_arm IN ('refined', 'plain'))`);
  await db.schema.alterTable('routing_settings', (t) => {
    /** Share of routed machines with known failure patterns given the refined prompt (null: the deployment's). */
    t.double('refinement');
  });
  await db.raw(`ALTER TABLE routing_settings ADD CONSTRAINT routing_settings_refinement CHECK (refinement IS NULL OR refinement BETWEEN 0 AND 1)`);
}

export async function down(db: Knex): Promise<void> {
  await db.raw('ALTER TABLE routing_settings DROP CONSTRAINT routing_settings_refinement');
  await db.schema.alterTable('routing_settings', (t) => t.dropColumn('refinement'));
  await db.raw('ALTER TABLE routing_decisions DROP CONSTRAINT routing_decisions_prompt_arm');
  await db.schema.alterTable('routing_decisions', (t) => {
    t.dropColumn('prompt_arm');
    t.dropColumn('refinement');
  });
  await db.schema.dropTable('machine_failure_summaries');
  await db.schema.dropTable('failure_patterns');
}

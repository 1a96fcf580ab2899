import type { Knex } from 'knex';

/**
 * User feedback on machines (README "ROI and feedback"): one rating 1..5 with an optional comment
 * per machine and API key; a repeat replaces it. The ROI view correlates ratings with spend.
 */
export async function up(db: Knex): Promise<void> {
  await db.schema.createTable('machine_feedback', (t) => {
    t.text('machine_id').notNullable().references('machines.id').onDelete('CASCADE');
    t.text('api_key_id').notNullable();
    t.text('project_id').notNullable().references('projects.id').onDelete('CASCADE');
    t.integer('rating').notNullable();
    t.text('comment');
    t.text('created_by').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
    t.primary(['machine_id', 'api_key_id']);
    t.index(['project_id']);
  });
  await db.raw(`ALTER TABLE machine_feedback ADD CONSTRAINT machine_feedback_rating CHECK (rating BETWEEN 1 AND 5)`);
  await db.raw(`ALTER TABLE machine_feedback ADD CONSTRAINT machine_feedback_comment CHECK (comment IS NULL OR char_length(comment) <= 2000)`);
}

export async function down(db: Knex): Promise<void> {
  await db.schema.dropTable('machine_feedback');
}

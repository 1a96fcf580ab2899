import type { Knex } from 'knex';

/** What each pipeline step is given at start (files, conversations, artifacts of earlier steps) and what it declares as artifacts. */
export async function up(db: Knex): Promise<void> {
  await db.schema.alterTable('pipeline_steps', (t) => {
    t.jsonb('inputs');
    t.jsonb('artifacts');
  });
}

export async function down(db: Knex): Promise<void> {
  await db.schema.alterTable('pipeline_steps', (t) => {
    t.dropColumn('inputs');
    t.dropColumn('artifacts');
  });
}

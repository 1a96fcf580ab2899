import type { Knex } from 'knex';

/** What a project's machines do at a limit: stop, or pause and wait for a human for `pause_minutes`. */
export async function up(db: Knex): Promise<void> {
  await db.schema.alterTable('projects', (t) => {
    t.text('limit_policy').notNullable().defaultTo('stop');
    t.integer('pause_minutes').notNullable().defaultTo(60);
  });
}

export async function down(db: Knex): Promise<void> {
  await db.schema.alterTable('projects', (t) => {
    t.dropColumn('limit_policy');
    t.dropColumn('pause_minutes');
  });
}

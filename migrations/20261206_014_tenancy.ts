import type { Knex } from 'knex';

/**
 * Tenancy: every key carries its own role and (optionally) the projects it is bound to.
 *
 * - `api_keys.role`: the key's role (existing keys take their user's role);
 * - `api_keys.prefix`: the first characters of the secret, shown in lists instead of the secret;
 * - `expires_at`, `last_used_at`, `created_by`;
 * - `bootstrap`: the key made from AUTOVIBE_ADMIN_KEY (a new value revokes the old one);
 * - `api_key_projects`: the role binding of a key to a project (no rows: a deployment-wide key).
 */
export async function up(db: Knex): Promise<void> {
  await db.schema.alterTable('api_keys', (t) => {
    t.text('role');
    t.text('prefix');
    t.timestamp('expires_at', { useTz: true });
    t.timestamp('last_used_at', { useTz: true });
    t.text('created_by');
    t.boolean('bootstrap').notNullable().defaultTo(false);
  });
  await db.raw(`UPDATE api_keys k SET role = u.role FROM users u WHERE u.id = k.user_id`);
  // The first-start admin key was the only one labelled so.
  await db('api_keys').where({ label: 'admin (first start)' }).update({ bootstrap: true });
  await db.schema.alterTable('api_keys', (t) => {
    t.text('role').notNullable().alter();
  });
  await db.schema.createTable('api_key_projects', (t) => {
    t.text('api_key_id').notNullable().references('api_keys.id');
    t.text('project_id').notNullable().references('projects.id');
    t.primary(['api_key_id', 'project_id']);
    t.index(['project_id']);
  });
}

export async function down(db: Knex): Promise<void> {
  await db.schema.dropTableIfExists('api_key_projects');
  await db.schema.alterTable('api_keys', (t) => {
    t.dropColumn('role');
    t.dropColumn('prefix');
    t.dropColumn('expires_at');
    t.dropColumn('last_used_at');
    t.dropColumn('created_by');
    t.dropColumn('bootstrap');
  });
}

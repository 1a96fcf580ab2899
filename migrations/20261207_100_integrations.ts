import type { Knex } from 'knex';

/**
 * Integrations of a project with an outside tracker (GitHub now; Jira and Linear later), one of
 * each kind per project: `config` holds what may be shown (API base URL, owner/repo, trigger
 * label, ...), `token` (the credentials the platform calls the tracker with) and `webhook_secret`
 * (what incoming hooks are verified with) are never shown back. `cursor` is the seq of the last
 * event-feed event the integration's dispatcher has handled (progress comments, pull requests on
 * completion).
 *
 * `integration_links` ties a tracker item (an issue, a pull request, a ticket) to an objective
 * and/or a checkpoint; one row per item (`external_id`), so a redelivered hook never makes a
 * second objective, and one pull request per checkpoint. `integration_deliveries` keeps the id of
 * every incoming hook accepted (a redelivery is recognized and not acted on twice);
 * `integration_comments` the comments posted, one per link and event.
 */
export async function up(db: Knex): Promise<void> {
  await db.schema.createTable('project_integrations', (t) => {
    t.text('id').primary();
    t.text('project_id').notNullable().references('id').inTable('projects').onDelete('CASCADE');
    t.text('kind').notNullable();
    t.jsonb('config').notNullable().defaultTo('{}');
    t.text('token');
    t.text('webhook_secret');
    t.bigInteger('cursor').notNullable().defaultTo(0);
    t.text('updated_by').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
    t.unique(['project_id', 'kind']);
  });
  await db.raw(`ALTER TABLE project_integrations ADD CONSTRAINT project_integrations_kind CHECK (kind IN ('github', 'jira', 'linear'))`);
  await db.schema.createTable('integration_links', (t) => {
    t.bigIncrements('id').primary();
    t.text('integration_id').notNullable().references('id').inTable('project_integrations').onDelete('CASCADE');
    t.text('objective_id').references('id').inTable('objectives');
    t.text('checkpoint_id').references('id').inTable('checkpoints');
    t.text('kind').notNullable();
    t.text('external_id').notNullable();
    t.integer('number');
    t.text('url').notNullable();
    t.text('branch');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
    t.unique(['integration_id', 'kind', 'external_id']);
    t.index(['objective_id']);
  });
  await db.raw(`ALTER TABLE integration_links ADD CONSTRAINT integration_links_kind CHECK (kind IN ('issue', 'pull_request', 'ticket'))`);
  await db.raw(
    `CREATE UNIQUE INDEX integration_links_checkpoint_pr ON integration_links (integration_id, checkpoint_id) WHERE kind = 'pull_request' AND checkpoint_id IS NOT NULL`,
  );
  await db.schema.createTable('integration_deliveries', (t) => {
    t.text('integration_id').notNullable().references('id').inTable('project_integrations').onDelete('CASCADE');
    t.text('delivery_id').notNullable();
    t.text('event').notNullable();
    t.text('outcome').notNullable();
    t.timestamp('received_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
    t.primary(['integration_id', 'delivery_id']);
  });
  await db.schema.createTable('integration_comments', (t) => {
    t.bigInteger('link_id').notNullable().references('id').inTable('integration_links').onDelete('CASCADE');
    t.bigInteger('event_seq').notNullable();
    t.text('external_id').notNullable();
    t.text('url');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
    t.primary(['link_id', 'event_seq']);
  });
}

export async function down(db: Knex): Promise<void> {
  await db.schema.dropTable('integration_comments');
  await db.schema.dropTable('integration_deliveries');
  await db.schema.dropTable('integration_links');
  await db.schema.dropTable('project_integrations');
}

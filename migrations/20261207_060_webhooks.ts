import type { Knex } from 'knex';

/**
 * Outgoing webhooks: endpoints (a project's, or the deployment's when project_id is null) that
 * receive the event feed's events of the kinds they subscribe to, signed per Standard Webhooks
 * (`kind` webhook) or as Slack Block Kit messages (`kind` slack). `cursor` is the seq of the last
 * event handled (delivered, or given up on): the dispatcher resumes after it. Each delivery of an
 * event (and each manual redelivery) is a row of `webhook_deliveries`, each HTTP attempt a row
 * of `webhook_attempts`.
 */
export async function up(db: Knex): Promise<void> {
  await db.schema.createTable('webhook_endpoints', (t) => {
    t.text('id').primary();
    t.text('project_id').references('id').inTable('projects').onDelete('CASCADE');
    t.text('kind').notNullable();
    t.text('url').notNullable();
    t.text('description').notNullable().defaultTo('');
    t.specificType('event_kinds', 'text[]').notNullable();
    t.text('secret').notNullable();
    // After a rotation the old secret signs too (a second signature) until previous_secret_until.
    t.text('previous_secret');
    t.timestamp('previous_secret_until', { useTz: true });
    t.text('status').notNullable().defaultTo('active');
    t.text('disabled_reason');
    t.timestamp('disabled_at', { useTz: true });
    t.bigInteger('cursor').notNullable();
    t.timestamp('failing_since', { useTz: true });
    t.integer('consecutive_failures').notNullable().defaultTo(0);
    t.text('created_by').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
    t.index(['project_id', 'id']);
  });
  await db.raw(`ALTER TABLE webhook_endpoints ADD CONSTRAINT webhook_endpoints_kind CHECK (kind IN ('webhook', 'slack'))`);
  await db.raw(`ALTER TABLE webhook_endpoints ADD CONSTRAINT webhook_endpoints_status CHECK (status IN ('active', 'disabled'))`);
  await db.schema.createTable('webhook_deliveries', (t) => {
    t.bigIncrements('id').primary();
    t.text('endpoint_id').notNullable().references('id').inTable('webhook_endpoints').onDelete('CASCADE');
    t.bigInteger('event_seq').notNullable();
    t.text('message_id').notNullable();
    t.bigInteger('redelivery_of');
    t.text('status').notNullable().defaultTo('pending');
    t.integer('attempts').notNullable().defaultTo(0);
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
    t.timestamp('ended_at', { useTz: true });
    t.index(['endpoint_id', 'id']);
  });
  await db.raw(`ALTER TABLE webhook_deliveries ADD CONSTRAINT webhook_deliveries_status CHECK (status IN ('pending', 'succeeded', 'failed'))`);
  // One first delivery per event and endpoint (redeliveries are extra rows).
  await db.raw('CREATE UNIQUE INDEX webhook_deliveries_first ON webhook_deliveries (endpoint_id, event_seq) WHERE redelivery_of IS NULL');
  await db.schema.createTable('webhook_attempts', (t) => {
    t.bigIncrements('id').primary();
    t.bigInteger('delivery_id').notNullable().references('id').inTable('webhook_deliveries').onDelete('CASCADE');
    t.integer('attempt').notNullable();
    t.timestamp('at', { useTz: true }).notNullable().defaultTo(db.fn.now());
    t.integer('status_code');
    t.integer('duration_ms').notNullable();
    t.text('error');
    t.text('response_excerpt');
    t.unique(['delivery_id', 'attempt']);
  });
}

export async function down(db: Knex): Promise<void> {
  await db.schema.dropTable('webhook_attempts');
  await db.schema.dropTable('webhook_deliveries');
  await db.schema.dropTable('webhook_endpoints');
}

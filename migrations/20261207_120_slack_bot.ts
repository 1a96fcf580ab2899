import type { Knex } from 'knex';

/**
 * Slack through a bot token (`kind` slack-bot): the message goes to `chat.postMessage` of the
 * Slack Web API at `url` for `channel`, with the bot token as its bearer. The token is only read
 * by the delivery activity; no API answer, audit record or log carries it.
 */
export async function up(db: Knex): Promise<void> {
  await db.schema.alterTable('webhook_endpoints', (t) => {
    t.text('channel');
    t.text('bot_token');
  });
  await db.raw('ALTER TABLE webhook_endpoints DROP CONSTRAINT webhook_endpoints_kind');
  await db.raw(`ALTER TABLE webhook_endpoints ADD CONSTRAINT webhook_endpoints_kind CHECK (kind IN ('webhook', 'slack', 'slack-bot'))`);
  await db.raw(
    `ALTER TABLE webhook_endpoints ADD CONSTRAINT webhook_endpoints_slack_bot CHECK (kind <> 'slack-bot' OR (channel IS NOT NULL AND bot_token IS NOT NULL))`,
  );
}

export async function down(db: Knex): Promise<void> {
  await db('webhook_endpoints').where({ kind: 'slack-bot' }).delete();
  await db.raw('ALTER TABLE webhook_endpoints DROP CONSTRAINT webhook_endpoints_slack_bot');
  await db.raw('ALTER TABLE webhook_endpoints DROP CONSTRAINT webhook_endpoints_kind');
  await db.raw(`ALTER TABLE webhook_endpoints ADD CONSTRAINT webhook_endpoints_kind CHECK (kind IN ('webhook', 'slack'))`);
  await db.schema.alterTable('webhook_endpoints', (t) => {
    t.dropColumn('channel');
    t.dropColumn('bot_token');
  });
}

import type { Knex } from 'knex';

/**
 * Idempotency keys are reserved before the request runs: a `pending` row (no status or body yet)
 * is inserted first, so of two concurrent requests with one key exactly one runs; the row becomes
 * `done` with the response. `locked_at` lets a pending row whose process died be taken over.
 */
export async function up(db: Knex): Promise<void> {
  await db.schema.alterTable('idempotent_requests', (t) => {
    t.text('state').notNullable().defaultTo('done');
    t.timestamp('locked_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
  });
  await db.raw(`ALTER TABLE idempotent_requests ALTER COLUMN status DROP NOT NULL, ALTER COLUMN body DROP NOT NULL`);
  await db.raw(`ALTER TABLE idempotent_requests ADD CONSTRAINT idempotent_requests_state CHECK (state IN ('pending', 'done'))`);
}

export async function down(db: Knex): Promise<void> {
  await db('idempotent_requests').where({ state: 'pending' }).delete();
  await db.raw(`ALTER TABLE idempotent_requests DROP CONSTRAINT idempotent_requests_state`);
  await db.raw(`ALTER TABLE idempotent_requests ALTER COLUMN status SET NOT NULL, ALTER COLUMN body SET NOT NULL`);
  await db.schema.alterTable('idempotent_requests', (t) => {
    t.dropColumn('state');
    t.dropColumn('locked_at');
  });
}

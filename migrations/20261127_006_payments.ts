import type { Knex } from 'knex';

/**
 * Payments: each project's ordered payment methods, top-up payments run by the paymentCascade
 * workflow with one row per attempt, the free-credit wallet, crypto invoices and the prepaid
 * balance ledger (one entry per paid top-up, unique by payment, so a top-up is credited once).
 */
export async function up(db: Knex): Promise<void> {
  await db.schema.createTable('payment_methods', (t) => {
    t.text('project_id').notNullable().references('projects.id');
    t.integer('position').notNullable();
    t.text('kind').notNullable();
    t.jsonb('config').notNullable();
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
    t.primary(['project_id', 'position']);
  });
  await db.schema.createTable('payments', (t) => {
    t.text('id').primary();
    t.text('project_id').notNullable().references('projects.id');
    t.specificType('amount', 'numeric(38,18)').notNullable();
    t.text('currency').notNullable();
    t.text('reason').notNullable();
    t.text('status').notNullable();
    t.text('paid_by');
    t.text('error');
    t.jsonb('methods').notNullable();
    t.text('created_by').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
    t.timestamp('ended_at', { useTz: true });
    t.index(['project_id', 'created_at']);
  });
  await db.schema.createTable('payment_attempts', (t) => {
    t.text('payment_id').notNullable().references('payments.id');
    t.integer('seq').notNullable();
    t.text('method').notNullable();
    t.text('status').notNullable();
    t.integer('tries').notNullable().defaultTo(0);
    t.text('error');
    t.jsonb('details').notNullable().defaultTo('{}');
    t.timestamp('started_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
    t.timestamp('ended_at', { useTz: true });
    t.primary(['payment_id', 'seq']);
  });
  await db.schema.createTable('credits', (t) => {
    t.text('id').primary();
    t.text('project_id').notNullable().references('projects.id');
    t.text('currency').notNullable();
    t.specificType('amount', 'numeric(38,18)').notNullable();
    t.specificType('remaining', 'numeric(38,18)').notNullable();
    t.timestamp('expires_at', { useTz: true }).notNullable();
    t.text('created_by').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
    t.index(['project_id', 'currency', 'expires_at']);
  });
  await db.raw('ALTER TABLE credits ADD CONSTRAINT credits_remaining_range CHECK (remaining >= 0 AND remaining <= amount)');
  await db.schema.createTable('credit_uses', (t) => {
    t.text('payment_id').notNullable().references('payments.id');
    t.text('credit_id').notNullable().references('credits.id');
    t.specificType('amount', 'numeric(38,18)').notNullable();
    t.timestamp('at', { useTz: true }).notNullable().defaultTo(db.fn.now());
    t.primary(['payment_id', 'credit_id']);
  });
  await db.schema.createTable('crypto_invoices', (t) => {
    t.text('id').primary();
    t.text('payment_id').notNullable().references('payments.id');
    t.text('chain').notNullable();
    t.text('address').notNullable();
    // Base units of the chain (wei, nanoton): whole numbers that can exceed 2^64.
    t.specificType('amount_base', 'numeric(78,0)').notNullable();
    t.text('status').notNullable();
    t.text('from_block');
    t.text('tx_hash');
    t.integer('confirmations').notNullable().defaultTo(0);
    t.timestamp('deadline', { useTz: true }).notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
    t.unique(['chain', 'tx_hash']);
  });
  await db.schema.createTable('balance_entries', (t) => {
    t.bigIncrements('seq').primary();
    t.text('project_id').notNullable().references('projects.id');
    t.text('payment_id').notNullable().unique().references('payments.id');
    t.specificType('amount', 'numeric(38,18)').notNullable();
    t.text('currency').notNullable();
    t.text('method').notNullable();
    t.timestamp('at', { useTz: true }).notNullable().defaultTo(db.fn.now());
  });
}

export async function down(db: Knex): Promise<void> {
  for (const table of ['balance_entries', 'crypto_invoices', 'credit_uses', 'credits', 'payment_attempts', 'payments', 'payment_methods']) {
    await db.schema.dropTableIfExists(table);
  }
}

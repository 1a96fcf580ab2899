import type { Knex } from 'knex';

/**
 * Crypto invoices are paid to the deployment's own addresses, shared by every project, so each
 * invoice carries what tells its transfer apart: a unique amount (ETH, `match_key` 'amount:<wei>')
 * or a unique text comment (TON, `memo`, `match_key` 'memo:<comment>'). A unique index makes two
 * invoices to one address with one match key impossible; the existing unique (chain, tx_hash)
 * keeps a transfer from paying two invoices. `fx` records the rate an invoice was converted with.
 * Payment methods lose the tenant-given `address` and `rate` they used to carry.
 */
export async function up(db: Knex): Promise<void> {
  await db.schema.alterTable('crypto_invoices', (t) => {
    t.text('memo');
    t.text('match_key');
    // Base units added to the converted amount to make it unique (0 when matched by memo).
    t.specificType('tag', 'numeric(78,0)').notNullable().defaultTo(0);
    t.jsonb('fx');
  });
  // Invoices opened before this change were matched by their id as comment (TON).
  await db('crypto_invoices')
    .where({ chain: 'ton' })
    .update({ memo: db.ref('id') });
  await db.raw('CREATE UNIQUE INDEX crypto_invoices_match_key ON crypto_invoices (chain, lower(address), match_key) WHERE match_key IS NOT NULL');
  await db.raw(`UPDATE payment_methods SET config = config - 'address' - 'rate' WHERE kind = 'crypto'`);
}

export async function down(db: Knex): Promise<void> {
  await db.raw('DROP INDEX IF EXISTS crypto_invoices_match_key');
  await db.schema.alterTable('crypto_invoices', (t) => {
    t.dropColumn('memo');
    t.dropColumn('match_key');
    t.dropColumn('tag');
    t.dropColumn('fx');
  });
}

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { parseAmount } from '../../domain/money.js';
import * as matching from '../../migrations/20261206_031_crypto_invoice_matching.js';
import { createDb, migrateLatest, type Db } from '../../store/db.js';
import { claimInvoiceTx, getPaymentMethods, insertPayment, openInvoice, setPaymentMethods, usedTxHashes } from '../../store/payments.js';
import { freshDatabase } from '../support/platform.js';
import { insertBareProject } from '../support/bare-project.js';

const ADDRESS = '0xFFcf8FDEE72ac11b5c542428B35EEF5769C409f0';

/** Crypto invoices in real Postgres: one amount or memo per address, one invoice per transfer, under concurrency. */
describe('store: crypto invoices are matched to exactly one transfer (real Postgres)', function () {
  this.timeout(60_000);
  let db: Db;

  before(async () => {
    db = await createDb({ databaseUrl: await freshDatabase('crypto-invoices') });
    await migrateLatest(db);
  });
  after(async () => {
    await db?.destroy();
  });

  async function payment(): Promise<{ projectId: string; paymentId: string }> {
    const projectId = `project-${crypto.randomUUID()}`;
    await insertBareProject(db, { id: projectId, name: 'p' });
    const paymentId = `payment-${crypto.randomUUID()}`;
    await insertPayment(db, {
      id: paymentId,
      projectId,
      amount: parseAmount('10.00', 'USD'),
      currency: 'USD',
      reason: 'test',
      methods: [{ kind: 'crypto', chain: 'eth', timeoutSeconds: 60 }],
      createdBy: 'test',
    });
    return { projectId, paymentId };
  }
  const invoice = (paymentId: string, amountBase: bigint, address = ADDRESS) => ({
    id: `invoice-${paymentId}-1`,
    paymentId,
    chain: 'eth' as const,
    address,
    amountBase,
    tag: 7n,
    memo: null,
    matchKey: `amount:${amountBase}`,
    fx: null,
    fromBlock: '1',
    deadline: new Date(Date.now() + 60_000),
  });

  it('lets exactly one of many concurrent invoices to an address take an amount, whatever the address case', async () => {
    const payments = await Promise.all(Array.from({ length: 12 }, () => payment()));
    const opened = await Promise.all(
      payments.map((p, i) => openInvoice(db, invoice(p.paymentId, 5_000_000_000_000_007n, i % 2 ? ADDRESS.toLowerCase() : ADDRESS))),
    );
    assert.equal(opened.filter(Boolean).length, 1, 'one invoice holds the amount');
    // Opening the winner again returns it; another amount is free.
    const winner = payments[opened.findIndex(Boolean)]!;
    assert.equal((await openInvoice(db, invoice(winner.paymentId, 1n)))?.amountBase, 5_000_000_000_000_007n, 'the first opening stands');
    const loser = payments[opened.findIndex((x) => !x)]!;
    assert.equal((await openInvoice(db, invoice(loser.paymentId, 5_000_000_000_000_008n)))?.amountBase, 5_000_000_000_000_008n);
  });

  it('lets a transfer pay one invoice only, however two checks race for it', async () => {
    const [a, b] = await Promise.all([payment(), payment()]);
    const [ia, ib] = await Promise.all([openInvoice(db, invoice(a.paymentId, 11n)), openInvoice(db, invoice(b.paymentId, 12n))]);
    const tx = `0x${crypto.randomBytes(32).toString('hex')}`;
    const claims = await Promise.all([ia!, ib!].map((i) => claimInvoiceTx(db, i.id, { txHash: tx, confirmations: 1, paid: false })));
    assert.deepEqual(claims.filter(Boolean).length, 1);
    const owner = claims[0] ? ia! : ib!;
    const other = claims[0] ? ib! : ia!;
    assert.equal(await claimInvoiceTx(db, owner.id, { txHash: tx, confirmations: 3, paid: true }), true, 'its own transfer, again, with more confirmations');
    assert.equal(await claimInvoiceTx(db, other.id, { txHash: tx, confirmations: 3, paid: true }), false);
    assert.deepEqual([...(await usedTxHashes(db, 'eth', [tx]))], [tx]);
    const rows = await db('crypto_invoices').whereIn('id', [ia!.id, ib!.id]).orderBy('id');
    assert.deepEqual(
      rows.map((r) => [r.id, r.tx_hash, r.status]),
      [ia!, ib!].map((i) => (i.id === owner.id ? [i.id, tx, 'paid'] : [i.id, null, 'open'])).sort((x, y) => String(x[0]).localeCompare(String(y[0]))),
    );
  });

  it('migrates existing data: tenant-given address and rate leave the methods, old invoices keep theirs and TON ones get their memo', async () => {
    await matching.down(db);
    const [a, b] = await Promise.all([payment(), payment()]);
    await db('payment_methods').insert({
      project_id: a.projectId,
      position: 0,
      kind: 'crypto',
      config: JSON.stringify({ kind: 'crypto', chain: 'eth', address: ADDRESS, rate: '2000.00', timeoutSeconds: 60 }),
    });
    // Before the change two invoices to one address could ask for the same amount.
    const legacy = (id: string, paymentId: string, chain: string) => ({
      id,
      payment_id: paymentId,
      chain,
      address: ADDRESS,
      amount_base: '5000000000000000',
      status: 'open',
      deadline: new Date(),
    });
    await db('crypto_invoices').insert([legacy(`invoice-${a.paymentId}-1`, a.paymentId, 'eth'), legacy(`invoice-${b.paymentId}-1`, b.paymentId, 'eth')]);
    await db('crypto_invoices').insert(legacy(`invoice-${b.paymentId}-2`, b.paymentId, 'ton'));
    await matching.up(db);
    assert.deepEqual(await getPaymentMethods(db, a.projectId), [{ kind: 'crypto', chain: 'eth', timeoutSeconds: 60 }]);
    const ton = await db('crypto_invoices')
      .where({ id: `invoice-${b.paymentId}-2` })
      .first();
    assert.equal(ton.memo, ton.id);
    assert.equal((await db('crypto_invoices').where({ address: ADDRESS, amount_base: '5000000000000000' })).length, 3, 'old invoices untouched');
    await setPaymentMethods(db, a.projectId, []);
  });
});

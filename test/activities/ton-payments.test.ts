import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { beginCell, toNano } from '@ton/core';
import { Blockchain, type SandboxContract, type TreasuryContract } from '@ton/sandbox';
import { MockActivityEnvironment } from '@temporalio/testing';
import pino from 'pino';
import { createPaymentActivities } from '../../activities/payments/index.js';
import type { TonReader } from '../../activities/payments/ton.js';
import { loadConfig } from '../../config/index.js';
import { createFxService } from '../../fx/service.js';
import { insertPayment, projectBalance } from '../../store/payments.js';
import { formatAmount, parseAmount, type CurrencyCode } from '../../domain/money.js';
import { createDb, migrateLatest, type Db } from '../../store/db.js';
import { startFxSources, type FxSources } from '../support/fx-sources.js';
import { freshDatabase } from '../support/platform.js';
import { insertBareProject } from '../support/bare-project.js';

const comment = (text: string) => beginCell().storeUint(0, 32).storeStringTail(text).endCell();

/** The text comment a transaction's incoming message carries, if any. */
function commentOf(tx: { inMessage?: { body: ReturnType<typeof comment> } | undefined }): string | null {
  const s = tx.inMessage?.body.beginParse();
  if (!s || s.remainingBits < 32 || s.loadUint(32) !== 0) return null;
  return s.loadStringTail();
}

/**
 * TON invoices against @ton/sandbox, TON's own in-process chain emulator (the production reader
 * asks a toncenter API, which cannot run here): the activities open an invoice and find its
 * payment among the receiver's real emulated transactions.
 */
describe('TON invoices on an emulated chain (@ton/sandbox)', function () {
  this.timeout(60_000);
  let db: Db;
  let chain: Blockchain;
  let shop: SandboxContract<TreasuryContract>;
  let payer: SandboxContract<TreasuryContract>;
  let fxSources: FxSources;
  let acts: ReturnType<typeof createPaymentActivities>;
  const env = new MockActivityEnvironment();
  const run = <A extends unknown[], R>(fn: (...a: A) => Promise<R>, ...a: A): Promise<R> => env.run(fn, ...a) as Promise<R>;

  before(async () => {
    db = await createDb({ databaseUrl: await freshDatabase('ton') });
    await migrateLatest(db);
    chain = await Blockchain.create();
    shop = await chain.treasury('shop');
    payer = await chain.treasury('payer');
    // Pages newest first as toncenter does (the sandbox's own lt/hash paging cannot be used: it
    // compares hash buffers by identity, and its list flips order on every call).
    const reader: TonReader = {
      getTransactions: async (address, limit, before) =>
        [...(await chain.getTransactions(address))]
          .sort((x, y) => (x.lt < y.lt ? 1 : x.lt > y.lt ? -1 : 0))
          .filter((tx) => !before || tx.lt < before.lt)
          .slice(0, limit),
    };
    // Live FX from a local stand-in of Coinbase's endpoint (1 USD = 0.18340571 TON).
    fxSources = await startFxSources();
    const config = loadConfig({
      LOG_LEVEL: 'silent',
      // The deployment's receiving address; the API URL is not asked (the reader reads the emulated chain).
      TON_API_URL: 'http://127.0.0.1:9',
      TON_RECEIVING_ADDRESS: shop.address.toString(),
      AUTOVIBE_FX_CRYPTO_URL: fxSources.cryptoUrl,
      AUTOVIBE_FX_ECB_URL: 'off',
    });
    const log = pino({ level: 'silent' });
    acts = createPaymentActivities({ db, config, log, fx: createFxService({ config, db, log }) }, { tonReader: reader });
  });
  after(async () => {
    await db?.destroy();
    await fxSources?.stop();
  });

  async function tonPayment(amount: string, currency: CurrencyCode = 'TON'): Promise<{ paymentId: string; projectId: string }> {
    const projectId = `project-${crypto.randomUUID()}`;
    await insertBareProject(db, { id: projectId, name: 'ton', currency });
    const id = `payment-${crypto.randomUUID()}`;
    await insertPayment(db, {
      id,
      projectId,
      amount: parseAmount(amount, currency),
      currency,
      reason: 'test',
      methods: [{ kind: 'crypto', chain: 'ton', timeoutSeconds: 60 }],
      createdBy: 'test',
    });
    return { paymentId: id, projectId };
  }
  const open = (paymentId: string) => run(acts.openCryptoInvoice, { paymentId, seq: 1, methodIndex: 0, deadline: new Date(Date.now() + 60_000).toISOString() });
  const check = (paymentId: string, invoiceId: string) => run(acts.checkCryptoInvoice, { paymentId, seq: 1, invoiceId });

  it("sees a transfer with the invoice id as comment, and not an underpayment or another invoice's transfer", async () => {
    const { paymentId } = await tonPayment('1.5');
    const inv = await open(paymentId);
    assert.ok(inv.ok, JSON.stringify(inv));
    assert.equal(inv.amount, '1.500000000');
    assert.equal(inv.coin, 'TON');
    assert.equal(inv.address, shop.address.toString(), "the deployment's address");
    assert.equal(inv.memo, inv.invoiceId);
    assert.equal(inv.fx, null, 'a top-up in TON needs no rate');
    const checkIt = () => check(paymentId, inv.invoiceId);

    assert.equal((await checkIt()).status, 'open');
    await payer.send({ to: shop.address, value: toNano('1.4'), body: comment(inv.memo!) });
    await payer.send({ to: shop.address, value: toNano('2'), body: comment('invoice-someone-else') });
    assert.equal((await checkIt()).status, 'open', 'too little, or for another invoice');

    const balanceBefore = (await chain.getContract(shop.address)).balance;
    await payer.send({ to: shop.address, value: toNano('1.5'), body: comment(inv.memo!) });
    assert.ok((await chain.getContract(shop.address)).balance > balanceBefore, 'the emulated chain moved the coins');
    const paid = await checkIt();
    assert.equal(paid.status, 'paid');
    const [row] = await db('crypto_invoices').where({ id: inv.invoiceId });
    assert.equal(row.status, 'paid');
    assert.equal(row.tx_hash, paid.txHash);
    // Opening the same attempt's invoice again is the same invoice.
    const again = await open(paymentId);
    assert.ok(again.ok);
    assert.equal(again.invoiceId, inv.invoiceId);
    assert.equal((await db('crypto_invoices').where({ payment_id: paymentId })).length, 1);
  });

  it("two projects paying the deployment's one address at once each get only their own payment; a wrong memo or amount pays nobody", async () => {
    const [a, b, c] = await Promise.all([tonPayment('10.00', 'USD'), tonPayment('10.00', 'USD'), tonPayment('10.00', 'USD')]);
    const [invA, invB, invC] = await Promise.all([open(a.paymentId), open(b.paymentId), open(c.paymentId)]);
    assert.ok(invA.ok && invB.ok && invC.ok);
    // 10.00 USD at the live 0.18340571 TON per USD, the same for each: only the memo tells them apart.
    for (const inv of [invA, invB, invC]) {
      assert.equal(inv.address, shop.address.toString());
      assert.equal(inv.amount, '1.834057100');
      assert.deepEqual(
        { rate: inv.fx?.rate, source: inv.fx?.source, from: inv.fx?.from, to: inv.fx?.to },
        { rate: '0.183405710000000000', source: 'coinbase', from: 'USD', to: 'TON' },
      );
    }
    assert.equal(new Set([invA.memo, invB.memo, invC.memo]).size, 3);
    const [row] = await db('crypto_invoices').where({ id: invA.invoiceId });
    assert.equal(row.fx.rate, '0.183405710000000000', 'the rate used is on the invoice');

    const other = await chain.treasury('other payer');
    // B's payer first, then A's; the right amount with no invoice's memo, and C's memo with too little.
    await payer.send({ to: shop.address, value: toNano('1.8340571'), body: comment(invB.memo!) });
    await other.send({ to: shop.address, value: toNano('1.8340571'), body: comment(invA.memo!) });
    await payer.send({ to: shop.address, value: toNano('5'), body: comment('invoice-nobody') });
    await payer.send({ to: shop.address, value: toNano('1.834057'), body: comment(invC.memo!) });
    // Other transfers to the busy shared address push those payments past the newest page of its history.
    for (let i = 0; i < 130; i++) await other.send({ to: shop.address, value: toNano('0.01'), body: comment(`order-${i}`) });
    const [paidA, paidB, openC] = await Promise.all([
      check(a.paymentId, invA.invoiceId),
      check(b.paymentId, invB.invoiceId),
      check(c.paymentId, invC.invoiceId),
    ]);
    assert.equal(paidA.status, 'paid');
    assert.equal(paidB.status, 'paid');
    assert.equal(openC.status, 'open', 'a wrong memo or too little pays nobody');
    const memoOf = new Map((await chain.getTransactions(shop.address)).map((tx) => [tx.hash().toString('hex'), commentOf(tx as any)]));
    assert.equal(memoOf.get(paidA.txHash!), invA.memo, "A's invoice is paid by the transfer carrying A's memo");
    assert.equal(memoOf.get(paidB.txHash!), invB.memo);
    assert.notEqual(paidA.txHash, paidB.txHash);

    for (const x of [a, b]) assert.deepEqual(await run(acts.creditTopup, { paymentId: x.paymentId, method: 'crypto' }), { credited: true });
    const balance = async (projectId: string) => (await projectBalance(db, projectId)).map((e) => `${formatAmount(e.amount, e.currency)} ${e.currency}`);
    assert.deepEqual(await balance(a.projectId), ['10.00 USD']);
    assert.deepEqual(await balance(b.projectId), ['10.00 USD']);
    assert.deepEqual(await balance(c.projectId), []);
    const claimed = await db('crypto_invoices').whereNotNull('tx_hash').whereIn('id', [invA.invoiceId, invB.invoiceId, invC.invoiceId]).pluck('id');
    assert.deepEqual(claimed.sort(), [invA.invoiceId, invB.invoiceId].sort());
  });

  it('opens no invoice when no live rate can be had: the method fails saying why, and nothing is written', async () => {
    fxSources.failing.crypto = true;
    try {
      const config = loadConfig({
        LOG_LEVEL: 'silent',
        TON_API_URL: 'http://127.0.0.1:9',
        TON_RECEIVING_ADDRESS: shop.address.toString(),
        AUTOVIBE_FX_CRYPTO_URL: fxSources.cryptoUrl,
        AUTOVIBE_FX_ECB_URL: 'off',
      });
      // A process that has no rate cached yet (no database: none stored either).
      const fresh = createPaymentActivities(
        { db, config, log: pino({ level: 'silent' }), fx: createFxService({ config }) },
        { tonReader: { getTransactions: async () => [] } },
      );
      const { paymentId } = await tonPayment('10.00', 'USD');
      const r = await run(fresh.openCryptoInvoice, { paymentId, seq: 1, methodIndex: 0, deadline: new Date(Date.now() + 60_000).toISOString() });
      assert.equal(r.ok, false);
      assert.match((r as { error: string }).error, /no USD→TON exchange rate: coinbase: .*503/);
      assert.equal((await db('crypto_invoices').where({ payment_id: paymentId })).length, 0);
    } finally {
      fxSources.failing.crypto = false;
    }
  });
});

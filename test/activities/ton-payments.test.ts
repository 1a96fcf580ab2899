import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { beginCell, toNano } from '@ton/core';
import { Blockchain, type SandboxContract, type TreasuryContract } from '@ton/sandbox';
import { MockActivityEnvironment } from '@temporalio/testing';
import pino from 'pino';
import { createPaymentActivities } from '../../activities/payments/index.js';
import type { TonReader } from '../../activities/payments/ton.js';
import { loadConfig } from '../../config/index.js';
import { insertPayment } from '../../store/payments.js';
import { parseAmount } from '../../domain/money.js';
import { createDb, migrateLatest, type Db } from '../../store/db.js';
import { insertProject } from '../../store/projects.js';
import { freshDatabase } from '../support/platform.js';

const comment = (text: string) => beginCell().storeUint(0, 32).storeStringTail(text).endCell();

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
  let acts: ReturnType<typeof createPaymentActivities>;
  const env = new MockActivityEnvironment();
  const run = <A extends unknown[], R>(fn: (...a: A) => Promise<R>, ...a: A): Promise<R> => env.run(fn, ...a) as Promise<R>;

  before(async () => {
    db = await createDb({ databaseUrl: await freshDatabase('ton') });
    await migrateLatest(db);
    chain = await Blockchain.create();
    shop = await chain.treasury('shop');
    payer = await chain.treasury('payer');
    const reader: TonReader = { getTransactions: (address, limit) => chain.getTransactions(address, { limit }) };
    acts = createPaymentActivities({ db, config: loadConfig({ LOG_LEVEL: 'silent' }), log: pino({ level: 'silent' }) }, { tonReader: reader });
  });
  after(async () => {
    await db?.destroy();
  });

  async function tonPayment(amount: string): Promise<string> {
    const projectId = `project-${crypto.randomUUID()}`;
    await insertProject(db, {
      id: projectId,
      name: 'ton',
      repoUrl: null,
      repoPath: '/nonexistent',
      currency: 'TON',
      greediness: 0.5,
      defaultMachineMoney: 0n,
      rootCheckpointId: null,
      limitPolicy: 'stop',
      pauseMinutes: 60,
      createdBy: 'test',
    });
    const id = `payment-${crypto.randomUUID()}`;
    await insertPayment(db, {
      id,
      projectId,
      amount: parseAmount(amount, 'TON'),
      currency: 'TON',
      reason: 'test',
      methods: [{ kind: 'crypto', chain: 'ton', address: shop.address.toString(), timeoutSeconds: 60 }],
      createdBy: 'test',
    });
    return id;
  }

  it("sees a transfer with the invoice id as comment, and not an underpayment or another invoice's transfer", async () => {
    const paymentId = await tonPayment('1.5');
    const inv = await run(acts.openCryptoInvoice, { paymentId, seq: 1, methodIndex: 0, deadline: new Date(Date.now() + 60_000).toISOString() });
    assert.ok(inv.ok, JSON.stringify(inv));
    assert.equal(inv.amount, '1.500000000');
    assert.equal(inv.coin, 'TON');
    const check = () => run(acts.checkCryptoInvoice, { paymentId, seq: 1, invoiceId: inv.invoiceId });

    assert.equal((await check()).status, 'open');
    await payer.send({ to: shop.address, value: toNano('1.4'), body: comment(inv.invoiceId) });
    await payer.send({ to: shop.address, value: toNano('2'), body: comment('invoice-someone-else') });
    assert.equal((await check()).status, 'open', 'too little, or for another invoice');

    const balanceBefore = (await chain.getContract(shop.address)).balance;
    await payer.send({ to: shop.address, value: toNano('1.5'), body: comment(inv.invoiceId) });
    assert.ok((await chain.getContract(shop.address)).balance > balanceBefore, 'the emulated chain moved the coins');
    const paid = await check();
    assert.equal(paid.status, 'paid');
    const [row] = await db('crypto_invoices').where({ id: inv.invoiceId });
    assert.equal(row.status, 'paid');
    assert.equal(row.tx_hash, paid.txHash);
    // Opening the same attempt's invoice again is the same invoice.
    const again = await run(acts.openCryptoInvoice, { paymentId, seq: 1, methodIndex: 0, deadline: new Date().toISOString() });
    assert.ok(again.ok);
    assert.equal(again.invoiceId, inv.invoiceId);
    assert.equal((await db('crypto_invoices').where({ payment_id: paymentId })).length, 1);
  });
});

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { MockActivityEnvironment } from '@temporalio/testing';
import pino from 'pino';
import { createPaymentActivities } from '../../activities/payments/index.js';
import { loadConfig } from '../../config/index.js';
import { balanceAccountId } from '../../domain/budget.js';
import { formatAmount, fromNumeric, parseAmount, type CurrencyCode } from '../../domain/money.js';
import { createFxService } from '../../fx/service.js';
import { findBudget, release, reserve, setBudget, settle } from '../../store/budgets.js';
import { createDb, migrateLatest, type Db } from '../../store/db.js';
import { balanceStatus, insertPayment, setAutoTopupConfig, setPaymentMethods, setPaymentStatus } from '../../store/payments.js';
import { getProject, type Project } from '../../store/projects.js';
import { machineSpendBudgets } from '../../store/spend-budgets.js';
import { startFxSources, type FxSources } from '../support/fx-sources.js';
import { freshDatabase } from '../support/platform.js';
import { prng } from '../support/prng.js';
import { insertBareProject } from '../support/bare-project.js';

const usd = (text: string) => parseAmount(text, 'USD');
const DAY = new Date('2026-03-15T12:00:00.000Z');

/**
 * The prepaid balance through the real ledger and payment activities on real PostgreSQL: top-ups
 * credit the balance and never a budget limit, reservations must fit both, settlements draw the
 * balance down, and the automatic top-up follows the balance.
 */
describe('prepaid balance beside budget limits (real PostgreSQL)', function () {
  this.timeout(60_000);
  let db: Db;
  let src: FxSources;
  let acts: ReturnType<typeof createPaymentActivities>;
  const env = new MockActivityEnvironment();
  const run = <A extends unknown[], R>(fn: (...a: A) => Promise<R>, ...a: A): Promise<R> => env.run(fn, ...a) as Promise<R>;

  before(async () => {
    db = await createDb({ databaseUrl: await freshDatabase('prepaid') });
    await migrateLatest(db);
    src = await startFxSources();
    const config = loadConfig({ LOG_LEVEL: 'silent', AUTOVIBE_FX_ECB_URL: src.ecbUrl, AUTOVIBE_FX_CRYPTO_URL: 'off' });
    const log = pino({ level: 'silent' });
    acts = createPaymentActivities({ db, config, log, fx: createFxService({ config, db, log }) });
  });
  after(async () => {
    await db?.destroy();
    await src?.stop();
  });

  /** A project with a daily budget of `limit`, never topped up (postpaid). */
  async function project(limit: string, currency: CurrencyCode = 'USD'): Promise<string> {
    const id = `project-${crypto.randomUUID()}`;
    await insertBareProject(db, { id: id, name: 'prepaid', currency });
    await setBudget(db, { scopeType: 'project', scopeId: id, period: 'daily', limit: parseAmount(limit, currency), currency });
    return id;
  }
  const projectRow = async (id: string): Promise<Project> => (await getProject(db, id))!;

  /** A paid top-up, credited as the payment cascade credits it. */
  async function topUp(projectId: string, amount: string, currency: CurrencyCode = 'USD'): Promise<string> {
    const id = `payment-${crypto.randomUUID()}`;
    await insertPayment(db, {
      id,
      projectId,
      amount: parseAmount(amount, currency),
      currency,
      reason: 'test',
      methods: [{ kind: 'credits' }],
      createdBy: 'test',
    });
    await setPaymentStatus(db, id, 'succeeded', { paidBy: 'credits' });
    assert.deepEqual(await run(acts.creditTopup, { paymentId: id, method: 'credits' }), { credited: true });
    return id;
  }

  /** Reserves `amount` on every budget a machine of the project falls under (the machine-run path's policy). */
  async function reserveSpend(projectId: string, amount: bigint, now = DAY) {
    const { budgets } = await machineSpendBudgets(db, { project: await projectRow(projectId), machineId: `machine-${crypto.randomUUID()}`, type: null });
    const key = `machine:${crypto.randomUUID()}`;
    return { key, outcome: await reserve(db, { key, budgetIds: budgets.map((b) => b.budget.id), projectId, amount, now }) };
  }
  const balanceOf = async (projectId: string) => {
    const b = await balanceStatus(db, await projectRow(projectId));
    const f = (u: bigint) => formatAmount(u, b.currency);
    return { billing: b.billing, credited: f(b.credited), spent: f(b.spent), reserved: f(b.reserved), balance: f(b.balance), available: f(b.available) };
  };
  const limitOf = async (projectId: string) => {
    const b = (await findBudget(db, 'project', projectId))!;
    return formatAmount(b.limit, b.currency);
  };

  it('a top-up credits the balance and leaves the limit alone; a budget PUT after it keeps the balance', async () => {
    const id = await project('10.00');
    assert.equal((await projectRow(id)).billing, 'postpaid');
    await topUp(id, '5.00');
    assert.equal(await limitOf(id), '10.00', 'the top-up did not raise the limit');
    assert.deepEqual(await balanceOf(id), { billing: 'prepaid', credited: '5.00', spent: '0.00', reserved: '0.00', balance: '5.00', available: '5.00' });
    // Crediting the same payment again changes nothing.
    const again = await topUp(id, '2.00');
    assert.deepEqual(await run(acts.creditTopup, { paymentId: again, method: 'credits' }), { credited: false });
    await setBudget(db, { scopeType: 'project', scopeId: id, period: 'daily', limit: usd('3.00'), currency: 'USD' });
    assert.equal(await limitOf(id), '3.00');
    assert.equal((await balanceOf(id)).balance, '7.00', 'the budget PUT kept every top-up');
  });

  it('refuses a reservation over the balance while within the limit, and one over the limit while within the balance', async () => {
    const thin = await project('10.00');
    await topUp(thin, '2.00');
    const over = await reserveSpend(thin, usd('3.00'));
    assert.deepEqual(over.outcome, { ok: false, budgetId: balanceAccountId(thin), remaining: usd('2.00'), limit: usd('2.00') });
    const fits = await reserveSpend(thin, usd('1.50'));
    assert.equal(fits.outcome.ok, true);
    assert.equal((await balanceOf(thin)).available, '0.50', 'held by the open reservation');
    const second = await reserveSpend(thin, usd('0.60'));
    assert.equal(second.outcome.ok, false, 'the balance not held by reservations is what counts');
    // Settling draws the real spend from the balance (and from the period's limit), the rest comes back.
    assert.equal(await settle(db, fits.key, usd('0.40')), usd('0.40'));
    assert.deepEqual(await balanceOf(thin), { billing: 'prepaid', credited: '2.00', spent: '0.40', reserved: '0.00', balance: '1.60', available: '1.60' });
    assert.equal(await limitOf(thin), '10.00');

    const narrow = await project('1.00');
    await topUp(narrow, '5.00');
    const budgetId = (await findBudget(db, 'project', narrow))!.id;
    assert.deepEqual((await reserveSpend(narrow, usd('2.00'))).outcome, { ok: false, budgetId, remaining: usd('1.00'), limit: usd('1.00') });
    const ok = await reserveSpend(narrow, usd('1.00'));
    assert.equal(ok.outcome.ok, true);
    await release(db, ok.key);
    assert.equal((await balanceOf(narrow)).available, '5.00', 'a release gives the balance back');
  });

  it('keeps a project that was never topped up postpaid: its spend fits its budget only', async () => {
    const id = await project('10.00');
    const r = await reserveSpend(id, usd('9.00'));
    assert.equal(r.outcome.ok, true);
    assert.equal(await settle(db, r.key, usd('9.00')), usd('9.00'));
    assert.deepEqual(await balanceOf(id), { billing: 'postpaid', credited: '0.00', spent: '0.00', reserved: '0.00', balance: '0.00', available: '0.00' });
    assert.equal(
      await db('budgets')
        .where({ id: balanceAccountId(id) })
        .first(),
      undefined,
      'no balance account',
    );
  });

  it('never overdraws the balance under 50 parallel reservations and their settlements (exact)', async () => {
    const id = await project('100.00');
    await topUp(id, '1.00');
    const outcomes = await Promise.all(Array.from({ length: 50 }, () => reserveSpend(id, usd('0.10'))));
    const admitted = outcomes.filter((o) => o.outcome.ok);
    assert.equal(admitted.length, 10, 'exactly ten 0.10 reservations fit in a 1.00 balance');
    for (const o of outcomes.filter((x) => !x.outcome.ok)) {
      assert.deepEqual(o.outcome, { ok: false, budgetId: balanceAccountId(id), remaining: 0n, limit: usd('1.00') });
    }
    assert.deepEqual(await balanceOf(id), { billing: 'prepaid', credited: '1.00', spent: '0.00', reserved: '1.00', balance: '1.00', available: '0.00' });
    // Settled in parallel to uneven amounts of the ledger's finest unit: the balance is drawn down by exactly their sum.
    const rand = prng(7);
    const charges = admitted.map(() => BigInt(Math.floor(rand() * 100_000_000_000)) * 1_000_000n); // up to 0.1 in 1e-12 steps
    await Promise.all(admitted.map((o, i) => settle(db, o.key, charges[i]!)));
    const total = charges.reduce((a, b) => a + b, 0n);
    const b = await balanceStatus(db, await projectRow(id));
    assert.equal(b.spent, total);
    assert.equal(b.balance, usd('1.00') - total);
    assert.equal(b.reserved, 0n);
    const w = await db('budget_windows').where({ budget_id: balanceAccountId(id) });
    assert.equal(w.length, 1, 'one window: the balance never renews');
  });

  it('converts a top-up in another currency at the live rate, rounded down, and records the rate', async () => {
    const id = await project('10.00');
    const paymentId = await topUp(id, '10.00', 'EUR');
    // 10.00 EUR × 1.0856 = 10.856 USD → 10.85 (never more than was paid).
    assert.equal((await balanceOf(id)).credited, '10.85');
    const entry = await db('balance_entries').where({ payment_id: paymentId }).first();
    assert.equal(entry.currency, 'EUR');
    assert.equal(entry.project_currency, 'USD');
    assert.equal(formatAmount(fromNumeric(entry.project_amount), 'USD'), '10.85');
    assert.deepEqual([entry.fx.rate, entry.fx.source, entry.fx.asOf], ['1.085600000000000000', 'ecb', '2026-11-26T15:00:00.000Z']);
  });

  it('a daily automatic top-up over several days tops up only when the balance is below its threshold, and never raises the limit', async () => {
    const id = await project('10.00');
    await setPaymentMethods(db, id, [{ kind: 'credits' }]);
    await setAutoTopupConfig(db, { projectId: id, amount: usd('5.00'), currency: 'USD', threshold: usd('3.00') });
    const seen: string[] = [];
    for (let day = 0; day < 5; day++) {
      const at = new Date(Date.UTC(2026, 2, 10 + day, 0, 5));
      const opened = await run(acts.openRenewalPayment, { projectId: id, amount: '5.00', currency: 'USD', at: at.toISOString() });
      if (opened.paymentId !== null) {
        // A second firing while it runs names the same payment: never two at once.
        assert.equal(
          (await run(acts.openRenewalPayment, { projectId: id, amount: '5.00', currency: 'USD', at: at.toISOString() })).paymentId,
          opened.paymentId,
        );
        await setPaymentStatus(db, opened.paymentId, 'succeeded', { paidBy: 'credits' });
        await run(acts.creditTopup, { paymentId: opened.paymentId, method: 'credits' });
      } else {
        assert.match(opened.reason, /is not below the threshold of 3\.00 USD/);
      }
      const spend = await reserveSpend(id, usd('2.50'), new Date(at.getTime() + 3_600_000));
      assert.equal(spend.outcome.ok, true, `day ${day}: ${JSON.stringify(spend.outcome, (_k, v) => (typeof v === 'bigint' ? formatAmount(v, 'USD') : v))}`);
      await settle(db, spend.key, usd('2.50'));
      seen.push(`${opened.paymentId !== null ? 'topped up' : 'skipped'} → ${(await balanceOf(id)).balance}`);
      assert.equal(await limitOf(id), '10.00', `day ${day}: the limit never moves`);
    }
    assert.deepEqual(seen, ['topped up → 2.50', 'topped up → 5.00', 'skipped → 2.50', 'topped up → 5.00', 'skipped → 2.50']);
    assert.deepEqual(await balanceOf(id), { billing: 'prepaid', credited: '15.00', spent: '12.50', reserved: '0.00', balance: '2.50', available: '2.50' });
    assert.equal((await db('payments').where({ project_id: id, created_by: 'system:auto-topup' })).length, 3);
  });
});

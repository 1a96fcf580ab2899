import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { startGanache, type Ganache } from '../../scripts/services/ganache.js';
import { startStripeMock, type StripeMock } from '../../scripts/services/stripe-mock.js';
import { parseAmount } from '../../domain/money.js';
import { startFxSources, type FxSources } from '../support/fx-sources.js';
import { projectWithBudget, startTestPlatform, waitFor, waitForMachine, type TestPlatform } from '../support/platform.js';
import { WorkerProcesses } from '../support/worker-processes.js';

const FINAL = ['succeeded', 'failed'];

async function payment(p: TestPlatform, id: string): Promise<any> {
  return (await p.api('GET', `/v1/payments/${id}`)).body;
}
async function waitForPayment(p: TestPlatform, id: string, pred: (b: any) => boolean, what: string, timeoutMs = 60_000): Promise<any> {
  return waitFor(
    async () => {
      const b = await payment(p, id);
      return pred(b) ? b : null;
    },
    `payment ${id}: ${what}`,
    timeoutMs,
  );
}
const ended = (b: any) => FINAL.includes(b.status);

async function setMethods(p: TestPlatform, projectId: string, methods: unknown[]): Promise<void> {
  const r = await p.api('PUT', `/v1/projects/${projectId}/payment-methods`, { methods });
  assert.equal(r.status, 200, JSON.stringify(r.body));
}
async function topup(p: TestPlatform, projectId: string, amount: string, currency = 'USD'): Promise<string> {
  const r = await p.api('POST', `/v1/projects/${projectId}/topups`, { amount, currency });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  return r.body.paymentId;
}

/** Card charge requests that reached stripe-mock for a payment (its idempotency keys start with the payment id). */
function charges(stripe: StripeMock, paymentId: string) {
  return stripe.requests().filter((r) => r.method === 'POST' && r.path === '/v1/payment_intents' && r.idempotencyKey?.startsWith(`${paymentId}:`));
}

/** The wei an ETH invoice on an attempt asks for (its amount is an exact decimal of ETH). */
const invoiceWei = (details: { amount: string }): bigint => parseAmount(details.amount, 'ETH');

/** Live FX from a local stand-in of Coinbase's rates endpoint: 1 USD = 0.0005 ETH (2000 USD per ETH). */
async function ethAt2000(): Promise<FxSources> {
  const fx = await startFxSources();
  fx.coinbase.ETH = '0.0005';
  return fx;
}
const fxEnv = (fx: FxSources) => ({ AUTOVIBE_FX_CRYPTO_URL: fx.cryptoUrl, AUTOVIBE_FX_ECB_URL: fx.ecbUrl });

/** Sends `wei` from an unlocked ganache account; returns the transaction hash. */
async function sendEth(chain: Ganache, from: string, to: string, wei: bigint): Promise<string> {
  return chain.rpc<string>('eth_sendTransaction', [{ from, to, value: `0x${wei.toString(16)}` }]);
}

describe('payment cascade (stripe-mock, ganache, real Temporal and Postgres)', function () {
  this.timeout(240_000);
  let declining: StripeMock;
  let chain: Ganache;
  let fx: FxSources;
  let p: TestPlatform;
  const receiver = () => chain.accounts[1]!;
  const payer = () => chain.accounts[2]!;

  before(async () => {
    [declining, chain, fx] = await Promise.all([startStripeMock(), startGanache(), ethAt2000()]);
    p = await startTestPlatform({
      label: 'payments',
      env: {
        STRIPE_SECRET_KEY: 'sk_test_autovibe',
        STRIPE_API_BASE: declining.url,
        ETH_RPC_URL: chain.url,
        ETH_RECEIVING_ADDRESS: receiver(),
        ETH_CONFIRMATIONS: '3',
        PAYMENT_POLL_SECONDS: '1',
        ...fxEnv(fx),
      },
    });
  });
  after(async () => {
    await p?.stop();
    await Promise.all([declining?.stop(), chain?.stop(), fx?.stop()]);
  });

  it('pays from unexpired free credits first and never touches the card', async () => {
    const projectId = await projectWithBudget(p, '10.00');
    const grant = (amount: string, expiresAt: string) => p.api('POST', `/v1/projects/${projectId}/credits`, { amount, currency: 'USD', expiresAt });
    assert.equal((await grant('100.00', '2020-01-01T00:00:00Z')).status, 201);
    assert.equal((await grant('20.00', new Date(Date.now() + 86_400_000).toISOString())).status, 201);
    await setMethods(p, projectId, [{ kind: 'credits' }, { kind: 'card', customer: 'cus_test', paymentMethod: 'pm_card_visa' }]);
    const id = await topup(p, projectId, '15.00');
    const done = await waitForPayment(p, id, ended, 'to end');
    assert.equal(done.status, 'succeeded', JSON.stringify(done));
    assert.equal(done.paidBy, 'credits');
    assert.deepEqual(
      done.attempts.map((a: any) => [a.method, a.status]),
      [['credits', 'succeeded']],
    );
    assert.equal(charges(declining, id).length, 0);
    const credits = (await p.api('GET', `/v1/projects/${projectId}/credits`)).body.items;
    assert.deepEqual(
      credits.map((c: any) => c.remaining),
      ['100.00', '5.00'],
      'the expired credit is untouched; 15.00 came off the live one',
    );
    assert.deepEqual((await p.api('GET', `/v1/projects/${projectId}/balance`)).body.items, [{ amount: '15.00', currency: 'USD' }]);
    assert.equal((await p.api('GET', `/v1/projects/${projectId}`)).body.budget.limit, '10.00', 'the top-up left the limit alone');
    assert.equal((await p.api('GET', `/v1/projects/${projectId}/balance`)).body.balance, '15.00', 'it credited the balance');
    // Not enough credits left now: the next top-up falls through to the card.
    const second = await waitForPayment(p, await topup(p, projectId, '6.00'), ended, 'to end');
    assert.deepEqual(
      second.attempts.map((a: any) => [a.method, a.status]),
      [
        ['credits', 'declined'],
        ['card', 'declined'],
      ],
    );
    assert.match(second.attempts[0].error, /not enough free credits: 5.00 USD unexpired, 6.00 needed/);
  });

  it('falls through from a declined card to an ETH invoice, paid on chain after 3 confirmations', async () => {
    const projectId = await projectWithBudget(p, '10.00');
    await setMethods(p, projectId, [
      { kind: 'card', customer: 'cus_test', paymentMethod: 'pm_card_chargeDeclined' },
      { kind: 'crypto', chain: 'eth', timeoutSeconds: 120 },
    ]);
    const id = await topup(p, projectId, '10.00');
    const waiting = await waitForPayment(p, id, (b) => b.attempts[1]?.status === 'waiting', 'the ETH invoice');
    assert.equal(waiting.status, 'running');
    assert.equal(waiting.attempts[0].method, 'card');
    assert.equal(waiting.attempts[0].status, 'declined');
    assert.match(waiting.attempts[0].error, /card declined: payment intent pi_\w+ is requires_payment_method/);
    assert.equal(charges(declining, id).length, 1, 'one charge was asked for');
    const invoice = waiting.attempts[1].details;
    // 10.00 USD at the live 2000 USD per ETH, plus the invoice's unique tag of under a gwei.
    const wei = invoiceWei(invoice);
    const tag = wei - 5_000_000_000_000_000n;
    assert.ok(tag >= 1n && tag < 1_000_000_000n, `amount ${invoice.amount}`);
    assert.equal(invoice.coin, 'ETH');
    assert.equal(invoice.address.toLowerCase(), receiver().toLowerCase(), "the deployment's address");
    assert.equal(invoice.fx.rate, '0.000500000000000000');
    assert.equal(invoice.fx.source, 'coinbase');
    assert.deepEqual([invoice.fx.from, invoice.fx.to], ['USD', 'ETH']);

    // Too little, and the amount without the tag: neither is this invoice's transfer.
    await sendEth(chain, payer(), receiver(), 4_000_000_000_000_000n);
    await sendEth(chain, payer(), receiver(), 5_000_000_000_000_000n);
    const tx = await sendEth(chain, payer(), receiver(), wei);
    const seen = await waitForPayment(p, id, (b) => b.attempts[1]?.details.txHash === tx, 'the transfer to be seen');
    assert.equal(seen.status, 'running', 'one confirmation is not enough');
    assert.equal(seen.attempts[1].details.confirmations, 1);
    await chain.mine(2);
    const done = await waitForPayment(p, id, ended, 'to end');
    assert.equal(done.status, 'succeeded', JSON.stringify(done));
    assert.equal(done.paidBy, 'crypto');
    assert.deepEqual(
      done.attempts.map((a: any) => [a.method, a.status]),
      [
        ['card', 'declined'],
        ['crypto', 'succeeded'],
      ],
    );
    assert.ok(done.attempts[1].details.confirmations >= 3);
    const [row] = await p.db('crypto_invoices').where({ payment_id: id });
    assert.equal(row.tx_hash, tx);
    assert.equal(row.status, 'paid');
    assert.equal(row.fx.rate, '0.000500000000000000', 'the rate used is on the invoice');
    assert.equal(BigInt(row.tag), tag);
    assert.deepEqual((await p.api('GET', `/v1/projects/${projectId}/balance`)).body.items, [{ amount: '10.00', currency: 'USD' }]);
    const audit = (await p.api('GET', `/v1/audit?subjectId=${id}`)).body.items.map((e: any) => e.action);
    for (const action of ['payment.requested', 'payment.attempt.declined', 'payment.attempt.waiting', 'payment.attempt.succeeded', 'payment.succeeded']) {
      assert.ok(audit.includes(action), `audit has ${action}: ${audit.join(', ')}`);
    }
  });

  it("two projects paying the deployment's one ETH address at once each credit only their own top-up; a wrong amount credits nobody", async () => {
    const [a, b, c] = await Promise.all([projectWithBudget(p, '10.00'), projectWithBudget(p, '10.00'), projectWithBudget(p, '10.00')]);
    await Promise.all([
      setMethods(p, a, [{ kind: 'crypto', chain: 'eth', timeoutSeconds: 120 }]),
      setMethods(p, b, [{ kind: 'crypto', chain: 'eth', timeoutSeconds: 120 }]),
      setMethods(p, c, [{ kind: 'crypto', chain: 'eth', timeoutSeconds: 15 }]),
    ]);
    // The same top-up for each, asked for at the same time: the same converted amount.
    const [payA, payB, payC] = await Promise.all([topup(p, a, '10.00'), topup(p, b, '10.00'), topup(p, c, '10.00')]);
    const invoiceOf = async (id: string) => (await waitForPayment(p, id, (x) => x.attempts[0]?.status === 'waiting', 'its ETH invoice')).attempts[0].details;
    const [invA, invB, invC] = await Promise.all([invoiceOf(payA), invoiceOf(payB), invoiceOf(payC)]);
    const [weiA, weiB, weiC] = [invoiceWei(invA), invoiceWei(invB), invoiceWei(invC)];
    for (const inv of [invA, invB, invC]) assert.equal(inv.address.toLowerCase(), receiver().toLowerCase(), 'one deployment address for every project');
    assert.equal(new Set([weiA, weiB, weiC]).size, 3, `three distinct amounts: ${invA.amount} ${invB.amount} ${invC.amount}`);

    // B pays first, then A; C's payer sends one wei more than the largest invoice (more than any
    // invoice asks for, so "at least the amount" would have paid one), then the untagged amount.
    const txB = await sendEth(chain, payer(), receiver(), weiB);
    const txA = await sendEth(chain, chain.accounts[3]!, receiver(), weiA);
    const largest = [weiA, weiB, weiC].reduce((x, y) => (x > y ? x : y));
    const wrong = [await sendEth(chain, payer(), receiver(), largest + 1n), await sendEth(chain, payer(), receiver(), 5_000_000_000_000_000n)];
    // And B's amount once more: a transfer pays at most one invoice, and B is paid once.
    const twiceB = await sendEth(chain, payer(), receiver(), weiB);
    await chain.mine(3);
    const [doneA, doneB, doneC] = await Promise.all([payA, payB, payC].map((id) => waitForPayment(p, id, ended, 'to end')));
    assert.equal(doneA.status, 'succeeded', JSON.stringify(doneA));
    assert.equal(doneB.status, 'succeeded', JSON.stringify(doneB));
    assert.equal(doneA.attempts[0].details.txHash, txA);
    assert.equal(doneB.attempts[0].details.txHash, txB);
    assert.equal(doneC.status, 'failed', 'no transfer of exactly its amount came');
    assert.equal(doneC.attempts[0].status, 'expired');

    const rows = await p.db('crypto_invoices').whereIn('payment_id', [payA, payB, payC]);
    const byPayment = Object.fromEntries(rows.map((r: any) => [r.payment_id, r]));
    assert.equal(byPayment[payA].tx_hash, txA);
    assert.equal(byPayment[payB].tx_hash, txB);
    assert.equal(byPayment[payC].tx_hash, null);
    const claimed = await p.db('crypto_invoices').whereIn('tx_hash', [...wrong, twiceB]);
    assert.deepEqual(claimed, [], "the wrong amounts and the second transfer of B's amount pay no invoice at all");
    for (const [project, amount] of [
      [a, [{ amount: '10.00', currency: 'USD' }]],
      [b, [{ amount: '10.00', currency: 'USD' }]],
      [c, []],
    ] as const) {
      assert.deepEqual((await p.api('GET', `/v1/projects/${project}/balance`)).body.items, amount, project);
    }
  });

  it('tries the methods in the order the owner set: a declined card first, then credits', async () => {
    const projectId = await projectWithBudget(p, '10.00');
    assert.equal(
      (await p.api('POST', `/v1/projects/${projectId}/credits`, { amount: '50.00', currency: 'USD', expiresAt: '2099-01-01T00:00:00Z' })).status,
      201,
    );
    await setMethods(p, projectId, [{ kind: 'card', customer: 'cus_test', paymentMethod: 'pm_card_visa' }, { kind: 'credits' }]);
    const done = await waitForPayment(p, await topup(p, projectId, '20.00'), ended, 'to end');
    assert.equal(done.status, 'succeeded');
    assert.deepEqual(
      done.attempts.map((a: any) => [a.method, a.status]),
      [
        ['card', 'declined'],
        ['credits', 'succeeded'],
      ],
    );
    assert.equal((await p.api('GET', `/v1/projects/${projectId}/credits`)).body.items[0].remaining, '30.00');
  });

  it('retries a card charge after Stripe errors, with backoff and the same idempotency key', async () => {
    const projectId = await projectWithBudget(p, '10.00');
    await setMethods(p, projectId, [
      { kind: 'card', customer: 'cus_test', paymentMethod: 'pm_card_visa' },
      { kind: 'manual', timeoutSeconds: 1 },
    ]);
    declining.failNext('/v1/payment_intents', 2);
    const id = await topup(p, projectId, '3.00');
    const done = await waitForPayment(p, id, ended, 'to end');
    assert.equal(done.attempts[0].status, 'declined', JSON.stringify(done.attempts[0]));
    assert.equal(done.attempts[0].tries, 3, 'two Stripe errors, then the answer');
    const sent = charges(declining, id);
    assert.equal(sent.length, 3);
    assert.deepEqual([...new Set(sent.map((r) => r.idempotencyKey))], [`${id}:1`]);
    const audit = (await p.api('GET', `/v1/audit?subjectId=${id}`)).body.items.map((e: any) => e.action);
    assert.ok(audit.includes('payment.failed'), audit.join(', '));
  });

  it('falls through to the next method when the card keeps failing after every retry', async () => {
    const projectId = await projectWithBudget(p, '10.00');
    assert.equal(
      (await p.api('POST', `/v1/projects/${projectId}/credits`, { amount: '5.00', currency: 'USD', expiresAt: '2099-01-01T00:00:00Z' })).status,
      201,
    );
    // This card's own retry budget: 2 tries.
    await setMethods(p, projectId, [{ kind: 'card', customer: 'cus_test', paymentMethod: 'pm_card_visa', maxTries: 2 }, { kind: 'credits' }]);
    declining.failNext('/v1/payment_intents', 2);
    const id = await topup(p, projectId, '4.00');
    const done = await waitForPayment(p, id, ended, 'to end');
    assert.equal(done.status, 'succeeded');
    assert.deepEqual(
      done.attempts.map((a: any) => [a.method, a.status]),
      [
        ['card', 'failed'],
        ['credits', 'succeeded'],
      ],
    );
    assert.equal(done.attempts[0].tries, 2);
    assert.match(done.attempts[0].error, /StripeAPIError: injected by the test proxy/);
    assert.equal(charges(declining, id).length, 2);
  });

  it('tops a project up automatically when its balance falls below the threshold (schedule and spend), never raising the limit', async () => {
    const projectId = await projectWithBudget(p, '10.00', 'daily');
    assert.equal(
      (await p.api('POST', `/v1/projects/${projectId}/credits`, { amount: '100.00', currency: 'USD', expiresAt: '2099-01-01T00:00:00Z' })).status,
      201,
    );
    await setMethods(p, projectId, [{ kind: 'credits' }]);
    const noThreshold = await p.api('PUT', `/v1/projects/${projectId}/auto-topup`, { amount: '10.00', currency: 'EUR' });
    assert.equal(noThreshold.status, 422, "a top-up in another currency needs the threshold in the balance's");
    assert.equal(noThreshold.body.error.details.field, 'threshold');
    const set = await p.api('PUT', `/v1/projects/${projectId}/auto-topup`, { amount: '10.00', currency: 'USD' });
    assert.equal(set.status, 200, JSON.stringify(set.body));
    assert.equal(set.body.cron, '5 0 * * *');
    assert.deepEqual([set.body.threshold, set.body.thresholdCurrency], ['10.00', 'USD'], 'by default: the amount');
    const schedule = p.temporal.schedule.getHandle(set.body.scheduleId);
    const cal = (await schedule.describe()).spec.calendars?.[0];
    assert.deepEqual(
      [cal?.hour, cal?.minute],
      [[{ start: 0, end: 0, step: 1 }], [{ start: 5, end: 5, step: 1 }]],
      'checks again at 00:05 UTC, five minutes into each daily window',
    );

    const firing = async (n: number) => {
      await schedule.trigger();
      const action = await waitFor(async () => (await schedule.describe()).info.recentActions[n - 1]?.action, `schedule action ${n}`);
      return p.temporal.workflow.getHandle(action.workflow.workflowId, action.workflow.firstExecutionRunId).result();
    };
    const first = await firing(1);
    assert.equal(first.note, 'started');
    const done = await waitForPayment(p, first.paymentId, ended, 'the automatic top-up');
    assert.equal(done.status, 'succeeded');
    assert.match(done.reason, /automatic top-up: the balance \(0\.00 USD not held\) fell below 10\.00 USD/);
    const second = await firing(2);
    assert.equal(second.paymentId, null);
    assert.match(second.note, /skipped: the balance \(10\.00 USD not held\) is not below the threshold of 10\.00 USD/);
    assert.equal((await p.db('payments').where({ project_id: projectId })).length, 1);
    const balance = (await p.api('GET', `/v1/projects/${projectId}/balance`)).body;
    assert.deepEqual(balance.items, [{ amount: '10.00', currency: 'USD' }]);
    assert.deepEqual([balance.billing, balance.balance], ['prepaid', '10.00']);
    assert.equal((await p.api('GET', `/v1/projects/${projectId}`)).body.budget.limit, '10.00', 'the limit never moves');

    // A machine's spend draws the balance below the threshold: its settlement starts the next top-up.
    const start = await p.api('POST', '/v1/machines', { projectId, type: 'shell', command: 'sleep 1', limits: { money: '0.10', minutes: 5 } });
    assert.equal(start.status, 202, JSON.stringify(start.body));
    const machine = await waitForMachine(p, start.body.id);
    assert.equal(machine.status, 'completed', JSON.stringify(machine));
    const auto = await waitFor(async () => {
      const rows = await p.db('payments').where({ project_id: projectId, created_by: 'system:auto-topup' }).orderBy('created_at');
      return rows.length === 2 && rows[1].status === 'succeeded' ? rows : null;
    }, 'the top-up after the spend');
    assert.equal(auto.length, 2);
    const after = (await p.api('GET', `/v1/projects/${projectId}/budgets`)).body;
    assert.equal(after.budget.limit, '10.00');
    assert.equal(after.balance.credited, '20.00');
    assert.equal(after.balance.spent, machine.cost.amount, "the machine's cost came off the balance");
    assert.equal(after.budget.spent, machine.cost.amount, "and off the period's limit");

    assert.equal((await p.api('DELETE', `/v1/projects/${projectId}/auto-topup`)).status, 204);
    assert.equal((await p.api('DELETE', `/v1/projects/${projectId}/auto-topup`)).status, 404);
    const total = await projectWithBudget(p, '10.00', 'total');
    await setMethods(p, total, [{ kind: 'credits' }]);
    const refused = await p.api('PUT', `/v1/projects/${total}/auto-topup`, { amount: '10.00', currency: 'USD' });
    assert.equal(refused.status, 422);
    assert.equal(refused.body.error.details.field, 'budget');
  });

  it('ends in manual_required when every other method fails, and an approval completes it', async () => {
    const projectId = await projectWithBudget(p, '10.00');
    await setMethods(p, projectId, [
      { kind: 'credits' },
      { kind: 'card', customer: 'cus_test', paymentMethod: 'pm_card_visa' },
      { kind: 'crypto', chain: 'eth', timeoutSeconds: 3 },
      { kind: 'manual', timeoutSeconds: 600 },
    ]);
    const id = await topup(p, projectId, '5.00');
    assert.equal((await p.api('POST', `/v1/payments/${id}/approve`)).status === 202, false, 'not approvable before it waits for approval');
    const waiting = await waitForPayment(p, id, (b) => b.status === 'manual_required', 'to need approval');
    assert.deepEqual(
      waiting.attempts.map((a: any) => [a.method, a.status]),
      [
        ['credits', 'declined'],
        ['card', 'declined'],
        ['crypto', 'expired'],
        ['manual', 'waiting'],
      ],
    );
    assert.match(waiting.attempts[2].error, /no payment of 0\.002500000\d{9} ETH/);
    assert.equal((await p.api('GET', `/v1/projects/${projectId}/balance`)).body.items.length, 0);
    const approve = await p.api('POST', `/v1/payments/${id}/approve`);
    assert.equal(approve.status, 202, JSON.stringify(approve.body));
    const done = await waitForPayment(p, id, ended, 'to end');
    assert.equal(done.status, 'succeeded');
    assert.equal(done.paidBy, 'manual');
    assert.equal(done.attempts[3].status, 'approved');
    assert.equal(done.attempts[3].details.approvedBy, 'user:admin');
    assert.equal((await p.api('POST', `/v1/payments/${id}/approve`)).status, 409);
    assert.deepEqual((await p.api('GET', `/v1/projects/${projectId}/balance`)).body.items, [{ amount: '5.00', currency: 'USD' }]);
  });

  it('fails the cascade with a clear status when no approval comes in time', async () => {
    const projectId = await projectWithBudget(p, '10.00');
    await setMethods(p, projectId, [{ kind: 'credits' }, { kind: 'manual', timeoutSeconds: 2 }]);
    const id = await topup(p, projectId, '1.00');
    const done = await waitForPayment(p, id, ended, 'to end');
    assert.equal(done.status, 'failed');
    assert.match(done.error, /manual approval timed out/);
    assert.deepEqual(
      done.attempts.map((a: any) => [a.method, a.status]),
      [
        ['credits', 'declined'],
        ['manual', 'expired'],
      ],
    );
    assert.match(done.attempts[1].error, /no approval within 2s/);
    assert.equal(Number((await p.db('balance_entries').where({ payment_id: id }).count({ n: '*' }))[0]!.n), 0);
  });
});

describe('payment cascade: a worker killed mid-charge and mid-crypto-wait never pays twice', function () {
  this.timeout(240_000);
  let succeeding: StripeMock;
  let declining: StripeMock;
  let chain: Ganache;
  let fx: FxSources;
  let p: TestPlatform;
  const workers = new WorkerProcesses();
  /** A real worker process (the production entry point), so it can be SIGKILLed. */
  const startWorker = (stripeBase: string): ChildProcess =>
    workers.start(p, {
      STRIPE_SECRET_KEY: 'sk_test_autovibe',
      STRIPE_API_BASE: stripeBase,
      ETH_RPC_URL: chain.url,
      ETH_RECEIVING_ADDRESS: receiver(),
      ETH_CONFIRMATIONS: '3',
      ...fxEnv(fx),
    });
  const kill = (w: ChildProcess) => workers.kill(w);

  before(async () => {
    [succeeding, declining, chain, fx] = await Promise.all([
      startStripeMock({ paymentIntentStatus: 'succeeded' }),
      startStripeMock(),
      startGanache(),
      ethAt2000(),
    ]);
    // The api runs here (it only needs the settings to accept the methods); workers are processes.
    p = await startTestPlatform({
      label: 'payments-kill',
      worker: false,
      heartbeatTimeoutSeconds: 3,
      env: { STRIPE_SECRET_KEY: 'sk_test_autovibe', ETH_RPC_URL: chain.url, ETH_RECEIVING_ADDRESS: receiver(), PAYMENT_POLL_SECONDS: '1' },
    });
  });
  afterEach(async () => {
    await workers.killAll();
  });
  after(async () => {
    await p?.stop();
    await Promise.all([succeeding?.stop(), declining?.stop(), chain?.stop(), fx?.stop()]);
  });

  it('a card charge in flight when the worker dies is one charge and one credited top-up', async () => {
    let worker = startWorker(succeeding.url);
    const projectId = await projectWithBudget(p, '10.00');
    await setMethods(p, projectId, [
      { kind: 'card', customer: 'cus_test', paymentMethod: 'pm_card_visa' },
      { kind: 'manual', timeoutSeconds: 600 },
    ]);
    // stripe-mock gets the charge only after 6 s: the worker is killed while it waits for the answer.
    succeeding.hold('/v1/payment_intents', 6000);
    const id = await topup(p, projectId, '7.50');
    await waitFor(async () => charges(succeeding, id).length === 1, 'the charge to be sent', 60_000);
    await kill(worker);
    worker = startWorker(succeeding.url);
    const done = await waitForPayment(p, id, ended, 'to end', 120_000);
    assert.equal(done.status, 'succeeded', JSON.stringify(done));
    assert.equal(done.paidBy, 'card');
    assert.deepEqual(
      done.attempts.map((a: any) => [a.method, a.status]),
      [['card', 'succeeded']],
    );
    assert.ok(done.attempts[0].tries >= 2, `the killed try was counted (${done.attempts[0].tries})`);
    const sent = charges(succeeding, id);
    assert.ok(sent.length >= 2, `the charge was sent again after the restart (${sent.length})`);
    assert.deepEqual([...new Set(sent.map((r) => r.idempotencyKey))], [`${id}:1`], 'every send carried the same idempotency key: one charge at Stripe');
    assert.equal(Number((await p.db('balance_entries').where({ payment_id: id }).count({ n: '*' }))[0]!.n), 1);
    assert.equal((await p.api('GET', `/v1/projects/${projectId}/balance`)).body.balance, '7.50', 'credited once');
    assert.equal((await p.api('GET', `/v1/projects/${projectId}`)).body.budget.limit, '10.00');
  });

  it('a worker killed while waiting for an ETH payment credits it once after the restart', async () => {
    let worker = startWorker(declining.url);
    const projectId = await projectWithBudget(p, '10.00');
    await setMethods(p, projectId, [
      { kind: 'card', customer: 'cus_test', paymentMethod: 'pm_card_visa' },
      { kind: 'crypto', chain: 'eth', timeoutSeconds: 300 },
      { kind: 'manual', timeoutSeconds: 600 },
    ]);
    const id = await topup(p, projectId, '25.00');
    const waiting = await waitForPayment(p, id, (b) => b.attempts[1]?.status === 'waiting', 'the ETH invoice', 60_000);
    const wei = invoiceWei(waiting.attempts[1].details);
    assert.ok(wei > 12_500_000_000_000_000n && wei < 12_500_001_000_000_000n, waiting.attempts[1].details.amount);
    await kill(worker);
    const tx = await sendEth(chain, payer(), receiver(), wei);
    await chain.mine(3);
    worker = startWorker(declining.url);
    const done = await waitForPayment(p, id, ended, 'to end', 120_000);
    assert.equal(done.status, 'succeeded', JSON.stringify(done));
    assert.deepEqual(
      done.attempts.map((a: any) => [a.method, a.status]),
      [
        ['card', 'declined'],
        ['crypto', 'succeeded'],
      ],
    );
    assert.equal(done.attempts[1].details.txHash, tx);
    assert.equal((await p.db('crypto_invoices').where({ payment_id: id })).length, 1, 'one invoice');
    assert.equal(Number((await p.db('balance_entries').where({ payment_id: id }).count({ n: '*' }))[0]!.n), 1, 'credited once');
    assert.deepEqual([...new Set(charges(declining, id).map((r) => r.idempotencyKey))], [`${id}:1`], 'one card charge');
    assert.deepEqual((await p.api('GET', `/v1/projects/${projectId}/balance`)).body.items, [{ amount: '25.00', currency: 'USD' }]);
  });

  function receiver() {
    return chain.accounts[1]!;
  }
  function payer() {
    return chain.accounts[2]!;
  }
});

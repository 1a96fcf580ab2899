import assert from 'node:assert/strict';
import { createUserWithKey } from '../../store/auth.js';
import { findBudget, release, reserve, setBudget } from '../../store/budgets.js';
import { saveProviderStatus } from '../../store/compute.js';
import { updateMachine } from '../../store/machines.js';
import { projectWithBudget, startTestPlatform, waitFor, waitForMachine, type TestPlatform } from '../support/platform.js';

/**
 * Alerts against the real platform (api, worker, Temporal, Postgres): each is a row of
 * GET /v1/alerts and an `alert.*` event, raised once, and seen only by keys of its project.
 */
describe('alerts (real Temporal, Postgres)', function () {
  this.timeout(300_000);
  let p: TestPlatform;
  /** A project, another one, and a viewer key of each. */
  let projectA: string;
  let projectB: string;
  let keyA: string;
  let keyB: string;

  const alertsOf = async (query: string, key?: string) => {
    const r = await p.api('GET', `/v1/alerts?${query}`, undefined, key ? { key } : {});
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return r.body.items as any[];
  };
  const alertEvents = async (query: string, key?: string) => {
    const r = await p.api('GET', `/v1/events?kinds=alert.*&cursor=0&limit=500&${query}`, undefined, key ? { key } : {});
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return r.body.items as any[];
  };

  before(async () => {
    p = await startTestPlatform({ label: 'alerts' });
    [projectA, projectB] = await Promise.all([projectWithBudget(p, '0.10'), projectWithBudget(p, '10.00')]);
    keyA = (await createUserWithKey(p.db, 'viewer-of-a', 'viewer', [projectA])).key;
    keyB = (await createUserWithKey(p.db, 'viewer-of-b', 'viewer', [projectB])).key;
  });
  after(async () => {
    await p?.stop();
  });

  it("a machine's reservation past 50% of its project's budget raises one alert, seen by that project's key only; a second spend in the same period raises none", async () => {
    const run = async () => {
      const r = await p.api('POST', '/v1/machines', {
        projectId: projectA,
        type: 'shell',
        command: 'true',
        cache: false,
        limits: { money: '0.06', minutes: 2 },
      });
      assert.equal(r.status, 202, JSON.stringify(r.body));
      const m = await waitForMachine(p, r.body.id);
      assert.equal(m.status, 'completed', JSON.stringify(m));
    };
    await run();
    const budget = (await findBudget(p.db, 'project', projectA))!;
    const alerts = await alertsOf(`projectId=${projectA}`, keyA);
    assert.equal(alerts.length, 1, JSON.stringify(alerts));
    assert.equal(alerts[0].kind, 'budget_threshold');
    assert.equal(alerts[0].severity, 'info');
    assert.equal(alerts[0].projectId, projectA);
    assert.equal(alerts[0].subjectId, budget.id);
    assert.equal(alerts[0].data.percent, 50);
    assert.match(alerts[0].message, /reached 50% of its daily limit: 0\.06 of 0\.10 USD spent or reserved/);
    // The same alert on the event feed, with severity and message, under the project.
    const events = await alertEvents(`projectId=${projectA}`, keyA);
    assert.equal(events.length, 1, JSON.stringify(events));
    assert.equal(events[0].kind, 'alert.budget_threshold');
    assert.equal(events[0].projectId, projectA);
    assert.deepEqual(
      { severity: events[0].data.severity, message: events[0].data.message, alertId: events[0].data.alertId },
      { severity: 'info', message: alerts[0].message, alertId: alerts[0].id },
    );

    // Another project's key sees none of it: not in the list, not filtered by the project, not on the feed.
    assert.deepEqual(await alertsOf('', keyB), []);
    assert.equal((await p.api('GET', `/v1/alerts?projectId=${projectA}`, undefined, { key: keyB })).status, 404);
    assert.deepEqual(await alertEvents('', keyB), []);

    await run();
    assert.equal((await alertsOf(`projectId=${projectA}`)).length, 1, 'the 50% threshold is raised once per budget period');
  });

  it('spends that cross thresholds concurrently raise each threshold exactly once per period, in the transaction of the spend', async () => {
    const projectId = await projectWithBudget(p, '1.00');
    const budget = (await findBudget(p.db, 'project', projectId))!;
    const now = new Date();
    // Ten spends of 0.10 at once: 50%, 80% and 100% are each crossed by one of them, in some order.
    const outcomes = await Promise.all(
      Array.from({ length: 10 }, (_, i) => reserve(p.db, { key: `alerts-test:${projectId}:${i}`, budgetIds: [budget.id], projectId, amount: 10n ** 17n, now })),
    );
    assert.ok(
      outcomes.every((o) => o.ok),
      JSON.stringify(outcomes, (_k, v) => (typeof v === 'bigint' ? String(v) : v)),
    );
    const alerts = await alertsOf(`projectId=${projectId}`);
    assert.deepEqual(alerts.map((a) => [a.data.percent, a.severity]).sort(), [
      [100, 'critical'],
      [50, 'info'],
      [80, 'warning'],
    ]);
    const events = await alertEvents(`projectId=${projectId}`);
    assert.deepEqual(events.map((e) => e.data.percent).sort(), [100, 50, 80]);
    // Released and spent again in the same window: nothing new.
    await Promise.all(outcomes.map((_o, i) => release(p.db, `alerts-test:${projectId}:${i}`)));
    await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        reserve(p.db, { key: `alerts-test:${projectId}:again:${i}`, budgetIds: [budget.id], projectId, amount: 10n ** 17n, now }),
      ),
    );
    assert.equal((await alertsOf(`projectId=${projectId}`)).length, 3);
    // The next day is another period: its thresholds are raised again.
    const tomorrow = new Date(now.getTime() + 24 * 3600_000);
    const next = await reserve(p.db, { key: `alerts-test:${projectId}:tomorrow`, budgetIds: [budget.id], projectId, amount: 6n * 10n ** 17n, now: tomorrow });
    assert.ok(next.ok);
    const after = await alertsOf(`projectId=${projectId}`);
    assert.equal(after.length, 4);
    assert.equal(after[0].data.percent, 50, 'newest first');
    assert.notEqual(after[0].data.windowStart, after[1].data.windowStart);
    // A refused spend rolls back with its transaction: no alert for money never reserved.
    const refused = await reserve(p.db, { key: `alerts-test:${projectId}:refused`, budgetIds: [budget.id], projectId, amount: 5n * 10n ** 17n, now: tomorrow });
    assert.equal(refused.ok, false);
    assert.equal((await alertsOf(`projectId=${projectId}`)).length, 4);
  });

  it("a budget's own thresholds replace the default ones", async () => {
    const projectId = await projectWithBudget(p, '1.00');
    const budget = await setBudget(p.db, {
      scopeType: 'project',
      scopeId: projectId,
      period: 'daily',
      limit: 10n ** 18n,
      currency: 'USD',
      alertPercents: [25],
    });
    assert.deepEqual(budget.alertPercents, [25]);
    await assert.rejects(
      setBudget(p.db, { scopeType: 'project', scopeId: projectId, period: 'daily', limit: 10n ** 18n, currency: 'USD', alertPercents: [0] }),
      /alertPercents: each threshold is a whole percentage from 1 to 100/,
    );
    assert.ok((await reserve(p.db, { key: `alerts-own:${projectId}`, budgetIds: [budget.id], projectId, amount: 9n * 10n ** 17n, now: new Date() })).ok);
    assert.deepEqual(
      (await alertsOf(`projectId=${projectId}`)).map((a) => a.data.percent),
      [25],
    );
  });

  it('thresholds are set and shown through the budget API, and bad ones are refused naming the field', async () => {
    const projectId = await projectWithBudget(p, '1.00');
    const put = await p.api('PUT', `/v1/projects/${projectId}/budget`, { amount: '2.00', currency: 'USD', period: 'daily', alertPercents: [90, 30] });
    assert.equal(put.status, 200, JSON.stringify(put.body));
    assert.deepEqual(put.body.alertPercents, [30, 90]);
    assert.deepEqual((await p.api('GET', `/v1/projects/${projectId}`)).body.budget.alertPercents, [30, 90]);
    const typed = await p.api('PUT', `/v1/projects/${projectId}/machine-types/shell/budget`, { amount: '1.00', currency: 'USD' });
    assert.deepEqual(typed.body.alertPercents, [50, 80, 100], 'the default thresholds');
    for (const bad of [[0], [50, 50], [101]]) {
      const r = await p.api('PUT', `/v1/projects/${projectId}/budget`, { amount: '2.00', currency: 'USD', period: 'daily', alertPercents: bad });
      assert.ok([400, 422].includes(r.status), JSON.stringify(r.body));
      assert.match(r.body.error.message, /alertPercents/);
    }
    assert.deepEqual((await p.api('GET', `/v1/projects/${projectId}`)).body.budget.alertPercents, [30, 90], 'a refused PUT changed nothing');
  });

  it('a failed payment raises one critical alert', async () => {
    assert.equal((await p.api('PUT', `/v1/projects/${projectB}/payment-methods`, [{ kind: 'manual', timeoutSeconds: 1 }])).status, 200);
    const topup = await p.api('POST', `/v1/projects/${projectB}/topups`, { amount: '1.00', currency: 'USD' });
    assert.equal(topup.status, 202, JSON.stringify(topup.body));
    const paymentId = topup.body.paymentId;
    await waitFor(async () => (await p.api('GET', `/v1/payments/${paymentId}`)).body.status === 'failed', 'payment failed');
    const alerts = (await alertsOf(`projectId=${projectB}`, keyB)).filter((a) => a.kind === 'payment_failed');
    assert.equal(alerts.length, 1, JSON.stringify(alerts));
    assert.equal(alerts[0].subjectId, paymentId);
    assert.equal(alerts[0].severity, 'critical');
    assert.match(alerts[0].message, new RegExp(`payment ${paymentId} failed`));
    const events = (await alertEvents(`projectId=${projectB}`, keyB)).filter((e) => e.kind === 'alert.payment_failed');
    assert.equal(events.length, 1);
    assert.deepEqual(await alertsOf(`projectId=${projectA}`, keyA).then((xs) => xs.filter((a) => a.kind === 'payment_failed')), []);
  });

  it('a machine paused for a decision raises one alert per pause, even when the pause is recorded twice at once', async () => {
    const r = await p.api('POST', '/v1/machines', { projectId: projectB, type: 'shell', command: 'true', cache: false, limits: { money: '0.05', minutes: 2 } });
    const m = await waitForMachine(p, r.body.id);
    // The status change an agent machine at its limit makes (store-level: shell machines never pause).
    await updateMachine(p.db, m.id, { status: 'running' });
    await Promise.all([
      updateMachine(p.db, m.id, { status: 'paused', stopReason: 'money limit reached' }),
      updateMachine(p.db, m.id, { status: 'paused', stopReason: 'money limit reached' }),
    ]);
    const alerts = (await alertsOf(`projectId=${projectB}`, keyB)).filter((a) => a.kind === 'machine_paused');
    assert.equal(alerts.length, 1, JSON.stringify(alerts));
    assert.equal(alerts[0].subjectId, m.id);
    assert.match(alerts[0].message, /is paused \(money limit reached\) and waits for a decision/);
    await updateMachine(p.db, m.id, { status: 'running' });
    await updateMachine(p.db, m.id, { status: 'paused' });
    assert.equal((await alertsOf(`projectId=${projectB}`, keyB)).filter((a) => a.kind === 'machine_paused').length, 2);
  });

  it('a provider becoming unavailable raises one deployment alert, which keys bound to projects do not see', async () => {
    await saveProviderStatus(p.db, { id: 'aws-ecs', available: true, reason: null, checkedAt: new Date() });
    await Promise.all(
      ['worker 1', 'worker 2', 'worker 3'].map((w) =>
        saveProviderStatus(p.db, { id: 'aws-ecs', available: false, reason: `credentials expired (${w})`, checkedAt: new Date() }),
      ),
    );
    // Still unavailable: no new alert.
    await saveProviderStatus(p.db, { id: 'aws-ecs', available: false, reason: 'credentials expired', checkedAt: new Date() });
    const alerts = (await alertsOf('limit=500')).filter((a) => a.kind === 'provider_unavailable');
    assert.equal(alerts.length, 1, JSON.stringify(alerts));
    assert.equal(alerts[0].projectId, null);
    assert.equal(alerts[0].subjectId, 'aws-ecs');
    assert.match(alerts[0].message, /compute provider aws-ecs became unavailable: credentials expired/);
    assert.equal((await alertEvents('')).filter((e) => e.kind === 'alert.provider_unavailable').length, 1);
    for (const key of [keyA, keyB]) {
      assert.deepEqual(
        (await alertsOf('limit=500', key)).filter((a) => a.kind === 'provider_unavailable'),
        [],
      );
      assert.deepEqual(
        (await alertEvents('', key)).filter((e) => e.kind === 'alert.provider_unavailable'),
        [],
      );
    }
  });

  it('pages newest first with limit and cursor, and refuses a cursor it did not give', async () => {
    const all = await alertsOf('limit=500');
    assert.ok(all.length >= 5);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const r: { status: number; body: any } = await p.api('GET', `/v1/alerts?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      assert.equal(r.status, 200);
      seen.push(...r.body.items.map((a: any) => a.id));
      cursor = r.body.nextCursor;
    } while (cursor);
    assert.deepEqual(
      seen,
      all.map((a) => a.id),
    );
    assert.deepEqual(
      [...seen].sort((x, y) => Number(y) - Number(x)),
      seen,
    );
    const bad = await p.api('GET', '/v1/alerts?cursor=nonsense');
    assert.equal(bad.status, 422);
  });
});

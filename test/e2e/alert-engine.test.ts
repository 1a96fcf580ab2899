import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { SEARCH_ATTRIBUTES } from '../../domain/search-attributes.js';
import { saveRateLimitSample, saveResourceSample } from '../../store/alerts.js';
import { createUserWithKey } from '../../store/auth.js';
import { findBudget, release, reserve } from '../../store/budgets.js';
import { updateMachine } from '../../store/machines.js';
import { alertScheduleId } from '../../workers/schedules.js';
import { projectWithBudget, startTestPlatform, waitFor, waitForMachine, type TestPlatform } from '../support/platform.js';
import { startWebhookReceiver, type WebhookReceiver } from '../support/webhook-receiver.js';

const UNIT = 10n ** 18n;

/**
 * The alert engine against the real platform (api, worker, Temporal, Postgres): each condition
 * the evaluator watches is raised once while it holds (however often the evaluator runs), resolved
 * when it clears (an `alert.resolved` event), raised again only after that, listed by
 * GET /v1/alerts with its status, and delivered to a webhook subscribed to `alert.*`.
 */
describe('alert engine: lifecycle, rules, time limits, rate limits, resources (real Temporal, Postgres)', function () {
  this.timeout(300_000);
  let p: TestPlatform;
  let receiver: WebhookReceiver;
  let projectId: string;
  let hookPath: string;

  /** One run of the evaluator's workflow, as the schedule starts it. */
  const evaluate = async () =>
    p.temporal.workflow.execute('alertEvaluation', {
      workflowId: `alert-evaluation-test-${crypto.randomUUID()}`,
      taskQueue: p.config.taskQueue,
      args: [{ trigger: 'test' }],
    }) as Promise<{ raised: number; resolved: number; open: number }>;
  const alertsOf = async (query: string, key?: string) => {
    const r = await p.api('GET', `/v1/alerts?limit=500&${query}`, undefined, key ? { key } : {});
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return r.body.items as any[];
  };
  /** Webhook bodies the project's endpoint received, of `type`. */
  const delivered = (type: string, pred: (b: any) => boolean = () => true) =>
    receiver
      .at(hookPath)
      .map((r) => JSON.parse(r.body))
      .filter((b) => b.type === type && pred(b));

  before(async () => {
    receiver = await startWebhookReceiver();
    p = await startTestPlatform({
      label: 'alert-engine',
      // A small disk for the lightweight profile, so a machine can fill most of it quickly.
      env: { AUTOVIBE_WEBHOOK_ALLOW_PRIVATE: '1', AUTOVIBE_PROFILE_LIMITS: '{"lightweight":{"diskMiB":64}}' },
    });
    projectId = await projectWithBudget(p, '1.00');
    hookPath = `/ok/alerts-${projectId}`;
    const hook = await p.api('POST', '/v1/webhooks', { projectId, url: `${receiver.url}${hookPath}`, events: ['alert.*'] });
    assert.equal(hook.status, 201, JSON.stringify(hook.body));
  });
  after(async () => {
    await p?.stop();
    await receiver?.close();
  });

  it('the platform creates the alert-evaluation schedule; a triggered run completes labelled, with its counts in the memo', async () => {
    const schedule = p.temporal.schedule.getHandle(alertScheduleId(p.config));
    const described = await schedule.describe();
    assert.equal(described.action.type, 'startWorkflow');
    assert.equal((described.action as { workflowType: string }).workflowType, 'alertEvaluation');
    assert.deepEqual(
      described.spec.intervals?.map((i) => i.every),
      [60_000],
      'every minute by default',
    );
    const before = described.info.recentActions.length;
    await schedule.trigger();
    const runId = await waitFor(async () => (await schedule.describe()).info.recentActions[before]?.action.workflow.workflowId, 'the triggered run');
    const handle = p.temporal.workflow.getHandle(runId);
    const result = await handle.result();
    assert.equal(typeof result.open, 'number');
    const d = await handle.describe();
    assert.equal(d.memo?.trigger, 'schedule');
    assert.equal(typeof d.memo?.open, 'number');
    if (p.config.searchAttributes) assert.equal(d.typedSearchAttributes.get(SEARCH_ATTRIBUTES.status), 'completed');
  });

  it('a custom rule: validated with 422s naming the field, owners configure and viewers read; raised once while met, resolved when not, raised again after', async () => {
    const viewer = (await createUserWithKey(p.db, 'rules-viewer', 'viewer', [projectId])).key;
    const owner = (await createUserWithKey(p.db, 'rules-owner', 'owner', [projectId])).key;
    const operator = (await createUserWithKey(p.db, 'rules-operator', 'operator', [projectId])).key;
    const path = `/v1/projects/${projectId}/alert-rules`;
    for (const [body, field, pattern] of [
      [{ metric: 'cpu', comparator: '>', threshold: '1' }, 'metric', /metric: "cpu" is not a metric; use one of spend_today, /],
      [{ metric: 'machines_running', comparator: '=>', threshold: '1' }, 'comparator', /comparator: "=>" is not a comparator/],
      [{ metric: 'machines_running', comparator: '>', threshold: '1.5' }, 'threshold', /threshold: "1.5" is not a whole number/],
      [{ metric: 'spend_today', comparator: '>', threshold: 'lots' }, 'threshold', /threshold: .*is not a decimal amount.*USD/],
      [{ metric: 'spend_period_percent', comparator: '>', threshold: '5000' }, 'threshold', /at most 1000/],
      [{ metric: 'machines_running', comparator: '>', threshold: '1', severity: 'loud' }, 'severity', /severity: "loud" is not a severity/],
    ] as const) {
      const r = await p.api('POST', path, body, { key: owner });
      assert.equal(r.status, 422, `${JSON.stringify(body)}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.error.details?.field, field, JSON.stringify(r.body));
      assert.match(r.body.error.message, pattern);
    }
    assert.equal((await p.api('POST', path, { metric: 'machines_running' }, { key: owner })).status, 400, 'a missing field');
    const refused = await p.api('POST', path, { metric: 'reservations_open', comparator: '>=', threshold: '1' }, { key: operator });
    assert.equal(refused.status, 403, 'operators do not configure alert rules');
    assert.equal((await p.api('POST', path, { metric: 'reservations_open', comparator: '>=', threshold: '1' }, { key: viewer })).status, 403);

    const created = await p.api(
      'POST',
      path,
      { name: 'work held', metric: 'reservations_open', comparator: '>=', threshold: '1', severity: 'critical' },
      { key: owner },
    );
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const rule = created.body;
    assert.deepEqual(
      { metric: rule.metric, comparator: rule.comparator, threshold: rule.threshold, unit: rule.unit, severity: rule.severity, currency: rule.currency },
      { metric: 'reservations_open', comparator: '>=', threshold: '1', unit: 'count', severity: 'critical', currency: null },
    );
    const listed = await p.api('GET', path, undefined, { key: viewer });
    assert.equal(listed.status, 200);
    assert.deepEqual(
      listed.body.items.map((r: any) => r.id),
      [rule.id],
    );

    // Not met: nothing.
    await evaluate();
    assert.deepEqual(await alertsOf(`projectId=${projectId}&kind=alert_rule`), []);
    // Met: one alert, however often the evaluator runs.
    const budget = (await findBudget(p.db, 'project', projectId))!;
    const hold = async (key: string) => assert.ok((await reserve(p.db, { key, budgetIds: [budget.id], projectId, amount: UNIT / 100n, now: new Date() })).ok);
    await hold(`rule-hold-1:${projectId}`);
    await evaluate();
    await evaluate();
    let alerts = await alertsOf(`projectId=${projectId}&kind=alert_rule`, viewer);
    assert.equal(alerts.length, 1, JSON.stringify(alerts));
    assert.equal(alerts[0].status, 'open');
    assert.equal(alerts[0].severity, 'critical');
    assert.equal(alerts[0].subjectId, rule.id);
    assert.match(alerts[0].message, /alert rule "work held": reservations_open is 1 \(>= 1\)/);
    // Cleared: resolved, with the reason, and an alert.resolved event.
    await release(p.db, `rule-hold-1:${projectId}`);
    const run = await evaluate();
    assert.ok(run.resolved >= 1);
    alerts = await alertsOf(`projectId=${projectId}&kind=alert_rule`);
    assert.equal(alerts.length, 1);
    assert.equal(alerts[0].status, 'resolved');
    assert.match(alerts[0].resolution, /no longer holds/);
    assert.ok(alerts[0].resolvedAt);
    assert.deepEqual(await alertsOf(`projectId=${projectId}&kind=alert_rule&status=open`), []);
    assert.equal((await alertsOf(`projectId=${projectId}&kind=alert_rule&status=resolved`)).length, 1);
    // Met again: a new alert (the resolved one stays resolved).
    await hold(`rule-hold-2:${projectId}`);
    await evaluate();
    alerts = await alertsOf(`projectId=${projectId}&kind=alert_rule`);
    assert.deepEqual(
      alerts.map((a) => a.status),
      ['open', 'resolved'],
    );
    // Both raises and the resolution reached the project's webhook.
    const raisedId = alerts[1].id;
    await waitFor(
      async () => delivered('alert.alert_rule').length >= 2 && delivered('alert.resolved', (b) => b.data.alertId === raisedId).length === 1,
      'deliveries',
    );
    const resolvedBody = delivered('alert.resolved', (b) => b.data.alertId === raisedId)[0];
    assert.equal(resolvedBody.data.alertKind, 'alert_rule');
    assert.match(resolvedBody.data.message, /^resolved: alert rule "work held"/);

    // Deleting the rule resolves its open alert; a second delete is a 404.
    assert.equal((await p.api('DELETE', `${path}/${rule.id}`, undefined, { key: viewer })).status, 403);
    assert.equal((await p.api('DELETE', `${path}/${rule.id}`, undefined, { key: owner })).status, 204);
    assert.equal((await p.api('DELETE', `${path}/${rule.id}`, undefined, { key: owner })).status, 404);
    assert.deepEqual(await alertsOf(`projectId=${projectId}&kind=alert_rule&status=open`), []);
    assert.deepEqual((await p.api('GET', path)).body.items, []);
    await release(p.db, `rule-hold-2:${projectId}`);
  });

  it('a money rule compares in the project currency: spend_period_percent and balance-free metrics', async () => {
    const other = await projectWithBudget(p, '2.00');
    const r = await p.api('POST', `/v1/projects/${other}/alert-rules`, { metric: 'spend_period_percent', comparator: '>', threshold: '50' });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.equal(r.body.unit, 'percent');
    assert.equal(r.body.name, 'spend_period_percent > 50');
    const budget = (await findBudget(p.db, 'project', other))!;
    assert.ok((await reserve(p.db, { key: `percent:${other}`, budgetIds: [budget.id], projectId: other, amount: UNIT / 2n, now: new Date() })).ok);
    await evaluate();
    assert.deepEqual(await alertsOf(`projectId=${other}&kind=alert_rule`), [], '25% is not over 50%');
    assert.ok((await reserve(p.db, { key: `percent2:${other}`, budgetIds: [budget.id], projectId: other, amount: (UNIT * 6n) / 10n, now: new Date() })).ok);
    await evaluate();
    const [alert] = await alertsOf(`projectId=${other}&kind=alert_rule`);
    assert.match(alert.message, /spend_period_percent is 55 \(> 50\)/);
    // A balance rule on a project with no prepaid balance never fires.
    assert.equal((await p.api('POST', `/v1/projects/${other}/alert-rules`, { metric: 'balance_remaining', comparator: '<', threshold: '1.00' })).status, 201);
    await evaluate();
    assert.equal((await alertsOf(`projectId=${other}&kind=alert_rule`)).length, 1);
  });

  it('a budget threshold resolves when the limit is raised above it, and when a new period starts; a stopped machine giving money back does not resolve it', async () => {
    const project = await projectWithBudget(p, '1.00');
    const budget = (await findBudget(p.db, 'project', project))!;
    assert.ok((await reserve(p.db, { key: `thr:${project}`, budgetIds: [budget.id], projectId: project, amount: (UNIT * 6n) / 10n, now: new Date() })).ok);
    await release(p.db, `thr:${project}`);
    await evaluate();
    let [alert] = await alertsOf(`projectId=${project}&kind=budget_threshold`);
    assert.equal(alert.status, 'open', 'released money does not clear a threshold');
    assert.equal((await p.api('PUT', `/v1/projects/${project}/budget`, { amount: '5.00', currency: 'USD', period: 'daily' })).status, 200);
    await evaluate();
    [alert] = await alertsOf(`projectId=${project}&kind=budget_threshold`);
    assert.equal(alert.status, 'resolved');
    assert.match(alert.resolution, /the limit was raised to 5\.00, above the threshold/);
    // Yesterday's window: the period is over.
    const yesterday = new Date(Date.now() - 24 * 3600_000);
    assert.ok((await reserve(p.db, { key: `thr-old:${project}`, budgetIds: [budget.id], projectId: project, amount: 3n * UNIT, now: yesterday })).ok);
    const old = (await alertsOf(`projectId=${project}&kind=budget_threshold&status=open`))[0];
    assert.equal(old.data.percent, 50);
    await evaluate();
    const after = (await alertsOf(`projectId=${project}&kind=budget_threshold`)).find((a) => a.id === old.id);
    assert.equal(after.status, 'resolved');
    assert.equal(after.resolution, 'a new budget period started');
  });

  it('a machine running past its time limit raises one alert, resolved when it stops', async () => {
    const r = await p.api('POST', '/v1/machines', { projectId, type: 'shell', command: 'true', cache: false, limits: { money: '0.05', minutes: 2 } });
    assert.equal(r.status, 202, JSON.stringify(r.body));
    const m = await waitForMachine(p, r.body.id);
    // A machine whose own stop did not happen (store-level: the workflow always stops it in time).
    await updateMachine(p.db, m.id, { status: 'running' });
    await p
      .db('machines')
      .where({ id: m.id })
      .update({ started_at: new Date(Date.now() - 10 * 60_000) });
    await evaluate();
    await evaluate();
    const alerts = await alertsOf(`projectId=${projectId}&kind=time_limit_exceeded`);
    assert.equal(alerts.length, 1, JSON.stringify(alerts));
    assert.equal(alerts[0].subjectId, m.id);
    assert.match(alerts[0].message, /still running past its time limit of 2 minutes/);
    // Paused and resumed: a new segment, counted from the resume (as the workflow's clock does).
    await updateMachine(p.db, m.id, { status: 'paused', stopReason: 'time limit reached' });
    await updateMachine(p.db, m.id, { status: 'running' });
    await evaluate();
    const [resolved] = await alertsOf(`projectId=${projectId}&kind=time_limit_exceeded`);
    assert.equal(resolved.status, 'resolved');
    assert.match(resolved.resolution, /stopped or its time limit was extended/);
    await updateMachine(p.db, m.id, { status: 'completed' });
    await evaluate();
    assert.equal((await alertsOf(`projectId=${projectId}&kind=time_limit_exceeded`)).length, 1, 'not raised again');
    await waitFor(
      async () => delivered('alert.time_limit_exceeded').length === 1 && delivered('alert.resolved', (b) => b.data.alertId === resolved.id).length === 1,
      'time-limit deliveries',
    );
  });

  it('a paused machine’s alert resolves in the transaction that resumes it', async () => {
    const r = await p.api('POST', '/v1/machines', { projectId, type: 'shell', command: 'true', cache: false, limits: { money: '0.05', minutes: 2 } });
    const m = await waitForMachine(p, r.body.id);
    await updateMachine(p.db, m.id, { status: 'running' });
    await updateMachine(p.db, m.id, { status: 'paused', stopReason: 'money limit reached' });
    assert.equal((await alertsOf(`projectId=${projectId}&kind=machine_paused&status=open`)).length, 1);
    await updateMachine(p.db, m.id, { status: 'running' });
    const [alert] = await alertsOf(`projectId=${projectId}&kind=machine_paused`);
    assert.equal(alert.status, 'resolved');
    assert.equal(alert.resolution, 'the machine is running');
    await updateMachine(p.db, m.id, { status: 'completed' });
  });

  it("a provider's rate limit under 10 % remaining raises one alert per provider and project, resolved when the headroom is back", async () => {
    const sample = (remaining: number) =>
      saveRateLimitSample(p.db, {
        projectId,
        provider: 'anthropic',
        machineId: null,
        at: new Date(),
        requestsRemaining: remaining,
        requestsLimit: 1000,
        tokensRemaining: 400_000,
        tokensLimit: 400_000,
        resetAt: new Date(Date.now() + 60_000),
      });
    await sample(50);
    await evaluate();
    await sample(40);
    await evaluate();
    const alerts = await alertsOf(`projectId=${projectId}&kind=rate_limit_low`);
    assert.equal(alerts.length, 1, JSON.stringify(alerts));
    assert.equal(alerts[0].subjectId, 'anthropic');
    assert.match(alerts[0].message, /anthropic rate limit nearly used up .*: 50 of 1000 requests left \(5%\)/);
    await sample(900);
    await evaluate();
    assert.equal((await alertsOf(`projectId=${projectId}&kind=rate_limit_low`))[0].status, 'resolved');
  });

  it("a running machine's memory near its limit raises one alert, resolved when the use falls", async () => {
    const r = await p.api('POST', '/v1/machines', { projectId, type: 'shell', command: 'true', cache: false, limits: { money: '0.05', minutes: 2 } });
    const m = await waitForMachine(p, r.body.id);
    await updateMachine(p.db, m.id, { status: 'running' });
    const MiB = 1024 * 1024;
    const sample = (memory: number) =>
      saveResourceSample(p.db, {
        machineId: m.id,
        projectId,
        at: new Date(),
        memoryBytes: memory * MiB,
        memoryLimitBytes: 512 * MiB,
        diskBytes: 1 * MiB,
        diskLimitBytes: 1024 * MiB,
      });
    await sample(500);
    await evaluate();
    await evaluate();
    const alerts = await alertsOf(`projectId=${projectId}&kind=resource_exhaustion`);
    assert.equal(alerts.length, 1, JSON.stringify(alerts));
    assert.equal(alerts[0].data.resource, 'memory');
    assert.match(alerts[0].message, /uses 97% of its memory limit \(500 of 512 MiB\)/);
    await sample(100);
    await evaluate();
    assert.equal((await alertsOf(`projectId=${projectId}&kind=resource_exhaustion`))[0].status, 'resolved');
    await updateMachine(p.db, m.id, { status: 'completed' });
  });

  it("a running machine filling its disk: the sandbox's limit watch records the sample, one alert while it runs, resolved when it ended", async () => {
    const r = await p.api('POST', '/v1/machines', {
      projectId,
      type: 'shell',
      provider: 'local',
      command: 'dd if=/dev/zero of=big bs=1M count=59 2>/dev/null && sleep 20',
      cache: false,
      limits: { money: '0.50', minutes: 3 },
    });
    assert.equal(r.status, 202, JSON.stringify(r.body));
    const machineId = r.body.id as string;
    const sample = await waitFor(async () => {
      const row = await p.db('resource_samples').where({ machine_id: machineId }).first();
      return row && Number(row.disk_bytes) * 100 >= 90 * Number(row.disk_limit_bytes) ? row : null;
    }, 'a disk sample at 90 %');
    assert.equal(Number(sample.disk_limit_bytes), 64 * 1024 * 1024);
    await evaluate();
    const alerts = await alertsOf(`projectId=${projectId}&kind=resource_exhaustion&status=open`);
    const disk = alerts.filter((a) => a.subjectId === machineId);
    assert.equal(disk.length, 1, JSON.stringify(alerts));
    assert.equal(disk[0].data.resource, 'disk');
    assert.match(disk[0].message, new RegExp(`machine ${machineId} uses 9\\d% of its disk limit \\(\\d+ of 64 MiB\\)`));
    const m = await waitForMachine(p, machineId, 120_000);
    assert.equal(m.status, 'completed', JSON.stringify(m));
    await evaluate();
    const after = (await alertsOf(`projectId=${projectId}&kind=resource_exhaustion`)).find((a) => a.id === disk[0].id);
    assert.equal(after.status, 'resolved');
  });

  it('GET /v1/alerts refuses an unknown status or kind naming the field', async () => {
    for (const q of ['status=closed', 'kind=everything']) {
      const r = await p.api('GET', `/v1/alerts?${q}`);
      assert.equal(r.status, 400, JSON.stringify(r.body));
      assert.match(r.body.error.message, new RegExp(`^${q.split('=')[0]}: must be`));
    }
  });
});

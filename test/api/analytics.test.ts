import assert from 'node:assert/strict';
import { parseAmount } from '../../domain/money.js';
import { createUserWithKey } from '../../store/auth.js';
import { insertCacheRecord } from '../../store/cache.js';
import { recordCost, type CostCategory } from '../../store/costs.js';
import { insertMachine, updateMachine } from '../../store/machines.js';
import { projectWithBudget, startTestPlatform, type TestPlatform } from '../support/platform.js';

const DAY = 86_400_000;
const today = () => Math.floor(Date.now() / DAY) * DAY;

describe('api: cost analytics (breakdown, variance, opportunities) on a seeded history', function () {
  this.timeout(300_000);
  let p: TestPlatform;
  let projectId: string;
  const m = (n: number) => `machine-00000000-0000-4000-8000-00000000000${n}`;

  before(async () => {
    p = await startTestPlatform({ label: 'analytics', worker: false });
    projectId = await projectWithBudget(p, '10.00', 'daily');
    const root = (await p.api('GET', `/v1/projects/${projectId}`)).body.rootCheckpointId as string;
    const machine = async (n: number, type: string, provider: string, seconds: number) => {
      await insertMachine(p.db, {
        id: m(n),
        projectId,
        objectiveId: null,
        type,
        provider,
        profile: 'lightweight',
        command: type === 'shell' ? 'make' : null,
        prompt: type === 'shell' ? null : 'fix the typo',
        parentCheckpointId: root,
        limits: { money: '1.00' } as never,
        workflowId: `wf-${n}`,
        createdBy: 'test',
      });
      const end = new Date();
      await updateMachine(p.db, m(n), { status: 'completed', startedAt: new Date(end.getTime() - seconds * 1000), endedAt: end });
    };
    // m1: on-demand on aws-ec2; m2: an agent machine done in 30 s with two model calls; m3, m4: the same request twice (cache bypassed).
    await machine(1, 'shell', 'aws-ec2', 600);
    await machine(2, 'claude-code', 'local', 30);
    await machine(3, 'shell', 'local', 60);
    await machine(4, 'shell', 'local', 60);
    for (const n of [3, 4])
      await insertCacheRecord(p.db, {
        machineId: m(n),
        projectId,
        key: 'a'.repeat(64),
        outcome: 'bypass',
        sourceMachineId: null,
        checkpointId: null,
        savedAmount: null,
        currency: null,
      });
    let seq = 0;
    const cost = async (amount: string, category: CostCategory, o: { machine?: number; at?: number; details?: Record<string, unknown> } = {}) => {
      const units = parseAmount(amount, 'USD');
      await recordCost(p.db, {
        idempotencyKey: `analytics:${seq++}`,
        projectId,
        machineId: o.machine ? m(o.machine) : null,
        category,
        amount: units,
        currency: 'USD',
        projectAmount: units,
        projectCurrency: 'USD',
        details: o.details ?? {},
        ...(o.at !== undefined ? { createdAt: new Date(o.at).toISOString() } : {}),
      });
    };
    await cost('4.00', 'infra', { at: today() - 2 * DAY + 3_600_000 });
    await cost('12.50', 'api', { at: today() - DAY + 3_600_000, details: { model: 'gpt-x' } });
    await cost('1.00', 'infra', { machine: 1 });
    await cost('0.10', 'api', { machine: 2, details: { model: 'claude-sonnet' } });
    await cost('0.20', 'api', { machine: 2, details: { model: 'claude-sonnet' } });
    await cost('0.10', 'infra', { machine: 3 });
    await cost('0.10', 'infra', { machine: 4 });
    await cost('0.05', 'storage');
  });
  after(async () => {
    await p?.stop();
  });

  it('breakdowns by every dimension add up to the total exactly', async () => {
    const expected: Record<string, Record<string, string>> = {
      category: { api: '12.80', infra: '5.20', storage: '0.05' },
      machineType: { 'claude-code': '0.30', shell: '1.20', '(none)': '16.55' },
      model: { 'claude-sonnet': '0.30', 'gpt-x': '12.50', '(none)': '5.25' },
      provider: { 'aws-ec2': '1.00', local: '0.50', '(none)': '16.55' },
      costCenter: { '(none)': '18.05' },
      objective: { '(none)': '18.05' },
    };
    for (const [by, groups] of Object.entries(expected)) {
      const res = await p.api('GET', `/v1/projects/${projectId}/costs/breakdown?by=${by}`);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.total, '18.05');
      const got = Object.fromEntries(res.body.groups.map((g: { key: string | null; amount: string }) => [g.key ?? '(none)', g.amount]));
      assert.deepEqual(got, groups, by);
      const sum = res.body.groups.reduce((s: bigint, g: { amount: string }) => s + parseAmount(g.amount, 'USD'), 0n);
      assert.equal(sum, parseAmount(res.body.total, 'USD'), `${by}: the groups add up to the total`);
    }
    // A window without yesterday and the day before.
    const recent = await p.api('GET', `/v1/projects/${projectId}/costs/breakdown?by=category&from=${new Date(today()).toISOString()}`);
    assert.equal(recent.body.total, '1.55');
    const bad = await p.api('GET', `/v1/projects/${projectId}/costs/breakdown?by=color`);
    assert.equal(bad.status, 400);
    assert.match(JSON.stringify(bad.body), /machineType, provider, model, category, costCenter, objective/);
  });

  it('variance of actual against the allocated daily budget per day and category, with its trend', async () => {
    const res = await p.api('GET', `/v1/projects/${projectId}/costs/variance?period=day&count=3`);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const v = res.body;
    assert.deepEqual(v.budget.limit, '10.00');
    assert.deepEqual(
      v.periods.map((x: Record<string, unknown>) => [x.start, x.actual, x.allocated, x.variance, x.variancePercent]),
      [
        [new Date(today() - 2 * DAY).toISOString(), '4.00', '10.00', '-6.00', -60],
        [new Date(today() - DAY).toISOString(), '12.50', '10.00', '2.50', 25],
        [new Date(today()).toISOString(), '1.55', '10.00', '-8.45', -84.5],
      ],
    );
    assert.deepEqual(v.periods[1].byCategory, { api: '12.50' });
    assert.deepEqual(v.periods[2].byCategory, { api: '0.30', infra: '1.20', storage: '0.05' });
    assert.deepEqual(v.categories.find((c: { category: string }) => c.category === 'api').actual, ['0.00', '12.50', '0.30']);
    // Least squares over 4.00, 12.50, 1.55: −7.35/6 = −1.225 a day, half-even to the cent.
    assert.deepEqual(v.trend, { perPeriod: '-1.22', direction: 'falling' });
    // A week: the daily limit times the days of the week.
    const week = await p.api('GET', `/v1/projects/${projectId}/costs/variance?period=week&count=1`);
    assert.equal(week.body.periods[0].allocated, '70.00');
    assert.equal((await p.api('GET', `/v1/projects/${projectId}/costs/variance?period=year`)).status, 400);
  });

  it('finds the opportunities of the seeded runs with their evidence and estimated savings; another project’s key gets 404', async () => {
    const res = await p.api('GET', `/v1/projects/${projectId}/costs/opportunities`);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const items = res.body.items.filter((x: { kind: string }) => x.kind !== 'idle_warm_capacity');
    assert.deepEqual(
      items.map((x: { kind: string; evidence: string[]; saving: string }) => [x.kind, x.evidence, x.saving]),
      [
        ['spot', [m(1)], '0.60'],
        ['smaller_model', [m(2)], '0.24'],
        ['cache', [m(3), m(4)], '0.10'],
      ],
    );
    assert.match(items[0].explanation, /on-demand on aws-ec2/);
    assert.equal(res.body.totalSaving, '0.94');

    const { key } = await createUserWithKey(p.db, 'viewer-analytics', 'viewer', [await projectWithBudget(p, '1.00')]);
    for (const path of ['costs/breakdown?by=category', 'costs/variance', 'costs/opportunities']) {
      assert.equal((await p.api('GET', `/v1/projects/${projectId}/${path}`, undefined, { key })).status, 404, path);
    }
  });
});

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseAmount } from '../../domain/money.js';
import { createUserWithKey } from '../../store/auth.js';
import { insertCacheRecord } from '../../store/cache.js';
import { recordCost, type CostCategory } from '../../store/costs.js';
import { insertMachine, updateMachine } from '../../store/machines.js';
import { insertObjective } from '../../store/objectives.js';
import { projectWithBudget, startTestPlatform, type TestPlatform } from '../support/platform.js';
import { runCli, type Run } from '../cli/run.js';

const DAY = 86_400_000;
const today = () => Math.floor(Date.now() / DAY) * DAY;

describe('api: cost analytics (breakdown, variance, opportunities) on a seeded history', function () {
  this.timeout(300_000);
  let p: TestPlatform;
  let projectId: string;
  let centerId: string;
  const objectiveId = 'objective-00000000-0000-4000-8000-000000000001';
  const m = (n: number) => `machine-00000000-0000-4000-8000-00000000000${n}`;

  before(async () => {
    p = await startTestPlatform({ label: 'analytics', worker: false });
    projectId = await projectWithBudget(p, '10.00', 'daily');
    const root = (await p.api('GET', `/v1/projects/${projectId}`)).body.rootCheckpointId as string;
    centerId = (await p.api('POST', '/v1/cost-centers', { name: 'analytics cc', kind: 'development', department: 'analytics' })).body.id;
    await insertObjective(p.db, {
      id: objectiveId,
      projectId,
      title: 'fix the typo',
      priority: 0,
      machineType: 'claude-code',
      command: null,
      prompt: 'fix the typo',
      workflowId: 'wf-objective',
      dependsOn: [],
      createdBy: 'test',
    });
    // A stored daily budget for shell machines; aider has a default one (75.00 USD), claude-code none.
    assert.equal((await p.api('PUT', `/v1/projects/${projectId}/machine-types/shell/budget`, { amount: '1.50', currency: 'USD' })).status, 200);
    const machine = async (n: number, type: string, provider: string, seconds: number) => {
      await insertMachine(p.db, {
        id: m(n),
        projectId,
        objectiveId: n === 2 ? objectiveId : null,
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
    // m1 was charged the list's eu-central-1 on-demand price (0.024/h); the list's spot price there is aws-ec2's 0.0075/h.
    await p
      .db('machines')
      .where({ id: m(1) })
      .update({
        compute_price: JSON.stringify({
          provider: 'aws-ec2',
          region: 'eu-central-1',
          profile: 'lightweight',
          market: 'on-demand',
          hourly: '0.024',
          maxHourly: '0.024',
          currency: 'USD',
          source: 'price-list',
          entry: 'aws-ec2/eu-central-1/lightweight/on-demand',
        }),
      });
    await machine(2, 'claude-code', 'local', 30);
    await machine(3, 'shell', 'local', 60);
    await machine(4, 'shell', 'local', 60);
    // m5: a long aider run (not simple work).
    await machine(5, 'aider', 'local', 600);
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
    const cost = async (
      amount: string,
      category: CostCategory,
      o: { machine?: number; at?: number; details?: Record<string, unknown>; costCenterId?: string } = {},
    ) => {
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
        costCenterId: o.costCenterId ?? null,
        ...(o.at !== undefined ? { createdAt: new Date(o.at).toISOString() } : {}),
      });
    };
    await cost('4.00', 'infra', { at: today() - 2 * DAY + 3_600_000 });
    await cost('12.50', 'api', { at: today() - DAY + 3_600_000, details: { model: 'gpt-x' }, costCenterId: centerId });
    await cost('0.40', 'api', { machine: 5, at: today() - DAY + 7_200_000, details: { model: 'gpt-4.1' } });
    await cost('1.00', 'infra', { machine: 1 });
    // m2's calls at claude-sonnet-4-5's prices (3 USD per million input tokens, 15 per million output):
    // 20,000 in + 2,000 out = 0.06 + 0.03; 40,000 in + 6,000 out = 0.12 + 0.09.
    await cost('0.09', 'api', { machine: 2, details: { model: 'claude-sonnet-4-5', inputTokens: 20_000, outputTokens: 2_000, charged: 'usage' } });
    await cost('0.21', 'api', { machine: 2, details: { model: 'claude-sonnet-4-5', inputTokens: 40_000, outputTokens: 6_000, charged: 'usage' } });
    await cost('0.10', 'infra', { machine: 3 });
    await cost('0.10', 'infra', { machine: 4 });
    await cost('0.05', 'storage');
    // A warm-pool instance waiting unclaimed for two hours (lightweight: 0.02 USD/h).
    await p.db('warm_instances').insert({
      instance_ref: 'warm-analytics-1',
      provider: 'aws-ec2',
      profile: 'lightweight',
      workspace: '/nonexistent',
      instance: JSON.stringify({}),
      created_at: new Date(Date.now() - 7_200_000),
    });
  });
  after(async () => {
    await p?.stop();
  });

  it('breakdowns by every dimension add up to the total exactly', async () => {
    // The records: 4.00 infra (2 days ago), 12.50 api gpt-x (yesterday, cost center), 0.40 api gpt-4.1 (m5 aider, yesterday),
    // today 1.00 infra (m1 shell aws-ec2), 0.09 + 0.21 api claude-sonnet-4-5 (m2 claude-code, objective), 0.10 + 0.10 infra
    // (m3, m4 shell local), 0.05 storage: 18.45 in all.
    const expected: Record<string, Record<string, string>> = {
      category: { api: '13.20', infra: '5.20', storage: '0.05' },
      machineType: { aider: '0.40', 'claude-code': '0.30', shell: '1.20', '(none)': '16.55' },
      model: { 'claude-sonnet-4-5': '0.30', 'gpt-4.1': '0.40', 'gpt-x': '12.50', '(none)': '5.25' },
      provider: { 'aws-ec2': '1.00', local: '0.90', '(none)': '16.55' },
      costCenter: { [centerId]: '12.50', '(none)': '5.95' },
      objective: { [objectiveId]: '0.30', '(none)': '18.15' },
    };
    for (const [by, groups] of Object.entries(expected)) {
      const res = await p.api('GET', `/v1/projects/${projectId}/costs/breakdown?by=${by}`);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.total, '18.45');
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
        [new Date(today() - DAY).toISOString(), '12.90', '10.00', '2.90', 29],
        [new Date(today()).toISOString(), '1.55', '10.00', '-8.45', -84.5],
      ],
    );
    assert.deepEqual(v.periods[1].byCategory, { api: '12.90' });
    assert.deepEqual(v.periods[2].byCategory, { api: '0.30', infra: '1.20', storage: '0.05' });
    // Per category, with each trend: least squares over three days is (3·Σxy − 3·Σy)/6.
    assert.deepEqual(v.categories, [
      // 0.00, 12.90, 0.30: (40.50 − 39.60)/6 = 0.15
      { category: 'api', actual: ['0.00', '12.90', '0.30'], trend: { perPeriod: '0.15', direction: 'rising' } },
      // 4.00, 0.00, 1.20: (7.20 − 15.60)/6 = −1.40
      { category: 'infra', actual: ['4.00', '0.00', '1.20'], trend: { perPeriod: '-1.40', direction: 'falling' } },
      // 0.00, 0.00, 0.05: 0.15/6 = 0.025, half-even to the cent 0.02
      { category: 'storage', actual: ['0.00', '0.00', '0.05'], trend: { perPeriod: '0.02', direction: 'rising' } },
    ]);
    // Least squares over 4.00, 12.90, 1.55: (48.00 − 55.35)/6 = −1.225 a day, half-even to the cent.
    assert.deepEqual(v.trend, { perPeriod: '-1.22', direction: 'falling' });
    // Per machine type against its daily type budget.
    const row = (actual: string, allocated: string | null, variance: string | null, variancePercent: number | null) => ({
      actual,
      allocated,
      variance,
      variancePercent,
    });
    const shellBudget = v.machineTypes.find((t: { machineType: string }) => t.machineType === 'shell').budget;
    assert.equal(typeof shellBudget.budgetId, 'string');
    assert.deepEqual(v.machineTypes, [
      {
        machineType: 'aider',
        budget: { budgetId: null, source: 'default', period: 'daily', limit: '75.00', currency: 'USD' },
        // −74.60/75 = −99.466… %, truncated to hundredths
        periods: [row('0.00', '75.00', '-75.00', -100), row('0.40', '75.00', '-74.60', -99.46), row('0.00', '75.00', '-75.00', -100)],
        trend: { perPeriod: '0.00', direction: 'flat' },
      },
      {
        machineType: 'claude-code',
        budget: null,
        periods: [row('0.00', null, null, null), row('0.00', null, null, null), row('0.30', null, null, null)],
        // 0.90/6
        trend: { perPeriod: '0.15', direction: 'rising' },
      },
      {
        machineType: 'shell',
        budget: { budgetId: shellBudget.budgetId, source: 'stored', period: 'daily', limit: '1.50', currency: 'USD' },
        periods: [row('0.00', '1.50', '-1.50', -100), row('0.00', '1.50', '-1.50', -100), row('1.20', '1.50', '-0.30', -20)],
        // (7.20 − 3.60)/6
        trend: { perPeriod: '0.60', direction: 'rising' },
      },
    ]);
    // A week: the daily limit times the days of the week.
    const week = await p.api('GET', `/v1/projects/${projectId}/costs/variance?period=week&count=1`);
    assert.equal(week.body.periods[0].allocated, '70.00');
    // A month: the daily limit times the days of this month.
    const now = new Date();
    const monthDays = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 0)).getUTCDate();
    const month = await p.api('GET', `/v1/projects/${projectId}/costs/variance?period=month&count=1`);
    assert.equal(month.body.periods[0].allocated, `${monthDays * 10}.00`);
    assert.equal(month.body.periods[0].start, new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1)).toISOString());
    assert.equal((await p.api('GET', `/v1/projects/${projectId}/costs/variance?period=year`)).status, 400);
  });

  it('finds the opportunities of the seeded runs with their evidence and estimated savings; another project’s key gets 404', async () => {
    const res = await p.api('GET', `/v1/projects/${projectId}/costs/opportunities`);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const items = res.body.items;
    // spot: m1's 1.00 compute at 0.024/h against the spot 0.0075/h, (0.024 − 0.0075)/0.024 = 68.75 % less, 0.68; smaller model: m2's tokens at claude-haiku-4-5's prices (1 and 5 per
    // million) cost 0.02 + 0.01 and 0.04 + 0.03, so 0.30 − 0.10 = 0.20 less; cache: the
    // repeat m4's whole 0.10; idle warm capacity: two hours of a lightweight instance at 0.02/h (m5's long aider run is none).
    assert.deepEqual(
      items.map((x: { kind: string; evidence: string[]; saving: string }) => [x.kind, x.evidence, x.saving]),
      [
        ['spot', [m(1)], '0.68'],
        ['smaller_model', [m(2)], '0.20'],
        ['cache', [m(3), m(4)], '0.10'],
        ['idle_warm_capacity', ['warm-analytics-1'], '0.04'],
      ],
    );
    assert.match(
      items[0].explanation,
      /on-demand on aws-ec2 \(lightweight, eu-central-1\) at 0\.024 USD\/h; the price list's spot price there is 0\.0075 USD\/h, so the same runtime would have cost 69 % less/,
    );
    assert.match(items[1].explanation, /2 call\(s\) re-priced at claude-haiku-4-5's prices/);
    // The warm pool is deployment-wide: not counted in the project's saving.
    assert.equal(res.body.totalSaving, '0.98');
    // An instance waiting three days counts only the look-back window's wait: 24 h × 0.02 with days=1.
    await p.db('warm_instances').insert({
      instance_ref: 'warm-analytics-old',
      provider: 'aws-ec2',
      profile: 'lightweight',
      workspace: '/nonexistent',
      instance: JSON.stringify({}),
      created_at: new Date(Date.now() - 3 * DAY),
    });
    const lastDay = await p.api('GET', `/v1/projects/${projectId}/costs/opportunities?days=1`);
    assert.deepEqual(
      lastDay.body.items
        .filter((x: { kind: string }) => x.kind === 'idle_warm_capacity')
        .map((x: { evidence: string[]; saving: string }) => [x.evidence, x.saving]),
      [
        [['warm-analytics-old'], '0.48'],
        [['warm-analytics-1'], '0.04'],
      ],
    );
    await p.db('warm_instances').where({ instance_ref: 'warm-analytics-old' }).delete();
    // A key of this project only sees the project's own opportunities.
    const own = await createUserWithKey(p.db, 'viewer-analytics-own', 'viewer', [projectId]);
    const scoped = await p.api('GET', `/v1/projects/${projectId}/costs/opportunities?days=7`, undefined, { key: own.key });
    assert.equal(scoped.status, 200, JSON.stringify(scoped.body));
    assert.deepEqual(
      scoped.body.items.map((x: { kind: string }) => x.kind),
      ['spot', 'smaller_model', 'cache'],
    );
    assert.equal(scoped.body.days, 7);
    assert.equal((await p.api('GET', `/v1/projects/${projectId}/costs/opportunities?days=0`)).status, 400);
  });

  it('breaks down a cost center’s and a department’s spend per group and currency, never converted', async () => {
    // A EUR project whose 3.00 EUR of model spend is allocated to the same cost center as the USD project's 12.50.
    const eurProject = (await p.api('POST', '/v1/projects', { name: 'analytics eur', currency: 'EUR' })).body.id as string;
    await recordCost(p.db, {
      idempotencyKey: 'analytics:eur',
      projectId: eurProject,
      machineId: null,
      category: 'api',
      amount: parseAmount('3.24', 'USD'),
      currency: 'USD',
      projectAmount: parseAmount('3.00', 'EUR'),
      projectCurrency: 'EUR',
      details: { model: 'gpt-x' },
      costCenterId: centerId,
    });
    const expected = {
      by: 'project',
      totals: [
        { currency: 'EUR', amount: '3.00' },
        { currency: 'USD', amount: '12.50' },
      ],
      groups: [
        { key: eurProject, currency: 'EUR', amount: '3.00', records: 1 },
        { key: projectId, currency: 'USD', amount: '12.50', records: 1 },
      ],
    };
    const cc = await p.api('GET', `/v1/cost-centers/${centerId}/costs/breakdown?by=project`);
    assert.equal(cc.status, 200, JSON.stringify(cc.body));
    assert.deepEqual({ by: cc.body.by, totals: cc.body.totals, groups: cc.body.groups }, expected);
    assert.equal(cc.body.scopeType, 'cost-center');
    const dept = await p.api('GET', '/v1/departments/analytics/costs/breakdown?by=project');
    assert.equal(dept.status, 200, JSON.stringify(dept.body));
    assert.deepEqual({ by: dept.body.by, totals: dept.body.totals, groups: dept.body.groups }, expected);
    const byModel = await p.api('GET', '/v1/departments/analytics/costs/breakdown?by=model');
    assert.deepEqual(
      byModel.body.groups.map((g: { key: string; currency: string; amount: string }) => [g.key, g.currency, g.amount]),
      [
        ['gpt-x', 'EUR', '3.00'],
        ['gpt-x', 'USD', '12.50'],
      ],
    );
    assert.equal((await p.api('GET', '/v1/departments/nobody/costs/breakdown?by=model')).status, 404);
    assert.equal((await p.api('GET', '/v1/cost-centers/cc-missing/costs/breakdown?by=model')).status, 404);
    assert.equal((await p.api('GET', `/v1/cost-centers/${centerId}/costs/breakdown?by=color`)).status, 400);
  });

  it('the CLI prints the same figures: costs breakdown, variance, opportunities, cost-centers breakdown', async () => {
    const env = {
      XDG_CONFIG_HOME: fs.mkdtempSync(path.join(os.tmpdir(), 'autovibe-cli-analytics-')),
      AUTOVIBE_API_URL: p.apiUrl,
      AUTOVIBE_API_KEY: p.adminKey,
    };
    const cli = async (args: string[]) => {
      const r: Run = await runCli(args, { env });
      assert.equal(r.code, 0, `${args.join(' ')}: exit ${r.code}\n${r.stdout}\n${r.stderr}`);
      return r.stdout;
    };
    const breakdown = await cli(['costs', 'breakdown', projectId, '--by', 'model']);
    assert.match(breakdown, /gpt-x\s+│ 12\.50\s+│ 1 /);
    assert.match(breakdown, /total 18\.45 USD/);
    const variance = await cli(['costs', 'variance', projectId, '--period', 'day', '--count', '3']);
    assert.match(variance, /trend -1\.22 USD per day \(falling\)/);
    assert.match(variance, /type shell: 1\.50 USD daily \(stored\); this day 1\.20 of 1\.50/);
    const opportunities = await cli(['costs', 'opportunities', projectId]);
    assert.match(opportunities, /total estimated saving 0\.98 USD/);
    const cc = await cli(['cost-centers', 'breakdown', centerId, '--by', 'project']);
    assert.match(cc, /total 12\.50 USD/);
    const bad = await runCli(['costs', 'breakdown', projectId, '--by', 'color'], { env });
    assert.notEqual(bad.code, 0);
    assert.doesNotMatch(bad.stderr, /\n\s+at /, 'no stack trace');
  });

  it('refuses bad parameters with a 400 naming the parameter and what it must be', async () => {
    const cases: Array<[string, RegExp]> = [
      ['costs/breakdown', /by/],
      ['costs/breakdown?by=model&from=yesterday', /from.*ISO 8601/],
      [`costs/breakdown?by=model&from=${new Date(today()).toISOString()}&to=${new Date(today() - DAY).toISOString()}`, /from must be before to/],
      ['costs/variance?count=0', /count/],
      ['costs/variance?count=91', /count.*at most 90/],
      ['costs/variance?count=many', /count/],
      ['costs/variance?period=year', /period.*day, week or month/],
      ['costs/opportunities?days=366', /days.*at most 365/],
      ['costs/opportunities?days=soon', /days/],
      ['costs/opportunities?color=red', /color/],
      // Only from, after now: the default to (now) is before it.
      [`costs/breakdown?by=model&from=${new Date(Date.now() + DAY).toISOString()}`, /from must be before to/],
    ];
    for (const [path, message] of cases) {
      const res = await p.api('GET', `/v1/projects/${projectId}/${path}`);
      assert.equal(res.status, 400, path);
      assert.match(JSON.stringify(res.body), message, `${path}: ${JSON.stringify(res.body)}`);
    }

    const { key } = await createUserWithKey(p.db, 'viewer-analytics', 'viewer', [await projectWithBudget(p, '1.00')]);
    for (const path of ['costs/breakdown?by=category', 'costs/variance', 'costs/opportunities']) {
      assert.equal((await p.api('GET', `/v1/projects/${projectId}/${path}`, undefined, { key })).status, 404, path);
    }
  });
});

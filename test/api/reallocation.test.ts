import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { windowStart } from '../../domain/budget.js';
import { SEARCH_ATTRIBUTES } from '../../domain/search-attributes.js';
import { parseAmount } from '../../domain/money.js';
import { findBudget, reserve, settle } from '../../store/budgets.js';
import { recordCost } from '../../store/costs.js';
import { insertObjective, setObjectiveStatus } from '../../store/objectives.js';
import { runReallocation, SCHEDULE_PRINCIPAL } from '../../services/reallocation.js';
import { reallocationScheduleId } from '../../workers/schedules.js';
import { startTestPlatform, waitFor, type TestPlatform } from '../support/platform.js';
import { json, runCli } from '../cli/run.js';

const DAY = 86_400_000;
const usd = (s: string) => parseAmount(s, 'USD');

/**
 * Budget reallocation (README "Reallocation") on a seeded history of a cost center's projects:
 * per project, seven past days of ledger use (reserved and settled on each day's budget window),
 * what is reserved today, cost events and completed objectives; every figure below is worked out
 * by hand from those.
 *
 *   project  limit  used/day  today  spend(7d)  completed  ROI/USD    utilisation (8 periods)   role
 *   high     20.00  19.00     5.00   133.00     10         0.075188   138/160 = 86.25 %, 7 hits  receiver
 *   idle     10.00   1.00     2.00     7.00      0         0.000000     9/80  = 11.25 %          donor (under-uses)
 *   costly   20.00  18.00    17.50   126.00      1         0.007937   143.5/160 = 89.69 %, 7 hits donor (ROI below the mean 0.027708)
 *
 * Settings: 20 % steps, minimum 5.00, maximum 23.00. high wants 20 % of 20.00 = 4.00, capped to
 * 3.00 by the maximum; idle gives min(2.00, 10.00 − max(2.00, 5.00)) = 2.00 first (lowest ROI),
 * costly the remaining 1.00 (it could give min(4.00, 20.00 − 17.50) = 2.50).
 */
describe('api: budget reallocation between a cost center’s projects', function () {
  this.timeout(600_000);
  let p: TestPlatform;
  let center: string;
  const ids: Record<'high' | 'idle' | 'costly' | 'unbudgeted' | 'weekly', string> = {} as never;
  const limitOf = async (projectId: string) => (await p.api('GET', `/v1/projects/${projectId}`)).body.budget?.limit as string;
  const limits = async () => Promise.all([ids.high, ids.idle, ids.costly].map(limitOf));

  before(async () => {
    p = await startTestPlatform({ label: 'reallocation', worker: true });
    const c = await p.api('POST', '/v1/cost-centers', { name: 'realloc dev', kind: 'development', department: 'reallocation' });
    assert.equal(c.status, 201, JSON.stringify(c.body));
    center = c.body.id;
    assert.equal((await p.api('PUT', `/v1/cost-centers/${center}/budget`, { amount: '100.00', currency: 'USD', period: 'daily' })).status, 200);
    const project = async (name: string, budget: { amount: string; period: string } | null) => {
      const r = await p.api('POST', '/v1/projects', { name, costCenterId: center });
      assert.equal(r.status, 201, JSON.stringify(r.body));
      if (budget) assert.equal((await p.api('PUT', `/v1/projects/${r.body.id}/budget`, { ...budget, currency: 'USD' })).status, 200);
      return r.body.id as string;
    };
    ids.high = await project('high', { amount: '20.00', period: 'daily' });
    ids.idle = await project('idle', { amount: '10.00', period: 'daily' });
    ids.costly = await project('costly', { amount: '20.00', period: 'daily' });
    ids.unbudgeted = await project('unbudgeted', null);
    ids.weekly = await project('weekly', { amount: '70.00', period: 'weekly' });

    const today = windowStart('daily', new Date()).getTime();
    let n = 0;
    const seed = async (projectId: string, perDay: string, todayReserved: string, completed: number) => {
      const budget = (await findBudget(p.db, 'project', projectId))!;
      for (let k = 1; k <= 7; k++) {
        const key = `seed:${projectId}:${k}`;
        const r = await reserve(p.db, { key, budgetIds: [budget.id], projectId, amount: usd(perDay), now: new Date(today - k * DAY + 12 * 3_600_000) });
        assert.ok(
          r.ok,
          JSON.stringify(r, (_k, v) => (typeof v === 'bigint' ? String(v) : v)),
        );
        await settle(p.db, key, usd(perDay));
        // Inside the 7-day look-back: each day's spend a few hours less than k days ago.
        await recordCost(p.db, {
          idempotencyKey: key,
          projectId,
          machineId: null,
          category: 'infra',
          amount: usd(perDay),
          currency: 'USD',
          projectAmount: usd(perDay),
          projectCurrency: 'USD',
          details: { seeded: true },
          createdAt: new Date(Date.now() - k * DAY + 3 * 3_600_000).toISOString(),
        });
      }
      const r = await reserve(p.db, { key: `seed:${projectId}:today`, budgetIds: [budget.id], projectId, amount: usd(todayReserved), now: new Date() });
      assert.ok(r.ok);
      for (let i = 0; i < completed; i++) {
        const id = `objective-00000000-0000-4000-8000-${String(++n).padStart(12, '0')}`;
        await insertObjective(p.db, {
          id,
          projectId,
          title: `done ${n}`,
          priority: 0,
          machineType: 'shell',
          command: 'true',
          prompt: null,
          workflowId: `wf-${id}`,
          dependsOn: [],
          createdBy: 'test',
        });
        await setObjectiveStatus(p.db, id, 'completed');
      }
    };
    await seed(ids.high, '19.00', '5.00', 10);
    await seed(ids.idle, '1.00', '2.00', 0);
    await seed(ids.costly, '18.00', '17.50', 1);
  });
  after(async () => {
    await p?.stop();
  });

  it('refuses bad settings with 422 naming the field, and settings without a cost center budget with 409', async () => {
    const unconfigured = await p.api('GET', `/v1/cost-centers/${center}/reallocation`);
    assert.equal(unconfigured.status, 200, JSON.stringify(unconfigured.body));
    assert.equal(unconfigured.body.configured, false);
    assert.equal(unconfigured.body.enabled, false);
    assert.equal((await p.api('POST', `/v1/cost-centers/${center}/reallocation/runs?dryRun=true`)).body.error.code, 'not_configured');

    const bad: Array<[object, RegExp]> = [
      [{ enabled: true, maxStepPercent: 0 }, /maxStepPercent/],
      [{ enabled: true, maxStepPercent: 51 }, /maxStepPercent/],
      [{ enabled: true, maxStepPercent: 12.5 }, /maxStepPercent/],
      [{ enabled: true, lookbackDays: 91 }, /lookbackDays/],
      [{ enabled: 'yes' }, /enabled/],
      [{ enabled: true, minAllocation: '-1.00' }, /minAllocation/],
      [{ enabled: true, minAllocation: '1.001' }, /minAllocation/],
      [{ enabled: true, minAllocation: '10.00', maxAllocation: '5.00' }, /maxAllocation: must be at least minAllocation/],
      [{ enabled: true, maxAllocation: '100.01' }, /maxAllocation: must not exceed the cost center's limit/],
      [{ enabled: true, greedy: true }, /greedy/],
    ];
    for (const [body, message] of bad) {
      const r = await p.api('PUT', `/v1/cost-centers/${center}/reallocation`, body);
      assert.equal(r.status, 422, `${JSON.stringify(body)}: ${JSON.stringify(r.body)}`);
      assert.match(JSON.stringify(r.body.error), message);
    }
    const bare = await p.api('POST', '/v1/cost-centers', { name: 'no budget', kind: 'testing', department: 'reallocation' });
    const noBudget = await p.api('PUT', `/v1/cost-centers/${bare.body.id}/reallocation`, { enabled: true });
    assert.equal(noBudget.status, 409, JSON.stringify(noBudget.body));
    assert.equal(noBudget.body.error.code, 'no_budget');
    assert.equal((await p.api('GET', `/v1/cost-centers/${center}/reallocation`)).body.configured, false, 'nothing was stored');
    assert.deepEqual(await limits(), ['20.00', '10.00', '20.00']);
  });

  it('a dry run returns the moves with their explanations and changes nothing', async () => {
    const put = await p.api('PUT', `/v1/cost-centers/${center}/reallocation`, {
      enabled: true,
      maxStepPercent: 20,
      lookbackDays: 7,
      minAllocation: '5.00',
      maxAllocation: '23.00',
    });
    assert.equal(put.status, 200, JSON.stringify(put.body));
    assert.match(put.body.updatedBy, /^user:/);
    assert.deepEqual(
      { ...put.body, updatedAt: undefined },
      {
        scopeType: 'cost-center',
        scopeId: center,
        configured: true,
        enabled: true,
        dryRun: false,
        maxStepPercent: 20,
        lookbackDays: 7,
        currency: 'USD',
        minAllocation: '5.00',
        maxAllocation: '23.00',
        updatedBy: put.body.updatedBy,
        updatedAt: undefined,
      },
    );

    const r = await p.api('POST', `/v1/cost-centers/${center}/reallocation/runs?dryRun=true`);
    assert.equal(r.status, 201, JSON.stringify(r.body));
    const run = r.body;
    assert.equal(run.status, 'previewed');
    assert.equal(run.dryRun, true);
    assert.equal(run.trigger, 'api');
    assert.equal(run.limit, '100.00');
    assert.equal(run.allocatedBefore, '50.00');
    assert.equal(run.settings.meanRoi, '0.027708');
    const byId = Object.fromEntries(run.projects.map((x: { projectId: string }) => [x.projectId, x]));
    assert.deepEqual(
      [ids.high, ids.idle, ids.costly].map((id) => [
        byId[id].role,
        byId[id].roi,
        byId[id].utilisationPercent,
        byId[id].hits,
        byId[id].periods,
        byId[id].usedNow,
      ]),
      [
        ['receiver', '0.075188', '86.2', 7, 8, '5.00'],
        ['donor', '0.000000', '11.2', 0, 8, '2.00'],
        ['donor', '0.007937', '89.7', 7, 8, '17.50'],
      ],
    );
    assert.equal(byId[ids.unbudgeted].role, 'skipped');
    assert.match(byId[ids.unbudgeted].reason, /no project budget/);
    assert.match(byId[ids.weekly].reason, /weekly/);
    assert.deepEqual(
      run.moves.map((m: Record<string, unknown>) => [m.fromProjectId, m.toProjectId, m.amount, m.fromBefore, m.fromAfter, m.toBefore, m.toAfter, m.status]),
      [
        [ids.idle, ids.high, '2.00', '10.00', '8.00', '20.00', '22.00', 'preview'],
        [ids.costly, ids.high, '1.00', '20.00', '19.00', '22.00', '23.00', 'preview'],
      ],
    );
    const [first, second] = run.moves as Array<{ explanation: string }>;
    for (const text of [
      'Moved 2.00 USD',
      'ROI 0.075188 objectives per USD (10 completed for 133.00 USD)',
      'used 86.2 %',
      'at its limit in 7 of 8 periods',
      'limit 20.00 → 22.00',
      'ROI 0.000000',
      'used 11.2 %',
      'limit 10.00 → 8.00',
      'under-uses its allocation',
      'mean ROI 0.027708',
    ])
      assert.ok(first!.explanation.includes(text), `"${text}" in: ${first!.explanation}`);
    for (const text of ['Moved 1.00 USD', 'ROI 0.007937 objectives per USD (1 completed for 126.00 USD)', 'limit 20.00 → 19.00', 'ROI below the mean'])
      assert.ok(second!.explanation.includes(text), `"${text}" in: ${second!.explanation}`);
    assert.deepEqual(await limits(), ['20.00', '10.00', '20.00'], 'a preview changes no budget');
  });

  it('a real run moves the money through the budget use case, within bounds, the total unchanged; the same run again does nothing', async () => {
    const r = await p.api('POST', `/v1/cost-centers/${center}/reallocation/runs`, undefined, { headers: { 'Idempotency-Key': 'realloc-1' } });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.equal(r.body.status, 'applied');
    assert.deepEqual(
      r.body.moves.map((m: { status: string; amount: string }) => [m.status, m.amount]),
      [
        ['applied', '2.00'],
        ['applied', '1.00'],
      ],
    );
    assert.deepEqual(await limits(), ['23.00', '8.00', '19.00']);
    assert.equal(r.body.allocatedAfter, '50.00');
    // Every bound: none below what it spent and reserved today or the minimum, none above the maximum, the total within the cost center's limit.
    const [high, idle, costly] = (await limits()).map(Number);
    assert.ok(high! <= 23 && idle! >= 5 && idle! >= 2 && costly! >= 17.5 && high! + idle! + costly! <= 100);
    // One path for budget changes: the set-budget audit records and events, plus the move's own audit record.
    const audits = await p.db('audit_log').whereIn('action', ['budget.set', 'budget.reallocated']);
    assert.equal(audits.filter((a) => a.action === 'budget.reallocated').length, 2);
    assert.ok(audits.filter((a) => a.action === 'budget.set' && [ids.high, ids.idle, ids.costly].includes(a.subject_id)).length >= 4 + 3);
    const events = await p.db('events').where({ kind: 'budget.set', project_id: ids.high });
    assert.ok(
      events.some((e) => e.data.limit === '23.00'),
      'budget.set event of the new limit',
    );

    // A retried activity: the same run id again applies nothing twice.
    const ctx = { db: p.db, temporal: p.temporal, config: p.config, log: p.log };
    const again = await runReallocation(
      ctx,
      { principal: SCHEDULE_PRINCIPAL },
      { scopeType: 'cost-center', scopeId: center },
      { runId: r.body.id, trigger: 'schedule' },
    );
    assert.equal(again.id, r.body.id);
    assert.equal(again.moves.length, 2);
    assert.deepEqual(await limits(), ['23.00', '8.00', '19.00']);
    const repeat = await p.api('POST', `/v1/cost-centers/${center}/reallocation/runs`, undefined, { headers: { 'Idempotency-Key': 'realloc-1' } });
    assert.equal(repeat.body.id, r.body.id);
    assert.deepEqual(await limits(), ['23.00', '8.00', '19.00']);
    assert.equal((await p.db('audit_log').where({ action: 'budget.reallocated' })).length, 2);
  });

  it('the daily schedule runs budgetReallocation (labelled, with a memo); the history lists every run with its moves', async () => {
    const schedule = p.temporal.schedule.getHandle(reallocationScheduleId(p.config));
    const described = await schedule.describe();
    assert.equal((described.action as { workflowType: string }).workflowType, 'budgetReallocation');
    assert.deepEqual(
      described.spec.calendars?.map((c) => c.hour),
      [[{ start: 5, end: 5, step: 1 }]],
    );
    await schedule.trigger();
    const scheduled = await waitFor(async () => {
      const runs = (await p.api('GET', `/v1/cost-centers/${center}/reallocation/runs`)).body.items as Array<{ trigger: string }>;
      return runs.find((x) => x.trigger === 'schedule');
    }, 'the scheduled run');
    const s = scheduled as unknown as {
      workflowId: string;
      status: string;
      moves: unknown[];
      projects: Array<{ projectId: string; role: string; reason: string }>;
    };
    assert.ok(s.workflowId.startsWith(reallocationScheduleId(p.config)), s.workflowId);
    // high is at its maximum now: nothing more to give it.
    assert.equal(s.status, 'applied');
    assert.equal(s.moves.length, 0);
    assert.deepEqual(await limits(), ['23.00', '8.00', '19.00']);
    const handle = p.temporal.workflow.getHandle(s.workflowId);
    await handle.result();
    const execution = await handle.describe();
    const memo = execution.memo as Record<string, unknown>;
    assert.equal(memo.scopes, 1);
    assert.equal(memo.trigger, 'schedule');
    assert.equal(p.config.searchAttributes, true, 'the test platform registers the search attributes');
    assert.equal(execution.typedSearchAttributes.get(SEARCH_ATTRIBUTES.status), 'completed');

    const history = await p.api('GET', `/v1/cost-centers/${center}/reallocation/runs`);
    assert.equal(history.status, 200);
    assert.deepEqual(
      history.body.items.map((x: { trigger: string; status: string; moves: unknown[] }) => [x.trigger, x.status, x.moves.length]),
      [
        ['schedule', 'applied', 0],
        ['api', 'applied', 2],
        ['api', 'previewed', 2],
      ],
    );
    assert.match(history.body.items[1].moves[0].explanation, /Moved 2\.00 USD/);
    assert.equal((await p.api('GET', `/v1/cost-centers/${center}/reallocation/runs?limit=0`)).status, 422);
  });

  it('disabled: a real run does nothing (skipped, with why), the schedule leaves the cost center alone; a preview still works', async () => {
    // Make a move possible again, so "nothing" is not for lack of one.
    assert.equal((await p.api('PUT', `/v1/projects/${ids.high}/budget`, { amount: '20.00', currency: 'USD', period: 'daily' })).status, 200);
    assert.equal(
      (await p.api('PUT', `/v1/cost-centers/${center}/reallocation`, { enabled: false, maxStepPercent: 20, minAllocation: '5.00', maxAllocation: '23.00' }))
        .status,
      200,
    );
    const r = await p.api('POST', `/v1/cost-centers/${center}/reallocation/runs`);
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.equal(r.body.status, 'skipped');
    assert.match(r.body.reason, /disabled/);
    assert.deepEqual(r.body.moves, []);
    assert.deepEqual(await limits(), ['20.00', '8.00', '19.00']);

    const before = (await p.api('GET', `/v1/cost-centers/${center}/reallocation/runs`)).body.items.length;
    const { budgetReallocation } = await import('../../workflows/index.js');
    const result = await p.temporal.workflow.execute(budgetReallocation, {
      workflowId: `realloc-disabled-${Date.now()}`,
      taskQueue: p.config.taskQueue,
      args: [{ trigger: 'test' }],
    });
    assert.equal(result.scopes, 0);
    assert.equal((await p.api('GET', `/v1/cost-centers/${center}/reallocation/runs`)).body.items.length, before);
    assert.deepEqual(await limits(), ['20.00', '8.00', '19.00']);

    const preview = await p.api('POST', `/v1/cost-centers/${center}/reallocation/runs?dryRun=true`);
    assert.equal(preview.body.status, 'previewed');
    assert.ok(preview.body.moves.length > 0);
    assert.deepEqual(await limits(), ['20.00', '8.00', '19.00']);
    assert.equal((await p.api('POST', `/v1/cost-centers/${center}/reallocation/runs?dryRun=maybe`)).status, 422);
  });
  it('two workers running the same run id at once apply each move once', async () => {
    assert.equal(
      (await p.api('PUT', `/v1/cost-centers/${center}/reallocation`, { enabled: true, maxStepPercent: 20, minAllocation: '5.00', maxAllocation: '23.00' }))
        .status,
      200,
    );
    const audits = async () => (await p.db('audit_log').where({ action: 'budget.reallocated' })).length;
    const before = await audits();
    // high 20.00 wants 3.00 (to the maximum 23.00); idle 8.00 gives min(1.60, 8.00 − 5.00) = 1.60; costly 19.00 gives the other 1.40 (of min(3.80, 19.00 − 17.50)).
    const ctx = { db: p.db, temporal: p.temporal, config: p.config, log: p.log };
    const run = () =>
      runReallocation(
        ctx,
        { principal: SCHEDULE_PRINCIPAL },
        { scopeType: 'cost-center', scopeId: center },
        { runId: 'reallocation-concurrent', trigger: 'schedule' },
      );
    const [a, b] = await Promise.all([run(), run()]);
    assert.deepEqual(
      a.moves.map((m) => [m.status, m.amount]),
      [
        ['applied', parseAmount('1.60', 'USD')],
        ['applied', parseAmount('1.40', 'USD')],
      ],
    );
    assert.deepEqual(b.moves, a.moves);
    assert.deepEqual(await limits(), ['23.00', '6.40', '17.60']);
    assert.equal((await audits()) - before, 2);
  });
  it('the CLI reads and sets the settings, previews a run and lists the runs; bad input is an error without a stack trace', async () => {
    const env = {
      XDG_CONFIG_HOME: fs.mkdtempSync(path.join(os.tmpdir(), 'autovibe-cli-realloc-')),
      AUTOVIBE_API_URL: p.apiUrl,
      AUTOVIBE_API_KEY: p.adminKey,
    };
    const cli = async (args: string[]) => {
      const r = await runCli(args, { env });
      assert.equal(r.code, 0, `${args.join(' ')}: exit ${r.code}\n${r.stdout}\n${r.stderr}`);
      return r;
    };
    const set = json(
      await cli(['cost-centers', 'reallocation', 'set', center, '--enabled', '--dry-run', '--max-step-percent', '15', '--min-allocation', '4.00', '--json']),
    );
    assert.deepEqual([set.enabled, set.dryRun, set.maxStepPercent, set.minAllocation, set.maxAllocation], [true, true, 15, '4.00', null]);
    assert.deepEqual(
      json(await cli(['cost-centers', 'reallocation', 'get', center, '--json'])),
      (await p.api('GET', `/v1/cost-centers/${center}/reallocation`)).body,
    );
    const before = await limits();
    // The settings say dry run: a run without --dry-run previews too.
    const run = json(await cli(['cost-centers', 'reallocation', 'run', center, '--json']));
    assert.equal(run.status, 'previewed');
    assert.deepEqual(await limits(), before);
    const text = (await cli(['cost-centers', 'reallocation', 'runs', center, '--limit', '1'])).stdout;
    assert.match(text, new RegExp(run.id));
    for (const m of run.moves) assert.ok(text.includes(m.explanation), text);
    for (const args of [
      ['cost-centers', 'reallocation', 'set', center],
      ['cost-centers', 'reallocation', 'set', center, '--enabled', '--max-step-percent', '80'],
      ['cost-centers', 'reallocation', 'runs', center, '--limit', 'many'],
    ]) {
      const bad = await runCli(args, { env });
      assert.notEqual(bad.code, 0, args.join(' '));
      assert.doesNotMatch(bad.stderr, /\n\s+at /, 'no stack trace');
    }
  });
  it('a department reallocates over the projects of its cost centers within its own budget', async () => {
    assert.equal((await p.api('GET', '/v1/departments/nowhere/reallocation')).status, 404);
    const noBudget = await p.api('PUT', '/v1/departments/reallocation/reallocation', { enabled: true });
    assert.equal(noBudget.status, 409, JSON.stringify(noBudget.body));
    assert.match(noBudget.body.error.message, /PUT \/v1\/departments\/reallocation\/budget/);
    assert.equal((await p.api('PUT', '/v1/departments/reallocation/budget', { amount: '200.00', currency: 'USD', period: 'daily' })).status, 200);
    const put = await p.api('PUT', '/v1/departments/reallocation/reallocation', { enabled: true, maxStepPercent: 20, minAllocation: '5.00' });
    assert.equal(put.status, 200, JSON.stringify(put.body));
    assert.equal(put.body.scopeType, 'department');
    // high back at 20.00, where it keeps hitting its limit.
    assert.equal((await p.api('PUT', `/v1/projects/${ids.high}/budget`, { amount: '20.00', currency: 'USD', period: 'daily' })).status, 200);
    const before = await limits();
    const r = await p.api('POST', '/v1/departments/reallocation/reallocation/runs?dryRun=true');
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.equal(r.body.scopeType, 'department');
    assert.equal(r.body.limit, '200.00');
    const roles = Object.fromEntries(r.body.projects.map((x: { projectId: string; role: string }) => [x.projectId, x.role]));
    assert.deepEqual([roles[ids.high], roles[ids.idle], roles[ids.costly], roles[ids.unbudgeted]], ['receiver', 'donor', 'donor', 'skipped']);
    // idle 6.40 gives min(20 % = 1.28, 6.40 − 5.00); costly 17.60 gives min(3.52, 17.60 − 17.50 reserved today).
    assert.deepEqual(
      r.body.moves.map((m: Record<string, string>) => [m.fromProjectId, m.toProjectId, m.amount]),
      [
        [ids.idle, ids.high, '1.28'],
        [ids.costly, ids.high, '0.10'],
      ],
    );
    for (const m of r.body.moves) assert.match(m.explanation, /ROI 0\.075188 objectives per USD/);
    assert.deepEqual(await limits(), before);
    const runs = await p.api('GET', '/v1/departments/reallocation/reallocation/runs');
    assert.deepEqual(
      runs.body.items.map((x: { id: string }) => x.id),
      [r.body.id],
    );
  });
});

import assert from 'node:assert/strict';
import { parseAmount } from '../../domain/money.js';
import { createUserWithKey } from '../../store/auth.js';
import { recordCost } from '../../store/costs.js';
import { forecastScheduleId } from '../../workers/schedules.js';
import { projectWithBudget, startTestPlatform, waitFor, type TestPlatform } from '../support/platform.js';

const DAY = 86_400_000;
const today = () => Math.floor(Date.now() / DAY) * DAY;
const weekday = (t: number) => new Date(t).getUTCDay() % 6 !== 0;

/** A known daily spend: a weekly shape on a linear trend, with a small wiggle (no randomness). */
const trendSpend = (d: number, t: number) => (weekday(t) ? 5 + 0.25 * d : 1 + 0.05 * d) + 0.3 * Math.sin(d * 1.7);

/** Seeds `days` days of spend ending yesterday (one cost record at noon UTC per day) through the store. */
async function seedHistory(p: TestPlatform, projectId: string, days: number, spend: (d: number, t: number) => number, costCenterId: string | null = null) {
  const start = today() - days * DAY;
  for (let d = 0; d < days; d++) {
    const t = start + d * DAY;
    const amount = parseAmount(Math.max(0, spend(d, t)).toFixed(2), 'USD');
    await recordCost(p.db, {
      idempotencyKey: `seed:${projectId}:${d}`,
      projectId,
      machineId: null,
      category: 'infra',
      amount,
      currency: 'USD',
      projectAmount: amount,
      projectCurrency: 'USD',
      costCenterId,
      details: { seeded: true },
      createdAt: new Date(t + 12 * 3_600_000).toISOString(),
    });
  }
}

describe('api: spend forecasts (stored by the forecast-refresh schedule)', function () {
  this.timeout(600_000);
  let p: TestPlatform;

  before(async () => {
    p = await startTestPlatform({ label: 'forecasts', worker: true });
  });
  after(async () => {
    await p?.stop();
  });

  it('serves what the scheduled workflow stored: a known trend lands inside its intervals; budget exhaustion, recommendations and one alert per period', async () => {
    // A project on a known trend, with a weekly budget it keeps; one with a total budget its spend outruns.
    const steady = await projectWithBudget(p, '1000.00', 'weekly');
    await seedHistory(p, steady, 70, trendSpend);
    const tight = await projectWithBudget(p, '50.00', 'total');
    await seedHistory(p, tight, 42, (_d, t) => (weekday(t) ? 20 : 4));
    // A cost center (and so its department) with spend allocated to it.
    const center = await p.api('POST', '/v1/cost-centers', { name: 'forecast dev', kind: 'development', department: 'forecasting' });
    assert.equal(center.status, 201, JSON.stringify(center.body));
    const centered = (await p.api('POST', '/v1/projects', { name: 'centered', costCenterId: center.body.id })).body.id as string;
    await seedHistory(p, centered, 35, (_d, t) => (weekday(t) ? 8 : 2), center.body.id);

    assert.equal((await p.api('GET', `/v1/projects/${steady}/forecast`)).status, 404, 'nothing is computed on request');

    // The platform created the schedule at start; firing it runs forecastRefresh on the worker.
    const schedule = p.temporal.schedule.getHandle(forecastScheduleId(p.config));
    const described = await schedule.describe();
    assert.equal(described.action.type, 'startWorkflow');
    assert.equal((described.action as { workflowType: string }).workflowType, 'forecastRefresh');
    await schedule.trigger();
    // The run stores one scope after another: wait until every scope seeded here has its forecast.
    const res = await waitFor(async () => {
      const r = await p.api('GET', `/v1/projects/${steady}/forecast`);
      const others = await Promise.all(
        [
          `/v1/projects/${tight}/forecast`,
          `/v1/projects/${centered}/forecast`,
          `/v1/cost-centers/${center.body.id}/forecast`,
          '/v1/departments/forecasting/forecast',
        ].map(async (path) => (await p.api('GET', path)).status),
      );
      return r.status === 200 && others.every((s) => s === 200) ? r : null;
    }, 'the scheduled forecasts');
    const f = res.body;
    assert.equal(f.scopeType, 'project');
    assert.equal(f.currency, 'USD');
    assert.equal(f.backtested, true);
    assert.equal(f.history.days, 70);
    assert.ok(f.workflowId.startsWith(forecastScheduleId(p.config)), f.workflowId);
    assert.equal(f.daily.length, 28);
    assert.deepEqual(
      f.totals.map((t: { days: number }) => t.days),
      [7, 14, 21, 28],
    );
    assert.ok(f.backtest.some((b: { chosen: boolean; method: string }) => b.chosen && b.method === f.method));
    for (const d of f.daily) {
      for (const k of ['mean', 'lo80', 'hi80', 'lo95', 'hi95']) assert.match(d[k], /^\d+\.\d{2}$/, `${k} in cents`);
      assert.ok(+d.lo95 <= +d.lo80 && +d.lo80 <= +d.mean && +d.mean <= +d.hi80 && +d.hi80 <= +d.hi95, JSON.stringify(d));
    }
    // The known series continued lies inside the 95 % interval each of the next 7 days, and mostly inside the 80 %.
    let in80 = 0;
    for (let h = 0; h < 7; h++) {
      const t = today() + h * DAY;
      const truth = +trendSpend(70 + h, t).toFixed(2);
      const d = f.daily[h];
      assert.equal(d.date, new Date(t).toISOString().slice(0, 10));
      assert.ok(truth >= +d.lo95 && truth <= +d.hi95, `day ${h + 1}: ${truth.toFixed(2)} outside [${d.lo95}, ${d.hi95}] (${f.method})`);
      if (truth >= +d.lo80 && truth <= +d.hi80) in80++;
    }
    assert.ok(in80 >= 5, `only ${in80} of 7 days inside the 80 % interval`);
    // The weekly budget of 1000 holds: on track, no exhaustion date.
    assert.equal(f.budget.period, 'weekly');
    assert.equal(f.budget.exhaustedBeforePeriodEnd, false);
    assert.equal(f.budget.exhaustion.expected, null);
    assert.equal(f.recommendations[0].kind, 'on_track');

    // The total budget of 50 runs out within days: its date, its interval, what to do, and one alert.
    const tightF = (await p.api('GET', `/v1/projects/${tight}/forecast`)).body;
    assert.equal(tightF.budget.exhaustedBeforePeriodEnd, true);
    const { expected, earliest80, latest80, earliest95 } = tightF.budget.exhaustion;
    assert.ok(expected && earliest80 && earliest95, JSON.stringify(tightF.budget.exhaustion));
    assert.ok(earliest95 <= earliest80 && earliest80 <= expected && (latest80 === null || expected <= latest80), JSON.stringify(tightF.budget.exhaustion));
    // 50 USD at ~20 a weekday lasts at most 5 days (two weekend days at 4 included).
    assert.ok(Date.parse(expected) - today() <= 5 * DAY, expected);
    const kinds = tightF.recommendations.map((r: { kind: string }) => r.kind);
    assert.deepEqual(kinds.slice(0, 3), ['runs_out', 'raise_limit', 'reduce_spend']);
    assert.match(tightF.recommendations[0].message, /runs out on \w+day \d{4}-\d{2}-\d{2}/);
    const raise = tightF.recommendations[1];
    assert.ok(+raise.amount > 50, raise.message);
    assert.match(raise.message, new RegExp(`Raise the budget to ${raise.amount.replace('.', '\\.')} USD to last until`));
    const alerts = async () => (await p.api('GET', `/v1/alerts?projectId=${tight}`)).body.items.filter((a: { kind: string }) => a.kind === 'budget_forecast');
    const raised = await alerts();
    assert.equal(raised.length, 1);
    assert.equal(raised[0].severity, 'warning');
    assert.equal(raised[0].data.expected, expected);
    assert.equal((await alerts()).length, 1);
    assert.equal((await p.api('GET', `/v1/alerts?projectId=${steady}`)).body.items.filter((a: { kind: string }) => a.kind === 'budget_forecast').length, 0);

    // Run again (as the next hour's firing would): a new forecast, the same single alert for this period.
    const again = await p.temporal.workflow.execute('forecastRefresh', {
      workflowId: `forecast-again-${Date.now()}`,
      taskQueue: p.config.taskQueue,
      args: [{ trigger: 'test' }],
    });
    assert.equal((again as { alerts: number }).alerts, 0);
    assert.ok((again as { exhausting: number }).exhausting >= 1);
    assert.equal((await alerts()).length, 1);
    assert.notEqual((await p.api('GET', `/v1/projects/${tight}/forecast`)).body.computedAt, tightF.computedAt);

    // Cost center and department forecasts under their routes.
    const cc = await p.api('GET', `/v1/cost-centers/${center.body.id}/forecast`);
    assert.equal(cc.status, 200, JSON.stringify(cc.body));
    assert.equal(cc.body.scopeType, 'cost-center');
    assert.equal(cc.body.history.days, 35);
    const dept = await p.api('GET', '/v1/departments/forecasting/forecast');
    assert.equal(dept.status, 200, JSON.stringify(dept.body));
    assert.equal(dept.body.daily[0].mean, cc.body.daily[0].mean, 'the department is its one cost center');
    assert.equal((await p.api('GET', '/v1/departments/nobody/forecast')).status, 404);

    // Another project's key: as missing.
    const { key } = await createUserWithKey(p.db, 'viewer-forecast', 'viewer', [tight]);
    assert.equal((await p.api('GET', `/v1/projects/${steady}/forecast`, undefined, { key })).status, 404);
    assert.equal((await p.api('GET', `/v1/projects/${tight}/forecast`, undefined, { key })).status, 200);
  });
});

import assert from 'node:assert/strict';
import { parseAmount } from '../../domain/money.js';
import { refreshForecasts } from '../../services/forecasts.js';
import { recordCost } from '../../store/costs.js';
import { projectWithBudget, startTestPlatform, waitForMachine, type TestPlatform } from '../support/platform.js';

const DAY = 86_400_000;

/**
 * GraphQL's money views beside REST's (README "GraphQL"): a machine's compute price, a project's
 * stored forecast, its cost breakdown and its saving opportunities, each compared field by field
 * with what the REST route answers for the same project.
 */
describe('graphql: compute prices, forecasts and cost analytics', function () {
  this.timeout(300_000);
  let p: TestPlatform;
  let projectId: string;
  let machineId: string;

  const gql = async (query: string, variables: Record<string, unknown> = {}) => {
    const r = await p.api('POST', '/v1/graphql', { query, variables });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return r.body as { data: any; errors?: Array<{ message: string; extensions: Record<string, unknown> }> };
  };

  before(async () => {
    p = await startTestPlatform({ label: 'graphql-costs', worker: true });
    projectId = await projectWithBudget(p, '40.00', 'weekly');
    const m = await p.api('POST', '/v1/machines', { projectId, type: 'shell', command: 'echo priced', cache: false, limits: { money: '0.05', minutes: 2 } });
    assert.equal(m.status, 202, JSON.stringify(m.body));
    machineId = m.body.id;
    await waitForMachine(p, machineId);
    for (let d = 1; d <= 21; d++) {
      const amount = parseAmount((2 + (d % 7) * 0.5).toFixed(2), 'USD');
      await recordCost(p.db, {
        idempotencyKey: `gql-costs:${d}`,
        projectId,
        machineId: null,
        category: d % 3 === 0 ? 'storage' : 'infra',
        amount,
        currency: 'USD',
        projectAmount: amount,
        projectCurrency: 'USD',
        details: {},
        createdAt: new Date(Date.now() - d * DAY).toISOString(),
      });
    }
  });
  after(async () => {
    await p?.stop();
  });

  it("a machine's computePrice is REST's", async () => {
    const { data, errors } = await gql(
      'query($id: ID!) { machine(id: $id) { computePrice { provider region profile market hourly maxHourly currency source entry listHourly } } }',
      { id: machineId },
    );
    assert.equal(errors, undefined, JSON.stringify(errors));
    const rest = (await p.api('GET', `/v1/machines/${machineId}`)).body.computePrice;
    assert.ok(rest, 'the machine recorded its price');
    assert.deepEqual(data.machine.computePrice, { listHourly: null, ...rest });
  });

  it('forecast is null until the schedule stored one, then the stored forecast as REST serves it', async () => {
    const q = `query($id: ID!) { project(id: $id) { forecast {
      scopeType scopeId currency computedAt workflowId asOf method backtested note
      history { from days todaySoFar }
      backtest { method chosen mape smape coverage80 coverage95 origins }
      daily { date mean lo80 hi80 lo95 hi95 }
      totals { days until mean lo80 hi80 lo95 hi95 }
      budget { budgetId period limit used remaining windowStart windowEnd exhaustedBeforePeriodEnd
        exhaustion { expected earliest80 latest80 earliest95 latest95 }
        projectedPeriodSpend { mean lo80 hi80 lo95 hi95 } }
      recommendations { kind message amount until }
    } } }`;
    const before = await gql(q, { id: projectId });
    assert.equal(before.errors, undefined, JSON.stringify(before.errors));
    assert.equal(before.data.project.forecast, null);
    assert.equal((await p.api('GET', `/v1/projects/${projectId}/forecast`)).status, 404);

    await refreshForecasts({ db: p.db, temporal: p.temporal, config: p.config, log: p.log }, { workflowId: 'graphql-costs-test' });
    const after = await gql(q, { id: projectId });
    assert.equal(after.errors, undefined, JSON.stringify(after.errors));
    const rest = (await p.api('GET', `/v1/projects/${projectId}/forecast`)).body;
    assert.equal(after.data.project.forecast.daily.length, 28);
    assert.deepEqual(after.data.project.forecast, rest);
  });

  it('costBreakdown and costOpportunities are REST’s; a bad dimension is an error naming it', async () => {
    const { data, errors } = await gql(
      `query($id: ID!) { project(id: $id) {
        costBreakdown(by: "category") { currency by from to total groups { key amount records } }
        costOpportunities(days: 30) { currency days totalSaving items { kind evidence saving explanation } }
      } }`,
      { id: projectId },
    );
    assert.equal(errors, undefined, JSON.stringify(errors));
    const { projectId: _a, ...breakdown } = (await p.api('GET', `/v1/projects/${projectId}/costs/breakdown?by=category`)).body;
    const { projectId: _b, ...opportunities } = (await p.api('GET', `/v1/projects/${projectId}/costs/opportunities?days=30`)).body;
    // The window ends now: the two reads are a moment apart.
    assert.deepEqual({ ...data.project.costBreakdown, from: null, to: null }, { ...breakdown, from: null, to: null });
    assert.deepEqual(data.project.costBreakdown.groups.map((g: { key: string }) => g.key).sort(), ['infra', 'storage']);
    assert.deepEqual(data.project.costOpportunities, opportunities);

    const bad = await gql('query($id: ID!) { project(id: $id) { costBreakdown(by: "colour") { total } } }', { id: projectId });
    assert.equal(bad.data.project.costBreakdown, null);
    assert.match(bad.errors![0]!.message, /by/);
  });
  it('roi is REST’s; days out of range is an error naming it', async () => {
    const { data, errors } = await gql(
      `query($id: ID!) { project(id: $id) { roi(days: 30) {
        currency days since spend spendRatingCorrelation
        objectives { completed perUnit spendPerCompleted }
        bugfix { items completed completedShare spend spendPerCompleted }
        checks { runs passed passRate objectives firstPassRate lastPassRate delta }
        feedback { count machines meanRating }
      } } }`,
      { id: projectId },
    );
    assert.equal(errors, undefined, JSON.stringify(errors));
    const { projectId: _p, since: _s, ...rest } = (await p.api('GET', `/v1/projects/${projectId}/roi?days=30`)).body;
    const { since, ...roi } = data.project.roi;
    assert.match(since, /^\d{4}-/);
    assert.deepEqual(roi, rest);
    assert.notEqual(roi.spend, '0.00', 'the seeded spend is in it');
    const bad = await gql('query($id: ID!) { project(id: $id) { roi(days: 400) { spend } } }', { id: projectId });
    assert.equal(bad.data.project.roi, null);
    assert.match(bad.errors![0]!.message, /days/);
  });
});

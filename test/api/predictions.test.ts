import assert from 'node:assert/strict';
import { formatAmount, fromNumeric, parseAmount } from '../../domain/money.js';
import { recordCost } from '../../store/costs.js';
import { insertMachine, updateMachine } from '../../store/machines.js';
import { settlePrediction } from '../../store/predictions.js';
import { projectWithBudget, startTestPlatform, waitFor, waitForMachine, type TestPlatform } from '../support/platform.js';

/**
 * Cost prediction (README "Cost prediction") through the API on real Postgres and Temporal: the
 * history is seeded as ended shell machines with their ledger costs; the predictions, the early
 * refusal, the sized limit and the accuracy report are checked against figures worked out by hand.
 */
describe('api: cost prediction', function () {
  this.timeout(300_000);
  let p: TestPlatform;
  let seq = 0;

  before(async () => {
    p = await startTestPlatform({ label: 'predictions' });
  });
  after(async () => {
    await p?.stop();
  });

  /** Ended shell machines in a project, each with its cost (USD) and duration (seconds). */
  async function seed(projectId: string, runs: [string, number][]) {
    const root = (await p.api('GET', `/v1/projects/${projectId}`)).body.rootCheckpointId;
    for (const [cost, seconds] of runs) {
      const id = `machine-seeded-${++seq}`;
      await insertMachine(p.db, {
        id,
        projectId,
        objectiveId: null,
        type: 'shell',
        provider: 'local',
        profile: 'lightweight',
        command: 'make',
        prompt: null,
        parentCheckpointId: root,
        limits: { money: '5.00', minutes: 5 },
        workflowId: id,
        createdBy: 'test',
      });
      const end = new Date();
      await updateMachine(p.db, id, { status: 'completed', startedAt: new Date(end.getTime() - seconds * 1000), endedAt: end });
      const amount = parseAmount(cost, 'USD');
      await recordCost(p.db, {
        idempotencyKey: `${id}:compute`,
        projectId,
        machineId: id,
        category: 'infra',
        amount,
        currency: 'USD',
        projectAmount: amount,
        projectCurrency: 'USD',
        details: {},
      });
    }
  }

  // Five runs, in no particular order: sorted costs 0.20 0.40 0.60 0.80 1.00, durations 10 … 50 s.
  // Nearest rank with n = 5: p10 is the 1st (⌈0.5⌉), p50 the 3rd (⌈2.5⌉), p90 the 5th (⌈4.5⌉).
  const HISTORY: [string, number][] = [
    ['0.60', 30],
    ['1.00', 50],
    ['0.20', 10],
    ['0.80', 40],
    ['0.40', 20],
  ];
  const PREDICTED = {
    cost: { p10: '0.20', p50: '0.60', p90: '1.00', currency: 'USD' },
    durationSeconds: { p10: 10, p50: 30, p90: 50 },
    basis: 5,
    scope: 'project',
    operationClass: null,
    actual: null,
  };

  it('predicts nothing without five settled runs of the type, and says so by null', async () => {
    const project = await projectWithBudget(p, '10.00');
    const res = await p.api('POST', '/v1/machines', { projectId: project, type: 'shell', command: 'true', cache: false, refuseIfPredictedOver: true });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    assert.equal(res.body.prediction, null);
    const ended = await waitForMachine(p, res.body.id);
    assert.equal(ended.prediction, null);
  });

  let project = '';
  const machines: string[] = [];

  it('predicts the median and 80 % interval of the project history on POST and GET /v1/machines', async () => {
    project = await projectWithBudget(p, '10.00');
    await seed(project, HISTORY);
    const res = await p.api('POST', '/v1/machines', { projectId: project, type: 'shell', command: 'true', cache: false, limits: { money: '0.10' } });
    assert.equal(res.status, 202, 'without refuseIfPredictedOver a limit below the prediction is accepted as before');
    assert.deepEqual(res.body.prediction, PREDICTED);
    machines.push(res.body.id);
    assert.deepEqual((await p.api('GET', `/v1/machines/${res.body.id}`)).body.prediction.cost, PREDICTED.cost);
  });

  it('refuses early (422) when even the predicted lower bound exceeds the money limit, only when asked to', async () => {
    const res = await p.api('POST', '/v1/machines', {
      projectId: project,
      type: 'shell',
      command: 'true',
      limits: { money: '0.10' },
      refuseIfPredictedOver: true,
    });
    assert.equal(res.status, 422, JSON.stringify(res.body));
    assert.equal(res.body.error.code, 'predicted_over_limit');
    assert.match(
      res.body.error.message,
      /predicted cost 0\.20–1\.00 USD \(80 % interval, median 0\.60, from 5 project runs\): even its lower bound exceeds limits\.money 0\.10 USD/,
    );
    // The project's setting refuses by default; a request's false overrides it.
    const set = await p.api('PUT', `/v1/projects/${project}/prediction`, { refuseIfPredictedOver: true });
    assert.deepEqual([set.status, set.body], [200, { refuseIfPredictedOver: true }]);
    const bySetting = await p.api('POST', '/v1/machines', { projectId: project, type: 'shell', command: 'true', limits: { money: '0.10' } });
    assert.equal(bySetting.status, 422, JSON.stringify(bySetting.body));
    assert.equal(bySetting.body.error.code, 'predicted_over_limit');
    const bad = await p.api('PUT', `/v1/projects/${project}/prediction`, { refuseIfPredictedOver: 'yes' });
    assert.equal(bad.status, 400, JSON.stringify(bad.body));
    assert.match(bad.body.error.message, /refuseIfPredictedOver: must be true or false/);
    // 0.20 is not over a 0.20 limit: accepted.
    const fits = await p.api('POST', '/v1/machines', {
      projectId: project,
      type: 'shell',
      command: 'true',
      cache: false,
      limits: { money: '0.20' },
      refuseIfPredictedOver: true,
    });
    assert.equal(fits.status, 202, JSON.stringify(fits.body));
    machines.push(fits.body.id);
  });

  it("refuses early when the predicted lower bound exceeds a budget's remaining amount", async () => {
    const small = await projectWithBudget(p, '0.15');
    await seed(small, HISTORY);
    const refused = await p.api('POST', '/v1/machines', {
      projectId: small,
      type: 'shell',
      command: 'true',
      limits: { money: '1.00' },
      refuseIfPredictedOver: true,
    });
    assert.equal(refused.status, 422, JSON.stringify(refused.body));
    assert.equal(refused.body.error.code, 'predicted_over_limit');
    assert.match(refused.body.error.message, /even its lower bound exceeds the 0\.\d+ USD remaining of budget budget-/);
    const res = await p.api('POST', '/v1/machines', {
      projectId: small,
      type: 'shell',
      command: 'true',
      limits: { money: '0.10' },
      refuseIfPredictedOver: false,
    });
    // Without the opt-in the old rules decide: 0.10 fits the 0.15 budget.
    assert.equal(res.status, 202, JSON.stringify(res.body));
    await waitForMachine(p, res.body.id);
  });

  it('sizes a missing limit to the predicted upper bound when asked to', async () => {
    const sized = await projectWithBudget(p, '10.00');
    await seed(sized, HISTORY);
    const res = await p.api('POST', '/v1/machines', { projectId: sized, type: 'shell', command: 'true', cache: false, limitFromPrediction: true });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    assert.equal((await p.api('GET', `/v1/machines/${res.body.id}`)).body.limits.money, '1.00');
    const plain = await p.api('POST', '/v1/machines', { projectId: sized, type: 'shell', command: 'true', cache: false });
    assert.equal(
      (await p.api('GET', `/v1/machines/${plain.body.id}`)).body.limits.money,
      (await p.api('GET', `/v1/projects/${sized}`)).body.defaultMachineMoney,
    );
    await waitForMachine(p, res.body.id);
    await waitForMachine(p, plain.body.id);
  });

  it('records the actuals once at the end, and reports MAE and coverage per type', async () => {
    for (const id of machines) await waitForMachine(p, id);
    const settled = await waitFor(async () => {
      const all = await Promise.all(machines.map(async (id) => (await p.api('GET', `/v1/machines/${id}`)).body));
      return all.every((m) => m.prediction?.actual) ? all : null;
    }, 'actuals beside the predictions');
    // The actual is the machine's settled cost and its run time from start to end.
    for (const m of settled) {
      assert.equal(m.prediction.actual.cost, m.cost.amount);
      assert.equal(m.prediction.actual.finalStatus, m.status);
      assert.equal(m.prediction.actual.durationSeconds, (Date.parse(m.endedAt) - Date.parse(m.startedAt)) / 1000);
    }
    // Written once: a second settlement changes nothing.
    assert.equal(await settlePrediction(p.db, machines[0]!, { cost: 999n, finalStatus: 'failed' }), false);
    assert.deepEqual((await p.api('GET', `/v1/machines/${machines[0]}`)).body.prediction.actual, settled[0].prediction.actual);

    // By hand: MAE is the mean |actual − p50|; coverage the share inside [p10, p90].
    const units = (s: string) => fromNumeric(s);
    const abs = (v: bigint) => (v < 0n ? -v : v);
    const costErr = settled.reduce((sum, m) => sum + abs(units(m.prediction.actual.cost) - units(m.prediction.cost.p50)), 0n);
    const n = BigInt(settled.length);
    const inside = (v: number, lo: number, hi: number) => (v >= lo && v <= hi ? 1 : 0);
    const costIn = settled.reduce((s, m) => s + inside(Number(m.prediction.actual.cost), Number(m.prediction.cost.p10), Number(m.prediction.cost.p90)), 0);
    const d = settled.map((m) => ({ a: m.prediction.actual.durationSeconds, ...m.prediction.durationSeconds }));
    const report = await p.api('GET', `/v1/predictions/accuracy?projectId=${project}`);
    assert.equal(report.status, 200, JSON.stringify(report.body));
    assert.deepEqual(report.body, {
      minimumRuns: 5,
      items: [
        {
          machineType: 'shell',
          runs: 2,
          cost: { mae: formatAmount((2n * costErr + n) / (2n * n), 'USD'), currency: 'USD', coverage: costIn / 2 },
          durationSeconds: {
            mae: d.reduce((s, x) => s + Math.abs(x.a - x.p50), 0) / 2,
            coverage: d.reduce((s, x) => s + inside(x.a, x.p10, x.p90), 0) / 2,
          },
        },
      ],
    });
    // `true` runs for seconds and costs far under 0.20: both actuals fall below the interval.
    assert.equal((report.body as any).items[0].cost.coverage, 0);
    // Another project's report does not count them.
    const other = await projectWithBudget(p, '1.00');
    assert.deepEqual((await p.api('GET', `/v1/predictions/accuracy?projectId=${other}`)).body.items, []);
  });
});

import assert from 'node:assert/strict';
import { fromNumeric } from '../../domain/money.js';
import { startFxSources, type FxSources } from '../support/fx-sources.js';
import { startTestPlatform, waitFor, waitForMachine, type TestPlatform } from '../support/platform.js';

/** Ledger units (10^-18) of a decimal string, computed apart from the code under test. */
const units = (decimal: string) => fromNumeric(decimal);
/** x × num / den rounded half-even, the rule for recorded costs. */
function halfEven(x: bigint, num: bigint, den: bigint): bigint {
  const q = (x * num) / den;
  const r = x * num - q * den;
  if (r * 2n > den || (r * 2n === den && q % 2n === 1n)) return q + 1n;
  return q;
}

describe('money through the REST api: currencies, rates, cost centers (real Temporal, Postgres, bubblewrap; rate sources served locally)', function () {
  this.timeout(180_000);
  let p: TestPlatform;
  let src: FxSources;

  before(async () => {
    src = await startFxSources();
    // AUTOVIBE_FX_RETRY_S=0: the sources come back within the first test and are asked again at once.
    p = await startTestPlatform({ label: 'money', env: { AUTOVIBE_FX_ECB_URL: src.ecbUrl, AUTOVIBE_FX_CRYPTO_URL: src.cryptoUrl, AUTOVIBE_FX_RETRY_S: '0' } });
  });
  after(async () => {
    await p?.stop();
    await src?.stop();
  });

  async function eurProject(budget = '5.00'): Promise<string> {
    const project = await p.api('POST', '/v1/projects', { name: 'euro project', currency: 'EUR' });
    assert.equal(project.status, 201, JSON.stringify(project.body));
    assert.equal(project.body.currency, 'EUR');
    const b = await p.api('PUT', `/v1/projects/${project.body.id}/budget`, { amount: budget, currency: 'EUR', period: 'daily' });
    assert.equal(b.status, 200, JSON.stringify(b.body));
    return project.body.id;
  }

  it('refuses a machine of a EUR project with a clear error while no rate can be had, rather than guess', async () => {
    src.failing = { ecb: true, crypto: true };
    try {
      const projectId = await eurProject();
      const r = await p.api('POST', '/v1/machines', { projectId, type: 'shell', command: 'true', limits: { money: '0.10' } });
      assert.equal(r.status, 409, JSON.stringify(r.body));
      assert.equal(r.body.error.code, 'fx_unavailable');
      assert.match(r.body.error.message, /no USD→EUR exchange rate: ecb: fetching failed: GET .* answered 503/);
      const m = await waitForMachine(p, r.body.error.details.machineId);
      assert.equal(m.status, 'refused');
      // A crypto project's default machine limit is 0.50 USD worth: without a rate it must be given.
      const ton = await p.api('POST', '/v1/projects', { name: 'ton project', currency: 'TON' });
      assert.equal(ton.status, 422, JSON.stringify(ton.body));
      assert.match(ton.body.error.message, /^defaultMachineMoney: give it for a TON project/);
      const rates = await p.api('GET', '/v1/fx/rates?base=EUR');
      assert.equal(rates.status, 200);
      assert.deepEqual(rates.body.items, []);
      assert.equal(rates.body.unavailable.length, 5);
    } finally {
      src.failing = { ecb: false, crypto: false };
    }
  });

  it('lists live rates for a base currency with their source and time', async () => {
    const r = await p.api('GET', '/v1/fx/rates?base=USD');
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.base, 'USD');
    const by = Object.fromEntries(r.body.items.map((i: any) => [i.currency, i]));
    assert.deepEqual(Object.keys(by).sort(), ['BTC', 'CAD', 'ETH', 'EUR', 'TON']);
    assert.equal(by.EUR.rate, '0.921149594694178335'); // 1 / 1.0856
    assert.equal(by.EUR.source, 'ecb');
    assert.equal(by.EUR.asOf, '2026-11-26T15:00:00.000Z');
    assert.equal(by.BTC.rate, '0.000010589700000000');
    assert.equal(by.BTC.source, 'coinbase');
    assert.equal(by.CAD.rate, '1.360814296241709654'); // 1.4773 / 1.0856
    assert.deepEqual(r.body.unavailable, []);
    // 0.50 USD × 0.0000105897 = 0.00000529485 BTC, rounded up to BTC's 8 decimals.
    const btc = await p.api('POST', '/v1/projects', { name: 'btc project', currency: 'BTC' });
    assert.equal(btc.status, 201, JSON.stringify(btc.body));
    assert.equal(btc.body.defaultMachineMoney, '0.00000530');
    const cad = await p.api('POST', '/v1/projects', { name: 'cad project', currency: 'CAD' });
    assert.equal(cad.body.defaultMachineMoney, '0.50');
  });

  it('runs a shell machine of a EUR project end to end: the cost event holds USD, EUR and the rate', async () => {
    const projectId = await eurProject('5.00');
    // Allocated after creation to a cost center whose department budgets in USD.
    const center = (await p.api('POST', '/v1/cost-centers', { name: 'eu-deploy', kind: 'deployment', department: 'europe' })).body;
    const bad = await p.api('PUT', `/v1/projects/${projectId}/cost-center`, { costCenterId: 'cost-center-00000000-0000-4000-8000-000000000000' });
    assert.equal(bad.status, 422);
    assert.match(bad.body.error.message, /costCenterId/);
    const allocated = await p.api('PUT', `/v1/projects/${projectId}/cost-center`, { costCenterId: center.id });
    assert.equal(allocated.status, 200, JSON.stringify(allocated.body));
    assert.equal(allocated.body.costCenterId, center.id);
    assert.equal((await p.api('PUT', '/v1/departments/europe/budget', { amount: '1.00', currency: 'USD', period: 'monthly' })).status, 200);
    const start = await p.api('POST', '/v1/machines', { projectId, type: 'shell', command: 'echo hi > a.txt', limits: { money: '0.30', minutes: 5 } });
    assert.equal(start.status, 202, JSON.stringify(start.body));
    const m = await waitForMachine(p, start.body.id);
    assert.equal(m.status, 'completed', JSON.stringify(m));
    assert.equal(m.cost.currency, 'EUR');

    const costs = (await p.api('GET', `/v1/projects/${projectId}/costs`)).body;
    const [event] = costs.items.filter((e: any) => e.machineId === m.id);
    assert.ok(event, JSON.stringify(costs.items));
    assert.equal(event.currency, 'USD', 'the compute price is in USD: the event keeps it');
    assert.equal(event.projectCurrency, 'EUR');
    assert.equal(event.fx.rate, '0.921149594694178335');
    assert.equal(event.fx.source, 'ecb');
    assert.equal(event.fx.asOf, '2026-11-26T15:00:00.000Z');
    assert.ok(units(event.amount) > 0n);
    // EUR = USD × 1250/1357 (the exact inverse of 1.0856), half-even at the ledger unit.
    assert.equal(units(event.projectAmount), halfEven(units(event.amount), 1250n, 1357n));
    assert.equal(m.cost.amount, event.projectAmount);
    assert.equal(costs.budget.currency, 'EUR');
    assert.equal(costs.budget.spent, event.projectAmount);
    assert.equal(costs.budget.reserved, '0.00');

    assert.equal(event.costCenterId, center.id);

    // The reservation held 0.30 EUR on the EUR budget and 0.30 × 1.0856 = 0.32568 → 0.33 USD (up) on the department's.
    const audit = (await p.api('GET', `/v1/audit?subjectId=${m.id}&action=budget.reserved`)).body.items;
    assert.equal(audit[0].details.amount, '0.30');
    assert.equal(audit[0].details.currency, 'EUR');
    const usdHold = audit[0].details.budgets.find((b: any) => b.currency === 'USD');
    assert.equal(usdHold.amount, '0.33');
    assert.deepEqual([usdHold.fx.rate, usdHold.fx.source], ['1.085600000000000000', 'ecb']);
    // Settled: the department was charged the EUR cost converted back to USD (× 1.0856, half-even).
    const roll = (await p.api('GET', '/v1/departments/europe/costs')).body;
    assert.equal(roll.budget.currency, 'USD');
    assert.equal(roll.budget.reserved, '0.00');
    assert.equal(units(roll.budget.spent), halfEven(units(event.projectAmount), 13570n, 12500n));
    assert.deepEqual(roll.totals, [{ amount: event.projectAmount, currency: 'EUR', byCategory: { infra: event.projectAmount } }]);

    const doc = (await p.api('GET', '/v1/openapi.json')).body;
    for (const path of [
      '/fx/rates',
      '/cost-centers',
      '/cost-centers/{id}/costs',
      '/departments/{name}/costs',
      '/departments/{name}/budget',
      '/projects/{id}/cost-center',
    ]) {
      assert.ok(doc.paths[path], `openapi lacks ${path}`);
    }
  });

  it('enforces cost-center and department budgets (in their own currencies) beside the project budget, and rolls costs up', async () => {
    const dev = await p.api('POST', '/v1/cost-centers', { name: 'platform-dev', kind: 'development', department: 'platform' });
    assert.equal(dev.status, 201, JSON.stringify(dev.body));
    assert.match(dev.body.id, /^cost-center-/);
    const test = (await p.api('POST', '/v1/cost-centers', { name: 'platform-test', kind: 'testing', department: 'platform' })).body;
    const dup = await p.api('POST', '/v1/cost-centers', { name: 'platform-dev', kind: 'deployment', department: 'ops' });
    assert.equal(dup.status, 409);
    assert.match(dup.body.error.message, /name/);

    const project = await p.api('POST', '/v1/projects', { name: 'allocated', costCenterId: dev.body.id });
    assert.equal(project.status, 201, JSON.stringify(project.body));
    assert.equal(project.body.costCenterId, dev.body.id);
    const projectId = project.body.id;
    await p.api('PUT', `/v1/projects/${projectId}/budget`, { amount: '10.00', currency: 'USD', period: 'daily' });
    const dept = await p.api('PUT', '/v1/departments/platform/budget', { amount: '0.30', currency: 'CAD', period: 'daily' });
    assert.equal(dept.status, 200, JSON.stringify(dept.body));
    assert.equal(dept.body.currency, 'CAD');

    // 0.25 USD is 0.3402… CAD, reserved as 0.35 CAD (rounded up): more than the department's 0.30.
    const refused = await p.api('POST', '/v1/machines', { projectId, type: 'shell', command: 'true', limits: { money: '0.25' } });
    assert.equal(refused.status, 409, JSON.stringify(refused.body));
    assert.equal(refused.body.error.code, 'budget_exceeded');
    assert.match(refused.body.error.message, /0\.25 USD \(0\.35 CAD\) does not fit in the department platform daily budget \(0\.30 of 0\.30 CAD left\)/);
    const projectBudget = (await p.api('GET', `/v1/projects/${projectId}`)).body.budget;
    assert.equal(projectBudget.remaining, '10.00', 'the project budget had room and holds nothing');

    // A cost-center budget of its own refuses too, naming it.
    const centerBudget = await p.api('PUT', `/v1/cost-centers/${dev.body.id}/budget`, {
      amount: '0.05',
      currency: 'USD',
      period: 'daily',
      alertPercents: [90, 40],
    });
    assert.equal(centerBudget.status, 200, JSON.stringify(centerBudget.body));
    assert.deepEqual(centerBudget.body.alertPercents, [40, 90], 'a cost center budget keeps its alert thresholds as a project budget does');
    const byCenter = await p.api('POST', '/v1/machines', { projectId, type: 'shell', command: 'true', limits: { money: '0.10' } });
    assert.equal(byCenter.status, 409, JSON.stringify(byCenter.body));
    assert.match(byCenter.body.error.message, /cost center platform-dev daily budget \(0\.05 of 0\.05 USD left\)/);

    // A run allocated to another cost center of the department: 0.10 USD → 0.14 CAD fits.
    const run = await p.api('POST', '/v1/machines', { projectId, type: 'shell', command: 'echo ok', costCenterId: test.id, limits: { money: '0.10' } });
    assert.equal(run.status, 202, JSON.stringify(run.body));
    const m = await waitForMachine(p, run.body.id);
    assert.equal(m.status, 'completed', JSON.stringify(m));
    assert.equal(m.costCenterId, test.id);

    const centerCosts = (await p.api('GET', `/v1/cost-centers/${test.id}/costs`)).body;
    assert.equal(centerCosts.items.length, 1);
    const event = centerCosts.items[0];
    assert.equal(event.machineId, m.id);
    assert.equal(event.costCenterId, test.id);
    assert.equal(event.projectId, projectId);
    assert.equal(event.fx, null, 'a USD price in a USD project needs no rate');
    assert.deepEqual(centerCosts.totals, [{ amount: event.projectAmount, currency: 'USD', byCategory: { infra: event.projectAmount } }]);
    assert.deepEqual((await p.api('GET', `/v1/cost-centers/${dev.body.id}/costs`)).body.items, []);

    const roll = (await p.api('GET', '/v1/departments/platform/costs')).body;
    assert.equal(roll.department, 'platform');
    assert.deepEqual(roll.totals, centerCosts.totals);
    const rows = Object.fromEntries(roll.costCenters.map((c: any) => [c.name, c]));
    assert.deepEqual(rows['platform-test'].totals, centerCosts.totals);
    assert.deepEqual(rows['platform-dev'].totals, []);
    assert.equal(rows['platform-dev'].budget.limit, '0.05');
    // The department budget was charged the USD cost converted to CAD (× 14773/10856, half-even).
    assert.equal(roll.budget.currency, 'CAD');
    assert.equal(units(roll.budget.spent), halfEven(units(event.projectAmount), 14773n, 10856n));
    assert.equal(roll.budget.reserved, '0.00');

    assert.equal((await p.api('GET', '/v1/departments/nobody/costs')).status, 404);
    assert.deepEqual((await p.api('GET', '/v1/cost-centers?department=platform')).body.items.map((c: any) => c.name).sort(), ['platform-dev', 'platform-test']);
  });
  it('refuses a machine of a prepaid project over its balance while within its limit, and over its limit while within its balance; shows both', async () => {
    const projectId = (await p.api('POST', '/v1/projects', { name: 'prepaid' })).body.id;
    assert.equal((await p.api('PUT', `/v1/projects/${projectId}/budget`, { amount: '1.00', currency: 'USD', period: 'daily' })).status, 200);
    const before = (await p.api('GET', `/v1/projects/${projectId}/budgets`)).body.balance;
    assert.deepEqual([before.billing, before.balance], ['postpaid', '0.00'], 'never topped up: postpaid');
    assert.equal(
      (await p.api('POST', `/v1/projects/${projectId}/credits`, { amount: '100.00', currency: 'USD', expiresAt: '2099-01-01T00:00:00Z' })).status,
      201,
    );
    assert.equal((await p.api('PUT', `/v1/projects/${projectId}/payment-methods`, [{ kind: 'credits' }])).status, 200);
    const topUp = async (amount: string) => {
      const id = (await p.api('POST', `/v1/projects/${projectId}/topups`, { amount, currency: 'USD' })).body.paymentId;
      await waitFor(async () => (await p.api('GET', `/v1/payments/${id}`)).body.status === 'succeeded', `top-up ${id}`);
    };
    await topUp('0.20');
    const shown = (await p.api('GET', `/v1/projects/${projectId}/budgets`)).body;
    assert.equal(shown.budget.limit, '1.00');
    assert.deepEqual(shown.balance, {
      billing: 'prepaid',
      currency: 'USD',
      credited: '0.20',
      spent: '0.00',
      reserved: '0.00',
      balance: '0.20',
      available: '0.20',
    });

    const machine = (money: string) => p.api('POST', '/v1/machines', { projectId, type: 'shell', command: 'true', limits: { money }, cache: false });
    const overBalance = await machine('0.25');
    assert.equal(overBalance.status, 409, JSON.stringify(overBalance.body));
    assert.equal(overBalance.body.error.code, 'budget_exceeded');
    assert.match(
      overBalance.body.error.message,
      /prepaid balance too low: the machine's limit of 0\.25 USD does not fit in the 0\.20 USD of the balance not held/,
    );
    assert.match(overBalance.body.error.message, /POST \/v1\/projects\/.*\/topups/);

    await topUp('5.00');
    const overLimit = await machine('1.50');
    assert.equal(overLimit.status, 409, JSON.stringify(overLimit.body));
    assert.match(overLimit.body.error.message, /does not fit in the daily budget \(1\.00 of 1\.00 USD left\)/);

    const fits = await machine('0.25');
    assert.equal(fits.status, 202, JSON.stringify(fits.body));
    const m = await waitForMachine(p, fits.body.id);
    assert.equal(m.status, 'completed', JSON.stringify(m));
    // A budget PUT keeps the balance; the machine's cost came off both.
    assert.equal((await p.api('PUT', `/v1/projects/${projectId}/budget`, { amount: '2.00', currency: 'USD', period: 'daily' })).status, 200);
    const after = (await p.api('GET', `/v1/projects/${projectId}/balance`)).body;
    assert.deepEqual([after.credited, after.spent, after.reserved], ['5.20', m.cost.amount, '0.00']);
    assert.equal(units(after.balance), units('5.20') - units(m.cost.amount));
    assert.deepEqual(after.items, [{ amount: '5.20', currency: 'USD' }]);
    const view = await p.api('POST', '/v1/graphql', {
      query: 'query($id: ID!) { project(id: $id) { budgets { budget { limit spent } balance { billing credited spent available } } } }',
      variables: { id: projectId },
    });
    assert.equal(view.status, 200, JSON.stringify(view.body));
    const g = view.body.data.project.budgets;
    assert.deepEqual(g.budget, { limit: '2.00', spent: m.cost.amount });
    assert.deepEqual(g.balance, { billing: 'prepaid', credited: '5.20', spent: m.cost.amount, available: after.available });
  });

  it("adds a roll-up's per-currency totals up in the viewer's currency at live rates, each conversion shown", async () => {
    const center = (await p.api('POST', '/v1/cost-centers', { name: 'americas-dev', kind: 'development', department: 'americas' })).body;
    const costs: Record<string, string> = {};
    for (const currency of ['EUR', 'USD'] as const) {
      const project = await p.api('POST', '/v1/projects', { name: `${currency} project`, currency, costCenterId: center.id });
      assert.equal(project.status, 201, JSON.stringify(project.body));
      await p.api('PUT', `/v1/projects/${project.body.id}/budget`, { amount: '5.00', currency, period: 'daily' });
      const start = await p.api('POST', '/v1/machines', { projectId: project.body.id, type: 'shell', command: 'sleep 1', limits: { money: '0.30' } });
      assert.equal(start.status, 202, JSON.stringify(start.body));
      const m = await waitForMachine(p, start.body.id);
      assert.equal(m.status, 'completed', JSON.stringify(m));
      assert.equal(m.cost.currency, currency);
      costs[currency] = m.cost.amount;
    }
    const eur = units(costs.EUR!);
    const usd = units(costs.USD!);
    assert.ok(eur > 0n && usd > 0n);

    // In CAD: 1 EUR = 1.4773 CAD, 1 USD = 1.4773 / 1.0856 CAD (ECB), each half-even at the ledger unit.
    const cad = await p.api('GET', '/v1/departments/americas/costs?currency=CAD');
    assert.equal(cad.status, 200, JSON.stringify(cad.body));
    assert.deepEqual(
      cad.body.totals.map((t: any) => [t.currency, t.amount]),
      [
        ['EUR', costs.EUR],
        ['USD', costs.USD],
      ],
      'the ledger keeps one total per currency',
    );
    const g = cad.body.grandTotal;
    assert.equal(g.currency, 'CAD');
    assert.equal(units(g.amount), halfEven(eur, 14773n, 10000n) + halfEven(usd, 14773n, 10856n));
    assert.deepEqual(
      g.conversions.map((c: any) => [c.from, c.amount, c.source]),
      [
        ['EUR', costs.EUR, 'ecb'],
        ['USD', costs.USD, 'ecb'],
      ],
    );
    assert.equal(g.conversions[0].rate, '1.477300000000000000');
    assert.equal(units(g.conversions[1].converted), halfEven(usd, 14773n, 10856n));

    // Without ?currency= the grand total is in USD; the cost center's own roll-up has one too.
    const plain = (await p.api('GET', '/v1/departments/americas/costs')).body.grandTotal;
    assert.equal(plain.currency, 'USD');
    assert.equal(units(plain.amount), halfEven(eur, 10856n, 10000n) + usd);
    const inEur = await p.api('GET', `/v1/cost-centers/${center.id}/costs?currency=EUR`);
    assert.equal(inEur.status, 200, JSON.stringify(inEur.body));
    assert.equal(inEur.body.grandTotal.currency, 'EUR');
    assert.equal(units(inEur.body.grandTotal.amount), eur + halfEven(usd, 10000n, 10856n));

    const bad = await p.api('GET', '/v1/departments/americas/costs?currency=DOGE');
    assert.equal(bad.status, 400, JSON.stringify(bad.body));
    assert.match(bad.body.error.message, /^currency: must be one of: USD, EUR, CAD/);
  });
});

import assert from 'node:assert/strict';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { accessibilityViolations, describeViolations, launchChromium, screenshot } from '../support/browser.js';
import { installAgentClis, toolsDir } from '../support/llm/agent-clis.js';
import { startScriptedEndpoint, writeFileScript, type ScriptedEndpoint } from '../support/llm/endpoint.js';
import { projectWithBudget, startTestPlatform, waitFor, waitForMachine, type TestPlatform } from '../support/platform.js';

/**
 * The dashboard's money and work-graph views in a real headless Chromium against the real
 * platform: budgets (project, machine type, cost center, department) with the spend chart, the
 * budget form, payments, alerts, a pipeline's DAG and the objectives graph, live by the event feed.
 */
describe('web dashboard: budgets, spend, payments, alerts, pipelines and objectives', function () {
  this.timeout(300_000);
  let p: TestPlatform;
  let llm: ScriptedEndpoint;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let projectId: string;
  let centerId: string;
  const department = 'dept-views';
  const pageErrors: string[] = [];

  const expectNoViolations = async (where: string) => {
    const violations = await accessibilityViolations(page);
    assert.deepEqual(violations, [], `${where}:\n${describeViolations(violations)}`);
  };
  const ok = async (method: string, path: string, body?: unknown, status = 200) => {
    const r = await p.api(method, path, body);
    assert.equal(r.status, status, `${method} ${path}: ${JSON.stringify(r.body)}`);
    return r.body;
  };
  const runMachine = async (project: string, command: string, money = '0.05') => {
    const m = await ok('POST', '/v1/machines', { projectId: project, type: 'shell', command, cache: false, limits: { money, minutes: 2 } }, 202);
    const done = await waitForMachine(p, m.id);
    assert.equal(done.status, 'completed', JSON.stringify(done));
    return done;
  };
  /** Waits until the page's text at `selector` is what the API says now (both read again each time). */
  const showsApiValue = async (selector: string, apiValue: () => Promise<string>) => {
    let last = '';
    await waitFor(
      async () => {
        const [shown, expected] = await Promise.all([page.locator(selector).first().innerText(), apiValue()]);
        last = `page ${shown}, api ${expected}`;
        return shown.trim() === expected;
      },
      `${selector} shows the API's value`,
      30_000,
    ).catch((e: Error) => assert.fail(`${e.message} (${last})`));
  };
  const markDocument = () => page.evaluate(() => ((globalThis as unknown as { marker: number }).marker = Math.random()));
  const sameDocument = async (marker: number) => assert.equal(await page.evaluate(() => (globalThis as unknown as { marker?: number }).marker), marker);

  before(async () => {
    await installAgentClis();
    llm = await startScriptedEndpoint();
    p = await startTestPlatform({
      label: 'web-views',
      env: { AUTOVIBE_TOOLS_DIR: toolsDir(), ANTHROPIC_API_KEY: 'test-anthropic-key', ANTHROPIC_BASE_URL: llm.url },
    });
    projectId = await projectWithBudget(p, '5.00');
    centerId = (await ok('POST', '/v1/cost-centers', { name: 'platform team', kind: 'development', department }, 201)).id;
    await ok('PUT', `/v1/cost-centers/${centerId}/budget`, { amount: '20.00', currency: 'USD', period: 'monthly' });
    await ok('PUT', `/v1/departments/${department}/budget`, { amount: '100.00', currency: 'USD', period: 'monthly' });
    await ok('PUT', `/v1/projects/${projectId}/cost-center`, { costCenterId: centerId });
    await ok('PUT', `/v1/projects/${projectId}/machine-types/claude-code/budget`, { amount: '4.00', currency: 'USD' });
    // Real spend: machines that ran, charged to the project, its cost center and department, and the
    // agent's model calls to its type's budget (shell machines have no type budget).
    await runMachine(projectId, 'sleep 1; echo spent > spent.txt');
    llm.setScript(writeFileScript('claude', { path: '/workspace/hello.txt', content: 'hello\n' }));
    const agent = await ok('POST', '/v1/machines', { projectId, type: 'claude-code', prompt: 'write hello.txt', limits: { money: '2.00' } }, 202);
    assert.equal((await waitForMachine(p, agent.id)).status, 'completed');
    await waitFor(async () => Number((await ok('GET', `/v1/projects/${projectId}/budgets`)).budget.spent) > 0, 'the machines spent money');

    browser = await launchChromium();
    context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    page = await context.newPage();
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await page.goto(p.apiUrl + '/');
    await page.getByLabel('API key').fill(p.adminKey);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.locator('.live-live').waitFor();
  });
  after(async () => {
    await browser?.close();
    await p?.stop();
    await llm?.stop();
  });
  afterEach(async function () {
    if (this.currentTest?.state === 'failed' && page) await screenshot(page, `views-failed-${this.currentTest.title.replace(/\W+/g, '-').slice(0, 60)}`);
  });

  it('shows the spent, reserved and limit the API reports for the project, its machine type, cost center and department', async () => {
    await page.goto(`${p.apiUrl}/#/budgets`);
    await page.getByRole('link', { name: 'Budgets', exact: true }).and(page.locator('[aria-current="page"]')).waitFor();
    const budgets = () => ok('GET', `/v1/projects/${projectId}/budgets`);
    const rows = `table.budgets[data-project="${projectId}"]`;
    const projectBudget = await budgets();
    assert.ok(Number(projectBudget.budget.spent) > 0, `the project spent ${projectBudget.budget.spent}`);
    await showsApiValue(`${rows} tr[data-scope="project"] .budget-spent`, async () => (await budgets()).budget.spent);
    await showsApiValue(`${rows} tr[data-scope="project"] .budget-reserved`, async () => (await budgets()).budget.reserved);
    await showsApiValue(`${rows} tr[data-scope="project"] .budget-limit`, async () => (await budgets()).budget.limit);
    const agentType = async () => (await budgets()).machineTypes.find((t: { machineType: string }) => t.machineType === 'claude-code');
    assert.ok(Number((await agentType()).spent) > 0, 'the claude-code type budget was charged');
    await showsApiValue(`${rows} tr[data-scope="type:claude-code"] .budget-spent`, async () => (await agentType()).spent);
    await showsApiValue(`${rows} tr[data-scope="type:claude-code"] .budget-reserved`, async () => (await agentType()).reserved);
    await showsApiValue(`${rows} tr[data-scope="type:claude-code"] .budget-limit`, async () => (await agentType()).limit);

    const center = async () => (await ok('GET', `/v1/cost-centers/${centerId}`)).budget;
    assert.ok(Number((await center()).spent) > 0, 'the cost center was charged');
    await showsApiValue(`tr[data-scope="cost-center:${centerId}"] .budget-spent`, async () => (await center()).spent);
    await showsApiValue(`tr[data-scope="cost-center:${centerId}"] .budget-limit`, async () => (await center()).limit);
    const dept = async () => (await ok('GET', `/v1/departments/${department}/costs`)).budget;
    assert.ok(Number((await dept()).spent) > 0, 'the department was charged');
    await showsApiValue(`tr[data-scope="department:${department}"] .budget-spent`, async () => (await dept()).spent);
    await showsApiValue(`tr[data-scope="department:${department}"] .budget-limit`, async () => (await dept()).limit);
    await expectNoViolations('budgets page');
    await screenshot(page, 'budgets');
  });

  it('draws the spend chart with a table of the same numbers, per day and per hour', async () => {
    const figure = page.locator(`figure.spend[data-project="${projectId}"]`);
    await figure.locator('canvas').first().waitFor();
    const chart = figure.getByRole('img');
    assert.match((await chart.getAttribute('aria-label')) ?? '', /^Spend of project test project per day, .* USD in all$/);
    const day = await ok('GET', `/v1/projects/${projectId}/costs/series?bucket=day`);
    assert.ok(Number(day.total) > 0, `the series shows the spend: ${day.total}`);
    await figure.getByText(`Spend of test project as a table`).click();
    const table = figure.locator('table.spend-table');
    await table.waitFor();
    assert.equal(await table.locator('tbody tr').count(), day.buckets.length);
    const today = day.buckets.at(-1);
    assert.equal((await table.locator('tbody tr').last().locator('td').first().innerText()).trim(), today.total);
    await expectNoViolations('budgets page with the spend table open');

    await figure.getByRole('button', { name: 'per hour' }).click();
    await figure.getByText('Spend per hour').waitFor();
    const hour = await ok('GET', `/v1/projects/${projectId}/costs/series?bucket=hour`);
    await waitFor(async () => (await figure.locator('table.spend-table tbody tr').count()) === hour.buckets.length, 'one row per hour');
    assert.equal(await figure.getByRole('button', { name: 'per hour' }).getAttribute('aria-pressed'), 'true');
    await figure.locator('canvas').first().waitFor();
  });

  it('lays the budgets page out on a 390px-wide phone screen without sideways scrolling', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    try {
      await page.goto(`${p.apiUrl}/#/budgets`);
      await page.locator(`table.budgets[data-project="${projectId}"] .budget-spent`).first().waitFor();
      await page.locator(`figure.spend[data-project="${projectId}"] canvas`).first().waitFor();
      const width = await page.evaluate(
        () => (globalThis as unknown as { document: { documentElement: { scrollWidth: number } } }).document.documentElement.scrollWidth,
      );
      assert.ok(width <= 390, `the page is ${width}px wide`);
      await expectNoViolations('budgets page at 390px');
      await screenshot(page, 'budgets-390px');
    } finally {
      await page.setViewportSize({ width: 1280, height: 900 });
    }
  });

  it('sets the project budget from the project page (read back through the API) and shows the API’s message for a bad amount', async () => {
    await page.goto(`${p.apiUrl}/#/projects/${projectId}`);
    const form = page.locator('form.budget-form');
    await form.getByLabel('Amount').fill('7.50');
    await form.getByLabel('Period').selectOption('weekly');
    await form.getByRole('button', { name: 'Set budget' }).click();
    await form.getByRole('status').getByText('Budget set: 7.50 USD weekly.').waitFor();
    const after = (await ok('GET', `/v1/projects/${projectId}`)).budget;
    assert.equal(after.limit, '7.50');
    assert.equal(after.period, 'weekly');
    // The budgets table follows (budget.set on the event feed).
    await showsApiValue(`table.budgets[data-project="${projectId}"] tr[data-scope="project"] .budget-limit`, async () => '7.50');

    const refused = await p.api('PUT', `/v1/projects/${projectId}/budget`, { amount: 'ten dollars', currency: 'USD', period: 'weekly' });
    assert.equal(refused.status, 400, JSON.stringify(refused.body));
    await form.getByLabel('Amount').fill('ten dollars');
    await form.getByRole('button', { name: 'Set budget' }).click();
    const alert = form.getByRole('alert');
    await alert.waitFor();
    assert.equal((await alert.innerText()).trim(), `400 ${refused.body.error.message}`);
    assert.equal((await ok('GET', `/v1/projects/${projectId}`)).budget.limit, '7.50', 'a refused amount changes nothing');
    await expectNoViolations('project page');
    await screenshot(page, 'project-budgets');
  });

  it('lists payments with their attempts, balance and credits', async () => {
    // A project of its own: a credited top-up makes a project prepaid, and its small balance would
    // then hold back the machines of the shared project's later tests.
    const payer = await projectWithBudget(p, '5.00');
    await ok('PUT', `/v1/projects/${payer}/payment-methods`, [{ kind: 'credits' }, { kind: 'manual', timeoutSeconds: 300 }]);
    await ok('POST', `/v1/projects/${payer}/credits`, { amount: '1.00', currency: 'USD', expiresAt: '2099-01-01T00:00:00Z' }, 201);
    await page.goto(`${p.apiUrl}/#/payments?project=${payer}`);
    await page.getByText('No payments yet.').waitFor();
    const marker = await markDocument();
    const paid = (await ok('POST', `/v1/projects/${payer}/topups`, { amount: '0.40', currency: 'USD' }, 202)).paymentId;
    const waiting = (await ok('POST', `/v1/projects/${payer}/topups`, { amount: '3.00', currency: 'USD' }, 202)).paymentId;
    const paidRow = page.locator(`tr[data-payment="${paid}"]`);
    await paidRow.getByText('succeeded').first().waitFor({ timeout: 60_000 });
    const waitingRow = page.locator(`tr[data-payment="${waiting}"]`);
    await waitingRow.getByText('manual_required').waitFor({ timeout: 60_000 });
    await sameDocument(marker);
    const attempts = waitingRow.getByRole('list', { name: `Attempts of payment ${waiting}` });
    assert.match(await attempts.innerText(), /credits\s+declined[\s\S]*manual\s+waiting/);
    assert.match(await page.locator('.facts').innerText(), /0\.40 USD/, 'the prepaid balance');
    await expectNoViolations('payments page');
    await screenshot(page, 'payments');
  });

  it('lists an alert, arriving live from the event feed', async () => {
    const small = await projectWithBudget(p, '0.10');
    await page.goto(`${p.apiUrl}/#/alerts?project=${small}`);
    await page.getByText('No alerts.').waitFor();
    const marker = await markDocument();
    await runMachine(small, 'true', '0.06');
    const alerts = (await ok('GET', `/v1/alerts?projectId=${small}`)).items;
    assert.equal(alerts.length, 1, JSON.stringify(alerts));
    const row = page.locator(`tr[data-alert="${alerts[0].id}"]`);
    await row.waitFor({ timeout: 30_000 });
    assert.match(await row.innerText(), /reached 50% of its daily limit/);
    assert.match(await row.innerText(), /info/);
    assert.equal(await row.locator('td[data-status]').getAttribute('data-status'), 'open');
    // The limit raised above the threshold: the evaluator resolves it, and the row says so live.
    await ok('PUT', `/v1/projects/${small}/budget`, { amount: '1.00', currency: 'USD', period: 'daily' });
    await p.temporal.workflow.execute('alertEvaluation', { workflowId: `views-alerts-${small}`, taskQueue: p.config.taskQueue, args: [{ trigger: 'test' }] });
    await row.locator('td[data-status="resolved"]').waitFor({ timeout: 30_000 });
    assert.match(await row.innerText(), /resolved: the limit was raised to 1\.00, above the threshold/);
    await sameDocument(marker);
    await page.goto(`${p.apiUrl}/#/alerts`);
    await page.locator(`tr[data-alert="${alerts[0].id}"]`).waitFor();
    await expectNoViolations('alerts page');
    await screenshot(page, 'alerts');
  });

  it('draws a pipeline of three steps as its DAG, with each step’s status turning completed live', async () => {
    const pipelineId = (
      await ok(
        'POST',
        '/v1/pipelines',
        {
          projectId,
          steps: [
            { id: 'build', type: 'shell', command: 'sleep 4; echo b > build.txt' },
            { id: 'test', type: 'shell', command: 'test -f build.txt', dependsOn: ['build'] },
            { id: 'lint', type: 'shell', command: 'test -f build.txt', dependsOn: ['build'] },
          ],
        },
        202,
      )
    ).id;
    await page.goto(`${p.apiUrl}/#/pipelines/${pipelineId}`);
    const svg = page.getByRole('group', { name: `Steps of pipeline ${pipelineId} and their dependencies` });
    await svg.waitFor();
    const marker = await markDocument();
    assert.equal(await svg.locator('.dag-node').count(), 3);
    assert.deepEqual(
      (await svg.locator('.dag-edge').evaluateAll((es) => es.map((e) => `${e.getAttribute('data-from')}->${e.getAttribute('data-to')}`))).sort(),
      ['build->lint', 'build->test'],
    );
    const statuses = () => svg.locator('.dag-node').evaluateAll((ns) => ns.map((n) => n.getAttribute('data-status')));
    assert.ok(
      (await statuses()).some((s) => s !== 'completed'),
      'the page opened before the pipeline ended',
    );
    await waitFor(async () => (await statuses()).every((s) => s === 'completed'), 'every step drawn completed', 120_000);
    await sameDocument(marker);
    // The pipeline itself ends just after its last step.
    await waitFor(async () => (await ok('GET', `/v1/pipelines/${pipelineId}`)).status === 'completed', 'the pipeline completed');
    // Each step links to its machine.
    const build = (await ok('GET', `/v1/pipelines/${pipelineId}`)).steps.find((s: { id: string }) => s.id === 'build');
    assert.equal(await svg.locator('[data-node="build"]').getAttribute('href'), `#/machines/${build.machineId}`);
    await page.locator('.facts .status', { hasText: 'completed' }).waitFor();
    await expectNoViolations('pipeline page');
    await screenshot(page, 'pipeline');

    await page.goto(`${p.apiUrl}/#/pipelines?project=${projectId}`);
    const row = page.locator(`tr[data-pipeline="${pipelineId}"]`);
    await row.waitFor();
    assert.match(await row.innerText(), /build completed → test completed → lint completed/);
    await expectNoViolations('pipelines page');
  });

  it('draws the objectives as their dependency graph with status and progress, and pauses one from the page', async () => {
    const first = (await ok('POST', `/v1/projects/${projectId}/objectives`, { title: 'prepare data', command: 'sleep 60' }, 201)).id;
    const second = (await ok('POST', `/v1/projects/${projectId}/objectives`, { title: 'train model', command: 'true', dependsOn: [first] }, 201)).id;
    try {
      await page.goto(`${p.apiUrl}/#/projects/${projectId}/objectives`);
      const svg = page.getByRole('group', { name: `Objectives of project ${projectId} and what each depends on` });
      await svg.waitFor();
      assert.equal(await svg.locator('.dag-node').count(), 2);
      assert.equal(await svg.locator(`.dag-edge[data-from="${first}"][data-to="${second}"]`).count(), 1);
      assert.match((await svg.locator(`[data-node="${second}"]`).getAttribute('aria-label')) ?? '', /^train model waiting 0% done$/);
      const row = page.locator(`tr[data-objective="${second}"]`);
      await row.getByRole('button', { name: 'Pause train model' }).click();
      // The page says the request was taken until the objective's status moves; the workflow may take the pause at
      // once (the note then never shows) or at its next check (at most 30 s). The page follows by the event feed.
      await row
        .getByRole('status')
        .getByText('pause requested')
        .or(row.getByText('paused', { exact: true }))
        .first()
        .waitFor();
      await row.getByText('paused', { exact: true }).waitFor({ timeout: 90_000 });
      await waitFor(async () => (await ok('GET', `/v1/objectives/${second}`)).status === 'paused', 'paused through the API');
      await row.getByRole('button', { name: 'Resume train model' }).waitFor();
      assert.equal(await svg.locator(`[data-node="${second}"]`).getAttribute('data-status'), 'paused');
      // Its detail: status, progress, what it runs.
      await svg.locator(`[data-node="${second}"]`).click();
      const detail = page.getByRole('region', { name: 'Objective train model' });
      await detail.waitFor();
      assert.match(await detail.innerText(), /paused[\s\S]*0%[\s\S]*shell: true/);
      await expectNoViolations('objectives page');
      await screenshot(page, 'objectives');
    } finally {
      await p.api('POST', `/v1/objectives/${second}/cancel`);
      await p.api('POST', `/v1/objectives/${first}/cancel`);
    }
  });

  it('links the new views from the header and the project page', async () => {
    await page.goto(`${p.apiUrl}/#/projects/${projectId}`);
    const nav = page.getByRole('navigation', { name: 'Main' });
    for (const name of ['Pipelines', 'Budgets', 'Payments', 'Alerts']) assert.equal(await nav.getByRole('link', { name }).count(), 1, name);
    const links = page.locator('p.links');
    for (const [name, href] of [
      ['Objectives', `#/projects/${projectId}/objectives`],
      ['Pipelines', `#/pipelines?project=${projectId}`],
      ['Payments', `#/payments?project=${projectId}`],
      ['Alerts', `#/alerts?project=${projectId}`],
    ]) {
      assert.equal(await links.getByRole('link', { name, exact: true }).getAttribute('href'), href);
    }
  });

  it('raised no script errors in the page', () => {
    assert.deepEqual(pageErrors, []);
  });
});

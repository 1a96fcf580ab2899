import assert from 'node:assert/strict';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { accessibilityViolations, describeViolations, launchChromium, screenshot } from '../support/browser.js';
import { installAgentClis, toolsDir } from '../support/llm/agent-clis.js';
import { startScriptedEndpoint, writeFileScript, type ScriptedEndpoint } from '../support/llm/endpoint.js';
import { projectWithBudget, startTestPlatform, waitFor, type TestPlatform } from '../support/platform.js';

/** The web dashboard in a real headless Chromium against the real platform (api + worker + Temporal + Postgres). */
describe('web dashboard: log in, watch machines live, act on them', function () {
  this.timeout(300_000);
  let p: TestPlatform;
  let llm: ScriptedEndpoint;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let projectId: string;
  const pageErrors: string[] = [];

  const startMachine = async (command: string, limits = { money: '0.05', minutes: 5 }) => {
    const m = await p.api('POST', '/v1/machines', { projectId, type: 'shell', command, cache: false, limits });
    assert.equal(m.status, 202, JSON.stringify(m.body));
    return m.body.id as string;
  };
  const machineStatus = async (id: string) => (await p.api('GET', `/v1/machines/${id}`)).body.status as string;
  const login = async (key: string) => {
    await page.goto(p.apiUrl + '/');
    await page.getByLabel('API key').fill(key);
    await page.getByRole('button', { name: 'Log in' }).click();
  };
  const expectNoViolations = async (where: string) => {
    const violations = await accessibilityViolations(page);
    assert.deepEqual(violations, [], `${where}:\n${describeViolations(violations)}`);
  };

  before(async () => {
    await installAgentClis();
    llm = await startScriptedEndpoint();
    // claude-code against the scripted model endpoint: the one machine type here that can pause at a limit.
    p = await startTestPlatform({
      label: 'web',
      env: {
        AUTOVIBE_TEMPORAL_UI_URL: 'http://temporal-ui.example:8233/',
        AUTOVIBE_TOOLS_DIR: toolsDir(),
        ANTHROPIC_API_KEY: 'test-anthropic-key',
        ANTHROPIC_BASE_URL: llm.url,
      },
    });
    projectId = await projectWithBudget(p, '5.00');
    browser = await launchChromium();
    context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    page = await context.newPage();
    page.on('pageerror', (e) => pageErrors.push(e.message));
  });
  after(async () => {
    await browser?.close();
    await p?.stop();
    await llm?.stop();
  });
  afterEach(async function () {
    if (this.currentTest?.state === 'failed' && page) await screenshot(page, `failed-${this.currentTest.title.replace(/\W+/g, '-').slice(0, 60)}`);
  });

  it('serves the page with a strict Content-Security-Policy and refuses a wrong key with a message', async () => {
    const res = await fetch(p.apiUrl + '/');
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-security-policy') ?? '', /script-src 'self'/);
    assert.match(await res.text(), /<script type="module" src="\/assets\/app\.js">/);
    const js = await fetch(p.apiUrl + '/assets/app.js');
    assert.equal(js.status, 200);
    assert.match(js.headers.get('content-type') ?? '', /javascript/);

    await login('av_this-key-does-not-exist-anywhere');
    await page.getByRole('alert').waitFor();
    assert.match(await page.getByRole('alert').innerText(), /unknown, revoked or expired/);
    await expectNoViolations('login page');
    await screenshot(page, 'login');
  });

  it('logs in with a key and lists the projects the key sees, with their budgets', async () => {
    await login(p.adminKey);
    const row = page.getByRole('row', { name: /test project/ });
    await row.waitFor();
    assert.match(await row.innerText(), /5\.00 USD \/ daily/);
    assert.match(await page.locator('.who').innerText(), /admin/);
    await page.locator('.live-live').waitFor();
    await expectNoViolations('projects page');
    await screenshot(page, 'projects');
    // A reload keeps the session of this tab.
    await page.reload();
    await page.getByRole('row', { name: /test project/ }).waitFor();
  });

  it('shows a new machine appear and move to completed without a reload, then its whole log', async () => {
    await page.goto(`${p.apiUrl}/#/machines?project=${projectId}`);
    await page.getByText('No machines').waitFor();
    const marker = await page.evaluate(() => ((globalThis as unknown as { marker: number }).marker = Math.random()));
    const id = await startMachine('for i in 1 2 3; do echo "line-$i"; sleep 1; done; echo done > out.txt');
    const row = page.locator(`tr[data-machine="${id}"]`);
    await row.waitFor({ timeout: 30_000 });
    await row.getByText('completed').waitFor({ timeout: 60_000 });
    // The same document all along: the row came from the event stream, not a reload.
    assert.equal(await page.evaluate(() => (globalThis as unknown as { marker?: number }).marker), marker);
    await expectNoViolations('machines page');
    await screenshot(page, 'machines');

    await row.getByRole('link').first().click();
    await page.getByRole('heading', { name: `Machine ${id}` }).waitFor();
    const log = page.getByRole('log', { name: `log of ${id}` });
    await log.getByText('line-3').waitFor();
    assert.match(await log.innerText(), /line-1\s+line-2\s+line-3/);
    await page.getByText('End of log.').waitFor();
    // Its run in the Temporal Web UI of this deployment (AUTOVIBE_TEMPORAL_UI_URL).
    const workflowId = (await p.api('GET', `/v1/machines/${id}`)).body.workflowId as string;
    assert.equal(
      await page.getByRole('link', { name: 'Temporal run ↗' }).getAttribute('href'),
      `http://temporal-ui.example:8233/namespaces/default/workflows/${encodeURIComponent(workflowId)}`,
    );
    // A completed machine leaves a checkpoint, linked into its project's evolution tree.
    const checkpoints = page.getByRole('region', { name: 'Checkpoints' }).getByRole('link');
    assert.ok((await checkpoints.count()) >= 1, 'the completed machine lists its checkpoint');
    assert.equal(await page.getByRole('button', { name: /Terminate/ }).count(), 0, 'no controls on an ended machine');
    await expectNoViolations('machine page');
    await screenshot(page, 'machine-completed');
  });

  it('follows a running machine’s log live and terminates it from the page', async () => {
    const id = await startMachine('i=0; while true; do i=$((i+1)); echo "tick-$i"; sleep 1; done');
    await page.goto(`${p.apiUrl}/#/machines/${id}`);
    const log = page.getByRole('log', { name: `log of ${id}` });
    await log.getByText('tick-2').waitFor({ timeout: 60_000 });
    await page.getByText('Following the log…').waitFor();
    await page.getByRole('button', { name: 'Terminate…' }).click();
    await page.getByRole('button', { name: 'Confirm terminate' }).click();
    await waitFor(async () => (await machineStatus(id)) === 'terminated', `machine ${id} terminated`);
    await page.locator('.facts .status', { hasText: 'terminated' }).waitFor({ timeout: 30_000 });
    await page.getByText('End of log.').waitFor({ timeout: 30_000 });
    const audit = page.getByRole('region', { name: 'History' });
    await audit.getByText('machine.terminate_requested').waitFor();
    assert.match(await audit.innerText(), /by user:/, 'the history names who terminated it');
    await screenshot(page, 'machine-terminated');
  });

  it('extends an agent paused at its model-call limit (the pause-and-ask decision) and it goes on', async () => {
    const project = await p.api('POST', '/v1/projects', { name: 'pausing', limitPolicy: 'pause', pauseMinutes: 10 });
    assert.equal(project.status, 201, JSON.stringify(project.body));
    await p.api('PUT', `/v1/projects/${project.body.id}/budget`, { amount: '20.00', currency: 'USD', period: 'daily' });
    llm.setScript(writeFileScript('claude', { path: '/workspace/hello.txt', content: 'before pause\n' }));
    const m = await p.api('POST', '/v1/machines', {
      projectId: project.body.id,
      type: 'claude-code',
      prompt: 'write hello.txt',
      limits: { money: '2.00', apiCalls: 1 },
    });
    assert.equal(m.status, 202, JSON.stringify(m.body));
    const id = m.body.id as string;
    await page.goto(`${p.apiUrl}/#/machines/${id}`);
    await page.getByText(/Paused at its limit \(API call limit reached\)/).waitFor({ timeout: 120_000 });
    await expectNoViolations('paused machine page');
    await screenshot(page, 'machine-paused');
    llm.setScript(writeFileScript('claude', { path: '/workspace/after.txt', content: 'after resume\n' }));
    await page.getByLabel('More money (USD)').fill('1.00');
    await page.getByLabel('More model calls').fill('10');
    await page.getByRole('button', { name: 'Extend' }).click();
    await page.locator('.facts .status', { hasText: 'completed' }).waitFor({ timeout: 180_000 });
    const done = (await p.api('GET', `/v1/machines/${id}`)).body;
    assert.ok(
      done.events.some((e: { action: string }) => e.action === 'machine.extend_requested'),
      `extended through the API: ${done.events.map((e: { action: string }) => e.action).join(', ')}`,
    );
    const files = (await p.api('GET', `/v1/checkpoints/${done.checkpoints.at(-1)}`)).body.files.map((f: { path: string }) => f.path).sort();
    assert.deepEqual(files, ['after.txt', 'hello.txt'], 'the resumed run went on from the pause');
  });

  it('scopes everything by the key: a viewer bound to one project sees only it and gets no buttons', async () => {
    const other = await projectWithBudget(p, '1.00');
    const key = await p.api('POST', '/v1/keys', { name: 'viewer of one', role: 'viewer', projectIds: [projectId] });
    assert.equal(key.status, 201, JSON.stringify(key.body));
    const id = await startMachine('sleep 30');
    await page.getByRole('button', { name: 'Log out' }).click();
    await login(key.body.key);
    await page.getByRole('row', { name: /test project/ }).waitFor();
    assert.equal(await page.getByRole('row', { name: new RegExp(other) }).count(), 0, 'the other project is not listed');
    assert.equal(await page.locator(`a[href="#/projects/${other}"]`).count(), 0);
    await page.goto(`${p.apiUrl}/#/machines/${id}`);
    await page.getByRole('heading', { name: `Machine ${id}` }).waitFor();
    assert.equal(await page.getByRole('button', { name: /Terminate|Checkpoint now|Extend/ }).count(), 0, 'a viewer gets no controls');
    await page.goto(`${p.apiUrl}/#/projects/${other}`);
    await page.getByRole('alert').waitFor();
    assert.match(await page.getByRole('alert').innerText(), /404/);
    await p.api('POST', `/v1/machines/${id}/terminate`, {});
  });

  it('raised no script errors in the page', () => {
    assert.deepEqual(pageErrors, []);
  });
});

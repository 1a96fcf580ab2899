import assert from 'node:assert/strict';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { accessibilityViolations, describeViolations, launchChromium, screenshot } from '../support/browser.js';
import { projectWithBudget, startTestPlatform, waitForMachine, type TestPlatform } from '../support/platform.js';
import { seedCheckpoints } from '../support/seed-checkpoints.js';

/** The evolution tree page in a real headless Chromium against the real platform. */
describe('web dashboard: the evolution tree', function () {
  this.timeout(300_000);
  let p: TestPlatform;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let projectId: string;
  let root: string;
  /** c1 from the root; c2 (main line) and c3 (a branch) both from c1. */
  const cp: Record<'c1' | 'c2' | 'c3', string> = { c1: '', c2: '', c3: '' };
  const pageErrors: string[] = [];

  const run = async (checkpointId: string, command: string) => {
    const m = await p.api('POST', '/v1/machines', { projectId, type: 'shell', command, checkpointId, cache: false, limits: { money: '0.05', minutes: 5 } });
    assert.equal(m.status, 202, JSON.stringify(m.body));
    const done = await waitForMachine(p, m.body.id, 120_000);
    assert.equal(done.status, 'completed', JSON.stringify(done));
    return done.checkpoints.at(-1) as string;
  };
  const short = (id: string) => id.replace(/^checkpoint-/, '').slice(0, 6);
  const drawn = (n: number) => page.locator(`canvas.tree-canvas[data-drawn-count="${n}"]`).waitFor({ timeout: 60_000 });
  const panel = () => page.getByRole('region', { name: /^Checkpoint |^No checkpoint selected/ });
  const clickNode = async (id: string, opts: { shift?: boolean } = {}) => {
    const pos = await page.evaluate((cid) => (globalThis as any).__autovibeTree.position(cid) as { x: number; y: number } | null, id);
    assert.ok(pos, `checkpoint ${id} is in the drawn tree`);
    if (opts.shift) await page.keyboard.down('Shift');
    await page.mouse.click(pos.x, pos.y);
    if (opts.shift) await page.keyboard.up('Shift');
  };
  const selectedHeading = (id: string) => page.getByRole('heading', { name: `Checkpoint ${short(id)}` }).waitFor();
  const expectNoViolations = async (where: string) => {
    const violations = await accessibilityViolations(page);
    assert.deepEqual(violations, [], `${where}:\n${describeViolations(violations)}`);
  };
  const login = async (key: string) => {
    await page.goto(p.apiUrl + '/');
    await page.getByLabel('API key').fill(key);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByRole('button', { name: 'Log out' }).waitFor();
  };

  before(async () => {
    p = await startTestPlatform({ label: 'web-tree' });
    projectId = await projectWithBudget(p, '5.00');
    root = (await p.api('GET', `/v1/projects/${projectId}`)).body.rootCheckpointId;
    cp.c1 = await run(root, "printf 'one\\ntwo\\nthree\\nfour\\n' > lines.txt; mkdir -p src; echo 'export const a = 1;' > src/a.ts");
    cp.c2 = await run(cp.c1, "sed -i 's/^two$/TWO changed/' lines.txt; echo 'new file' > added.txt");
    cp.c3 = await run(cp.c1, 'rm src/a.ts; echo branch > branch.txt');
    browser = await launchChromium();
    context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    page = await context.newPage();
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await login(p.adminKey);
  });
  after(async () => {
    await browser?.close();
    await p?.stop();
  });
  afterEach(async function () {
    if (this.currentTest?.state === 'failed' && page) await screenshot(page, `tree-failed-${this.currentTest.title.replace(/\W+/g, '-').slice(0, 60)}`);
  });

  it('draws the branched tree of real machines with every checkpoint, linked from the project page', async () => {
    const tree = (await p.api('GET', `/v1/projects/${projectId}/checkpoints/tree`)).body;
    assert.equal(tree.count, 4, JSON.stringify(tree));
    await page.goto(`${p.apiUrl}/#/projects/${projectId}`);
    await page.getByRole('link', { name: 'Evolution tree' }).click();
    await drawn(4);
    assert.match(await page.locator('.tree-sub').innerText(), /4 checkpoints, 1 branch$/);
    await page.getByRole('heading', { name: 'No checkpoint selected' }).waitFor();
    await expectNoViolations('tree page');
    await screenshot(page, 'tree');
  });

  it('selects a clicked checkpoint and shows its facts, files and a file’s content', async () => {
    await clickNode(cp.c2);
    await selectedHeading(cp.c2);
    assert.match(page.url(), new RegExp(`checkpoint=${cp.c2}$`), 'the selection is in the link');
    const facts = await panel().locator('.facts').innerText();
    assert.match(facts, new RegExp(cp.c2));
    assert.match(facts, /final/);
    const files = panel().getByRole('list', { name: `Files of ${cp.c2}` });
    assert.deepEqual((await files.getByRole('button').allInnerTexts()).sort(), ['added.txt', 'lines.txt', 'src/a.ts']);
    await files.getByRole('button', { name: 'src/a.ts' }).click();
    const content = page.getByRole('region', { name: 'Content of src/a.ts' });
    await content.getByText('export const a = 1;').waitFor();
    await files.getByRole('button', { name: 'lines.txt' }).click();
    await page.getByRole('region', { name: 'Content of lines.txt' }).getByText('TWO changed').waitFor();
    await expectNoViolations('tree page with a checkpoint selected');
    await screenshot(page, 'tree-selected');
  });

  it('shows the changed lines against the parent, and against another checkpoint picked on the tree', async () => {
    const diff = page.getByRole('region', { name: `Diff from ${cp.c1} to ${cp.c2}` });
    await diff.getByText('1 added, 1 modified, 0 deleted.').waitFor();
    const lines = diff.getByLabel('Changed lines of lines.txt');
    await lines.getByText('TWO changed').waitFor();
    assert.deepEqual(
      (await lines.locator('.line-del').allInnerTexts()).map((s) => s.trim()),
      ['- two'],
    );
    assert.deepEqual(
      (await lines.locator('.line-add').allInnerTexts()).map((s) => s.trim()),
      ['+ TWO changed'],
    );
    assert.match(await diff.getByLabel('Changed lines of added.txt').innerText(), /\+ new file/);

    // Shift-click another checkpoint: the diff is now from it.
    await clickNode(cp.c3, { shift: true });
    const other = page.getByRole('region', { name: `Diff from ${cp.c3} to ${cp.c2}` });
    await other.getByText('2 added, 1 modified, 1 deleted.').waitFor();
    assert.match(await other.getByLabel('Changed lines of branch.txt').innerText(), /- branch/);
    // "Pick on the tree", then a click, does the same; "Compare with its parent" goes back.
    await page.getByRole('button', { name: 'Compare with its parent' }).click();
    await page.getByRole('region', { name: `Diff from ${cp.c1} to ${cp.c2}` }).waitFor();
    await page.getByRole('button', { name: 'Pick on the tree' }).click();
    await clickNode(root);
    await page
      .getByRole('region', { name: `Diff from ${root} to ${cp.c2}` })
      .getByText('3 added, 0 modified, 0 deleted.')
      .waitFor();
    await selectedHeading(cp.c2);
    // And an id typed in.
    await page.getByLabel('Compare with id').fill(cp.c3);
    await page.getByRole('button', { name: 'Compare', exact: true }).click();
    await page.getByRole('region', { name: `Diff from ${cp.c3} to ${cp.c2}` }).waitFor();
    await expectNoViolations('tree page with a diff');
    await screenshot(page, 'tree-diff');
  });

  it('moves the selection with the arrow keys: parent, child, sibling', async () => {
    await page.getByRole('application', { name: /Evolution tree/ }).focus();
    await page.keyboard.press('ArrowLeft');
    await selectedHeading(cp.c1);
    assert.match(
      await page.getByRole('status').filter({ hasText: 'Selected' }).innerText(),
      new RegExp(`Selected ${cp.c1}: final, step 1, main line, 2 children`),
    );
    await page.keyboard.press('ArrowRight');
    await selectedHeading(cp.c2); // the continuing child: c2 and c3 are equally tall, c2 is older
    await page.keyboard.press('ArrowDown');
    await selectedHeading(cp.c3);
    await page.keyboard.press('ArrowUp');
    await selectedHeading(cp.c2);
    await page.keyboard.press('Home');
    await selectedHeading(root);
    // The panel's parent/children buttons reach the same places.
    await panel()
      .getByRole('button', { name: short(cp.c1) })
      .click();
    await selectedHeading(cp.c1);
    // As does the list of branches.
    await page
      .getByRole('region', { name: 'Branches and milestones' })
      .getByRole('button', { name: `last ${short(cp.c3)}` })
      .click();
    await selectedHeading(cp.c3);
  });

  it('adds a new checkpoint without a reload', async () => {
    const marker = await page.evaluate(() => ((globalThis as any).marker = Math.random()));
    const c4 = await run(cp.c3, 'echo more >> branch.txt');
    await drawn(5);
    assert.equal(await page.evaluate(() => (globalThis as any).marker), marker, 'the same document');
    assert.ok(await page.evaluate((id) => (globalThis as any).__autovibeTree.position(id) !== null, c4), 'the new checkpoint is drawn');
  });

  it('spawns a shell machine from the selected checkpoint and goes to it', async () => {
    await clickNode(cp.c3);
    await selectedHeading(cp.c3);
    const form = page.getByRole('group', { name: 'Spawn a machine from here' });
    await form.getByLabel('Type').selectOption('shell');
    await form.getByLabel('Command').fill('cat branch.txt > seen.txt');
    await form.getByLabel('Money limit').fill('0.05');
    await form.getByLabel('Minutes').fill('3');
    await expectNoViolations('spawn form');
    await form.getByRole('button', { name: 'Spawn' }).click();
    await page.waitForURL(/#\/machines\/machine-/);
    const id = decodeURIComponent(page.url().split('#/machines/')[1]!);
    await page.getByRole('heading', { name: `Machine ${id}` }).waitFor();
    const m = (await p.api('GET', `/v1/machines/${id}`)).body;
    assert.equal(m.parentCheckpointId, cp.c3);
    assert.equal(m.command, 'cat branch.txt > seen.txt');
    assert.equal(m.limits.money, '0.05');
    const done = await waitForMachine(p, id, 120_000);
    assert.equal(done.status, 'completed');
    const files = (await p.api('GET', `/v1/checkpoints/${done.checkpoints.at(-1)}/files/seen.txt`)).body;
    assert.equal(String(files), 'branch\n');
  });

  it('shows no spawn form to a key that may not run machines, and fits a phone-width screen', async () => {
    const key = await p.api('POST', '/v1/keys', { name: 'tree viewer', role: 'viewer', projectIds: [projectId] });
    assert.equal(key.status, 201, JSON.stringify(key.body));
    const viewer = await browser.newContext({ viewport: { width: 390, height: 844 } });
    const vp = await viewer.newPage();
    vp.on('pageerror', (e) => pageErrors.push(e.message));
    try {
      await vp.goto(p.apiUrl + '/');
      await vp.getByLabel('API key').fill(key.body.key);
      await vp.getByRole('button', { name: 'Log in' }).click();
      await vp.getByRole('button', { name: 'Log out' }).waitFor();
      await vp.goto(`${p.apiUrl}/#/projects/${projectId}/tree?checkpoint=${cp.c2}`);
      await vp.getByRole('heading', { name: `Checkpoint ${short(cp.c2)}` }).waitFor();
      await vp.getByRole('list', { name: `Files of ${cp.c2}` }).waitFor();
      assert.equal(await vp.getByRole('group', { name: 'Spawn a machine from here' }).count(), 0);
      const overflow = await vp.evaluate(() => {
        const html = (globalThis as any).document.documentElement;
        return (html.scrollWidth - html.clientWidth) as number;
      });
      assert.ok(overflow <= 0, `no sideways scrolling at 390 px (${overflow} px too wide)`);
      const violations = await accessibilityViolations(vp);
      assert.deepEqual(violations, [], `tree page at 390 px:\n${describeViolations(violations)}`);
      await screenshot(vp, 'tree-phone');
    } finally {
      await viewer.close();
    }
  });

  it('draws a seeded tree of 10,000 checkpoints', async () => {
    const big = await projectWithBudget(p, '1.00');
    const seeded = await seedCheckpoints(p.db, big, { count: 9_999, seed: 5, milestoneEvery: 500 });
    await page.goto(`${p.apiUrl}/#/projects/${big}/tree`);
    await drawn(10_000);
    assert.equal(await page.locator('canvas.tree-canvas').getAttribute('data-visible-count'), '10000', 'fitted: every node in view');
    // Fewer lanes than the seeder's made-up machines: a branch forking off a tip continues that tip's lane.
    const branches = Number(/10000 checkpoints, (\d+) branches/.exec(await page.locator('.tree-sub').innerText())?.[1]);
    assert.ok(branches > 100 && branches <= seeded.sideBranches, `${branches} branches drawn of ${seeded.sideBranches} seeded`);
    // Walk into it from a milestone: selected, its files listed.
    const milestone = seeded.checkpoints.find((c) => c.milestone)!;
    await page
      .getByRole('region', { name: 'Branches and milestones' })
      .getByRole('button', { name: short(milestone.id) })
      .click();
    await selectedHeading(milestone.id);
    await panel().getByText('milestone').first().waitFor();
    await page
      .getByRole('list', { name: `Files of ${milestone.id}` })
      .getByRole('button', { name: 'progress.txt' })
      .waitFor();
    await page.getByRole('application', { name: /Evolution tree/ }).focus();
    await page.keyboard.press('ArrowLeft');
    await selectedHeading(milestone.parentId);
    await expectNoViolations('10,000-checkpoint tree');
    await screenshot(page, 'tree-10000');
  });

  it('raised no script errors in the page', () => {
    assert.deepEqual(pageErrors, []);
  });
});

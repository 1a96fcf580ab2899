import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fromNumeric, parseAmount } from '../../domain/money.js';
import { createUserWithKey } from '../../store/auth.js';
import { recordCost } from '../../store/costs.js';
import { insertMachine, updateMachine } from '../../store/machines.js';
import { insertObjective, recordProgress, setObjectiveStatus } from '../../store/objectives.js';
import { projectWithBudget, startTestPlatform, waitFor, type TestPlatform } from '../support/platform.js';
import { json, runCli } from '../cli/run.js';

const DAY = 86_400_000;

/**
 * ROI and feedback (README "ROI and feedback") on a seeded history: objectives, machines, ledger
 * entries and completion-check runs written through the store, feedback given through the API,
 * and every number of GET /v1/projects/:id/roi compared with a value worked out by hand below.
 */
describe('api: machine feedback and project ROI on a seeded history', function () {
  this.timeout(300_000);
  let p: TestPlatform;
  let projectId: string;
  let otherKey: string;
  let viewerKey: string;
  const m = (n: number) => `machine-00000000-0000-4000-8000-00000000010${n}`;
  const o = (n: number) => `objective-00000000-0000-4000-8000-00000000010${n}`;

  before(async () => {
    p = await startTestPlatform({ label: 'roi', worker: false });
    projectId = await projectWithBudget(p, '50.00', 'monthly');
    otherKey = (await createUserWithKey(p.db, 'second rater', 'operator', [projectId])).key;
    viewerKey = (await createUserWithKey(p.db, 'roi viewer', 'viewer', [projectId])).key;
    const root = (await p.api('GET', `/v1/projects/${projectId}`)).body.rootCheckpointId as string;

    // Objectives: o1 a bug fix (completed), o2 a bug fix (failed), o3 documentation (completed).
    const objective = async (n: number, title: string, prompt: string, status: 'completed' | 'failed') => {
      await insertObjective(p.db, {
        id: o(n),
        projectId,
        title,
        priority: 0,
        machineType: 'claude-code',
        command: null,
        prompt,
        workflowId: `wf-o${n}`,
        dependsOn: [],
        createdBy: 'test',
      });
      await setObjectiveStatus(p.db, o(n), status);
    };
    await objective(1, 'Fix the crash when saving an empty file', 'The editor crashes with a null pointer when the file is empty; fix it', 'completed');
    await objective(2, 'Fix the off-by-one error in pagination', 'The last page repeats the first item of the next; fix the bug', 'failed');
    await objective(3, 'Write the API documentation for the users endpoint', 'Document every field in the README', 'completed');

    // Machines: m1, m2 of o1; m3 of o2; m4 of o3; m5 a stand-alone bug fix; m6 a stand-alone feature.
    const machine = async (n: number, objectiveId: string | null, prompt: string) => {
      await insertMachine(p.db, {
        id: m(n),
        projectId,
        objectiveId,
        type: 'claude-code',
        provider: 'local',
        profile: 'lightweight',
        command: null,
        prompt,
        parentCheckpointId: root,
        limits: { money: '1.00' } as never,
        workflowId: `wf-m${n}`,
        createdBy: 'test',
      });
      await updateMachine(p.db, m(n), { status: 'completed', startedAt: new Date(Date.now() - 60_000), endedAt: new Date() });
    };
    await machine(1, o(1), 'fix the crash');
    await machine(2, o(1), 'fix the crash, second try');
    await machine(3, o(2), 'fix the pagination');
    await machine(4, o(3), 'write the docs');
    await machine(5, null, 'Fix the bug where login fails for emails with a plus sign');
    await machine(6, null, 'Add a dark mode toggle to the settings page');

    let seq = 0;
    const cost = async (amount: string, n: number | null, at?: number) => {
      const units = parseAmount(amount, 'USD');
      await recordCost(p.db, {
        idempotencyKey: `roi:${seq++}`,
        projectId,
        machineId: n === null ? null : m(n),
        category: n === null ? 'storage' : 'api',
        amount: units,
        currency: 'USD',
        projectAmount: units,
        projectCurrency: 'USD',
        details: {},
        ...(at !== undefined ? { createdAt: new Date(at).toISOString() } : {}),
      });
    };
    await cost('0.25', 1);
    await cost('0.15', 1); // m1: 0.40
    await cost('0.20', 2);
    await cost('0.30', 3);
    await cost('0.50', 4);
    await cost('0.60', 5);
    await cost('0.10', 6);
    await cost('0.05', null); // storage, no machine
    await cost('9.00', 6, Date.now() - 40 * DAY); // outside a 30-day window, inside a 60-day one

    // Completion-check runs: o1 fails then passes; o2 fails twice; o3 passes; one measurement without a check.
    const check = async (n: number, key: string, passed: boolean | null) =>
      recordProgress(p.db, `roi:${key}`, {
        objectiveId: o(n),
        progress: passed ? 1 : 0,
        criteria: passed === null ? { subtasks: { done: 0, total: 1 } } : { check: { passed, exitCode: passed ? 0 : 1, outputTail: '' } },
        machineId: null,
        checkpointId: null,
        note: null,
      });
    await check(1, 'o1-a', false);
    await check(2, 'o2-a', false);
    await check(1, 'o1-b', true);
    await check(3, 'o3-a', true);
    await check(2, 'o2-b', false);
    await check(3, 'o3-b', null);
  });
  after(async () => {
    await p?.stop();
  });

  it('POST /v1/machines/:id/feedback stores one rating per key (201, a repeat replaces it with 200, audited); GET lists them', async () => {
    const first = await p.api('POST', `/v1/machines/${m(1)}/feedback`, { rating: 4, comment: 'good' });
    assert.equal(first.status, 201, JSON.stringify(first.body));
    assert.equal(first.body.rating, 4);
    assert.equal(first.body.comment, 'good');
    assert.equal(first.body.machineId, m(1));
    assert.equal(first.body.projectId, projectId);
    const again = await p.api('POST', `/v1/machines/${m(1)}/feedback`, { rating: 2 });
    assert.equal(again.status, 200, JSON.stringify(again.body));
    assert.equal(again.body.rating, 2);
    assert.equal(again.body.comment, null);
    assert.equal(again.body.createdAt, first.body.createdAt);

    const list = await p.api('GET', `/v1/machines/${m(1)}/feedback`);
    assert.equal(list.status, 200);
    assert.deepEqual(
      list.body.items.map((f: any) => [f.rating, f.comment]),
      [[2, null]],
    );
    const audit = await p.api('GET', `/v1/audit?projectId=${projectId}&limit=50`);
    const entries = audit.body.items.filter((a: any) => a.action === 'machine.feedback' && a.subjectId === m(1));
    assert.equal(entries.length, 2);
    assert.ok(entries.some((a: any) => a.details.replaced?.rating === 4));

    // A viewer may read feedback but not give it.
    assert.equal((await p.api('GET', `/v1/machines/${m(1)}/feedback`, undefined, { key: viewerKey })).status, 200);
    assert.equal((await p.api('POST', `/v1/machines/${m(1)}/feedback`, { rating: 5 }, { key: viewerKey })).status, 403);
  });

  it('refuses bad feedback with a 4xx saying what to fix', async () => {
    const bad = async (body: unknown, pattern: RegExp) => {
      const r = await p.api('POST', `/v1/machines/${m(2)}/feedback`, body);
      assert.ok(r.status === 400 || r.status === 422, `${JSON.stringify(body)}: ${r.status}`);
      assert.match(JSON.stringify(r.body.error), pattern);
    };
    await bad({ rating: 6 }, /rating.*1 to 5|1 to 5.*rating/);
    await bad({ rating: 0 }, /rating/);
    await bad({ rating: 2.5 }, /whole number/);
    await bad({ rating: '5' }, /rating/);
    await bad({}, /rating/);
    await bad({ rating: 3, comment: 'x'.repeat(2001) }, /2000/);
    await bad({ rating: 3, mood: 'happy' }, /mood/);
    assert.equal((await p.api('GET', `/v1/machines/${m(2)}/feedback`)).body.items.length, 0);
    const missing = await p.api('POST', '/v1/machines/machine-00000000-0000-4000-8000-999999999999/feedback', { rating: 3 });
    assert.equal(missing.status, 404);
  });

  it('GET /v1/projects/:id/roi: every number matches the seeded history', async () => {
    // Feedback so far: m1 rated 2. Two rated machines are too few for a correlation.
    assert.equal((await p.api('POST', `/v1/machines/${m(4)}/feedback`, { rating: 5 })).status, 201);
    let roi = (await p.api('GET', `/v1/projects/${projectId}/roi`)).body;
    assert.equal(roi.spendRatingCorrelation, null);
    assert.deepEqual(roi.feedback, { count: 2, machines: 2, meanRating: 3.5 });

    // m4 also rated 4 by a second key (mean 4.5); m5 rated 3; m6 rated 1.
    assert.equal((await p.api('POST', `/v1/machines/${m(4)}/feedback`, { rating: 4 }, { key: otherKey })).status, 201);
    assert.equal((await p.api('POST', `/v1/machines/${m(5)}/feedback`, { rating: 3 })).status, 201);
    assert.equal((await p.api('POST', `/v1/machines/${m(6)}/feedback`, { rating: 1 })).status, 201);

    const res = await p.api('GET', `/v1/projects/${projectId}/roi?days=30`);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    roi = res.body;
    assert.equal(roi.currency, 'USD');
    assert.equal(roi.days, 30);
    // Spend in 30 days: 0.40 + 0.20 + 0.30 + 0.50 + 0.60 + 0.10 + 0.05 = 2.15 (the 9.00 of 40 days ago is outside).
    assert.equal(roi.spend, '2.15');
    // Completed objectives: o1, o3 → 2; per 1.00 USD: 2 / 2.15 = 0.93023255… → 0.930233; per objective 2.15 / 2 = 1.075 → 1.08 (half-even).
    assert.deepEqual(roi.objectives, { completed: 2, perUnit: '0.930233', spendPerCompleted: '1.08' });
    // Bug fixes: o1 (done; m1 + m2 = 0.60), o2 (failed; m3 = 0.30), m5 (done; 0.60) → 2 of 3, 1.50, 0.75 each.
    assert.deepEqual(roi.bugfix, { items: 3, completed: 2, completedShare: 0.6667, spend: '1.50', spendPerCompleted: '0.75' });
    // Checks: 5 runs (o1 ✗✓, o2 ✗✗, o3 ✓), 2 passed → 0.4; first results pass 1 of 3, last 2 of 3, delta 1/3.
    assert.deepEqual(roi.checks, { runs: 5, passed: 2, passRate: 0.4, objectives: 3, firstPassRate: 0.3333, lastPassRate: 0.6667, delta: 0.3333 });
    // Feedback: 2, 5, 4, 3, 1 → 5 ratings on 4 machines, mean 3.
    assert.deepEqual(roi.feedback, { count: 5, machines: 4, meanRating: 3 });
    // Pearson over (spend, mean rating): m1 (0.40, 2), m4 (0.50, 4.5), m5 (0.60, 3), m6 (0.10, 1).
    // Means 0.40 and 2.625; Σdxdy = 0·(−0.625) + 0.1·1.875 + 0.2·0.375 + (−0.3)(−1.625) = 0.75;
    // Σdx² = 0.14; Σdy² = 0.390625 + 3.515625 + 0.140625 + 2.640625 = 6.6875; r = 0.75 / √(0.14 · 6.6875) = 0.77511…
    assert.equal(roi.spendRatingCorrelation, 0.7751);

    // 60 days: the old 9.00 of m6 counts too: spend 11.15, m6's spend 9.10.
    const wide = (await p.api('GET', `/v1/projects/${projectId}/roi?days=60`)).body;
    assert.equal(wide.spend, '11.15');
    // 2 / 11.15 = 0.17937219… → 0.179372; 11.15 / 2 = 5.575 → 5.58.
    assert.deepEqual(wide.objectives, { completed: 2, perUnit: '0.179372', spendPerCompleted: '5.58' });
    // Pairs now m1 (0.40, 2), m4 (0.50, 4.5), m5 (0.60, 3), m6 (9.10, 1): r computed the same way.
    const xs = [0.4, 0.5, 0.6, 9.1];
    const ys = [2, 4.5, 3, 1];
    const mx = xs.reduce((a, b) => a + b) / 4;
    const my = ys.reduce((a, b) => a + b) / 4;
    const sxy = xs.reduce((a, x, i) => a + (x - mx) * (ys[i]! - my), 0);
    const r = sxy / Math.sqrt(xs.reduce((a, x) => a + (x - mx) ** 2, 0) * ys.reduce((a, y) => a + (y - my) ** 2, 0));
    assert.ok(r < -0.5, `expected a negative correlation, got ${r}`);
    assert.equal(wide.spendRatingCorrelation, Math.round(r * 10_000) / 10_000);
  });

  it('a project with no history answers nulls, not zeros divided by zero', async () => {
    const empty = await projectWithBudget(p, '5.00', 'daily');
    const roi = (await p.api('GET', `/v1/projects/${empty}/roi`)).body;
    assert.equal(roi.spend, '0.00');
    assert.deepEqual(roi.objectives, { completed: 0, perUnit: null, spendPerCompleted: null });
    assert.deepEqual(roi.bugfix, { items: 0, completed: 0, completedShare: null, spend: '0.00', spendPerCompleted: null });
    assert.deepEqual(roi.checks, { runs: 0, passed: 0, passRate: null, objectives: 0, firstPassRate: null, lastPassRate: null, delta: null });
    assert.deepEqual(roi.feedback, { count: 0, machines: 0, meanRating: null });
    assert.equal(roi.spendRatingCorrelation, null);
  });

  it('refuses a bad window and an unknown project', async () => {
    for (const days of ['0', '366', 'week', '1.5']) {
      const r = await p.api('GET', `/v1/projects/${projectId}/roi?days=${days}`);
      assert.ok(r.status === 400 || r.status === 422, `days=${days}: ${r.status}`);
      assert.match(JSON.stringify(r.body.error), /days/);
    }
    assert.equal((await p.api('GET', '/v1/projects/project-00000000-0000-4000-8000-999999999999/roi')).status, 404);
  });
  it('the CLI rates a machine, lists its feedback and prints the ROI; a bad rating is a usage error without a stack trace', async () => {
    const env = {
      XDG_CONFIG_HOME: fs.mkdtempSync(path.join(os.tmpdir(), 'autovibe-cli-roi-')),
      AUTOVIBE_API_URL: p.apiUrl,
      AUTOVIBE_API_KEY: p.adminKey,
    };
    const cli = async (args: string[]) => {
      const r = await runCli(args, { env });
      assert.equal(r.code, 0, `${args.join(' ')}: exit ${r.code}\n${r.stdout}\n${r.stderr}`);
      return r;
    };
    const rated = json(await cli(['machines', 'rate', m(3), '--rating', '5', '--comment', 'fine in the end', '--json']));
    assert.equal(rated.rating, 5);
    assert.match((await cli(['machines', 'feedback', m(3)])).stdout, /5\s+│.*fine in the end/);
    const roi = json(await cli(['costs', 'roi', projectId, '--days', '30', '--json']));
    const { since: _a, ...fromCli } = roi;
    const { since: _b, ...fromApi } = (await p.api('GET', `/v1/projects/${projectId}/roi?days=30`)).body;
    assert.deepEqual(fromCli, fromApi);
    // 2, 5, 4, 3, 1 and now 5 on m3: 6 ratings on 5 machines, mean 20 / 6 = 3.3333.
    assert.deepEqual(roi.feedback, { count: 6, machines: 5, meanRating: 3.3333 });
    const text = (await cli(['costs', 'roi', projectId])).stdout;
    assert.match(text, /spend \(30 days\)\s+│ 2\.15 USD/);
    assert.match(text, /bug fixes\s+│ 2 of 3 done, 1\.50 USD \(0\.75 per fix\)/);
    for (const args of [
      ['machines', 'rate', m(3), '--rating', '7'],
      ['machines', 'rate', m(3)],
      ['costs', 'roi', projectId, '--days', 'week'],
    ]) {
      const bad = await runCli(args, { env });
      assert.notEqual(bad.code, 0, args.join(' '));
      assert.doesNotMatch(bad.stderr, /\n\s+at /, 'no stack trace');
    }
  });
});

describe('api: ROI of real shell objectives with completion checks', function () {
  this.timeout(600_000);
  let p: TestPlatform;
  after(async () => {
    await p?.stop();
  });

  const waitForObjective = (id: string) =>
    waitFor(
      async () => {
        const o = (await p.api('GET', `/v1/objectives/${id}`)).body;
        return ['completed', 'failed', 'cancelled'].includes(o.status) ? o : null;
      },
      `objective ${id}`,
      180_000,
    );

  it('counts the check runs the objective workflow records, the bug fixes it completed, and the spend of their machines', async () => {
    p = await startTestPlatform({ label: 'roi-run' });
    const projectId = await projectWithBudget(p, '10.00');
    const create = async (body: Record<string, unknown>) => {
      const r = await p.api('POST', `/v1/projects/${projectId}/objectives`, body);
      assert.equal(r.status, 201, JSON.stringify(r.body));
      return r.body.id as string;
    };
    // Both classify as bug fixes. The first passes its check on its second machine; the second never does.
    const twice = await create({
      title: 'Fix the broken build that fails on the second pass',
      command: 'echo pass >> passes.txt',
      completion: { command: 'test "$(wc -l < passes.txt)" -ge 2' },
      maxMachines: 3,
    });
    const never = await create({ title: 'Fix the crash on startup', command: 'true', completion: { command: 'test -f missing.txt' }, maxMachines: 2 });
    const done = await waitForObjective(twice);
    assert.equal(done.status, 'completed', JSON.stringify(done));
    const failed = await waitForObjective(never);
    assert.equal(failed.status, 'failed', JSON.stringify(failed));
    const machineIds: string[] = [...done.machines, ...failed.machines];
    assert.equal(machineIds.length, 4);

    // Spend per machine from the ledger as the API shows it; their sum is the project's spend.
    const costs = (await p.api('GET', `/v1/projects/${projectId}/costs?limit=200`)).body;
    const spendOf = new Map<string, bigint>();
    for (const c of costs.items) spendOf.set(c.machineId, (spendOf.get(c.machineId) ?? 0n) + fromNumeric(c.projectAmount));
    const spend = [...spendOf.values()].reduce((a, b) => a + b, 0n);
    assert.equal(spend, fromNumeric(costs.totals.total.amount));
    assert.ok(spend > 0n, 'the shell machines cost nothing');

    // Ratings 1, 3, 5 on three of the four machines.
    const rated = machineIds.slice(0, 3);
    for (const [i, id] of rated.entries()) assert.equal((await p.api('POST', `/v1/machines/${id}/feedback`, { rating: 1 + 2 * i })).status, 201);

    const roi = (await p.api('GET', `/v1/projects/${projectId}/roi`)).body;
    assert.equal(fromNumeric(roi.spend), spend);
    assert.equal(roi.objectives.completed, 1);
    // 1 per `spend` (ledger units of 10^-18): 10^18 · 10^6 / spend, half-even, in millionths.
    const scaled = 10n ** 24n;
    const q = scaled / spend;
    const rem = scaled % spend;
    const millionths = 2n * rem > spend || (2n * rem === spend && q % 2n === 1n) ? q + 1n : q;
    assert.equal(roi.objectives.perUnit, `${millionths / 1_000_000n}.${(millionths % 1_000_000n).toString().padStart(6, '0')}`);
    assert.equal(roi.bugfix.items, 2);
    assert.equal(roi.bugfix.completed, 1);
    assert.equal(roi.bugfix.completedShare, 0.5);
    assert.equal(fromNumeric(roi.bugfix.spend), spend);
    // Checks: the first objective failed then passed, the second failed twice → 1 of 4; first results 0 of 2, latest 1 of 2.
    assert.deepEqual(roi.checks, { runs: 4, passed: 1, passRate: 0.25, objectives: 2, firstPassRate: 0, lastPassRate: 0.5, delta: 0.5 });
    assert.deepEqual(roi.feedback, { count: 3, machines: 3, meanRating: 3 });
    const xs = rated.map((id) => Number(spendOf.get(id) ?? 0n) / 1e18);
    const ys = [1, 3, 5];
    const mx = xs.reduce((a, b) => a + b) / 3;
    const sxx = xs.reduce((a, x) => a + (x - mx) ** 2, 0);
    const sxy = xs.reduce((a, x, i) => a + (x - mx) * (ys[i]! - 3), 0);
    const expected = sxx === 0 ? null : Math.round((sxy / Math.sqrt(sxx * 8)) * 10_000) / 10_000;
    assert.equal(roi.spendRatingCorrelation, expected);
  });
});

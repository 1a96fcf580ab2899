import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createUserWithKey } from '../../store/auth.js';
import { projectWithBudget, startTestPlatform, waitForMachine, type TestPlatform } from '../support/platform.js';
import { seedCheckpoints } from '../support/seed-checkpoints.js';
import { json, runCli, type Run } from './run.js';

/** The real `autovibe` binary on the dashboard reads: the whole checkpoint tree, the spend series, every budget. */
describe('cli: checkpoints tree, costs series, budgets list', function () {
  this.timeout(300_000);
  let p: TestPlatform;
  let projectId: string;
  let env: Record<string, string>;
  const cli = (args: string[], extra: Record<string, string> = {}) => runCli(args, { env: { ...env, ...extra } });
  const explain = (r: Run) => `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;

  before(async () => {
    p = await startTestPlatform({ label: 'cli-views' });
    env = { XDG_CONFIG_HOME: fs.mkdtempSync(path.join(os.tmpdir(), 'autovibe-cli-views-')), AUTOVIBE_API_URL: p.apiUrl, AUTOVIBE_API_KEY: p.adminKey };
    projectId = await projectWithBudget(p, '5.00');
    const m = await p.api('POST', '/v1/machines', { projectId, type: 'shell', command: 'echo x > x.txt', cache: false, limits: { money: '0.05', minutes: 2 } });
    assert.equal(m.status, 202, JSON.stringify(m.body));
    assert.equal((await waitForMachine(p, m.body.id)).status, 'completed');
    await seedCheckpoints(p.db, projectId, { count: 300, seed: 11 });
  });
  after(async () => {
    await p?.stop();
  });

  it('checkpoints tree: the whole tree as JSON, or each branch on a line with its forks indented', async () => {
    const r = await cli(['checkpoints', 'tree', projectId, '--json']);
    assert.equal(r.code, 0, explain(r));
    const tree = json(r);
    const listed = (await p.api('GET', `/v1/projects/${projectId}/checkpoints?limit=500`)).body.items.length;
    assert.equal(tree.count, listed);
    assert.ok(tree.count > 300);

    const human = await cli(['checkpoints', 'tree', projectId]);
    assert.equal(human.code, 0, explain(human));
    const lines = human.stdout.trimEnd().split('\n');
    assert.match(lines[0]!, new RegExp(`^${tree.rootCheckpointId} \\(1 checkpoint, root\\)$`));
    assert.ok(
      lines.some((l) => /^(│ {2}| {3})*[├└]─ checkpoint-\S+ … checkpoint-\S+ \(\d+ checkpoints, machine machine-/.test(l)),
      human.stdout,
    );
    const forks = tree.nodes.filter((n: any) => tree.nodes.filter((c: any) => c.parentId === n.id).length > 1).length;
    assert.equal(lines.at(-1), `${tree.count} checkpoints, ${forks} fork points, ${tree.nodes.filter((n: any) => n.milestone).length} milestones`);
    assert.ok(!human.stdout.includes('\x1b['), 'no colours into a pipe');

    const missing = await cli(['checkpoints', 'tree', 'project-none']);
    assert.equal(missing.code, 4, explain(missing));
    assert.match(missing.stderr, /project project-none not found/);
  });

  it('costs series: per bucket and category, as JSON or a table; bad options exit 2 with what to fix', async () => {
    const r = await cli(['costs', 'series', projectId, '--bucket', 'hour', '--json']);
    assert.equal(r.code, 0, explain(r));
    const s = json(r);
    assert.equal(s.bucket, 'hour');
    assert.equal(s.buckets.length, 48);
    assert.ok(Number(s.total) > 0, s.total);
    const costs = (await p.api('GET', `/v1/projects/${projectId}/costs`)).body;
    assert.equal(s.total, costs.totals.total.amount);

    const table = await cli(['costs', 'series', projectId, '--bucket', 'day', '--from', '2026-01-01', '--to', '2026-01-04']);
    assert.equal(table.code, 0, explain(table));
    assert.match(table.stdout, /day \(UTC\)/);
    assert.match(table.stdout, /2026-01-03/);
    assert.match(table.stdout, /total 0\.00 USD\n$/);

    const week = await cli(['costs', 'series', projectId, '--bucket', 'week']);
    assert.equal(week.code, 2, explain(week));
    const garbage = await cli(['costs', 'series', projectId, '--from', 'soon']);
    assert.equal(garbage.code, 2, explain(garbage));
    assert.match(garbage.stderr, /--from: must be a date/);
    const reversed = await cli(['costs', 'series', projectId, '--from', '2026-01-05', '--to', '2026-01-01']);
    assert.equal(reversed.code, 2, explain(reversed));
    assert.match(reversed.stderr, /from must be before to/);
    assert.doesNotMatch(reversed.stderr, /\n\s+at /, 'no stack trace');
  });

  it("budgets list: the project's budget and each machine type's; another project's key exits 4", async () => {
    assert.equal((await p.api('PUT', `/v1/projects/${projectId}/machine-types/aider/budget`, { amount: '12.00', currency: 'USD' })).status, 200);
    const r = await cli(['budgets', 'list', projectId, '--json']);
    assert.equal(r.code, 0, explain(r));
    const b = json(r);
    assert.equal(b.budget.limit, '5.00');
    assert.deepEqual(
      b.machineTypes.map((t: any) => [t.machineType, t.source, t.limit]),
      [
        ['aider', 'stored', '12.00'],
        ['qwen-coder', 'default', '50.00'],
      ],
    );
    const human = await cli(['budgets', 'list', projectId]);
    assert.equal(human.code, 0, explain(human));
    assert.match(human.stdout, /│ project\s+│ 5\.00/);
    assert.match(human.stdout, /│ type aider\s+│ 12\.00/);
    assert.match(human.stdout, /│ type qwen-coder\s+│ 50\.00 .*│ default/);

    const other = await projectWithBudget(p, '1.00');
    const { key } = await createUserWithKey(p.db, 'cli-views-viewer', 'viewer', [other]);
    const foreign = await cli(['budgets', 'list', projectId], { AUTOVIBE_API_KEY: key });
    assert.equal(foreign.code, 4, explain(foreign));
  });
});

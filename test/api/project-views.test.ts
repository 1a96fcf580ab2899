import assert from 'node:assert/strict';
import { parseAmount } from '../../domain/money.js';
import { createUserWithKey } from '../../store/auth.js';
import { recordCost } from '../../store/costs.js';
import { projectWithBudget, startTestPlatform, waitFor, waitForMachine, type TestPlatform } from '../support/platform.js';
import { seedCheckpoints, treeShape } from '../support/seed-checkpoints.js';

type Node = { id: string; parentId: string | null; machineId: string | null; kind: string; trigger: string; milestone: boolean; createdAt: string };

/** Every node's parent is in the list, before it; exactly one root. */
function assertParentsFirst(nodes: Node[]) {
  const seen = new Set<string>();
  let roots = 0;
  for (const n of nodes) {
    if (n.parentId === null) roots++;
    else assert.ok(seen.has(n.parentId), `${n.id} comes before its parent ${n.parentId}`);
    seen.add(n.id);
  }
  assert.equal(roots, 1);
}

describe('api: dashboard reads (whole checkpoint tree, spend series, every budget of a project)', function () {
  this.timeout(600_000);
  let p: TestPlatform;

  before(async () => {
    p = await startTestPlatform({ label: 'project-views' });
  });
  after(async () => {
    await p?.stop();
  });

  const run = async (projectId: string, command: string, checkpointId?: string) => {
    const m = await p.api('POST', '/v1/machines', {
      projectId,
      type: 'shell',
      command,
      cache: false,
      limits: { money: '0.05', minutes: 2 },
      ...(checkpointId ? { checkpointId } : {}),
    });
    assert.equal(m.status, 202, JSON.stringify(m.body));
    const done = await waitForMachine(p, m.body.id);
    assert.equal(done.status, 'completed', JSON.stringify(done));
    return done;
  };

  describe('GET /v1/projects/:id/checkpoints/tree', () => {
    it('answers a tree branched by real machines with each parent link, parents first; another project’s key gets 404', async () => {
      const projectId = await projectWithBudget(p, '5.00');
      const root = (await p.api('GET', `/v1/projects/${projectId}`)).body.rootCheckpointId;
      const a = await run(projectId, 'echo a > a.txt');
      const aFinal = a.checkpoints.at(-1);
      // Two machines continue from a's result, one more from the root: a fork at each.
      const b = await run(projectId, 'echo b > b.txt', aFinal);
      const c = await run(projectId, 'echo c > c.txt', aFinal);
      const d = await run(projectId, 'echo d > d.txt', root);

      const res = await p.api('GET', `/v1/projects/${projectId}/checkpoints/tree`);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.projectId, projectId);
      assert.equal(res.body.rootCheckpointId, root);
      const nodes: Node[] = res.body.nodes;
      assert.equal(res.body.count, nodes.length);
      assertParentsFirst(nodes);
      const byId = new Map(nodes.map((n) => [n.id, n]));
      assert.equal(byId.get(root)!.parentId, null);
      assert.equal(byId.get(root)!.kind, 'root');
      for (const [m, parent] of [
        [a, root],
        [b, aFinal],
        [c, aFinal],
        [d, root],
      ] as const) {
        const first = byId.get(m.checkpoints[0])!;
        assert.equal(first.parentId, parent, `${m.id}'s first checkpoint continues from ${parent}`);
        for (const id of m.checkpoints) assert.equal(byId.get(id)?.machineId, m.id);
        assert.equal(byId.get(m.checkpoints.at(-1))!.kind, 'final');
      }
      // The same set the paged list has.
      const paged = (await p.api('GET', `/v1/projects/${projectId}/checkpoints?limit=500`)).body.items.map((x: { id: string }) => x.id).sort();
      assert.deepEqual(nodes.map((n) => n.id).sort(), paged);

      // A key of another project: the tree reads as missing, and nothing of it comes back.
      const other = await projectWithBudget(p, '1.00');
      const { key } = await createUserWithKey(p.db, 'viewer-of-other', 'viewer', [other]);
      const foreign = await p.api('GET', `/v1/projects/${projectId}/checkpoints/tree`, undefined, { key });
      assert.equal(foreign.status, 404);
      assert.doesNotMatch(JSON.stringify(foreign.body), new RegExp(root));
      assert.equal((await p.api('GET', `/v1/projects/${other}/checkpoints/tree`, undefined, { key })).body.count, 1);
      assert.equal((await p.api('GET', '/v1/projects/project-none/checkpoints/tree')).status, 404);
    });

    it('answers a seeded 10,000-checkpoint tree whole, with files and diffs readable; If-None-Match gets 304 until it changes', async () => {
      const projectId = await projectWithBudget(p, '5.00');
      const seeded = await seedCheckpoints(p.db, projectId, { count: 10_000, seed: 7 });
      assert.ok(seeded.sideBranches > 100, `only ${seeded.sideBranches} side branches`);

      const url = `${p.apiUrl}/v1/projects/${projectId}/checkpoints/tree`;
      const auth = { authorization: `Bearer ${p.adminKey}` };
      const res = await fetch(url, { headers: auth });
      assert.equal(res.status, 200);
      const body = (await res.json()) as { count: number; nodes: Node[]; rootCheckpointId: string };
      assert.equal(body.count, 10_001);
      assert.equal(body.nodes.length, 10_001);
      assertParentsFirst(body.nodes);
      const byId = new Map(body.nodes.map((n) => [n.id, n]));
      for (const c of seeded.checkpoints) {
        const n = byId.get(c.id);
        assert.ok(n, `${c.id} missing`);
        assert.equal(n.parentId, c.parentId);
        assert.equal(n.machineId, c.machineId);
        assert.equal(n.milestone, c.milestone);
      }
      assert.equal(body.nodes.filter((n) => n.milestone).length, 40);
      // Branches: some checkpoint has several children.
      const children = new Map<string, number>();
      for (const n of body.nodes) if (n.parentId) children.set(n.parentId, (children.get(n.parentId) ?? 0) + 1);
      assert.ok([...children.values()].some((k) => k >= 2));

      // A seeded checkpoint reads like a real one: its files, one file, the diff from its parent.
      const fork = seeded.checkpoints.find((c) => c.branch > 0 && c.kind === 'final')!;
      const detail = await p.api('GET', `/v1/checkpoints/${fork.id}`);
      assert.equal(detail.status, 200, JSON.stringify(detail.body));
      assert.ok(detail.body.files.some((f: { path: string }) => f.path === 'progress.txt'));
      assert.equal(detail.body.commit, fork.commit);
      const file = await p.api('GET', `/v1/checkpoints/${fork.id}/files/progress.txt`);
      assert.match(String(file.body), new RegExp(`^branch ${fork.branch}, step \\d+\\n$`));
      const diff = await p.api('GET', `/v1/checkpoints/${fork.parentId}/diff/${fork.id}`);
      assert.equal(diff.status, 200);
      assert.ok(diff.body.modified.includes('progress.txt') || diff.body.added.includes('progress.txt'), JSON.stringify(diff.body));

      // Revalidation: unchanged → 304 without a body; a milestone set → a new answer.
      const etag = res.headers.get('etag');
      assert.ok(etag, 'an ETag');
      const again = await fetch(url, { headers: { ...auth, 'if-none-match': etag } });
      assert.equal(again.status, 304);
      assert.equal(await again.text(), '');
      const leaf = seeded.checkpoints.at(-1)!;
      assert.equal((await p.api('PUT', `/v1/checkpoints/${leaf.id}/milestone`, { milestone: !leaf.milestone })).status, 200);
      const changed = await fetch(url, { headers: { ...auth, 'if-none-match': etag } });
      assert.equal(changed.status, 200);
      assert.notEqual(changed.headers.get('etag'), etag);
      const after = (await changed.json()) as { nodes: Node[] };
      assert.equal(after.nodes.find((n) => n.id === leaf.id)!.milestone, !leaf.milestone);
      // New checkpoints: a new version again.
      const etag2 = changed.headers.get('etag')!;
      assert.equal((await fetch(url, { headers: { ...auth, 'if-none-match': `W/${etag2}, "other"` } })).status, 304);
      await seedCheckpoints(p.db, projectId, { count: 3, seed: 8 });
      const grown = await fetch(url, { headers: { ...auth, 'if-none-match': etag2 } });
      assert.equal(grown.status, 200);
      assert.equal(((await grown.json()) as { count: number }).count, 10_004);
    });

    it('seeds the same shape from the same seed: a main line with side branches', () => {
      const a = treeShape(500, 3);
      assert.deepEqual(a, treeShape(500, 3));
      assert.notDeepEqual(a, treeShape(500, 4));
      assert.equal(a.length, 500);
      const main = a.filter((n) => n.branch === 0);
      assert.ok(main.length > 100 && main.length < 400, `${main.length} on the main line`);
      a.forEach((n, i) => assert.ok(n.parent < i));
    });
  });

  describe('GET /v1/projects/:id/costs/series', () => {
    let projectId: string;
    /** A cost record of `amount` (a decimal, or ledger units) at `at`. */
    const cost = async (key: string, category: 'api' | 'infra' | 'storage', amount: string | bigint, at: string) => {
      const units = typeof amount === 'bigint' ? amount : parseAmount(amount, 'USD');
      assert.ok(
        await recordCost(p.db, {
          idempotencyKey: key,
          projectId,
          machineId: null,
          category,
          amount: units,
          currency: 'USD',
          projectAmount: units,
          projectCurrency: 'USD',
          details: {},
        }),
      );
      await p.db('cost_events').where({ idempotency_key: key }).update({ created_at: at });
    };

    before(async () => {
      projectId = await projectWithBudget(p, '5.00');
      await cost('s1', 'api', '1.25', '2026-11-01T10:05:00Z');
      await cost('s2', 'api', 1n, '2026-11-01T10:59:59.999Z'); // the smallest ledger unit
      await cost('s3', 'infra', '0.10', '2026-11-01T10:30:00Z');
      await cost('s4', 'infra', '2.00', '2026-11-01T12:00:00Z');
      await cost('s5', 'storage', '0.05', '2026-11-02T23:59:59Z');
      // Outside every range asked below.
      await cost('s6', 'api', '9.00', '2026-10-31T23:59:59Z');
    });

    it('sums each hour per category, exactly, with every bucket of the range (empty ones zero)', async () => {
      const res = await p.api('GET', `/v1/projects/${projectId}/costs/series?bucket=hour&from=2026-11-01T10:20:00Z&to=2026-11-01T13:00:00Z`);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      const s = res.body;
      assert.equal(s.currency, 'USD');
      assert.equal(s.bucket, 'hour');
      assert.equal(s.from, '2026-11-01T10:00:00.000Z', 'from moves back to its bucket start');
      assert.equal(s.to, '2026-11-01T13:00:00.000Z');
      assert.deepEqual(s.categories, ['api', 'infra']);
      assert.deepEqual(
        s.buckets.map((b: any) => [b.start, b.total, b.byCategory]),
        [
          ['2026-11-01T10:00:00.000Z', '1.350000000000000001', { api: '1.250000000000000001', infra: '0.10' }],
          ['2026-11-01T11:00:00.000Z', '0.00', {}],
          ['2026-11-01T12:00:00.000Z', '2.00', { infra: '2.00' }],
        ],
      );
      assert.equal(s.total, '3.350000000000000001');
    });

    it('sums each day; the default range is the last 30 days', async () => {
      const days = (await p.api('GET', `/v1/projects/${projectId}/costs/series?bucket=day&from=2026-11-01T00:00:00Z&to=2026-11-03T00:00:00Z`)).body;
      assert.deepEqual(
        days.buckets.map((b: any) => [b.start, b.total]),
        [
          ['2026-11-01T00:00:00.000Z', '3.350000000000000001'],
          ['2026-11-02T00:00:00.000Z', '0.05'],
        ],
      );
      const recent = await p.api('GET', `/v1/projects/${projectId}/costs/series`);
      assert.equal(recent.status, 200, JSON.stringify(recent.body));
      assert.equal(recent.body.bucket, 'day');
      assert.equal(recent.body.buckets.length, 30);
      assert.ok(Date.parse(recent.body.buckets.at(-1).start) <= Date.parse(recent.body.to));
      const exact = (await p.api('GET', `/v1/projects/${projectId}/costs/series?bucket=hour&to=2026-11-01T13:00:00Z`)).body;
      assert.equal(exact.buckets.length, 48);
      assert.equal(exact.from, '2026-10-30T13:00:00.000Z');
      assert.equal(exact.buckets.at(-1).start, '2026-11-01T12:00:00.000Z');
    });

    it('refuses a bad bucket, time or range with a 400 saying what to fix', async () => {
      const bad = async (query: string, field: string, message: RegExp) => {
        const res = await p.api('GET', `/v1/projects/${projectId}/costs/series?${query}`);
        assert.equal(res.status, 400, `${query}: ${JSON.stringify(res.body)}`);
        assert.equal(res.body.error.code, 'invalid_request');
        assert.equal(res.body.error.details.issues[0].field, field, JSON.stringify(res.body));
        assert.match(res.body.error.message, message);
      };
      await bad('bucket=week', 'bucket', /bucket: must be hour or day/);
      await bad('from=yesterday', 'from', /from: must be an ISO 8601 time/);
      await bad('to=2026-13-01', 'to', /to: must be an ISO 8601 time/);
      await bad('from=2026-11-02T00:00:00Z&to=2026-11-01T00:00:00Z', 'from', /from must be before to/);
      await bad('bucket=hour&from=2026-01-01T00:00:00Z&to=2026-11-01T00:00:00Z', 'from', /spans 7296 hour buckets; at most 1000.*bucket=day/);
      await bad('bucket=day&color=red', '(body)', /color/);
      // Another project's key: as missing.
      const { key } = await createUserWithKey(p.db, 'viewer-series', 'viewer', [await projectWithBudget(p, '1.00')]);
      assert.equal((await p.api('GET', `/v1/projects/${projectId}/costs/series`, undefined, { key })).status, 404);
    });
  });

  it('answers the same three reads over GraphQL (Project.checkpointTree, costSeries, budgets)', async () => {
    const projectId = await projectWithBudget(p, '5.00');
    await seedCheckpoints(p.db, projectId, { count: 30, seed: 5 });
    await p.db('cost_events').insert({
      idempotency_key: 'gql-1',
      project_id: projectId,
      category: 'api',
      amount: '1.5',
      currency: 'USD',
      project_amount: '1.5',
      project_currency: 'USD',
      details: '{}',
      created_at: '2026-11-01T10:05:00Z',
    });
    const query = `query($id: ID!, $bucket: String) {
      project(id: $id) {
        checkpointTree { id parentId mergeParentId machineId kind trigger status milestone createdAt }
        costSeries(bucket: $bucket, from: "2026-11-01T09:00:00Z", to: "2026-11-01T11:00:00Z") {
          bucket from to currency categories total { amount currency } buckets { start total byCategory { category amount } }
        }
        budgets { budget { limit spent period } machineTypes { machineType source budget { limit currency period } } }
      }
    }`;
    const res = await p.api('POST', '/v1/graphql', { query, variables: { id: projectId, bucket: 'hour' } });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.errors, undefined, JSON.stringify(res.body.errors));
    const g = res.body.data.project;
    const tree = (await p.api('GET', `/v1/projects/${projectId}/checkpoints/tree`)).body;
    assert.deepEqual(g.checkpointTree, tree.nodes);
    assert.equal(g.checkpointTree.length, 31);
    const series = (await p.api('GET', `/v1/projects/${projectId}/costs/series?bucket=hour&from=2026-11-01T09:00:00Z&to=2026-11-01T11:00:00Z`)).body;
    assert.deepEqual(g.costSeries, {
      bucket: 'hour',
      from: series.from,
      to: series.to,
      currency: 'USD',
      categories: ['api'],
      total: { amount: '1.50', currency: 'USD' },
      buckets: series.buckets.map((b: any) => ({
        start: b.start,
        total: b.total,
        byCategory: Object.entries(b.byCategory).map(([category, amount]) => ({ category, amount })),
      })),
    });
    assert.deepEqual(g.costSeries.buckets[1].byCategory, [{ category: 'api', amount: '1.50' }]);
    const budgets = (await p.api('GET', `/v1/projects/${projectId}/budgets`)).body;
    assert.equal(g.budgets.budget.limit, budgets.budget.limit);
    assert.deepEqual(
      g.budgets.machineTypes.map((t: any) => [t.machineType, t.source, t.budget.limit]),
      budgets.machineTypes.map((t: any) => [t.machineType, t.source, t.limit]),
    );

    // A bad bucket is the field's error, as REST's 400.
    const bad = await p.api('POST', '/v1/graphql', { query, variables: { id: projectId, bucket: 'week' } });
    const err = bad.body.errors.find((e: any) => e.path.includes('costSeries'));
    assert.equal(err.extensions.code, 'BAD_USER_INPUT');
    assert.match(err.message, /bucket: must be hour or day/);
    assert.ok(bad.body.data.project.checkpointTree.length === 31, 'the other fields still answer');
  });

  describe('GET /v1/projects/:id/budgets', () => {
    it("lists the project's budget and each machine type's with spent, reserved and limit", async () => {
      const projectId = await projectWithBudget(p, '5.00', 'weekly');
      const fresh = await p.api('GET', `/v1/projects/${projectId}/budgets`);
      assert.equal(fresh.status, 200, JSON.stringify(fresh.body));
      assert.equal(fresh.body.budget.limit, '5.00');
      assert.equal(fresh.body.budget.period, 'weekly');
      assert.equal(fresh.body.budget.spent, '0.00');
      // The types with a default daily budget show it until they are used or set.
      assert.deepEqual(
        fresh.body.machineTypes.map((t: any) => [t.machineType, t.source, t.limit, t.period, t.spent]),
        [
          ['aider', 'default', '75.00', 'daily', '0.00'],
          ['qwen-coder', 'default', '50.00', 'daily', '0.00'],
        ],
      );

      const set = await p.api('PUT', `/v1/projects/${projectId}/machine-types/shell/budget`, { amount: '2.00', currency: 'USD', alertPercents: [90] });
      assert.equal(set.status, 200, JSON.stringify(set.body));
      const aider = await p.api('PUT', `/v1/projects/${projectId}/machine-types/aider/budget`, { amount: '10.00', currency: 'EUR' });
      assert.equal(aider.status, 200, JSON.stringify(aider.body));
      await run(projectId, 'echo spend > s.txt');

      const after = (await p.api('GET', `/v1/projects/${projectId}/budgets`)).body;
      assert.ok(Number(after.budget.spent) > 0, `project spent ${after.budget.spent}`);
      const types = Object.fromEntries(after.machineTypes.map((t: any) => [t.machineType, t]));
      assert.deepEqual(Object.keys(types).sort(), ['aider', 'qwen-coder', 'shell']);
      assert.equal(types.shell.source, 'stored');
      assert.equal(types.shell.limit, '2.00');
      assert.deepEqual(types.shell.alertPercents, [90]);
      assert.equal(types.aider.source, 'stored');
      assert.equal(types.aider.currency, 'EUR');
      assert.equal(types['qwen-coder'].source, 'default');
      // The project's budget here is the one GET /projects/:id shows.
      assert.deepEqual(after.budget, (await p.api('GET', `/v1/projects/${projectId}`)).body.budget);

      const none = await p.api('POST', '/v1/projects', { name: 'no budget' });
      assert.equal((await p.api('GET', `/v1/projects/${none.body.id}/budgets`)).body.budget, null);
      const { key } = await createUserWithKey(p.db, 'viewer-budgets', 'viewer', [none.body.id]);
      assert.equal((await p.api('GET', `/v1/projects/${projectId}/budgets`, undefined, { key })).status, 404);
    });
  });

  describe('GET /v1/projects/:id/payments and /v1/projects/:id/pipelines', () => {
    it("lists a project's payments newest first with their attempts, paged; another project's key gets 404", async () => {
      const projectId = await projectWithBudget(p, '5.00');
      assert.deepEqual((await p.api('GET', `/v1/projects/${projectId}/payments`)).body, { items: [], nextCursor: null });
      assert.equal(
        (await p.api('PUT', `/v1/projects/${projectId}/payment-methods`, [{ kind: 'credits' }, { kind: 'manual', timeoutSeconds: 300 }])).status,
        200,
      );
      const credit = await p.api('POST', `/v1/projects/${projectId}/credits`, { amount: '1.00', currency: 'USD', expiresAt: '2099-01-01T00:00:00Z' });
      assert.equal(credit.status, 201, JSON.stringify(credit.body));
      const paid = (await p.api('POST', `/v1/projects/${projectId}/topups`, { amount: '0.50', currency: 'USD' })).body.paymentId;
      await waitFor(async () => (await p.api('GET', `/v1/payments/${paid}`)).body.status === 'succeeded', 'paid from credits');
      // More than the credits left: credits decline, the manual method waits for approval.
      const waiting = (await p.api('POST', `/v1/projects/${projectId}/topups`, { amount: '3.00', currency: 'USD' })).body.paymentId;
      await waitFor(async () => (await p.api('GET', `/v1/payments/${waiting}`)).body.status === 'manual_required', 'waits for approval');

      const res = await p.api('GET', `/v1/projects/${projectId}/payments`);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.deepEqual(
        res.body.items.map((i: any) => i.id),
        [waiting, paid],
      );
      // Each item is what GET /payments/:id answers.
      for (const item of res.body.items) assert.deepEqual(item, (await p.api('GET', `/v1/payments/${item.id}`)).body);
      assert.deepEqual(
        res.body.items[0].attempts.map((a: any) => [a.method, a.status]),
        [
          ['credits', 'declined'],
          ['manual', 'waiting'],
        ],
      );
      assert.deepEqual(
        res.body.items[1].attempts.map((a: any) => [a.method, a.status]),
        [['credits', 'succeeded']],
      );
      const first = (await p.api('GET', `/v1/projects/${projectId}/payments?limit=1`)).body;
      assert.deepEqual(
        first.items.map((i: any) => i.id),
        [waiting],
      );
      const second = (await p.api('GET', `/v1/projects/${projectId}/payments?limit=1&cursor=${first.nextCursor}`)).body;
      assert.deepEqual(
        second.items.map((i: any) => i.id),
        [paid],
      );
      assert.equal(second.nextCursor, null);
      assert.equal((await p.api('GET', `/v1/projects/${projectId}/payments?cursor=nonsense`)).status, 422);
      const { key } = await createUserWithKey(p.db, 'viewer-payments', 'viewer', [await projectWithBudget(p, '1.00')]);
      assert.equal((await p.api('GET', `/v1/projects/${projectId}/payments`, undefined, { key })).status, 404);
    });

    it("lists a project's pipelines newest first with each step's status, paged; another project's key gets 404", async () => {
      const projectId = await projectWithBudget(p, '5.00');
      const start = async (steps: unknown[]) => {
        const r = await p.api('POST', '/v1/pipelines', { projectId, steps });
        assert.equal(r.status, 202, JSON.stringify(r.body));
        return r.body.id as string;
      };
      const a = await start([{ id: 'one', type: 'shell', command: 'true' }]);
      const b = await start([
        { id: 'build', type: 'shell', command: 'echo b > b.txt' },
        { id: 'test', type: 'shell', command: 'test -f b.txt', dependsOn: ['build'] },
      ]);
      await waitFor(async () => {
        const items = (await p.api('GET', `/v1/projects/${projectId}/pipelines`)).body.items;
        return items.every((i: any) => i.status === 'completed');
      }, 'both pipelines completed');
      const res = await p.api('GET', `/v1/projects/${projectId}/pipelines`);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.deepEqual(
        res.body.items.map((i: any) => i.id),
        [b, a],
      );
      assert.deepEqual(res.body.items[0], (await p.api('GET', `/v1/pipelines/${b}`)).body);
      assert.deepEqual(
        res.body.items[0].steps.map((s: any) => [s.id, s.dependsOn, s.status]),
        [
          ['build', [], 'completed'],
          ['test', ['build'], 'completed'],
        ],
      );
      const first = (await p.api('GET', `/v1/projects/${projectId}/pipelines?limit=1`)).body;
      assert.equal(first.items[0].id, b);
      const second = (await p.api('GET', `/v1/projects/${projectId}/pipelines?limit=1&cursor=${first.nextCursor}`)).body;
      assert.deepEqual(
        second.items.map((i: any) => i.id),
        [a],
      );
      const { key } = await createUserWithKey(p.db, 'viewer-pipelines', 'viewer', [await projectWithBudget(p, '1.00')]);
      assert.equal((await p.api('GET', `/v1/projects/${projectId}/pipelines`, undefined, { key })).status, 404);
    });
  });
});

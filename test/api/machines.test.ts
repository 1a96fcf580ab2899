import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { liveSandboxPids } from '../../activities/compute/local-sandbox.js';
import { projectWithBudget, startTestPlatform, waitFor, waitForMachine, type TestPlatform } from '../support/platform.js';

describe('machines through the REST api (real Temporal, Postgres, git, bubblewrap)', function () {
  this.timeout(180_000);
  let p: TestPlatform;

  before(async () => {
    p = await startTestPlatform({ label: 'machines' });
  });
  after(async () => {
    await p?.stop();
  });

  it('runs a shell machine to a checkpoint whose files the command wrote, and settles its cost', async () => {
    const projectId = await projectWithBudget(p, '5.00');
    const project = (await p.api('GET', `/v1/projects/${projectId}`)).body;
    const start = await p.api('POST', '/v1/machines', {
      projectId,
      type: 'shell',
      command: 'mkdir -p src && echo "hello from $AUTOVIBE_MACHINE_ID" > src/hello.txt && id -u > uid.txt',
      limits: { money: '0.25', minutes: 5 },
    });
    assert.equal(start.status, 202, JSON.stringify(start.body));
    assert.match(start.body.id, /^machine-/);
    assert.equal(start.body.workflowId, start.body.id);

    const m = await waitForMachine(p, start.body.id);
    assert.equal(m.status, 'completed', JSON.stringify(m));
    assert.equal(m.exitCode, 0);
    assert.equal(m.parentCheckpointId, project.rootCheckpointId);
    assert.equal(m.checkpoints.length, 1);
    assert.equal(m.instanceRef, `local:${m.id}`);

    const cp = (await p.api('GET', `/v1/checkpoints/${m.checkpoints[0]}`)).body;
    assert.equal(cp.parentId, project.rootCheckpointId);
    assert.equal(cp.machineId, m.id);
    assert.equal(cp.kind, 'final');
    const hello = cp.files.find((f: any) => f.path === 'src/hello.txt');
    assert.ok(hello, `files: ${JSON.stringify(cp.files)}`);
    const file = await p.api('GET', `/v1/checkpoints/${cp.id}/files/src/hello.txt`);
    assert.equal(file.body, `hello from ${m.id}\n`);
    // Inside the sandbox the command is not root.
    assert.equal((await p.api('GET', `/v1/checkpoints/${cp.id}/files/uid.txt`)).body, '1000\n');

    const diff = (await p.api('GET', `/v1/checkpoints/${project.rootCheckpointId}/diff/${cp.id}`)).body;
    assert.deepEqual(diff.added.sort(), ['src/hello.txt', 'uid.txt']);
    assert.deepEqual(diff.deleted, []);

    // Cost: one infra event, positive, tiny, settled into the budget; nothing left reserved.
    const costs = (await p.api('GET', `/v1/projects/${projectId}/costs`)).body;
    const events = costs.items.filter((e: any) => e.machineId === m.id);
    assert.equal(events.length, 1);
    assert.equal(events[0].category, 'infra');
    assert.ok(Number(events[0].amount) > 0 && Number(events[0].amount) < 0.01, events[0].amount);
    assert.equal(m.cost.amount, events[0].amount);
    assert.equal(costs.budget.spent, events[0].amount);
    assert.equal(costs.budget.reserved, '0.00');

    // Audit: who did what, in order.
    const audit = (await p.api('GET', `/v1/audit?subjectId=${m.id}`)).body.items.map((a: any) => a.action);
    for (const action of ['machine.requested', 'budget.reserved', 'machine.running', 'budget.settled', 'machine.completed']) {
      assert.ok(audit.includes(action), `audit lacks ${action}: ${audit}`);
    }
    assert.equal((await p.api('GET', '/v1/audit/verify')).body.intact, true);

    // The sandbox is gone and so is the workspace.
    assert.deepEqual(liveSandboxPids(m.id), []);
    assert.equal(fs.existsSync(path.join(p.config.workspacesDir, m.id)), false);
  });

  it('isolates the sandbox: no network, host files absent, only the workspace writable', async () => {
    const projectId = await projectWithBudget(p);
    const secret = path.join(p.home, 'host-secret.txt');
    fs.writeFileSync(secret, 'do not read');
    const command = [
      `(test -e ${secret} && echo visible || echo absent) > secret.txt`,
      `(touch /usr/evil 2>/dev/null && echo writable || echo readonly) > usr.txt`,
      `(cat /proc/net/dev | grep -c : ) > ifaces.txt`,
      `(test -e /root && echo present || echo absent) > root.txt`,
    ].join('; ');
    const start = await p.api('POST', '/v1/machines', { projectId, type: 'shell', command });
    const m = await waitForMachine(p, start.body.id);
    assert.equal(m.status, 'completed', JSON.stringify(m));
    const read = async (f: string) => (await p.api('GET', `/v1/checkpoints/${m.checkpoints[0]}/files/${f}`)).body.trim();
    assert.equal(await read('secret.txt'), 'absent');
    assert.equal(await read('usr.txt'), 'readonly');
    assert.equal(await read('ifaces.txt'), '1', 'only the loopback interface exists in the sandbox');
    assert.equal(await read('root.txt'), 'absent');
  });

  it('branches the evolution tree when a machine starts from an older checkpoint', async () => {
    const projectId = await projectWithBudget(p);
    const root = (await p.api('GET', `/v1/projects/${projectId}`)).body.rootCheckpointId;
    const a = await waitForMachine(p, (await p.api('POST', '/v1/machines', { projectId, type: 'shell', command: 'echo a > a.txt' })).body.id);
    const b = await waitForMachine(
      p,
      (await p.api('POST', '/v1/machines', { projectId, type: 'shell', command: 'test -f a.txt && echo b > b.txt', checkpointId: a.checkpoints[0] })).body.id,
    );
    assert.equal(b.status, 'completed', 'b starts from a and sees a.txt');
    const c = await waitForMachine(
      p,
      (await p.api('POST', '/v1/machines', { projectId, type: 'shell', command: 'test ! -f a.txt && echo c > c.txt', checkpointId: root })).body.id,
    );
    assert.equal(c.status, 'completed', 'c starts from the root and does not see a.txt');
    const tree = (await p.api('GET', `/v1/projects/${projectId}/checkpoints`)).body.items;
    const byId = new Map(tree.map((cp: any) => [cp.id, cp]));
    assert.equal((byId.get(b.checkpoints[0]) as any).parentId, a.checkpoints[0]);
    assert.equal((byId.get(c.checkpoints[0]) as any).parentId, root);
    assert.equal((byId.get(a.checkpoints[0]) as any).parentId, root);
    const children = tree
      .filter((cp: any) => cp.parentId === root)
      .map((cp: any) => cp.id)
      .sort();
    assert.deepEqual(children, [a.checkpoints[0], c.checkpoints[0]].sort(), 'the root has two branches');
  });

  it('stops a machine that outruns limits.minutes with "time budget exceeded" and keeps its work', async () => {
    const projectId = await projectWithBudget(p);
    const start = await p.api('POST', '/v1/machines', {
      projectId,
      type: 'shell',
      command: 'echo started > progress.txt; sleep 600',
      limits: { minutes: 1 },
    });
    const m = await waitForMachine(p, start.body.id, 120_000);
    assert.equal(m.status, 'terminated');
    assert.equal(m.stopReason, 'time budget exceeded');
    assert.equal(m.checkpoints.length, 1);
    const files = (await p.api('GET', `/v1/checkpoints/${m.checkpoints[0]}`)).body.files.map((f: any) => f.path);
    assert.deepEqual(files, ['progress.txt']);
    const started = Date.parse(m.startedAt);
    const ended = Date.parse(m.endedAt);
    assert.ok(ended - started >= 60_000 && ended - started < 110_000, `ran ${ended - started} ms`);
    assert.deepEqual(liveSandboxPids(m.id), []);
  });

  it('terminates on request with a final checkpoint and a settled cost; takes checkpoints on request', async () => {
    const projectId = await projectWithBudget(p);
    const start = await p.api('POST', '/v1/machines', {
      projectId,
      type: 'shell',
      command: 'echo one > one.txt; while true; do date +%s%N >> ticks.txt; sleep 0.2; done',
    });
    const id = start.body.id;
    await waitFor(async () => (await p.api('GET', `/v1/machines/${id}`)).body.status === 'running', 'running');
    await new Promise((r) => setTimeout(r, 1500));
    const req = await p.api('POST', `/v1/machines/${id}/checkpoint`);
    assert.equal(req.status, 202);
    await waitFor(async () => (await p.api('GET', `/v1/machines/${id}`)).body.checkpoints.length === 1, 'manual checkpoint');
    const term = await p.api('POST', `/v1/machines/${id}/terminate`);
    assert.equal(term.status, 202);
    const m = await waitForMachine(p, id);
    assert.equal(m.status, 'terminated');
    assert.equal(m.stopReason, 'terminated by request');
    assert.equal(m.checkpoints.length, 2);
    const [manual, final] = await Promise.all(m.checkpoints.map(async (c: string) => (await p.api('GET', `/v1/checkpoints/${c}`)).body));
    assert.equal(manual.kind, 'manual');
    assert.equal(final.kind, 'final');
    assert.equal(final.parentId, manual.id, 'the final checkpoint follows the manual one');
    assert.ok(final.files.some((f: any) => f.path === 'ticks.txt'));
    assert.ok(Number(m.cost.amount) > 0);
    const again = await p.api('POST', `/v1/machines/${id}/terminate`);
    assert.equal(again.status, 409);
    assert.equal(again.body.error.code, 'machine_ended');
    assert.deepEqual(liveSandboxPids(id), []);
  });

  it('records a failing command as failed, with its output and a checkpoint', async () => {
    const projectId = await projectWithBudget(p);
    const start = await p.api('POST', '/v1/machines', { projectId, type: 'shell', command: 'echo partial > partial.txt; echo boom >&2; exit 3' });
    const m = await waitForMachine(p, start.body.id);
    assert.equal(m.status, 'failed');
    assert.equal(m.exitCode, 3);
    assert.match(m.error, /exited with code 3/);
    assert.match(m.error, /boom/);
    assert.equal(m.checkpoints.length, 1);
  });

  it('never overspends: 50 machines at once against a budget that fits 10', async () => {
    const projectId = await projectWithBudget(p, '1.00', 'total');
    // Identical machines would be served from the result cache once the first completes, at no cost
    // and without a reservation: opt out, every one of them must be admitted by the ledger.
    const results = await Promise.all(
      Array.from({ length: 50 }, () =>
        p.api('POST', '/v1/machines', { projectId, type: 'shell', command: 'sleep 1', limits: { money: '0.10' }, cache: false }),
      ),
    );
    const accepted = results.filter((r) => r.status === 202);
    const refused = results.filter((r) => r.status === 409);
    assert.equal(
      accepted.length,
      10,
      `accepted ${accepted.length}: ${JSON.stringify(results.filter((r) => r.status !== 202 && r.status !== 409).map((r) => r.body))}`,
    );
    assert.equal(refused.length, 40);
    for (const r of refused) {
      assert.equal(r.body.error.code, 'budget_exceeded');
      assert.match(r.body.error.message, /budget exceeded/);
    }
    const budget = (await p.api('GET', `/v1/projects/${projectId}`)).body.budget;
    assert.ok(Number(budget.spent) + Number(budget.reserved) <= 1.0);
    assert.equal(budget.reserved, '1.00');
    const ended = await Promise.all(accepted.map((r) => waitForMachine(p, r.body.id, 150_000)));
    assert.ok(
      ended.every((m) => m.status === 'completed'),
      JSON.stringify(ended.map((m) => [m.status, m.error])),
    );
    const after = (await p.api('GET', `/v1/projects/${projectId}`)).body.budget;
    assert.equal(after.reserved, '0.00');
    const costs = (await p.api('GET', `/v1/projects/${projectId}/costs`)).body;
    assert.equal(costs.items.length, 10, 'one cost event per machine that ran');
    assert.equal(costs.totals.total.amount, after.spent);
    const refusedMachines = (await p.api('GET', `/v1/machines?projectId=${projectId}&status=refused`)).body.items;
    assert.equal(refusedMachines.length, 40);
  });

  it('reads a page of machines with one query per kind however long the page, each as GET /v1/machines/:id answers it', async () => {
    const projectId = await projectWithBudget(p, '5.00');
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) {
      const r = await p.api('POST', '/v1/machines', { projectId, type: 'shell', command: `echo ${i} > n.txt`, cache: false, limits: { money: '0.05' } });
      assert.equal(r.status, 202, JSON.stringify(r.body));
      ids.push(r.body.id);
    }
    for (const id of ids) assert.equal((await waitForMachine(p, id)).status, 'completed');

    // The SQL the api runs for one list request, by the tables a presented machine reads.
    const TABLES = ['projects', 'cost_events', 'checkpoints', 'machine_cache', 'audit_log'];
    const queriesOf = async (limit: number) => {
      const seen: string[] = [];
      const onQuery = (q: { sql: string }) => seen.push(q.sql);
      p.db.on('query', onQuery);
      try {
        const res = await p.api('GET', `/v1/machines?projectId=${projectId}&limit=${limit}`);
        assert.equal(res.status, 200);
        assert.equal(res.body.items.length, limit);
        return { items: res.body.items, counts: TABLES.map((t) => seen.filter((sql) => sql.includes(`from "${t}"`)).length) };
      } finally {
        p.db.off('query', onQuery);
      }
    };
    // Background work of the in-process worker (schedules such as the alert evaluation) may query
    // the same pool meanwhile: it only adds, so the fewest seen over three requests is the request's own.
    const fewest = async (limit: number) => {
      const runs = [await queriesOf(limit), await queriesOf(limit), await queriesOf(limit)];
      return { items: runs[0]!.items, counts: TABLES.map((_, i) => Math.min(...runs.map((r) => r.counts[i]!))) };
    };
    const one = await fewest(1);
    const four = await fewest(4);
    assert.deepEqual(four.counts, one.counts, `queries per table (${TABLES.join(', ')}) for 1 machine vs 4`);
    assert.ok(
      four.counts.every((n) => n >= 1),
      `each kind read: ${four.counts.join(', ')}`,
    );
    for (const m of four.items) {
      const single = (await p.api('GET', `/v1/machines/${m.id}`)).body;
      assert.deepEqual(m, single);
      assert.equal(m.checkpoints.length, 1);
      assert.ok(Number(m.cost.amount) > 0);
      assert.ok(m.events.some((e: { action: string }) => e.action === 'machine.requested'));
    }
  });

  it('refuses machines of a project without a budget', async () => {
    const project = (await p.api('POST', '/v1/projects', { name: 'no budget' })).body;
    const r = await p.api('POST', '/v1/machines', { projectId: project.id, type: 'shell', command: 'true' });
    assert.equal(r.status, 409);
    assert.equal(r.body.error.code, 'budget_not_set');
    assert.match(r.body.error.message, /PUT \/v1\/projects\/.*\/budget/);
  });

  it('does not start the same machine twice for a repeated Idempotency-Key', async () => {
    const projectId = await projectWithBudget(p);
    const body = { projectId, type: 'shell', command: 'echo once >> once.txt' };
    const headers = { 'idempotency-key': `k-${Date.now()}` };
    const first = await p.api('POST', '/v1/machines', body, { headers });
    const second = await p.api('POST', '/v1/machines', body, { headers });
    assert.equal(first.status, 202);
    assert.equal(second.status, 202);
    assert.equal(second.body.id, first.body.id);
    const other = await p.api('POST', '/v1/machines', { ...body, command: 'true' }, { headers });
    assert.equal(other.status, 422);
    assert.equal(other.body.error.code, 'idempotency_key_reused');
    await waitForMachine(p, first.body.id);
    const machines = (await p.api('GET', `/v1/machines?projectId=${projectId}`)).body.items;
    assert.equal(machines.length, 1);
  });
});

import assert from 'node:assert/strict';
import { projectWithBudget, startTestPlatform, waitFor, type TestPlatform } from '../support/platform.js';

/** Longest number of [start, end) intervals that overlap at one instant. */
function maxOverlap(intervals: Array<[number, number]>): number {
  const events = intervals.flatMap(([s, e]) => [
    [s, 1],
    [e, -1],
  ]);
  events.sort((a, b) => a[0]! - b[0]! || a[1]! - b[1]!);
  let now = 0;
  let max = 0;
  for (const [, d] of events) max = Math.max(max, (now += d!));
  return max;
}

describe('project scheduling: machine slots, priorities, resources, completion criteria', function () {
  this.timeout(300_000);
  let p: TestPlatform;
  before(async () => {
    p = await startTestPlatform({ label: 'scheduling' });
  });
  after(async () => {
    await p?.stop();
  });

  const ended = (o: any) => ['completed', 'failed', 'cancelled'].includes(o.status);
  const waitForObjective = (id: string) =>
    waitFor(
      async () => {
        const o = (await p.api('GET', `/v1/objectives/${id}`)).body;
        return ended(o) ? o : null;
      },
      `objective ${id}`,
      180_000,
    );
  const createObjective = async (projectId: string, body: Record<string, unknown>) => {
    const res = await p.api('POST', `/v1/projects/${projectId}/objectives`, body);
    assert.equal(res.status, 201, JSON.stringify(res.body));
    return res.body.id as string;
  };
  const machineInterval = async (machineId: string): Promise<[number, number]> => {
    const m = (await p.api('GET', `/v1/machines/${machineId}`)).body;
    return [Date.parse(m.startedAt), Date.parse(m.endedAt)];
  };
  const setScheduling = async (projectId: string, body: Record<string, unknown>) => {
    const res = await p.api('PUT', `/v1/projects/${projectId}/scheduling`, body);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return res.body;
  };

  it('never runs more than the concurrent-machine limit, and starts waiting objectives by priority', async () => {
    const projectId = await projectWithBudget(p, '10.00');
    await setScheduling(projectId, { maxConcurrentMachines: 1 });
    const first = await createObjective(projectId, { title: 'first', command: 'sleep 3' });
    // Wait until the first holds the only slot, so the others queue behind it.
    await waitFor(async () => ((await p.api('GET', `/v1/objectives/${first}`)).body.status === 'running' ? true : null), 'first running', 60_000);
    const low = await createObjective(projectId, { title: 'low', command: 'sleep 1', priority: 1 });
    const high = await createObjective(projectId, { title: 'high', command: 'sleep 1', priority: 5 });
    const queued = await waitFor(
      async () => {
        const s = (await p.api('GET', `/v1/projects/${projectId}/scheduling`)).body;
        // Both queued, and looked at by an allocation round (which gives each its reason).
        return s.coordinator?.waiting.length === 2 && s.coordinator.waiting.every((w: any) => !w.reason.startsWith('just queued')) ? s : null;
      },
      'two waiting',
      60_000,
    );
    assert.equal(queued.coordinator.holding.length, 1);
    assert.match(queued.coordinator.waiting[0].reason, /all 1 machine slots are in use/);
    const live = (await p.api('GET', `/v1/objectives/${low}`)).body.live;
    assert.equal(live.waitingFor, 'slot:machines');

    const done = await Promise.all([first, low, high].map(waitForObjective));
    for (const o of done) assert.equal(o.status, 'completed', JSON.stringify(o));
    const [a, l, h] = await Promise.all(done.map((o) => machineInterval(o.machines[0])));
    assert.equal(maxOverlap([a!, l!, h!]), 1);
    assert.ok(h![0] >= a![1], 'high started after first ended');
    assert.ok(l![0] >= h![1], `low (priority 1, created first) started ${l![0]} before high (priority 5) ended ${h![1]}`);
  });

  it('runs ready objectives in parallel up to the limit, and greediness holds back what the budget cannot cover', async () => {
    const projectId = await projectWithBudget(p, '1.00');
    await setScheduling(projectId, { maxConcurrentMachines: 4, greediness: 0.5 });
    // Each machine may spend up to $0.30: with half of what is left per extra machine, two fit at once
    // (0.30 of 1.00, then 0.30 ≤ 0.35); a third would need 0.30 ≤ 0.20.
    const ids = await Promise.all(['a', 'b', 'c', 'd'].map((t) => createObjective(projectId, { title: t, command: 'sleep 5', limits: { money: '0.30' } })));
    const done = await Promise.all(ids.map(waitForObjective));
    for (const o of done) assert.equal(o.status, 'completed', JSON.stringify(o));
    const intervals = await Promise.all(done.map((o) => machineInterval(o.machines[0])));
    assert.equal(maxOverlap(intervals), 2, JSON.stringify(intervals));

    const greedy = await projectWithBudget(p, '1.00');
    await setScheduling(greedy, { maxConcurrentMachines: 4, greediness: 1 });
    const more = await Promise.all(['a', 'b', 'c', 'd'].map((t) => createObjective(greedy, { title: t, command: 'sleep 5', limits: { money: '0.30' } })));
    const moreDone = await Promise.all(more.map(waitForObjective));
    assert.equal(maxOverlap(await Promise.all(moreDone.map((o) => machineInterval(o.machines[0])))), 3);
  });

  it('pipelines whose steps take the same two resources in opposite orders all finish, never holding one at once', async () => {
    const projectId = await projectWithBudget(p, '10.00');
    await setScheduling(projectId, { maxConcurrentMachines: 4, resources: { gpu: 1, db: 1 } });
    const pipeline = (first: string, second: string) =>
      p.api('POST', '/v1/pipelines', {
        projectId,
        steps: [
          { id: 'x', type: 'shell', command: 'sleep 1', resources: [first, second] },
          { id: 'y', type: 'shell', command: 'sleep 1', resources: [second, first] },
        ],
      });
    const started = await Promise.all([pipeline('gpu', 'db'), pipeline('db', 'gpu')]);
    for (const s of started) assert.equal(s.status, 202, JSON.stringify(s.body));
    const results = await Promise.all(
      started.map((s) =>
        waitFor(
          async () => {
            const b = (await p.api('GET', `/v1/pipelines/${s.body.id}`)).body;
            return b.status !== 'running' ? b : null;
          },
          `pipeline ${s.body.id}`,
          120_000,
        ),
      ),
    );
    const intervals: Array<[number, number]> = [];
    for (const r of results) {
      assert.equal(r.status, 'completed', JSON.stringify(r));
      for (const step of r.steps) intervals.push([Date.parse(step.startedAt), Date.parse(step.endedAt)]);
    }
    // Every step holds both resources, so no two steps may overlap.
    assert.equal(maxOverlap(intervals), 1, JSON.stringify(intervals));
    const s = (await p.api('GET', `/v1/projects/${projectId}/scheduling`)).body;
    assert.deepEqual(s.coordinator.deadlocks, []);
    assert.deepEqual(s.coordinator.holding, []);
    assert.ok(s.coordinator.granted >= 12, `granted ${s.coordinator.granted}`); // 4 steps × (2 resources + 1 slot)

    const unknown = await p.api('POST', '/v1/pipelines', { projectId, steps: [{ id: 'x', type: 'shell', command: 'true', resources: ['tpu'] }] });
    assert.equal(unknown.status, 422);
    assert.match(unknown.body.error.message, /steps\.0\.resources: unknown resource "tpu".*known: db, gpu/);
  });

  it('runs machines until the completion check passes, each from where the last ended, recording progress over time', async () => {
    const projectId = await projectWithBudget(p, '10.00');
    const id = await createObjective(projectId, {
      title: 'two passes',
      command: 'echo pass >> passes.txt',
      completion: { command: 'test "$(wc -l < passes.txt)" -ge 2' },
      maxMachines: 3,
    });
    const o = await waitForObjective(id);
    assert.equal(o.status, 'completed', JSON.stringify(o));
    assert.equal(o.progress, 1);
    assert.equal(o.machines.length, 2);
    const [m1, m2] = await Promise.all(o.machines.map(async (m: string) => (await p.api('GET', `/v1/machines/${m}`)).body));
    assert.equal(m2.parentCheckpointId, m1.checkpoints.at(-1), "the second machine starts from the first one's final checkpoint");
    const history = (await p.api('GET', `/v1/objectives/${id}/progress`)).body.items;
    assert.deepEqual(
      history.map((h: any) => h.progress),
      [0, 0, 1],
    );
    assert.equal(history[1].criteria.check.passed, false);
    assert.equal(history[1].machineId, m1.id);
    assert.equal(history[2].criteria.check.passed, true);
    assert.ok(history.every((h: any, i: number) => i === 0 || Date.parse(h.recordedAt) >= Date.parse(history[i - 1].recordedAt)));

    const never = await createObjective(projectId, { title: 'never', command: 'true', completion: { command: 'test -f missing.txt' }, maxMachines: 2 });
    const n = await waitForObjective(never);
    assert.equal(n.status, 'failed');
    assert.equal(n.machines.length, 2);
    assert.match(n.error, /completion criteria not met after 2 machine\(s\).*test -f missing.txt/);
  });

  it("completes when sub-tasks are ticked off by a user and by the machine's verdict file", async () => {
    const projectId = await projectWithBudget(p, '10.00');
    const id = await createObjective(projectId, {
      title: 'docs and review',
      command: 'sleep 4; mkdir -p .autovibe; echo \'{"complete": true, "subtasksDone": ["write docs"], "note": "docs written"}\' > .autovibe/verdict.json',
      completion: { subtasks: ['write docs', 'review'], verdict: true },
    });
    await waitFor(async () => ((await p.api('GET', `/v1/objectives/${id}`)).body.status === 'running' ? true : null), 'running', 60_000);
    const bad = await p.api('POST', `/v1/objectives/${id}/subtasks/done`, { names: ['deploy'] });
    assert.equal(bad.status, 422);
    assert.match(bad.body.error.message, /names: unknown sub-task "deploy"/);
    const ticked = await p.api('POST', `/v1/objectives/${id}/subtasks/done`, { names: ['review'] });
    assert.equal(ticked.status, 200, JSON.stringify(ticked.body));
    assert.deepEqual(ticked.body.subtasksDone, ['review']);
    assert.equal(ticked.body.progress, 0.3333);
    const o = await waitForObjective(id);
    assert.equal(o.status, 'completed', JSON.stringify(o));
    assert.deepEqual([...o.subtasksDone].sort(), ['review', 'write docs']);
    const history = (await p.api('GET', `/v1/objectives/${id}/progress`)).body.items;
    assert.deepEqual(
      history.map((h: any) => h.progress),
      [0, 0.3333, 1],
    );
    assert.equal(history[2].criteria.verdict.complete, true);

    const dag = (await p.api('GET', `/v1/projects/${projectId}/objectives/dag`)).body;
    assert.deepEqual(
      dag.nodes.map((n: any) => [n.id, n.progress]),
      [[id, 1]],
    );
  });

  it('reorders a waiting objective when its priority changes', async () => {
    const projectId = await projectWithBudget(p, '10.00');
    await setScheduling(projectId, { maxConcurrentMachines: 1 });
    const blocker = await createObjective(projectId, { title: 'blocker', command: 'sleep 3' });
    await waitFor(async () => ((await p.api('GET', `/v1/objectives/${blocker}`)).body.status === 'running' ? true : null), 'blocker running', 60_000);
    const a = await createObjective(projectId, { title: 'a', command: 'true', priority: 2 });
    const b = await createObjective(projectId, { title: 'b', command: 'true', priority: 1 });
    await waitFor(
      async () => ((await p.api('GET', `/v1/projects/${projectId}/scheduling`)).body.coordinator?.waiting.length === 2 ? true : null),
      'both waiting',
      60_000,
    );
    const patched = await p.api('PATCH', `/v1/objectives/${b}`, { priority: 9 });
    assert.equal(patched.status, 200, JSON.stringify(patched.body));
    assert.equal(patched.body.priority, 9);
    const [oa, ob] = await Promise.all([waitForObjective(a), waitForObjective(b)]);
    const [ia, ib] = await Promise.all([machineInterval(oa.machines[0]), machineInterval(ob.machines[0])]);
    assert.ok(ib[1] <= ia[0], 'b (raised to 9) ran before a (2)');
    const empty = await p.api('PATCH', `/v1/objectives/${a}`, {});
    assert.equal(empty.status, 409); // already ended
  });

  it('the project coordinator continues as new to keep its history short, keeping what is held and what waits', async () => {
    const projectId = await projectWithBudget(p, '10.00');
    await setScheduling(projectId, { maxConcurrentMachines: 1 });
    const holder = await createObjective(projectId, { title: 'holder', command: 'sleep 8' });
    await waitFor(async () => ((await p.api('GET', `/v1/objectives/${holder}`)).body.status === 'running' ? true : null), 'holder running', 60_000);
    const waiter = await createObjective(projectId, { title: 'waiter', command: 'true' });
    await waitFor(
      async () => ((await p.api('GET', `/v1/projects/${projectId}/scheduling`)).body.coordinator?.waiting.length === 1 ? true : null),
      'waiter queued',
      60_000,
    );
    const handle = p.temporal.workflow.getHandle(`coordinator-${projectId}`);
    const first = (await handle.describe()).runId;
    // More signals than one run handles: the coordinator must continue as new.
    for (let i = 0; i < 520; i += 40) await Promise.all(Array.from({ length: 40 }, () => handle.signal('reschedule', { by: 'test' })));
    await waitFor(async () => ((await handle.describe()).runId !== first ? true : null), 'a new run', 60_000);
    const s = (await p.api('GET', `/v1/projects/${projectId}/scheduling`)).body.coordinator;
    assert.equal(s.holding.length, 1, JSON.stringify(s));
    assert.equal(s.waiting.length, 1, JSON.stringify(s));
    const [h, w] = await Promise.all([waitForObjective(holder), waitForObjective(waiter)]);
    assert.equal(h.status, 'completed');
    assert.equal(w.status, 'completed');
  });
});

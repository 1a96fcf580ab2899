import assert from 'node:assert/strict';
import { projectWithBudget, startTestPlatform, waitFor, type TestPlatform } from '../support/platform.js';

describe('objectives with dependencies', function () {
  this.timeout(180_000);
  let p: TestPlatform;
  before(async () => {
    p = await startTestPlatform({ label: 'objectives' });
  });
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
      120_000,
    );

  it('runs an objective only after the objectives it depends on complete', async () => {
    const projectId = await projectWithBudget(p, '5.00');
    // The first objective takes a while; the second must not start before it ends.
    const first = await p.api('POST', `/v1/projects/${projectId}/objectives`, { title: 'first', command: 'sleep 2; echo first > f.txt' });
    assert.equal(first.status, 201, JSON.stringify(first.body));
    const second = await p.api('POST', `/v1/projects/${projectId}/objectives`, { title: 'second', command: 'echo second > s.txt', dependsOn: [first.body.id] });
    assert.equal(second.status, 201, JSON.stringify(second.body));
    assert.deepEqual(second.body.dependsOn, [first.body.id]);

    const a = await waitForObjective(first.body.id);
    const b = await waitForObjective(second.body.id);
    assert.equal(a.status, 'completed');
    assert.equal(b.status, 'completed');
    assert.equal(a.progress, 1);
    assert.equal(a.machines.length, 1);
    assert.equal(b.machines.length, 1);
    const ma = (await p.api('GET', `/v1/machines/${a.machines[0]}`)).body;
    const mb = (await p.api('GET', `/v1/machines/${b.machines[0]}`)).body;
    assert.equal(ma.objectiveId, a.id);
    assert.ok(Date.parse(mb.startedAt) >= Date.parse(ma.endedAt), `second started ${mb.startedAt} before first ended ${ma.endedAt}`);
    const listed = (await p.api('GET', `/v1/projects/${projectId}/objectives`)).body.items.map((o: any) => o.id);
    assert.deepEqual(listed, [a.id, b.id]);
  });

  it('fails a dependent objective when its dependency fails, without running its machine', async () => {
    const projectId = await projectWithBudget(p, '5.00');
    const bad = await p.api('POST', `/v1/projects/${projectId}/objectives`, { title: 'bad', command: 'exit 1' });
    const dependent = await p.api('POST', `/v1/projects/${projectId}/objectives`, { title: 'after bad', command: 'true', dependsOn: [bad.body.id] });
    const b = await waitForObjective(dependent.body.id);
    assert.equal((await waitForObjective(bad.body.id)).status, 'failed');
    assert.equal(b.status, 'failed');
    assert.match(b.error, new RegExp(`dependency ${bad.body.id} failed`));
    assert.deepEqual(b.machines, []);
  });

  it('holds a paused objective after its dependency completes, and runs it on resume', async () => {
    const projectId = await projectWithBudget(p, '5.00');
    const first = (await p.api('POST', `/v1/projects/${projectId}/objectives`, { title: 'first', command: 'sleep 2' })).body;
    const second = (await p.api('POST', `/v1/projects/${projectId}/objectives`, { title: 'second', command: 'true', dependsOn: [first.id] })).body;
    assert.equal((await p.api('POST', `/v1/objectives/${second.id}/pause`)).status, 202);
    await waitFor(async () => (await p.api('GET', `/v1/objectives/${second.id}`)).body.status === 'paused', 'paused');
    // The pause is taken when it arrives: after the signal the workflow marks itself paused
    // without waiting for its recheck timer to fire first.
    const events = (await p.temporal.workflow.getHandle(second.id).fetchHistory()).events ?? [];
    const signalled = events.findIndex((e) => e.workflowExecutionSignaledEventAttributes?.signalName === 'pause');
    const marked = events.findIndex((e, i) => i > signalled && e.activityTaskScheduledEventAttributes?.activityType?.name === 'markObjective');
    assert.ok(signalled >= 0 && marked > signalled, 'the pause signal, then the paused mark');
    assert.deepEqual(
      events
        .slice(signalled, marked)
        .filter((e) => e.timerFiredEventAttributes)
        .map((e) => String(e.eventId)),
      [],
      'no recheck timer fired between the pause and the mark',
    );
    assert.equal((await waitForObjective(first.id)).status, 'completed');
    await new Promise((r) => setTimeout(r, 2000));
    const held = (await p.api('GET', `/v1/objectives/${second.id}`)).body;
    assert.equal(held.status, 'paused', 'a paused objective does not start');
    assert.deepEqual(held.machines, []);
    assert.equal((await p.api('POST', `/v1/objectives/${second.id}/resume`)).status, 202);
    const done = await waitForObjective(second.id);
    assert.equal(done.status, 'completed');
    assert.equal(done.machines.length, 1);
  });

  it('cancels a waiting objective, and a running one by terminating its machine', async () => {
    const projectId = await projectWithBudget(p, '5.00');
    const blocker = (await p.api('POST', `/v1/projects/${projectId}/objectives`, { title: 'blocker', command: 'sleep 600' })).body;
    const waiting = (await p.api('POST', `/v1/projects/${projectId}/objectives`, { title: 'waiting', command: 'true', dependsOn: [blocker.id] })).body;
    assert.equal((await p.api('POST', `/v1/objectives/${waiting.id}/cancel`)).status, 202);
    assert.equal((await waitForObjective(waiting.id)).status, 'cancelled');
    const running = await waitFor(async () => {
      const o = (await p.api('GET', `/v1/objectives/${blocker.id}`)).body;
      return o.status === 'running' && o.machines.length ? o : null;
    }, 'the blocker to run');
    await waitFor(async () => (await p.api('GET', `/v1/machines/${running.machines[0]}`)).body.status === 'running', 'its machine to run');
    assert.equal((await p.api('POST', `/v1/objectives/${blocker.id}/cancel`)).status, 202);
    assert.equal((await waitForObjective(blocker.id)).status, 'cancelled');
    const m = (await p.api('GET', `/v1/machines/${running.machines[0]}`)).body;
    assert.equal(m.status, 'terminated');
    assert.equal((await p.api('GET', `/v1/projects/${projectId}`)).body.budget.reserved, '0.00');
    assert.equal((await p.api('POST', `/v1/objectives/${blocker.id}/resume`)).status, 409);
  });

  it('links objectives after creation, refusing a link that would close a cycle (with its path)', async () => {
    const projectId = await projectWithBudget(p, '5.00');
    const a = (await p.api('POST', `/v1/projects/${projectId}/objectives`, { title: 'a', command: 'sleep 1' })).body;
    await p.api('POST', `/v1/objectives/${a.id}/pause`);
    const b = (await p.api('POST', `/v1/projects/${projectId}/objectives`, { title: 'b', command: 'true', dependsOn: [a.id] })).body;
    const cycle = await p.api('POST', `/v1/objectives/${a.id}/links`, { dependsOn: b.id });
    assert.equal(cycle.status, 422, JSON.stringify(cycle.body));
    assert.match(cycle.body.error.message, new RegExp(`cycle: ${a.id} → ${b.id} → ${a.id}`));
    const c = (await p.api('POST', `/v1/projects/${projectId}/objectives`, { title: 'c', command: 'sleep 2' })).body;
    const linked = await p.api('POST', `/v1/objectives/${b.id}/links`, { dependsOn: c.id });
    assert.equal(linked.status, 200, JSON.stringify(linked.body));
    assert.deepEqual([...linked.body.dependsOn].sort(), [a.id, c.id].sort());
    await p.api('POST', `/v1/objectives/${a.id}/resume`);
    const done = await waitForObjective(b.id);
    assert.equal(done.status, 'completed', JSON.stringify(done));
    const [ma, mb, mc] = await Promise.all([a, b, c].map(async (o) => (await p.api('GET', `/v1/machines/${(await waitForObjective(o.id)).machines[0]}`)).body));
    assert.ok(Date.parse(mb.startedAt) >= Date.parse(mc.endedAt), 'b waited for the dependency linked later');
    assert.ok(Date.parse(mb.startedAt) >= Date.parse(ma.endedAt));
    const late = await p.api('POST', `/v1/objectives/${b.id}/links`, { dependsOn: c.id });
    assert.equal(late.status, 409, 'an ended objective takes no more links');
  });
});

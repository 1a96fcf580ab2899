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
});

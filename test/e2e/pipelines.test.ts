import assert from 'node:assert/strict';
import { liveSandboxPids } from '../../activities/compute/local-sandbox.js';
import { projectWithBudget, startTestPlatform, waitFor, type TestPlatform } from '../support/platform.js';

const ENDED = ['completed', 'failed', 'cancelled'];

describe('pipelines: DAGs of machine steps', function () {
  this.timeout(300_000);
  let p: TestPlatform;
  before(async () => {
    p = await startTestPlatform({ label: 'pipelines' });
  });
  after(async () => {
    await p?.stop();
  });

  const waitForPipeline = (id: string) =>
    waitFor(
      async () => {
        const body = (await p.api('GET', `/v1/pipelines/${id}`)).body;
        return ENDED.includes(body.status) ? body : null;
      },
      `pipeline ${id}`,
      240_000,
    );

  it("runs a 6-step diamond in dependency order, independent steps in parallel, each step seeing its predecessors' files", async () => {
    const projectId = await projectWithBudget(p, '10.00');
    // Each step checks its predecessors' files are there, takes a moment, and leaves its own file.
    const step = (id: string, dependsOn: string[]) => ({
      id,
      type: 'shell',
      dependsOn,
      command: `${dependsOn.map((d) => `test -f ${d}.txt`).join(' && ') || 'true'} && sleep 2 && echo ${id} > ${id}.txt`,
    });
    const steps = [step('a', []), step('b', ['a']), step('c', ['a']), step('d', ['b']), step('e', ['c']), step('f', ['d', 'e'])];
    const start = await p.api('POST', '/v1/pipelines', { projectId, steps });
    assert.equal(start.status, 202, JSON.stringify(start.body));
    const done = await waitForPipeline(start.body.id);
    assert.equal(done.status, 'completed', JSON.stringify(done));
    const by = Object.fromEntries(done.steps.map((s: any) => [s.id, s]));
    for (const s of done.steps) assert.equal(s.status, 'completed', `${s.id}: ${s.error}`);
    const t = (id: string, k: 'startedAt' | 'endedAt') => Date.parse(by[id][k]);
    // Order: no step starts before every step it depends on has ended.
    for (const s of steps) for (const d of s.dependsOn) assert.ok(t(s.id, 'startedAt') >= t(d, 'endedAt'), `${s.id} started before ${d} ended`);
    // Parallelism: the independent branches overlap in time.
    assert.ok(t('b', 'startedAt') < t('c', 'endedAt') && t('c', 'startedAt') < t('b', 'endedAt'), 'b and c ran at the same time');
    assert.ok(t('d', 'startedAt') < t('e', 'endedAt') && t('e', 'startedAt') < t('d', 'endedAt'), 'd and e ran at the same time');
    // f started from a merge of d and e, so its checkpoint has every step's file.
    const files = (await p.api('GET', `/v1/checkpoints/${by.f.checkpointId}`)).body.files.map((f: any) => f.path).sort();
    assert.deepEqual(files, ['a.txt', 'b.txt', 'c.txt', 'd.txt', 'e.txt', 'f.txt']);
    const fMachine = (await p.api('GET', `/v1/machines/${by.f.machineId}`)).body;
    const mergeCp = (await p.api('GET', `/v1/checkpoints/${fMachine.parentCheckpointId}`)).body;
    assert.equal(mergeCp.kind, 'merge');
  });

  it('refuses a cycle at submit with the path that closes it, and writes nothing', async () => {
    const projectId = await projectWithBudget(p, '10.00');
    const before = Number((await p.db('pipelines').count({ n: '*' }))[0]!.n);
    const r = await p.api('POST', '/v1/pipelines', {
      projectId,
      steps: [
        { id: 'a', type: 'shell', command: 'true', dependsOn: ['c'] },
        { id: 'b', type: 'shell', command: 'true', dependsOn: ['a'] },
        { id: 'c', type: 'shell', command: 'true', dependsOn: ['b'] },
      ],
    });
    assert.equal(r.status, 422, JSON.stringify(r.body));
    assert.match(r.body.error.message, /cycle/);
    assert.match(r.body.error.message, /a → c → b → a|c → b → a → c|b → a → c → b/);
    const unknown = await p.api('POST', '/v1/pipelines', { projectId, steps: [{ id: 'a', type: 'shell', command: 'true', dependsOn: ['zz'] }] });
    assert.equal(unknown.status, 422);
    assert.match(unknown.body.error.message, /zz/);
    assert.equal(Number((await p.db('pipelines').count({ n: '*' }))[0]!.n), before);
  });

  it('skips the steps after a failed step and fails the pipeline', async () => {
    const projectId = await projectWithBudget(p, '10.00');
    const r = await p.api('POST', '/v1/pipelines', {
      projectId,
      steps: [
        { id: 'bad', type: 'shell', command: 'exit 4' },
        { id: 'after', type: 'shell', command: 'true', dependsOn: ['bad'] },
        { id: 'independent', type: 'shell', command: 'echo ok > ok.txt' },
      ],
    });
    const done = await waitForPipeline(r.body.id);
    assert.equal(done.status, 'failed');
    const by = Object.fromEntries(done.steps.map((s: any) => [s.id, s]));
    assert.equal(by.bad.status, 'failed');
    assert.equal(by.after.status, 'skipped');
    assert.equal(by.after.machineId, null);
    assert.equal(by.independent.status, 'completed');
  });

  it('cancelling terminates the running machines and releases their reservations', async () => {
    const projectId = await projectWithBudget(p, '10.00');
    const r = await p.api('POST', '/v1/pipelines', {
      projectId,
      steps: [
        { id: 'long', type: 'shell', command: 'echo working > w.txt; sleep 600' },
        { id: 'next', type: 'shell', command: 'true', dependsOn: ['long'] },
      ],
    });
    const running = await waitFor(async () => {
      const b = (await p.api('GET', `/v1/pipelines/${r.body.id}`)).body;
      const long = b.steps.find((s: any) => s.id === 'long');
      return long.machineId && liveSandboxPids(long.machineId).length ? long : null;
    }, 'the long step to run');
    assert.equal((await p.api('POST', `/v1/pipelines/${r.body.id}/cancel`)).status, 202);
    const done = await waitForPipeline(r.body.id);
    assert.equal(done.status, 'cancelled');
    const by = Object.fromEntries(done.steps.map((s: any) => [s.id, s]));
    assert.equal(by.long.status, 'cancelled');
    assert.equal(by.next.status, 'cancelled');
    const machine = await waitFor(async () => {
      const m = (await p.api('GET', `/v1/machines/${running.machineId}`)).body;
      return m.status === 'terminated' ? m : null;
    }, 'the machine to be terminated');
    assert.equal(machine.stopReason, 'terminated by request');
    assert.deepEqual(liveSandboxPids(running.machineId), []);
    const reservation = await p.db('reservations').where({ machine_id: running.machineId }).first();
    assert.equal(reservation.status, 'settled');
    assert.equal((await p.api('GET', `/v1/projects/${projectId}`)).body.budget.reserved, '0.00');
    assert.equal((await p.api('POST', `/v1/pipelines/${r.body.id}/cancel`)).status, 409);
  });
});

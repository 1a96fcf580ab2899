import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { createCacheActivities } from '../../activities/cache.js';
import { projectWithBudget, startTestPlatform, waitFor, waitForMachine, type TestPlatform } from '../support/platform.js';

/**
 * The machine result cache through the REST api, on the real platform (Temporal, Postgres, git,
 * bubblewrap). The commands write the id of the machine that ran them, so a file naming another
 * machine proves the command did not run again.
 */
describe('machine result cache (real Temporal, Postgres, git, bubblewrap)', function () {
  this.timeout(240_000);
  let p: TestPlatform;

  before(async () => {
    p = await startTestPlatform({ label: 'cache' });
  });
  after(async () => {
    await p?.stop();
  });

  const WHO = 'echo "$AUTOVIBE_MACHINE_ID" > who.txt';

  async function spawn(body: Record<string, unknown>): Promise<any> {
    const res = await p.api('POST', '/v1/machines', { type: 'shell', limits: { money: '0.05', minutes: 5 }, ...body });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    return waitForMachine(p, res.body.id);
  }
  const file = async (checkpointId: string, name: string) => (await p.api('GET', `/v1/checkpoints/${checkpointId}/files/${name}`)).body;
  const costsOf = async (projectId: string) => (await p.api('GET', `/v1/projects/${projectId}/costs`)).body;
  const audit = async (machineId: string) => (await p.api('GET', `/v1/audit?subjectId=${machineId}`)).body.items.map((a: any) => a.action);
  const ranSandbox = (machineId: string) => fs.existsSync(path.join(p.config.home, 'logs', `${machineId}.log`));

  it('reuses an identical completed run at zero cost, without a sandbox or a reservation, and shows it in the breakdown', async () => {
    const projectId = await projectWithBudget(p, '5.00');
    const root = (await p.api('GET', `/v1/projects/${projectId}`)).body.rootCheckpointId;

    const first = await spawn({ projectId, command: WHO, checkpointId: root });
    assert.equal(first.status, 'completed', JSON.stringify(first));
    assert.deepEqual(first.cache, { hit: false, outcome: 'miss' });
    assert.equal(await file(first.checkpoints[0], 'who.txt'), `${first.id}\n`);
    assert.ok(ranSandbox(first.id));
    const firstCost = first.cost.amount;
    assert.ok(Number(firstCost) > 0, firstCost);
    const budgetBefore = (await costsOf(projectId)).budget;

    const second = await spawn({ projectId, command: WHO, checkpointId: root });
    assert.equal(second.status, 'completed', JSON.stringify(second));
    assert.equal(second.exitCode, 0);
    assert.deepEqual(second.cache, { hit: true, outcome: 'hit', sourceMachineId: first.id, saved: { amount: firstCost, currency: 'USD' } });
    assert.equal(second.cost.amount, '0.00');
    // The command did not run again: the file still names the first machine, and no sandbox log exists.
    assert.equal(await file(second.checkpoints[0], 'who.txt'), `${first.id}\n`);
    assert.equal(ranSandbox(second.id), false);

    // Its own final checkpoint, a child of the checkpoint it started from, with the first run's commit and files.
    assert.equal(second.checkpoints.length, 1);
    const [cp1, cp2] = await Promise.all([first.checkpoints[0], second.checkpoints[0]].map(async (id) => (await p.api('GET', `/v1/checkpoints/${id}`)).body));
    assert.notEqual(cp2.id, cp1.id);
    assert.equal(cp2.machineId, second.id);
    assert.equal(cp2.parentId, root);
    assert.equal(cp2.kind, 'final');
    assert.equal(cp2.commit, cp1.commit);
    assert.equal(cp2.trigger, `cache hit from machine ${first.id}`);
    assert.deepEqual(cp2.files, cp1.files);

    // No money moved: no reservation, no compute cost; one zero cost event marks the hit.
    assert.equal((await p.db('reservations').where({ machine_id: second.id })).length, 0);
    const costs = await costsOf(projectId);
    const events = costs.items.filter((e: any) => e.machineId === second.id);
    assert.equal(events.length, 1, JSON.stringify(events));
    assert.equal(events[0].category, 'cache');
    assert.equal(events[0].amount, '0.00');
    assert.deepEqual(events[0].details, { cache: 'hit', sourceMachineId: first.id, sourceCheckpointId: cp1.id, saved: firstCost });
    assert.deepEqual(costs.budget, budgetBefore, 'the budget is unchanged by the hit');
    assert.deepEqual(costs.cache, { hits: 1, misses: 1, bypassed: 0, saved: { amount: firstCost, currency: 'USD' } });
    assert.equal(costs.totals.byCategory.cache.amount, '0.00');
    assert.equal(costs.totals.total.amount, firstCost);

    const actions = await audit(second.id);
    for (const a of ['machine.requested', 'machine.cache_hit', 'machine.completed']) assert.ok(actions.includes(a), `audit lacks ${a}: ${actions}`);
    for (const a of ['budget.reserved', 'machine.running', 'budget.settled']) assert.ok(!actions.includes(a), `audit has ${a}: ${actions}`);
    assert.equal((await p.api('GET', '/v1/audit/verify')).body.intact, true);

    // Opting out runs the command for real (and costs money).
    const third = await spawn({ projectId, command: WHO, checkpointId: root, cache: false });
    assert.equal(third.status, 'completed', JSON.stringify(third));
    assert.deepEqual(third.cache, { hit: false, outcome: 'bypass' });
    assert.equal(await file(third.checkpoints[0], 'who.txt'), `${third.id}\n`);
    assert.ok(ranSandbox(third.id));
    assert.ok(Number(third.cost.amount) > 0);
    assert.deepEqual((await costsOf(projectId)).cache, { hits: 1, misses: 1, bypassed: 1, saved: { amount: firstCost, currency: 'USD' } });
  });

  it("a hit carries the source machine's artifacts, linked to its own checkpoint, from the database", async () => {
    const projectId = await projectWithBudget(p, '5.00');
    const root = (await p.api('GET', `/v1/projects/${projectId}`)).body.rootCheckpointId;
    const first = await spawn({ projectId, command: WHO, checkpointId: root, artifacts: ['who.txt'] });
    assert.equal(first.status, 'completed', JSON.stringify(first));
    const second = await spawn({ projectId, command: WHO, checkpointId: root, artifacts: ['who.txt'] });
    assert.equal(second.cache.hit, true, JSON.stringify(second.cache));
    // No file of either is on this host: both are read from the database.
    fs.rmSync(p.config.artifactsDir, { recursive: true, force: true });
    const [a1, a2] = await Promise.all([first, second].map(async (m) => (await p.api('GET', `/v1/machines/${m.id}/artifacts`)).body.items));
    assert.deepEqual(
      a2.map((a: any) => [a.name, a.sha256, a.checkpointId]),
      [['who.txt', a1[0].sha256, second.checkpoints[0]]],
    );
    assert.equal((await p.api('GET', `/v1/machines/${second.id}/artifacts/who.txt`)).body, `${first.id}\n`);
    // One copy of the content however many machines hold it.
    assert.equal((await p.db('artifact_blobs').where({ sha256: a1[0].sha256 })).length, 1);
  });

  it('keys on the files of the checkpoint, not its id: other files or another command miss, the same files hit', async () => {
    const projectId = await projectWithBudget(p, '5.00');
    const root = (await p.api('GET', `/v1/projects/${projectId}`)).body.rootCheckpointId;
    const first = await spawn({ projectId, command: WHO, checkpointId: root });
    assert.equal(first.cache.outcome, 'miss');

    // Another command on the same checkpoint: a miss.
    const other = await spawn({ projectId, command: `${WHO} && echo other > other.txt`, checkpointId: root });
    assert.deepEqual(other.cache, { hit: false, outcome: 'miss' });
    assert.equal(await file(other.checkpoints[0], 'who.txt'), `${other.id}\n`);

    // The same command on a checkpoint with other files: a miss.
    const onTop = await spawn({ projectId, command: WHO, checkpointId: first.checkpoints[0] });
    assert.deepEqual(onTop.cache, { hit: false, outcome: 'miss' });
    assert.equal(await file(onTop.checkpoints[0], 'who.txt'), `${onTop.id}\n`);

    // A different checkpoint with exactly the root's files (a machine that changed nothing): a hit.
    const noop = await spawn({ projectId, command: 'true', checkpointId: root });
    assert.equal(noop.status, 'completed');
    assert.notEqual(noop.checkpoints[0], root);
    assert.deepEqual((await p.api('GET', `/v1/checkpoints/${noop.checkpoints[0]}`)).body.files, []);
    const same = await spawn({ projectId, command: WHO, checkpointId: noop.checkpoints[0] });
    assert.equal(same.cache.hit, true, JSON.stringify(same.cache));
    assert.equal(same.cache.sourceMachineId, first.id);
    assert.equal(await file(same.checkpoints[0], 'who.txt'), `${first.id}\n`);
    assert.equal((await p.api('GET', `/v1/checkpoints/${same.checkpoints[0]}`)).body.parentId, noop.checkpoints[0]);

    // Another project never sees this project's entries.
    const elsewhere = await projectWithBudget(p, '1.00');
    const foreign = await spawn({ projectId: elsewhere, command: WHO });
    assert.deepEqual(foreign.cache, { hit: false, outcome: 'miss' });
  });

  it('answers a repeated lookup (an activity retry) with the recorded outcome, writing nothing more', async () => {
    const projectId = await projectWithBudget(p, '5.00');
    const root = (await p.api('GET', `/v1/projects/${projectId}`)).body.rootCheckpointId;
    const first = await spawn({ projectId, command: WHO, checkpointId: root });
    const second = await spawn({ projectId, command: WHO, checkpointId: root });
    assert.equal(second.cache.hit, true);
    const { lookupMachineCache } = createCacheActivities({ db: p.db, config: p.config, log: p.log, temporal: p.temporal, providers: new Map() });
    const input = (m: any, checkpointId: string) => ({
      machineId: m.id,
      projectId,
      type: 'shell',
      model: null,
      prompt: null,
      command: WHO,
      profile: 'lightweight',
      parentCheckpointId: root,
      use: true,
      checkpointId,
    });
    const counts = async () =>
      Promise.all(['cost_events', 'checkpoints', 'machine_cache', 'audit_log'].map(async (t) => Number((await p.db(t).count({ n: '*' }))[0]!.n)));
    const before = await counts();
    // The first machine missed; now an entry exists, but its recorded decision stands.
    assert.deepEqual(await lookupMachineCache(input(first, 'checkpoint-retry-of-first')), { hit: false });
    const again = await lookupMachineCache(input(second, second.checkpoints[0]));
    assert.deepEqual(again, { hit: true, checkpointId: second.checkpoints[0], sourceMachineId: first.id, exitCode: 0, currency: 'USD' });
    assert.deepEqual(await counts(), before);
  });

  it('never caches a failed run', async () => {
    const projectId = await projectWithBudget(p, '5.00');
    const root = (await p.api('GET', `/v1/projects/${projectId}`)).body.rootCheckpointId;
    const command = 'echo "$AUTOVIBE_MACHINE_ID" >> tries.txt; exit 3';
    const a = await spawn({ projectId, command, checkpointId: root });
    const b = await spawn({ projectId, command, checkpointId: root });
    for (const m of [a, b]) {
      assert.equal(m.status, 'failed');
      assert.equal(m.exitCode, 3);
      assert.deepEqual(m.cache, { hit: false, outcome: 'miss' });
      assert.ok(ranSandbox(m.id));
      assert.equal(await file(m.checkpoints[0], 'tries.txt'), `${m.id}\n`);
    }
    assert.deepEqual((await costsOf(projectId)).cache, { hits: 0, misses: 2, bypassed: 0, saved: { amount: '0.00', currency: 'USD' } });
  });

  it('lets pipeline steps hit the cache or opt out of it', async () => {
    const projectId = await projectWithBudget(p, '5.00');
    const first = await spawn({ projectId, command: WHO });
    assert.equal(first.status, 'completed');
    const start = await p.api('POST', '/v1/pipelines', {
      projectId,
      checkpointId: first.parentCheckpointId,
      steps: [
        { id: 'cached', type: 'shell', command: WHO },
        { id: 'fresh', type: 'shell', command: WHO, cache: false },
      ],
    });
    assert.equal(start.status, 202, JSON.stringify(start.body));
    const done = await waitFor(
      async () => {
        const b = (await p.api('GET', `/v1/pipelines/${start.body.id}`)).body;
        return b.status !== 'running' ? b : null;
      },
      'pipeline to end',
      120_000,
    );
    assert.equal(done.status, 'completed', JSON.stringify(done));
    const step = Object.fromEntries(done.steps.map((s: any) => [s.id, s]));
    const cached = (await p.api('GET', `/v1/machines/${step.cached.machineId}`)).body;
    const fresh = (await p.api('GET', `/v1/machines/${step.fresh.machineId}`)).body;
    assert.deepEqual(cached.cache, { hit: true, outcome: 'hit', sourceMachineId: first.id, saved: { amount: first.cost.amount, currency: 'USD' } });
    assert.equal(step.cached.checkpointId, cached.checkpoints[0]);
    assert.equal(await file(step.cached.checkpointId, 'who.txt'), `${first.id}\n`);
    assert.deepEqual(fresh.cache, { hit: false, outcome: 'bypass' });
    assert.equal(await file(step.fresh.checkpointId, 'who.txt'), `${fresh.id}\n`);
  });

  it('refuses a cache flag that is not a boolean, naming the field', async () => {
    const projectId = await projectWithBudget(p, '1.00');
    const r = await p.api('POST', '/v1/machines', { projectId, type: 'shell', command: 'true', cache: 'no' });
    assert.equal(r.status, 400, JSON.stringify(r.body));
    assert.match(r.body.error.message, /cache/);
    const s = await p.api('POST', '/v1/pipelines', { projectId, steps: [{ id: 'a', type: 'shell', command: 'true', cache: 1 }] });
    assert.equal(s.status, 400, JSON.stringify(s.body));
    assert.match(s.body.error.message, /steps\.0\.cache/);
  });
});

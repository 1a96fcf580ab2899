import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { ChunkStore, getManifest } from '../../store/snapshots.js';
import { ensureSnapshotSchedules, snapshotScheduleIds } from '../../workers/schedules.js';
import { projectWithBudget, startTestPlatform, waitFor, waitForMachine, type TestPlatform } from '../support/platform.js';

/**
 * Checkpoint snapshots through the real platform: machines in bubblewrap write files git ignores,
 * their checkpoints' lifecycle workflows store and replicate them on the real Temporal server,
 * later machines get them back (from the replica when the primary region is lost), and the
 * scheduled backup and prune workflows run.
 */
describe('checkpoint snapshots end to end (real Temporal, Postgres, git, bubblewrap)', function () {
  this.timeout(240_000);
  let p: TestPlatform;

  before(async () => {
    p = await startTestPlatform({ label: 'snapshots' });
  });
  after(async () => {
    await p?.stop();
  });

  const machine = async (projectId: string, command: string, checkpointId?: string) => {
    const start = await p.api('POST', '/v1/machines', { projectId, type: 'shell', command, ...(checkpointId ? { checkpointId } : {}) });
    assert.equal(start.status, 202, JSON.stringify(start.body));
    return start.body.id as string;
  };
  const replicated = (checkpointId: string) =>
    waitFor(async () => {
      const { body } = await p.api('GET', `/v1/checkpoints/${checkpointId}`);
      return body.snapshot?.status === 'replicated' ? body : null;
    }, `snapshot of ${checkpointId} to be replicated`);

  // A workspace with files git does not keep: an ignored build output (mode 600) and an empty directory.
  const WRITE_IGNORED = [
    "printf 'build/\\n' > .gitignore",
    'mkdir -p build/cache empty-dir',
    'head -c 300000 /dev/urandom > build/cache/blob.bin',
    'chmod 600 build/cache/blob.bin',
    'sha256sum build/cache/blob.bin > expected.txt',
    'echo tracked > tracked.txt',
  ].join(' && ');
  const CHECK_RESTORED =
    'sha256sum build/cache/blob.bin > got.txt && stat -c %a build/cache/blob.bin > mode.txt && (test -d empty-dir && echo yes || echo no) > empty.txt';

  let projectId: string;
  let snapshotted: string;

  it('stores a machine checkpoint with its ignored files, and its lifecycle workflow replicates it', async () => {
    projectId = await projectWithBudget(p);
    const m = await waitForMachine(p, await machine(projectId, WRITE_IGNORED));
    assert.equal(m.status, 'completed', JSON.stringify(m));
    snapshotted = m.checkpoints[0];

    const lifecycle = p.temporal.workflow.getHandle(`snapshot-${snapshotted}`);
    const result = await lifecycle.result();
    assert.equal(result.status, 'replicated');
    assert.equal((await lifecycle.describe()).type, 'snapshotLifecycle');

    const cp = await replicated(snapshotted);
    // git keeps the tracked files only; the snapshot has the build output too.
    assert.ok(!cp.files.some((f: any) => f.path.startsWith('build/')), 'git ignores build/');
    assert.ok(cp.snapshot.bytes > 300_000, `snapshot bytes ${cp.snapshot.bytes}`);
    assert.ok(cp.snapshot.storedBytes > 300_000, 'random bytes do not compress, and nothing was stored before');
    assert.equal(cp.snapshot.source, 'workspace');
    assert.deepEqual(
      cp.snapshot.replicas.map((r: any) => [r.region, r.status]),
      [
        ['primary', 'stored'],
        ['replica', 'replicated'],
      ],
    );
    const manifest = (await getManifest(p.db, snapshotted))!;
    const blob = manifest.find((e) => e.path === 'build/cache/blob.bin');
    assert.ok(blob && blob.type === 'file' && blob.mode === 0o600, JSON.stringify(blob));
    assert.ok(manifest.some((e) => e.path === 'empty-dir' && e.type === 'dir'));
    // The api serves the ignored file from the snapshot, byte-identical.
    const res = await fetch(`${p.apiUrl}/v1/checkpoints/${snapshotted}/files/build/cache/blob.bin`, { headers: { authorization: `Bearer ${p.adminKey}` } });
    assert.equal(res.status, 200);
    const served = crypto
      .createHash('sha256')
      .update(Buffer.from(await res.arrayBuffer()))
      .digest('hex');
    const expected = (await p.api('GET', `/v1/checkpoints/${snapshotted}/files/expected.txt`)).body.split(' ')[0];
    assert.equal(served, expected);
    assert.equal((await p.api('GET', `/v1/checkpoints/${snapshotted}/files/build/nope.bin`)).status, 404);
    const audit = (await p.api('GET', `/v1/audit?subjectId=${snapshotted}`)).body.items.map((a: any) => a.action);
    assert.ok(audit.includes('snapshot.replicated'), `audit: ${audit}`);
  });

  it('gives a machine started from the checkpoint its files beyond git, byte-identical with their modes', async () => {
    const m = await waitForMachine(p, await machine(projectId, CHECK_RESTORED, snapshotted));
    assert.equal(m.status, 'completed', JSON.stringify(m));
    const read = async (f: string) => (await p.api('GET', `/v1/checkpoints/${m.checkpoints[0]}/files/${f}`)).body;
    assert.equal(await read('got.txt'), await read('expected.txt'));
    assert.equal((await read('mode.txt')).trim(), '600');
    assert.equal((await read('empty.txt')).trim(), 'yes');
    // The child's snapshot reuses every chunk of the blob: it stores only the new small files.
    const child = await replicated(m.checkpoints[0]);
    assert.ok(child.snapshot.bytes > 300_000);
    assert.ok(child.snapshot.storedBytes < 5_000, `child stored ${child.snapshot.storedBytes} bytes`);
  });

  it('restores from the replica region when the primary region is gone', async () => {
    fs.rmSync(p.config.snapshotRegions.primary, { recursive: true, force: true });
    const m = await waitForMachine(p, await machine(projectId, CHECK_RESTORED, snapshotted));
    assert.equal(m.status, 'completed', JSON.stringify(m));
    const read = async (f: string) => (await p.api('GET', `/v1/checkpoints/${m.checkpoints[0]}/files/${f}`)).body;
    assert.equal(await read('got.txt'), await read('expected.txt'));
    assert.equal((await read('mode.txt')).trim(), '600');
  });

  it('creates the daily backup and prune schedules; a backup run snapshots checkpoints made without a machine', async () => {
    const ids = snapshotScheduleIds(p.config);
    for (const [id, type] of [
      [ids.backup, 'snapshotBackup'],
      [ids.prune, 'snapshotPrune'],
    ] as const) {
      const d = await p.temporal.schedule.getHandle(id).describe();
      assert.equal(d.action.type, 'startWorkflow');
      assert.equal(d.action.type === 'startWorkflow' && d.action.workflowType, type);
      assert.equal(d.action.type === 'startWorkflow' && d.action.taskQueue, p.config.taskQueue);
      assert.equal(d.spec.calendars?.length, 1);
    }
    assert.deepEqual(await ensureSnapshotSchedules(p.temporal, p.config), [], 'a second start creates nothing');
    // The project's root checkpoint was made at project creation: only the backup stores it.
    const root = (await p.api('GET', `/v1/projects/${projectId}`)).body.rootCheckpointId;
    assert.equal((await p.api('GET', `/v1/checkpoints/${root}`)).body.snapshot, null);
    const handle = p.temporal.schedule.getHandle(ids.backup);
    await handle.trigger();
    const cp = await replicated(root);
    assert.equal(cp.snapshot.source, 'commit');
    const recent = await waitFor(async () => (await handle.describe()).info.recentActions[0], 'the backup run');
    const run = p.temporal.workflow.getHandle(recent.action.workflow.workflowId, recent.action.workflow.firstExecutionRunId);
    const result = await run.result();
    assert.ok(result.replicated >= 1, JSON.stringify(result));
    assert.deepEqual(result.failed, []);
  });

  it('prunes an old unreferenced branch and keeps the root, a milestone, a live machine parent and recent work', async () => {
    const project = await projectWithBudget(p);
    const root = (await p.api('GET', `/v1/projects/${project}`)).body.rootCheckpointId;
    // Without checkpointId a machine starts from the latest checkpoint: name the branch point.
    const make = async (command: string, from: string = root) => {
      const m = await waitForMachine(p, await machine(project, command, from));
      assert.equal(m.status, 'completed', JSON.stringify(m));
      await replicated(m.checkpoints[0]);
      return m.checkpoints[0] as string;
    };
    const dead = await make('head -c 50000 /dev/urandom > dead.bin');
    const mile = await make('head -c 50000 /dev/urandom > mile.bin');
    const parent = await make('head -c 50000 /dev/urandom > parent.bin');
    const recent = await make('echo recent > recent.txt', mile);
    const deadChunks = (await getManifest(p.db, dead))!.flatMap((e) => (e.type === 'file' && e.path === 'dead.bin' ? e.chunks : []));
    assert.ok(deadChunks.length > 0);

    assert.equal((await p.api('PUT', `/v1/checkpoints/${mile}/milestone`, { milestone: true })).status, 200);
    const bad = await p.api('PUT', `/v1/checkpoints/${mile}/milestone`, { milestone: 'yes' });
    assert.equal(bad.status, 400);
    assert.match(JSON.stringify(bad.body.error), /milestone/);
    // A year old: beyond every tier of the grid.
    await p
      .db('checkpoints')
      .whereIn('id', [root, dead, mile, parent])
      .update({ created_at: p.db.raw("now() - interval '400 days'") });
    // A live machine starts from `parent` and is still running when the prune runs.
    const live = await machine(project, 'sleep 120', parent);
    await waitFor(async () => (await p.api('GET', `/v1/machines/${live}`)).body.status === 'running', 'the live machine to run');

    const result = await p.temporal.workflow.execute('snapshotPrune', {
      workflowId: `snapshot-prune-test-${project}`,
      taskQueue: p.config.taskQueue,
      args: [{ graceMs: 0 }],
    });
    assert.ok(result.pruned.includes(dead), JSON.stringify(result));
    for (const kept of [root, mile, parent, recent, snapshotted]) assert.ok(!result.pruned.includes(kept), `${kept} must be kept: ${JSON.stringify(result)}`);
    assert.ok(result.freedChunks >= deadChunks.length, `freed ${result.freedChunks} of ${deadChunks.length}: ${JSON.stringify(result)}`);

    const deadView = (await p.api('GET', `/v1/checkpoints/${dead}`)).body;
    assert.equal(deadView.snapshot.status, 'pruned');
    assert.ok(deadView.snapshot.replicas.every((r: any) => r.status === 'deleted'));
    for (const h of deadChunks) {
      assert.equal(await new ChunkStore(p.config.snapshotRegions.primary).has(h), false);
      assert.equal(await new ChunkStore(p.config.snapshotRegions.replica).has(h), false);
    }
    for (const kept of [mile, parent, recent]) assert.equal((await p.api('GET', `/v1/checkpoints/${kept}`)).body.snapshot.status, 'replicated');
    assert.equal((await p.api('GET', `/v1/checkpoints/${mile}`)).body.milestone, true);
    // The pruned checkpoint is still a git commit: a machine can still start from it (tracked files only).
    assert.equal((await p.api('POST', `/v1/machines/${live}/terminate`)).status, 202);
    await waitForMachine(p, live);
    const fromDead = await waitForMachine(p, await machine(project, 'test -f dead.bin', dead));
    assert.equal(fromDead.status, 'completed');
  });
});

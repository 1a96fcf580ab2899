import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { startMoto, type MotoServer } from '../../scripts/services/moto.js';
import { S3ObjectStore } from '../../store/object-store.js';
import { snapshotStores } from '../../store/shared-storage.js';
import { restoreSnapshot } from '../../store/snapshots.js';
import { projectWithBudget, startTestPlatform, waitFor, waitForMachine, type TestPlatform } from '../support/platform.js';

/**
 * Two hosts, each with its own AUTOVIBE_HOME, sharing one database and one bucket on a real local
 * S3 (moto): host A makes checkpoints of a project; host B, whose data directory starts empty and
 * which cannot see A's, serves their files and diff, restores their snapshots byte-identical and
 * starts a machine from one, fetching the repository from the bucket.
 */
describe('object store shared by two hosts (moto S3, real Temporal, Postgres, git, bubblewrap)', function () {
  this.timeout(300_000);
  let moto: MotoServer;
  let a: TestPlatform | undefined;
  let b: TestPlatform | undefined;
  let bucket: S3ObjectStore;
  let env: Record<string, string>;
  let goneHome: string | undefined;
  const saved = { id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY };

  before(async () => {
    moto = await startMoto();
    process.env.AWS_ACCESS_KEY_ID = moto.credentials.accessKeyId;
    process.env.AWS_SECRET_ACCESS_KEY = moto.credentials.secretAccessKey;
    bucket = new S3ObjectStore({ url: 's3://autovibe-shared/e2e', region: 'us-east-1', endpoint: moto.endpoint });
    await bucket.s3.send(new CreateBucketCommand({ Bucket: bucket.bucket }));
    env = { AUTOVIBE_OBJECT_STORE: 's3://autovibe-shared/e2e', AUTOVIBE_OBJECT_STORE_S3_ENDPOINT: moto.endpoint, AUTOVIBE_OBJECT_STORE_S3_REGION: 'us-east-1' };
    a = await startTestPlatform({ label: 'objstore-a', env });
  });
  after(async () => {
    await b?.stop();
    // A halted host is stopped already: only its data directory is left to remove.
    if (goneHome) fs.rmSync(goneHome, { recursive: true, force: true });
    else await a?.stop();
    for (const [k, v] of [
      ['AWS_ACCESS_KEY_ID', saved.id],
      ['AWS_SECRET_ACCESS_KEY', saved.secret],
    ] as const) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    await moto?.stop();
  });

  const machine = async (p: TestPlatform, projectId: string, command: string, checkpointId: string) => {
    const start = await p.api('POST', '/v1/machines', { projectId, type: 'shell', command, checkpointId });
    assert.equal(start.status, 202, JSON.stringify(start.body));
    const m = await waitForMachine(p, start.body.id);
    assert.equal(m.status, 'completed', JSON.stringify(m));
    return m.checkpoints.at(-1) as string;
  };
  const stored = (p: TestPlatform, checkpointId: string) =>
    waitFor(async () => {
      const { body } = await p.api('GET', `/v1/checkpoints/${checkpointId}`);
      return body.snapshot ? body : null;
    }, `snapshot of ${checkpointId}`);
  const keys = async (prefix: string) => {
    const out: string[] = [];
    for await (const o of bucket.list(prefix)) out.push(o.key);
    return out;
  };
  const served = async (p: TestPlatform, checkpointId: string, file: string) => {
    const res = await fetch(`${p.apiUrl}/v1/checkpoints/${checkpointId}/files/${file}`, { headers: { authorization: `Bearer ${p.adminKey}` } });
    assert.equal(res.status, 200, `${file} of ${checkpointId} on ${p.apiUrl}`);
    return Buffer.from(await res.arrayBuffer());
  };
  const sha = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');

  it('host A writes every checkpoint as a git bundle and its snapshot chunks to the bucket; host B, with an empty data directory, serves their files, diff and snapshots and starts a machine from them', async () => {
    const projectId = await projectWithBudget(a!);
    const root = (await a!.api('GET', `/v1/projects/${projectId}`)).body.rootCheckpointId as string;
    const first = await machine(
      a!,
      projectId,
      [
        "printf 'build/\\n' > .gitignore",
        'mkdir -p build/cache',
        'head -c 300000 /dev/urandom > build/cache/blob.bin',
        'chmod 600 build/cache/blob.bin',
        'sha256sum build/cache/blob.bin > expected.txt',
        'echo one > notes.txt',
      ].join(' && '),
      root,
    );
    const second = await machine(a!, projectId, 'echo two >> notes.txt && echo new > added.txt', first);
    await stored(a!, first);
    await stored(a!, second);

    // The canonical copies: one bundle per checkpoint, the chunks and manifests, all in the bucket.
    const bundles = await keys(`repos/${projectId}/checkpoints/`);
    for (const c of [root, first, second]) assert.ok(bundles.includes(`repos/${projectId}/checkpoints/${c}.bundle`), `bundle of ${c} in ${bundles}`);
    assert.ok((await keys('snapshots/chunks/')).length > 0);
    assert.ok((await keys('snapshots/manifests/')).includes(`snapshots/manifests/${first}.json`));

    const diffOnA = (await a!.api('GET', `/v1/checkpoints/${first}/diff/${second}`)).body;
    const blobOnA = await served(a!, first, 'build/cache/blob.bin');

    // Host A goes away, its data directory with it; host B starts with an empty one.
    await a!.halt();
    fs.renameSync(a!.home, `${a!.home}-gone`);
    goneHome = `${a!.home}-gone`;
    b = await startTestPlatform({
      label: 'objstore-b',
      env: { ...env, DATABASE_URL: a!.databaseUrl!, TEMPORAL_TASK_QUEUE: a!.config.taskQueue },
    });
    assert.equal(fs.existsSync(path.join(b.config.projectsDir, `${projectId}.git`)), false);

    // Reads in the api: files from git and from the snapshot, and the diff.
    assert.equal((await served(b, second, 'notes.txt')).toString(), 'one\ntwo\n');
    assert.deepEqual((await b.api('GET', `/v1/checkpoints/${first}/diff/${second}`)).body, diffOnA);
    const blobOnB = await served(b, first, 'build/cache/blob.bin');
    assert.deepEqual(blobOnB, blobOnA);
    assert.equal(sha(blobOnB), (await served(b, first, 'expected.txt')).toString().split(' ')[0]);
    const refs = execFileSync('git', ['--git-dir', path.join(b.config.projectsDir, `${projectId}.git`), 'for-each-ref', '--format=%(refname)']).toString();
    for (const c of [root, first, second]) assert.ok(refs.includes(`refs/checkpoints/${c}`), `host B's repository has ${c}`);

    // A snapshot restored on B is byte-identical, modes included.
    const target = fs.mkdtempSync(path.join(os.tmpdir(), 'objstore-restore-'));
    try {
      const restored = await restoreSnapshot(b.db, snapshotStores(b.config), first, target);
      assert.ok(restored && restored.chunksFrom.primary > 0, JSON.stringify(restored));
      assert.deepEqual(fs.readFileSync(path.join(target, 'build', 'cache', 'blob.bin')), blobOnA);
      assert.equal(fs.statSync(path.join(target, 'build', 'cache', 'blob.bin')).mode & 0o777, 0o600);
    } finally {
      fs.rmSync(target, { recursive: true, force: true });
    }

    // A machine on B starts from A's checkpoint: git's files and the snapshot's, byte-identical.
    const third = await machine(
      b,
      projectId,
      'sha256sum build/cache/blob.bin > got.txt && stat -c %a build/cache/blob.bin > mode.txt && cat notes.txt added.txt > seen.txt',
      second,
    );
    assert.equal((await served(b, third, 'got.txt')).toString(), (await served(b, first, 'expected.txt')).toString());
    assert.equal((await served(b, third, 'mode.txt')).toString().trim(), '600');
    assert.equal((await served(b, third, 'seen.txt')).toString(), 'one\ntwo\nnew\n');
    // B's own checkpoint went to the bucket too, ready for any other host.
    assert.ok((await keys(`repos/${projectId}/checkpoints/`)).includes(`repos/${projectId}/checkpoints/${third}.bundle`));
  });
});

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../config/index.js';
import { createBackupActivities } from '../../activities/backups.js';
import { recordCheckpoint } from '../../store/checkpoints.js';
import { createDb, migrateLatest, type Db } from '../../store/db.js';
import { commitWithBlobs, initProjectRepo, mergeCommits, readFileAt, writeBlob } from '../../store/git.js';
import { DirObjectStore, objectStoreUnder } from '../../store/object-store.js';
import { insertProject } from '../../store/projects.js';
import { RepoMirror } from '../../store/repo-mirror.js';
import { freshDatabase } from '../support/platform.js';

/**
 * Repositories through the shared store (a directory here; the e2e test uses moto's S3): three
 * hosts with their own projects directories record checkpoints of one project at once, merge them,
 * and a host that never saw the project fetches all of it.
 */
describe('repository mirror: checkpoints as git bundles in a shared store (real git, Postgres)', function () {
  this.timeout(60_000);
  let db: Db;
  let dir: string;
  let shared: DirObjectStore;
  // Laid out as AUTOVIBE_OBJECT_STORE=dir:<dir>/shared lays it out (repositories under repos/).
  const host = (name: string) => new RepoMirror(objectStoreUnder(shared, 'repos'), path.join(dir, name, 'projects'));
  const projectId = `project-${crypto.randomUUID()}`;
  const at = new Date('2026-12-07T00:00:00Z');

  before(async () => {
    db = await createDb({ databaseUrl: await freshDatabase('repo-mirror') });
    await migrateLatest(db);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'repo-mirror-'));
    shared = new DirObjectStore(path.join(dir, 'shared'));
  });
  after(async () => {
    await db?.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const commitFile = async (repo: string, parent: string, file: string, text: string) =>
    commitWithBlobs(repo, parent, [{ path: file, oid: await writeBlob(repo, Buffer.from(text)), mode: '100644' }], file, at);
  const record = (mirror: RepoMirror, repo: string, id: string, commit: string, parentId: string | null, mergeParentId?: string) =>
    recordCheckpoint(
      db,
      repo,
      {
        id,
        projectId,
        parentId,
        ...(mergeParentId ? { mergeParentId } : {}),
        machineId: null,
        commit,
        kind: parentId ? (mergeParentId ? 'merge' : 'turn') : 'root',
        trigger: 'test',
      },
      {},
      mirror,
    );

  it('keeps every host’s checkpoints, made at once on divergent lines, merged, and fetched whole by a host that never saw the project', async () => {
    const a = host('a');
    const b = host('b');
    const repoA = a.localPath(projectId);
    const root = await initProjectRepo(repoA, at);
    await insertProject(db, {
      id: projectId,
      name: 'p',
      repoUrl: null,
      repoPath: repoA,
      currency: 'USD',
      greediness: 0.5,
      defaultMachineMoney: 0n,
      rootCheckpointId: null,
      limitPolicy: 'stop',
      pauseMinutes: 60,
      createdBy: 'test',
    });
    await record(a, repoA, 'cp-root', root, null);

    // Host B has nothing yet: it fetches the root, then both hosts record a checkpoint at once.
    const repoB = await b.hydrate(db, projectId, [root]);
    assert.notEqual(repoB, repoA);
    const [ca, cb] = await Promise.all([commitFile(repoA, root, 'a.txt', 'from a\n'), commitFile(repoB, root, 'b.txt', 'from b\n')]);
    await Promise.all([record(a, repoA, 'cp-a', ca, 'cp-root'), record(b, repoB, 'cp-b', cb, 'cp-root')]);

    // A merges B's line into its own: it fetches cp-b first.
    await a.hydrate(db, projectId, [cb]);
    const merged = await mergeCommits(repoA, [ca, cb], 'merge', at);
    await record(a, repoA, 'cp-merge', merged, 'cp-a', 'cp-b');
    // A checkpoint whose commit its parent already has needs no objects of its own.
    await record(a, repoA, 'cp-same', merged, 'cp-merge');
    assert.equal(await a.objects.head(a.bundleKey(projectId, 'cp-same')), null);

    // Host C never saw the project: it gets every checkpoint and reads their files.
    const c = host('c');
    const repoC = await c.hydrate(db, projectId);
    for (const id of ['cp-root', 'cp-a', 'cp-b', 'cp-merge', 'cp-same'])
      assert.ok(fs.existsSync(path.join(repoC, 'refs', 'checkpoints', id)), `${id} on host C`);
    assert.equal((await readFileAt(repoC, merged, 'a.txt'))?.toString(), 'from a\n');
    assert.equal((await readFileAt(repoC, merged, 'b.txt'))?.toString(), 'from b\n');
    // The merge's bundle carries only what neither parent has: here, the merge commit itself.
    const mergeBundle = await a.objects.head(a.bundleKey(projectId, 'cp-merge'));
    const rootBundle = await a.objects.head(a.bundleKey(projectId, 'cp-root'));
    assert.ok(mergeBundle && rootBundle);

    // Host B catches up incrementally: A's checkpoints come, its own stay.
    await b.hydrate(db, projectId);
    assert.equal((await readFileAt(repoB, merged, 'a.txt'))?.toString(), 'from a\n');
  });

  it('says which commit no bundle holds when a host needs one the store does not have', async () => {
    const a = host('a');
    const repoA = a.localPath(projectId);
    const orphan = await commitFile(repoA, (await db('checkpoints').where({ id: 'cp-root' }).first()).commit, 'x.txt', 'x\n');
    // Recorded without the mirror: its row exists, its bundle does not.
    await recordCheckpoint(db, repoA, { id: 'cp-orphan', projectId, parentId: 'cp-root', machineId: null, commit: orphan, kind: 'turn', trigger: 'test' });
    await assert.rejects(host('d').hydrate(db, projectId, [orphan]), new RegExp(`commit ${orphan} of project ${projectId} is in no bundle`));
    // The rest of the project still arrives.
    const repoD = host('d').localPath(projectId);
    assert.ok(fs.existsSync(path.join(repoD, 'refs', 'checkpoints', 'cp-merge')));
    // The host that has it writes what the store lacks (npm run publish-repos); then any host gets it.
    assert.equal(await a.publishMissing(db, projectId), 1);
    assert.equal(await a.publishMissing(db, projectId), 0);
    assert.equal((await readFileAt(await host('d').hydrate(db, projectId, [orphan]), orphan, 'x.txt'))?.toString(), 'x\n');
  });

  it('a host backing up the platform first fetches the repositories it lacks, so the backup has every project', async () => {
    const home = path.join(dir, 'e');
    const config = loadConfig({ AUTOVIBE_HOME: home, AUTOVIBE_OBJECT_STORE: `dir:${path.join(dir, 'shared')}` });
    assert.equal(fs.existsSync(path.join(config.projectsDir, `${projectId}.git`)), false);
    const backup = createBackupActivities({ db, config });
    await backup.takePlatformBackup({ id: 'backup-20261207T000000Z-mirror', at: at.toISOString() });
    const manifest = JSON.parse(fs.readFileSync(path.join(config.backups.dir, 'backup-20261207T000000Z-mirror', 'manifest.json'), 'utf8'));
    const repo = manifest.repositories.find((r: { name: string }) => r.name === `${projectId}.git`);
    assert.ok(repo?.file, JSON.stringify(manifest.repositories));
    assert.ok(fs.existsSync(path.join(config.projectsDir, `${projectId}.git`, 'refs', 'checkpoints', 'cp-merge')));
  });
});

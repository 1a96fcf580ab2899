import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createDb, migrateLatest, type Db } from '../../store/db.js';
import {
  ChunkStore,
  collectGarbage,
  getManifest,
  getSnapshot,
  pruneSnapshot,
  replicateSnapshot,
  retentionInputs,
  restoreSnapshot,
  scanTree,
  SnapshotCorruptError,
  storeCommitSnapshot,
  storeSnapshot,
  storeTree,
  TreeMemory,
  type Regions,
} from '../../store/snapshots.js';
import { checkoutWorkspace, initProjectRepo, snapshotWorkspace } from '../../store/git.js';
import { freshDatabase } from '../support/platform.js';

/** path → "type mode sha256|target" for every entry: what byte-identical means here. */
function treeFingerprint(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string) => {
    for (const name of fs.readdirSync(path.join(root, rel)).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      if (r === '.git') continue;
      const abs = path.join(root, r);
      const st = fs.lstatSync(abs);
      const mode = (st.mode & 0o7777).toString(8);
      if (st.isSymbolicLink()) out[r] = `link ${fs.readlinkSync(abs)}`;
      else if (st.isDirectory()) {
        out[r] = `dir ${mode}`;
        walk(r);
      } else out[r] = `file ${mode} ${crypto.createHash('sha256').update(fs.readFileSync(abs)).digest('hex')}`;
    }
  };
  walk('');
  return out;
}

/** Text that compresses well and changes realistically: source-like lines. */
function sourceFile(seed: number, lines: number): string {
  const out: string[] = [];
  for (let i = 0; i < lines; i++) out.push(`export function f${seed}_${i}(x: number): number { return x * ${(seed * 31 + i) % 97} + ${i}; }`);
  return out.join('\n') + '\n';
}

function write(root: string, rel: string, content: string | Buffer, mode = 0o644) {
  const abs = path.join(root, rel);
  fs.mkdirSync(path.dirname(abs), { recursive: true });
  fs.writeFileSync(abs, content);
  fs.chmodSync(abs, mode);
}

describe('snapshot chunk store (real PostgreSQL, real files)', function () {
  this.timeout(60_000);
  let db: Db;
  let tmp: string;
  let regions: Regions;
  const projectId = 'project-snapshots-test';
  let n = 0;

  /** A checkpoint row (snapshots reference checkpoints). */
  async function checkpoint(parentId: string | null = null, at = new Date()): Promise<string> {
    const id = `checkpoint-${++n}-${crypto.randomBytes(3).toString('hex')}`;
    await db('checkpoints').insert({ id, project_id: projectId, parent_id: parentId, commit: 'c0ffee', kind: 'final', trigger: 'test', created_at: at });
    return id;
  }

  before(async () => {
    db = await createDb({ databaseUrl: await freshDatabase('snapshots') });
    await migrateLatest(db);
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'autovibe-snapshots-'));
    regions = { primary: path.join(tmp, 'region-a'), replica: path.join(tmp, 'region-b') };
    await db('projects').insert({
      id: projectId,
      name: 'p',
      repo_path: path.join(tmp, 'repo.git'),
      currency: 'USD',
      default_machine_money: '0.5',
      created_by: 'test',
    });
  });
  after(async () => {
    await db?.destroy();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('stores identical files once, compresses, and a small edit adds few bytes', async () => {
    const ws = path.join(tmp, 'ws-dedup');
    const big = sourceFile(1, 3000); // ~250 kB of compressible text
    write(ws, 'src/a.ts', big);
    write(ws, 'src/copy-of-a.ts', big);
    write(ws, 'vendor/again/a.ts', big);
    const first = await storeSnapshot(db, regions, { checkpointId: await checkpoint(), projectId, root: ws, source: 'workspace' });
    assert.equal(first.files, 3);
    assert.equal(first.bytes, 3 * big.length);
    const chunkFiles = fs.readdirSync(path.join(regions.primary, 'chunks'), { recursive: true }).filter((f) => String(f).endsWith('.zst'));
    assert.equal(chunkFiles.length, first.chunks, 'one file per distinct chunk');
    const oneCopyChunks = new Set((await getManifest(db, first.checkpointId))!.flatMap((e) => (e.type === 'file' && e.path === 'src/a.ts' ? e.chunks : [])));
    assert.equal(first.chunks, oneCopyChunks.size, 'the two copies add no chunk');
    assert.ok(first.storedBytes < big.length / 3, `compressed: ${first.storedBytes} bytes stored for ${big.length} bytes of one copy`);
    const rows = await db('snapshot_chunks').select('size', 'stored_size');
    assert.equal(rows.length, first.chunks);
    assert.ok(
      rows.every((r) => r.stored_size < r.size),
      'every chunk is stored compressed',
    );

    // The child checkpoint: one line changed in the middle of one copy.
    const lines = big.split('\n');
    lines[1500] = '// a small edit';
    write(ws, 'src/a.ts', lines.join('\n'));
    const second = await storeSnapshot(db, regions, { checkpointId: await checkpoint(first.checkpointId), projectId, root: ws, source: 'workspace' });
    assert.equal(second.bytes, first.bytes - big.length + lines.join('\n').length);
    assert.ok(second.storedBytes > 0 && second.storedBytes < 8_000, `the edit stored ${second.storedBytes} bytes`);
    assert.ok(second.storedBytes * 5 < first.storedBytes && second.storedBytes * 100 < big.length, `${second.storedBytes} vs ${first.storedBytes}`);

    // Storing the same checkpoint again changes nothing.
    const again = await storeSnapshot(db, regions, { checkpointId: second.checkpointId, projectId, root: ws, source: 'workspace' });
    assert.deepEqual(again, second);
  });

  it('reads only files changed since the last snapshot of the workspace; a same-size edit with its old mtime put back is still seen', async () => {
    const ws = path.join(tmp, 'ws-memory');
    write(ws, 'a.txt', 'aaaa');
    write(ws, 'b.txt', 'bbbb');
    write(ws, 'dir/c.txt', sourceFile(7, 200));
    const a = path.join(ws, 'a.txt');
    const longAgo = new Date('2026-01-01T00:00:00Z'); // a whole second: utimes puts it back exactly
    fs.utimesSync(a, longAgo, longAgo);
    // Files changed within the timestamp granularity of a scan are never trusted: age them first.
    await new Promise((r) => setTimeout(r, 2_100));
    const store = new ChunkStore(path.join(tmp, 'memory-store'));
    const memory = new TreeMemory();
    const first = await storeTree(ws, store, undefined, memory);
    const byPath = (m: typeof first.manifest) => new Map(m.map((e) => [e.path, e]));
    for (const e of await scanTree(ws)) {
      if (e.type === 'file') assert.equal(memory.unchanged(ws, e), byPath(first.manifest).get(e.path), `${e.path} is known unchanged`);
    }
    assert.equal(memory.unchanged(path.join(tmp, 'another-ws'), (await scanTree(ws))[0]!), null, 'another workspace has its own memory');

    // Same size, same mtime (put back), new content: the ctime still tells.
    const before = fs.statSync(a);
    fs.writeFileSync(a, 'AAAA');
    fs.utimesSync(a, longAgo, longAgo);
    assert.equal(fs.statSync(a).mtimeMs, before.mtimeMs);
    assert.equal(fs.statSync(a).size, before.size);
    const second = await storeTree(ws, store, undefined, memory);
    const entries = byPath(second.manifest);
    const sha = (x: string) => crypto.createHash('sha256').update(x).digest('hex');
    assert.equal((entries.get('a.txt') as { sha256: string }).sha256, sha('AAAA'));
    // Unchanged files are the very entries of the last snapshot: taken over, not read again.
    assert.equal(entries.get('b.txt'), byPath(first.manifest).get('b.txt'));
    assert.equal(entries.get('dir/c.txt'), byPath(first.manifest).get('dir/c.txt'));
    assert.equal(second.bytes, first.bytes);

    // Written just before a scan: racily clean, so the next snapshot reads it again.
    write(ws, 'b.txt', 'BBBB');
    await storeTree(ws, store, undefined, memory);
    const b = (await scanTree(ws)).find((e) => e.path === 'b.txt')!;
    assert.equal(memory.unchanged(ws, b), null);
    const third = await storeTree(ws, store, undefined, memory);
    assert.equal((byPath(third.manifest).get('b.txt') as { sha256: string }).sha256, sha('BBBB'));

    // A chunk gone from the store (collected) makes the file be read and stored again.
    const cChunks = (byPath(third.manifest).get('dir/c.txt') as { chunks: string[] }).chunks;
    await store.remove(cChunks[0]!);
    await storeTree(ws, store, undefined, memory);
    assert.ok(await store.has(cChunks[0]!), 'the missing chunk is written again');
  });

  it('restores byte-identical files with their modes, symlinks and empty directories, removing strays', async () => {
    const ws = path.join(tmp, 'ws-modes');
    write(ws, 'run.sh', '#!/bin/sh\necho hi\n', 0o755);
    write(ws, 'secret.env', 'TOKEN=abc\n', 0o600);
    write(ws, 'node_modules/pkg/index.js', 'module.exports = 1;\n');
    write(ws, 'build/out.bin', crypto.randomBytes(200_000)); // incompressible, several chunks
    write(ws, 'empty.txt', '');
    fs.mkdirSync(path.join(ws, 'logs/empty'), { recursive: true });
    fs.chmodSync(path.join(ws, 'logs'), 0o750);
    fs.symlinkSync('run.sh', path.join(ws, 'link-to-run'));
    fs.writeFileSync(path.join(ws, '.git'), 'gitdir: /elsewhere\n'); // a worktree's link: not content
    const before = treeFingerprint(ws);
    const snap = await storeSnapshot(db, regions, { checkpointId: await checkpoint(), projectId, root: ws, source: 'workspace' });
    assert.ok(!(await getManifest(db, snap.checkpointId))!.some((e) => e.path === '.git'));

    const target = path.join(tmp, 'restore-modes');
    write(target, 'stray.txt', 'not in the snapshot');
    write(target, 'run.sh', 'stale content', 0o644);
    fs.mkdirSync(path.join(target, 'build'), { recursive: true });
    const result = await restoreSnapshot(db, regions, snap.checkpointId, target);
    assert.ok(result);
    assert.equal(result.files, 5);
    assert.deepEqual(treeFingerprint(target), before);
    assert.equal(fs.statSync(path.join(target, 'secret.env')).mode & 0o777, 0o600);
    assert.equal(fs.statSync(path.join(target, 'logs')).mode & 0o777, 0o750);
    assert.equal(result.chunksFrom.replica, 0);
    // A second restore over an identical tree rewrites nothing and reads no chunk.
    const again = await restoreSnapshot(db, regions, snap.checkpointId, target);
    assert.equal(again!.chunksFrom.primary, 0);
    assert.deepEqual(treeFingerprint(target), before);
  });

  it('replicates to the second region and restores from it when the primary is gone', async () => {
    const ws = path.join(tmp, 'ws-replica');
    write(ws, 'data/blob.bin', crypto.randomBytes(100_000));
    write(ws, 'README.md', sourceFile(7, 200));
    const snap = await storeSnapshot(db, regions, { checkpointId: await checkpoint(), projectId, root: ws, source: 'workspace' });
    assert.deepEqual(
      snap.replicas.map((r) => [r.region, r.status]),
      [
        ['primary', 'stored'],
        ['replica', 'pending'],
      ],
    );
    const replicated = await replicateSnapshot(db, regions, snap.checkpointId);
    assert.equal(replicated.status, 'replicated');
    assert.equal(replicated.replicas.find((r) => r.region === 'replica')!.status, 'replicated');
    assert.ok(replicated.replicas.find((r) => r.region === 'replica')!.copiedBytes > 0);

    const before = treeFingerprint(ws);
    fs.rmSync(regions.primary, { recursive: true, force: true }); // the primary region is lost
    const target = path.join(tmp, 'restore-replica');
    const result = await restoreSnapshot(db, regions, snap.checkpointId, target);
    assert.equal(result!.chunksFrom.primary, 0);
    assert.ok(result!.chunksFrom.replica > 0);
    assert.deepEqual(treeFingerprint(target), before);

    // With neither region holding the chunks, restore fails loudly instead of writing wrong files.
    const replicaCopy = `${regions.replica}.bak`;
    fs.renameSync(regions.replica, replicaCopy);
    await assert.rejects(restoreSnapshot(db, regions, snap.checkpointId, path.join(tmp, 'restore-none')), SnapshotCorruptError);
    fs.renameSync(replicaCopy, regions.replica);
  });

  it('detects a corrupt chunk by its hash, and reads the intact copy from the other region', async () => {
    const ws = path.join(tmp, 'ws-corrupt');
    write(ws, 'file.txt', sourceFile(9, 100));
    const snap = await storeSnapshot(db, regions, { checkpointId: await checkpoint(), projectId, root: ws, source: 'workspace' });
    await replicateSnapshot(db, regions, snap.checkpointId);
    const [hash] = (await getManifest(db, snap.checkpointId))!.flatMap((e) => (e.type === 'file' ? e.chunks : []));
    const primary = new ChunkStore(regions.primary);
    const replica = new ChunkStore(regions.replica);
    // Same length, different content: a valid zstd frame of other bytes.
    const { compress } = await import('@bokuweb/zstd-wasm');
    fs.writeFileSync(primary.pathOf(hash!), compress(Buffer.from(sourceFile(10, 100)), 3));
    await assert.rejects(primary.read(hash!), /does not match its hash/);
    fs.writeFileSync(replica.pathOf(hash!), Buffer.from('garbage'));
    await assert.rejects(replica.read(hash!), /does not decompress/);
    await assert.rejects(restoreSnapshot(db, regions, snap.checkpointId, path.join(tmp, 'restore-corrupt')), /not intact in any region/);
    // Replication refuses to copy a corrupt chunk and records the failure.
    fs.rmSync(replica.pathOf(hash!));
    await assert.rejects(replicateSnapshot(db, regions, snap.checkpointId), SnapshotCorruptError);
    const failed = (await getSnapshot(db, snap.checkpointId))!.replicas.find((r) => r.region === 'replica')!;
    assert.equal(failed.status, 'failed');
    assert.match(failed.error!, /does not match its hash/);
    // Repair the replica from the original bytes: restore now uses it.
    write(ws, 'file.txt', sourceFile(9, 100));
    const raw = fs.readFileSync(path.join(ws, 'file.txt'));
    await replica.writeCompressed(hash!, compress(raw, 3));
    const result = await restoreSnapshot(db, regions, snap.checkpointId, path.join(tmp, 'restore-corrupt-2'));
    assert.equal(result!.chunksFrom.replica, 1);
    assert.equal(fs.readFileSync(path.join(tmp, 'restore-corrupt-2', 'file.txt'), 'utf8'), sourceFile(9, 100));
  });

  it('prunes a snapshot and frees only the chunks no other snapshot uses, in both regions', async () => {
    const ws = path.join(tmp, 'ws-prune');
    const shared = crypto.randomBytes(30_000);
    write(ws, 'shared.bin', shared);
    write(ws, 'only-a.bin', crypto.randomBytes(30_000));
    const a = await storeSnapshot(db, regions, { checkpointId: await checkpoint(), projectId, root: ws, source: 'workspace' });
    fs.rmSync(path.join(ws, 'only-a.bin'));
    write(ws, 'only-b.bin', crypto.randomBytes(30_000));
    const b = await storeSnapshot(db, regions, { checkpointId: await checkpoint(a.checkpointId), projectId, root: ws, source: 'workspace' });
    await replicateSnapshot(db, regions, a.checkpointId);
    await replicateSnapshot(db, regions, b.checkpointId);
    const chunksOf = async (id: string, file: string) => (await getManifest(db, id))!.flatMap((e) => (e.type === 'file' && e.path === file ? e.chunks : []));
    const onlyA = await chunksOf(a.checkpointId, 'only-a.bin');
    const sharedChunks = await chunksOf(b.checkpointId, 'shared.bin');

    assert.equal(await pruneSnapshot(db, a.checkpointId), true);
    assert.equal(await pruneSnapshot(db, a.checkpointId), false, 'pruning twice is a no-op');
    const pruned = (await getSnapshot(db, a.checkpointId))!;
    assert.equal(pruned.status, 'pruned');
    assert.ok(pruned.replicas.every((r) => r.status === 'deleted'));
    assert.equal(await restoreSnapshot(db, regions, a.checkpointId, path.join(tmp, 'x')), null);

    // Within the grace period nothing is freed (a concurrent snapshot may be reusing chunks).
    assert.equal((await collectGarbage(db, regions, { graceMs: 3_600_000 })).chunks, 0);
    const freed = await collectGarbage(db, regions, { graceMs: 0 });
    assert.equal(freed.chunks, onlyA.length);
    for (const h of onlyA) {
      assert.equal(await new ChunkStore(regions.primary).has(h), false);
      assert.equal(await new ChunkStore(regions.replica).has(h), false);
    }
    for (const h of sharedChunks) assert.equal(await new ChunkStore(regions.primary).has(h), true);
    const target = path.join(tmp, 'restore-after-gc');
    await restoreSnapshot(db, regions, b.checkpointId, target);
    assert.deepEqual(treeFingerprint(target), treeFingerprint(ws));
  });

  it('stores a checkpoint from its git commit when there is no workspace (roots, merges)', async () => {
    const repo = path.join(tmp, 'repo.git');
    const rootCommit = await initProjectRepo(repo, new Date('2026-01-01T00:00:00Z'));
    const ws = path.join(tmp, 'ws-git');
    await checkoutWorkspace(repo, ws, rootCommit);
    write(ws, 'bin/tool', '#!/bin/sh\nexit 0\n', 0o755);
    write(ws, 'src/main.ts', sourceFile(3, 50));
    const commit = await snapshotWorkspace(repo, ws, rootCommit, 'files', new Date('2026-01-02T00:00:00Z'));
    const id = await checkpoint();
    await db('checkpoints').where({ id }).update({ commit });
    const snap = await storeCommitSnapshot(db, regions, { checkpointId: id, projectId, repoPath: repo, commit });
    assert.equal(snap.source, 'commit');
    assert.equal(snap.files, 2);
    const target = path.join(tmp, 'restore-git');
    await restoreSnapshot(db, regions, id, target);
    assert.deepEqual(treeFingerprint(target), treeFingerprint(ws));
    assert.equal(fs.statSync(path.join(target, 'bin/tool')).mode & 0o777, 0o755);
    // A workspace that is gone is an error, never an empty snapshot.
    const missing = await checkpoint();
    await assert.rejects(storeSnapshot(db, regions, { checkpointId: missing, projectId, root: path.join(tmp, 'no-such-dir'), source: 'workspace' }), /ENOENT/);
    assert.equal(await getSnapshot(db, missing), null);
  });

  it('finds what live machines, objectives and pipelines still reference, for the retention decision', async () => {
    const pid = 'project-retention-test';
    await db('projects').insert({ id: pid, name: 'r', repo_path: path.join(tmp, 'r.git'), currency: 'USD', default_machine_money: '0.5', created_by: 'test' });
    const cps: Record<string, string> = {};
    const add = async (name: string, parent: string | null, kind = 'final', machineId: string | null = null) => {
      cps[name] = `checkpoint-${name}-${crypto.randomBytes(3).toString('hex')}`;
      await db('checkpoints').insert({
        id: cps[name],
        project_id: pid,
        parent_id: parent ? cps[parent] : null,
        machine_id: machineId,
        commit: 'c0ffee',
        kind,
        trigger: 't',
      });
    };
    await add('root', null, 'root');
    await db('projects').where({ id: pid }).update({ root_checkpoint_id: cps.root });
    await add('plain', 'root');
    await add('liveParent', 'root');
    await add('objParent', 'root');
    await add('pipeBase', 'root');
    const machine = (id: string, status: string, parent: string, objectiveId: string | null = null) =>
      db('machines').insert({
        id,
        project_id: pid,
        objective_id: objectiveId,
        type: 'shell',
        provider: 'local',
        profile: 'lightweight',
        status,
        parent_checkpoint_id: cps[parent],
        limits: '{}',
        workflow_id: id,
        created_by: 't',
      });
    await machine('machine-live', 'running', 'liveParent');
    await add('liveWritten', 'liveParent', 'manual', 'machine-live');
    await machine('machine-done', 'completed', 'plain');
    await add('doneFinal', 'plain', 'final', 'machine-done');
    await db('objectives').insert({
      id: 'objective-r',
      project_id: pid,
      title: 'o',
      status: 'completed',
      machine_type: 'shell',
      workflow_id: 'objective-r',
      created_by: 't',
    });
    await machine('machine-obj', 'completed', 'objParent', 'objective-r');
    await add('objManual', 'objParent', 'manual', 'machine-obj');
    await add('objFinal', 'objManual', 'final', 'machine-obj');
    await db('pipelines').insert({ id: 'pipeline-r', project_id: pid, status: 'completed', base_checkpoint_id: cps.pipeBase, created_by: 't' });
    await add('pipeStep', 'pipeBase');
    await db('pipeline_steps').insert({
      pipeline_id: 'pipeline-r',
      step_id: 'a',
      position: 0,
      type: 'shell',
      depends_on: '[]',
      limits: '{}',
      status: 'completed',
      checkpoint_id: cps.pipeStep,
    });
    // Only projects with snapshots are considered.
    assert.equal(
      (await retentionInputs(db)).find((r) => r.projectId === pid),
      undefined,
    );
    const ws = path.join(tmp, 'ws-retention');
    write(ws, 'a.txt', 'a');
    await storeSnapshot(db, regions, { checkpointId: cps.plain!, projectId: pid, root: ws, source: 'workspace' });

    const input = (await retentionInputs(db)).find((r) => r.projectId === pid)!;
    const name = (id: string) => Object.entries(cps).find(([, v]) => v === id)?.[0];
    assert.deepEqual([...input.referenced].map(name).sort(), ['liveParent', 'liveWritten', 'objFinal', 'pipeBase', 'pipeStep', 'root']);
    assert.equal(input.checkpoints.length, Object.keys(cps).length);
    assert.deepEqual(
      input.checkpoints.filter((c) => c.hasSnapshot).map((c) => name(c.id)),
      ['plain'],
    );
    assert.equal(input.checkpoints.find((c) => c.id === cps.objFinal)!.parentId, cps.objManual);
  });
});

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { blobAt, commitWithBlobs, initProjectRepo, listFiles, readFileAt, snapshotWorkspace, checkoutWorkspace, writeBlob } from '../../store/git.js';

describe('git: placing input files into a commit (real git)', () => {
  let dir: string;
  let repo: string;
  let base: string;
  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'autovibe-git-inputs-'));
    repo = path.join(dir, 'repo.git');
    const root = await initProjectRepo(repo, new Date('2026-01-01T00:00:00Z'));
    const ws = path.join(dir, 'ws');
    await checkoutWorkspace(repo, ws, root);
    fs.mkdirSync(path.join(ws, 'data'));
    fs.writeFileSync(path.join(ws, 'data', 'a.txt'), 'a\n');
    fs.writeFileSync(path.join(ws, 'run.sh'), '#!/bin/sh\n', { mode: 0o755 });
    fs.symlinkSync('data/a.txt', path.join(ws, 'link'));
    base = await snapshotWorkspace(repo, ws, root, 'base', new Date('2026-01-01T00:00:01Z'));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('finds regular files only (not directories, links or missing paths)', async () => {
    assert.equal((await blobAt(repo, base, 'data/a.txt'))?.mode, '100644');
    assert.equal((await blobAt(repo, base, 'run.sh'))?.mode, '100755');
    assert.equal(await blobAt(repo, base, 'data'), null);
    assert.equal(await blobAt(repo, base, 'link'), null);
    assert.equal(await blobAt(repo, base, 'nope.txt'), null);
  });

  it('adds and replaces files in a child commit, the same one every time, keeping the rest', async () => {
    const a = (await blobAt(repo, base, 'data/a.txt'))!;
    const given = await writeBlob(repo, Buffer.from('given\n'));
    const entries = [
      { path: 'copies/a.txt', ...a },
      { path: 'data/a.txt', oid: given, mode: '100644' },
    ];
    const at = new Date('2026-01-02T00:00:00Z');
    const commit = await commitWithBlobs(repo, base, entries, 'inputs', at);
    assert.equal(await commitWithBlobs(repo, base, entries, 'inputs', at), commit);
    assert.equal((await readFileAt(repo, commit, 'copies/a.txt'))?.toString(), 'a\n');
    assert.equal((await readFileAt(repo, commit, 'data/a.txt'))?.toString(), 'given\n');
    assert.deepEqual((await listFiles(repo, commit)).map((f) => f.path).sort(), ['copies/a.txt', 'data/a.txt', 'link', 'run.sh']);
    // The base is untouched.
    assert.equal((await readFileAt(repo, base, 'data/a.txt'))?.toString(), 'a\n');
  });

  it('refuses a file where the tree has a directory instead of dropping the directory', async () => {
    const oid = await writeBlob(repo, Buffer.from('x'));
    await assert.rejects(
      commitWithBlobs(repo, base, [{ path: 'data', oid, mode: '100644' }], 'inputs', new Date()),
      /'data' appears as both a file and as a directory/,
    );
  });
});

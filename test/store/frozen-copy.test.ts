import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { FreezeError, freezeTree, withFrozenCopy, type FreezeLimits } from '../../store/frozen-copy.js';
import { checkoutWorkspace, commitFiles, initProjectRepo, listFiles, readFileAt } from '../../store/git.js';

/**
 * The frozen copy of a workspace (the one reader of live workspaces): links are copied as links,
 * never followed; odd files are left out with a reason, never opened in a way that can block.
 */
describe('frozen copy of a workspace (real file system, real git)', () => {
  let dir: string;
  const limits = (over: Partial<FreezeLimits> = {}): FreezeLimits => ({ maxFileBytes: 1024 * 1024, maxDepth: 20, deadline: Date.now() + 30_000, ...over });
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'autovibe-frozen-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('copies files, modes and links as links, and leaves out FIFOs, sockets, a sparse file over the limit and .git files, each with its reason', async () => {
    const ws = path.join(dir, 'ws');
    const secret = path.join(dir, 'host', 'secret.txt');
    fs.mkdirSync(path.dirname(secret), { recursive: true });
    fs.writeFileSync(secret, 'HOST-SECRET');
    fs.mkdirSync(path.join(ws, 'src/deep'), { recursive: true });
    fs.writeFileSync(path.join(ws, 'src/deep/a.txt'), 'a');
    fs.writeFileSync(path.join(ws, 'run.sh'), '#!/bin/sh\n', { mode: 0o755 });
    fs.writeFileSync(path.join(ws, 'suid'), 'x', { mode: 0o755 });
    fs.chmodSync(path.join(ws, 'suid'), 0o4755);
    fs.symlinkSync(secret, path.join(ws, 'leak.txt'));
    fs.symlinkSync(path.dirname(secret), path.join(ws, 'hostdir'));
    fs.writeFileSync(path.join(ws, '.git'), 'gitdir: /elsewhere\n'); // the worktree's own link: not copied, not reported
    fs.mkdirSync(path.join(ws, 'nested'));
    fs.writeFileSync(path.join(ws, 'nested/.git'), `gitdir: ${dir}\n`);
    execFileSync('mkfifo', [path.join(ws, 'pipe')]);
    execFileSync('truncate', ['-s', '3G', path.join(ws, 'huge.bin')]);
    const server = net.createServer().listen(path.join(ws, 'sock'));
    await new Promise((r) => server.once('listening', r));
    try {
      const out = path.join(dir, 'copy');
      const result = await freezeTree(ws, out, limits());
      assert.deepEqual(fs.readdirSync(out).sort(), ['hostdir', 'leak.txt', 'nested', 'run.sh', 'src', 'suid']);
      assert.equal(fs.readlinkSync(path.join(out, 'leak.txt')), secret);
      assert.ok(fs.lstatSync(path.join(out, 'hostdir')).isSymbolicLink());
      assert.equal(fs.readFileSync(path.join(out, 'src/deep/a.txt'), 'utf8'), 'a');
      assert.equal(fs.statSync(path.join(out, 'run.sh')).mode & 0o7777, 0o755);
      assert.equal(fs.statSync(path.join(out, 'suid')).mode & 0o7777, 0o755, 'setuid is dropped');
      const reasons = Object.fromEntries(result.skipped.map((s) => [s.path, s.reason]));
      assert.deepEqual(Object.keys(reasons).sort(), ['huge.bin', 'nested/.git', 'pipe', 'sock']);
      assert.match(reasons['pipe']!, /FIFO/);
      assert.match(reasons['sock']!, /socket/);
      assert.match(reasons['huge.bin']!, /larger than 1048576 bytes \(3221225472\)/);
      assert.match(reasons['nested/.git']!, /another repository/);
      assert.equal(result.files, 3);
    } finally {
      server.close();
    }
  });

  it('commits a frozen copy with git: the link stays a link, the host file never enters the repository', async () => {
    const repo = path.join(dir, 'repo.git');
    const root = await initProjectRepo(repo, new Date('2026-01-01T00:00:00Z'));
    const ws = path.join(dir, 'ws');
    await checkoutWorkspace(repo, ws, root);
    fs.writeFileSync(path.join(dir, 'secret.txt'), 'HOST-SECRET');
    fs.symlinkSync(path.join(dir, 'secret.txt'), path.join(ws, 'leak.txt'));
    fs.writeFileSync(path.join(ws, 'ok.txt'), 'ok');
    const commit = await withFrozenCopy(ws, limits(), (copy) => commitFiles(repo, copy.root, root, 'c', new Date('2026-01-01T00:00:01Z')));
    assert.deepEqual((await listFiles(repo, commit)).map((f) => f.path).sort(), ['leak.txt', 'ok.txt']);
    assert.equal((await readFileAt(repo, commit, 'leak.txt'))!.toString(), path.join(dir, 'secret.txt'), 'a link is stored as its target text');
    const objects = execFileSync('git', ['--git-dir', repo, 'cat-file', '--batch-all-objects', '--batch'], { maxBuffer: 64 * 1024 * 1024 }).toString('latin1');
    assert.ok(!objects.includes('HOST-SECRET'));
    assert.deepEqual(
      fs.readdirSync(dir).filter((n) => n.startsWith('.autovibe-frozen-')),
      [],
      'the copy is removed',
    );
  });

  it('gives up with a clear error at its deadline, and leaves out trees deeper than the limit', async () => {
    const ws = path.join(dir, 'ws');
    fs.mkdirSync(path.join(ws, 'a/b/c/d'), { recursive: true });
    fs.writeFileSync(path.join(ws, 'a/b/c/d/x'), 'x');
    await assert.rejects(freezeTree(ws, path.join(dir, 'late'), limits({ deadline: Date.now() - 1 })), (err: Error) => {
      assert.ok(err instanceof FreezeError);
      assert.match(err.message, /before its deadline/);
      return true;
    });
    const result = await freezeTree(ws, path.join(dir, 'shallow'), limits({ maxDepth: 2 }));
    assert.deepEqual(result.skipped, [{ path: 'a/b/c', reason: 'nested deeper than 2 directories' }]);
    assert.ok(fs.existsSync(path.join(dir, 'shallow/a/b')));
    assert.ok(!fs.existsSync(path.join(dir, 'shallow/a/b/c')));
  });

  it('refuses a workspace that is itself a link', async () => {
    fs.mkdirSync(path.join(dir, 'real'));
    fs.symlinkSync(path.join(dir, 'real'), path.join(dir, 'ws'));
    await assert.rejects(freezeTree(path.join(dir, 'ws'), path.join(dir, 'copy'), limits()), FreezeError);
  });
});

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { packWorkspace, replaceWorkspaceFiles } from '../../activities/compute/workspace-archive.js';

/** A tar.gz made by the real tar from a directory, as an instance would send it. */
function archiveOf(dir: string): Buffer {
  return execFileSync('tar', ['-C', dir, '-czf', '-', '.']);
}

describe('workspace archives between the host and a remote instance (real tar)', () => {
  let tmp: string;
  beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'autovibe-archive-'));
  });
  afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it("replaces the workspace's files with the instance's: deletions, modes and symlinks; .git stays; setuid/setgid bits are dropped", async () => {
    const ws = path.join(tmp, 'ws');
    fs.mkdirSync(path.join(ws, 'old'), { recursive: true });
    fs.writeFileSync(path.join(ws, 'old', 'gone.txt'), 'deleted on the instance');
    fs.writeFileSync(path.join(ws, '.git'), 'gitdir: /somewhere/worktrees/ws\n');
    const remote = path.join(tmp, 'remote');
    fs.mkdirSync(path.join(remote, 'src'), { recursive: true });
    fs.writeFileSync(path.join(remote, 'src', 'main.sh'), '#!/bin/sh\necho hi\n', { mode: 0o755 });
    fs.writeFileSync(path.join(remote, 'suid'), 'x', { mode: 0o644 });
    fs.chmodSync(path.join(remote, 'suid'), 0o6755);
    fs.symlinkSync('src/main.sh', path.join(remote, 'link'));
    fs.writeFileSync(path.join(remote, '.git'), 'an instance cannot replace the worktree link');

    await replaceWorkspaceFiles(ws, archiveOf(remote));

    assert.equal(fs.existsSync(path.join(ws, 'old')), false);
    assert.equal(fs.readFileSync(path.join(ws, '.git'), 'utf8'), 'gitdir: /somewhere/worktrees/ws\n');
    assert.equal(fs.statSync(path.join(ws, 'src', 'main.sh')).mode & 0o7777, 0o755);
    assert.equal(fs.readlinkSync(path.join(ws, 'link')), 'src/main.sh');
    assert.equal(fs.statSync(path.join(ws, 'suid')).mode & 0o7777, 0o755, 'setuid and setgid dropped, the rest kept');
    assert.deepEqual(
      fs.readdirSync(tmp).filter((n) => n.startsWith('.autovibe-collect-')),
      [],
      'nothing left beside the workspace',
    );
  });

  it('leaves the workspace as it was when the archive is broken', async () => {
    const ws = path.join(tmp, 'ws');
    fs.mkdirSync(ws);
    fs.writeFileSync(path.join(ws, 'keep.txt'), 'still here');
    await assert.rejects(replaceWorkspaceFiles(ws, Buffer.from('not a tar.gz')), /tar .*failed/);
    assert.equal(fs.readFileSync(path.join(ws, 'keep.txt'), 'utf8'), 'still here');
  });

  it('packs a workspace without its .git link, and the pack unpacks to the same files', async () => {
    const ws = path.join(tmp, 'ws');
    fs.mkdirSync(path.join(ws, 'a'), { recursive: true });
    fs.writeFileSync(path.join(ws, 'a', 'b.txt'), 'b');
    fs.writeFileSync(path.join(ws, '.git'), 'gitdir: x');
    const out = path.join(tmp, 'out');
    fs.mkdirSync(out);
    execFileSync('tar', ['-xzf', '-', '-C', out], { input: await packWorkspace(ws) });
    assert.deepEqual(fs.readdirSync(out).sort(), ['a']);
    assert.equal(fs.readFileSync(path.join(out, 'a', 'b.txt'), 'utf8'), 'b');
  });
});

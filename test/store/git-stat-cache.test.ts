import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { withFrozenCopy, type FreezeLimits, type FrozenCopy } from '../../store/frozen-copy.js';
import { commitFiles, GitStatCache, initProjectRepo, listFiles, readFileAt, treeOf, type CommitReport } from '../../store/git.js';

/**
 * A machine's checkpoint of an unchanged workspace: git is handed none of its tracked files again
 * (store/git.ts GitStatCache, keyed on the live workspace's stat), and every change is still seen.
 */
describe('checkpoint commits skip files unchanged since the last checkpoint (real git, real file system)', () => {
  let dir: string;
  let repo: string;
  let ws: string;
  let root: string;
  const limits = (): FreezeLimits => ({ maxFileBytes: 1024 * 1024, maxDepth: 20, deadline: Date.now() + 30_000 });
  const at = new Date('2026-12-07T12:00:00Z');
  const write = (rel: string, content: string) => {
    fs.mkdirSync(path.dirname(path.join(ws, rel)), { recursive: true });
    fs.writeFileSync(path.join(ws, rel), content);
  };
  /** Past the cache's racy margin (0 in these tests): a file's ctime before the copy starts. */
  const settle = () => new Promise((r) => setTimeout(r, 30));
  /** A checkpoint as machine-run's activity makes it: frozen copy, then the commit (`tamper` runs on the copy in between). */
  const checkpoint = (parent: string, cache: GitStatCache | null, tamper?: (copy: FrozenCopy) => void) =>
    withFrozenCopy(ws, limits(), async (copy) => {
      tamper?.(copy);
      const report: CommitReport = { added: null, reused: 0 };
      const commit = await commitFiles(repo, copy.root, parent, 'checkpoint', at, cache ? { cache, workspace: ws, copy, report } : undefined);
      return { commit, report };
    });

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'autovibe-statcache-'));
    repo = path.join(dir, 'repo.git');
    ws = path.join(dir, 'ws');
    fs.mkdirSync(ws);
    root = await initProjectRepo(repo, at);
    for (let i = 0; i < 20; i++) write(`src/f${i}.txt`, `file ${i}\n`);
    write('same-size.txt', 'aaaa');
    write('gone.txt', 'soon deleted');
    write('.gitignore', 'ignored/\n');
    write('ignored/cache.bin', 'not committed');
    fs.symlinkSync('src/f0.txt', path.join(ws, 'link'));
    await settle();
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('hands git no tracked file of an unchanged workspace: a copy altered under it does not reach the commit', async () => {
    const cache = new GitStatCache(64, 0);
    const first = await checkpoint(root, cache);
    assert.equal(first.report.added, null, 'the first checkpoint of a workspace adds everything');
    const files = (await listFiles(repo, first.commit)).map((f) => f.path);
    assert.ok(files.includes('src/f3.txt') && files.includes('link') && !files.includes('ignored/cache.bin'), files.join(','));

    // The copy's bytes of an unchanged file are altered after the copy: had git read it, the tree would change.
    const alter = (copy: FrozenCopy) => fs.writeFileSync(path.join(copy.root, 'src/f3.txt'), 'FILE 3\n');
    const second = await checkpoint(first.commit, cache, alter);
    assert.deepEqual(second.report.added, [], 'no path handed to git');
    assert.equal(second.report.reused, files.length);
    assert.equal(await treeOf(repo, second.commit), await treeOf(repo, first.commit));
    assert.equal((await readFileAt(repo, second.commit, 'src/f3.txt'))!.toString(), 'file 3\n');

    // Control: without the cache git reads the copy, and the altered bytes are committed.
    const uncached = await checkpoint(first.commit, null, alter);
    assert.equal((await readFileAt(repo, uncached.commit, 'src/f3.txt'))!.toString(), 'FILE 3\n');
  });

  it('still sees a same-size change with its mtime put back, a deletion, a new file, a changed link and ignore rules: the tree of a full add', async () => {
    const cache = new GitStatCache(64, 0);
    const sameSize = path.join(ws, 'same-size.txt');
    const stamp = 1_700_000_000; // whole seconds: put back exactly below
    fs.utimesSync(sameSize, stamp, stamp);
    await settle();
    const first = await checkpoint(root, cache);
    const before = fs.statSync(sameSize);
    fs.writeFileSync(sameSize, 'bbbb');
    fs.utimesSync(sameSize, stamp, stamp); // as tar or cp -p would
    const after = fs.statSync(sameSize);
    assert.deepEqual([after.mtimeMs, after.size, after.ino], [before.mtimeMs, before.size, before.ino], 'only the ctime tells');
    fs.rmSync(path.join(ws, 'gone.txt'));
    write('src/new.txt', 'new');
    write('ignored/more.bin', 'still ignored');
    fs.rmSync(path.join(ws, 'link'));
    fs.symlinkSync('src/f1.txt', path.join(ws, 'link'));
    await settle();

    const second = await checkpoint(first.commit, cache);
    assert.deepEqual([...second.report.added!].sort(), ['gone.txt', 'link', 'same-size.txt', 'src/new.txt']);
    assert.equal(second.report.reused, 21, '20 src files and .gitignore unread');
    assert.equal((await readFileAt(repo, second.commit, 'same-size.txt'))!.toString(), 'bbbb');
    assert.equal(await readFileAt(repo, second.commit, 'gone.txt'), null);
    const full = await checkpoint(first.commit, null);
    assert.equal(await treeOf(repo, second.commit), await treeOf(repo, full.commit), 'same tree as adding everything');

    // A tracked file a .gitignore now matches stays tracked and is updated, as with a full add.
    write('.gitignore', 'ignored/\nsrc/f5.txt\n');
    write('src/f5.txt', 'changed while ignored\n');
    await settle();
    const third = await checkpoint(second.commit, cache);
    assert.equal((await readFileAt(repo, third.commit, 'src/f5.txt'))!.toString(), 'changed while ignored\n');
    assert.equal(await treeOf(repo, third.commit), await treeOf(repo, (await checkpoint(second.commit, null)).commit));
  });

  it('does not trust a file changed within the racy margin of the copy that read it, nor a parent of another tree', async () => {
    const cache = new GitStatCache(); // 2 s margin: every file here was written just now
    const first = await checkpoint(root, cache);
    const second = await checkpoint(first.commit, cache);
    assert.equal(second.report.added, null, 'files written in the same instant as their read are all read again');
    assert.equal(await treeOf(repo, second.commit), await treeOf(repo, first.commit));

    const strict = new GitStatCache(64, 0);
    await checkpoint(root, strict);
    const other = await checkpoint(root, strict); // parent is the root (empty tree), not the tree remembered
    assert.equal(other.report.added, null, 'another parent tree: everything added');
  });
});

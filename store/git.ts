import { execFile, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { InputError } from '../domain/errors.js';
import { defaultFreezeLimits, withFrozenCopy } from './frozen-copy.js';
import { redactUrlCredentials } from '../domain/repo-url.js';

/**
 * Checkpoint storage in git. Each project has one bare repository; every checkpoint is a commit
 * pinned by `refs/checkpoints/<id>` so it outlives any branch. Machines work in git worktrees.
 * Host-side git calls never trust the workspace's own `.git` file (the sandbox can write it):
 * they always name the worktree's admin directory explicitly.
 */
const run = promisify(execFile);
const EMPTY_TREE = '4b825dc642cb6eb9a060e54bf8d69288fbee4904';
const IDENTITY = {
  GIT_AUTHOR_NAME: 'AutoVibe',
  GIT_AUTHOR_EMAIL: 'machines@autovibe.local',
  GIT_COMMITTER_NAME: 'AutoVibe',
  GIT_COMMITTER_EMAIL: 'machines@autovibe.local',
};

export class GitError extends Error {
  override name = 'GitError';
}

async function git(args: string[], opts: { env?: Record<string, string>; cwd?: string } = {}): Promise<string> {
  try {
    const { stdout } = await run('git', args, {
      cwd: opts.cwd,
      env: { ...process.env, ...IDENTITY, GIT_TERMINAL_PROMPT: '0', ...opts.env },
      maxBuffer: 64 * 1024 * 1024,
    });
    return stdout;
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new GitError(`git ${args[0]} failed: ${(err.stderr || err.message).trim()}`);
  }
}

/** Creates a bare repository whose root checkpoint is an empty commit. Returns that commit. */
export async function initProjectRepo(repoPath: string, date: Date): Promise<string> {
  await fs.mkdir(path.dirname(repoPath), { recursive: true });
  await git(['init', '--quiet', '--bare', repoPath]);
  return commitTree(repoPath, EMPTY_TREE, [], 'root checkpoint', date);
}

export interface CloneLimits {
  /** URL schemes git may use, also for redirects (checked again here: the route checked the URL). */
  schemes: readonly string[];
  timeoutMs: number;
  maxBytes: number;
}

/**
 * Clones `repoUrl` (bare); the root checkpoint is its HEAD, or an empty commit for an empty
 * repository. The clone is bounded: killed (with every git process it started) after
 * `timeoutMs` or once the repository on disk passes `maxBytes`, and then removed. Git may
 * speak only the allowed protocols (no file://, no ext:: even via a redirect), never prompts,
 * and its messages are stripped of any credentials before they reach the caller.
 */
export async function cloneProjectRepo(repoUrl: string, repoPath: string, date: Date, limits: CloneLimits): Promise<string> {
  await fs.mkdir(path.dirname(repoPath), { recursive: true });
  try {
    await boundedClone(repoUrl, repoPath, limits);
  } catch (e) {
    await fs.rm(repoPath, { recursive: true, force: true });
    throw new InputError(`repoUrl could not be cloned: ${redactUrlCredentials((e as Error).message)}`, { field: 'repoUrl' });
  }
  try {
    return (await git(['--git-dir', repoPath, 'rev-parse', '--verify', 'HEAD^{commit}'])).trim();
  } catch {
    return commitTree(repoPath, EMPTY_TREE, [], 'root checkpoint', date);
  }
}

const mib = (bytes: number) => `${Math.round((bytes / 1024 / 1024) * 10) / 10} MiB`;

async function boundedClone(repoUrl: string, repoPath: string, limits: CloneLimits): Promise<void> {
  const protocols = limits.schemes.flatMap((s) => ['-c', `protocol.${s}.allow=always`]);
  const args = ['-c', 'protocol.allow=never', ...protocols, 'clone', '--quiet', '--bare', '--no-local', '--', repoUrl, repoPath];
  // Its own process group, so a timeout also ends git-remote-*, index-pack and ssh.
  const child = spawn('git', args, {
    detached: true,
    stdio: ['ignore', 'ignore', 'pipe'],
    env: {
      ...process.env,
      ...IDENTITY,
      GIT_TERMINAL_PROMPT: '0',
      GIT_ASKPASS: 'true',
      SSH_ASKPASS: 'true',
      GIT_SSH_COMMAND: 'ssh -o BatchMode=yes',
      GIT_PROTOCOL_FROM_USER: '0',
      GIT_ALLOW_PROTOCOL: limits.schemes.join(':'),
    },
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => {
    if (stderr.length < 8192) stderr += d.toString();
  });
  let stopped: string | null = null;
  const stop = (why: string) => {
    stopped ??= why;
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // already gone
    }
  };
  const timer = setTimeout(() => stop(`it took longer than ${Math.round(limits.timeoutMs / 1000)} s`), limits.timeoutMs);
  const tooLarge = `it is larger than the limit of ${mib(limits.maxBytes)}`;
  const watcher = setInterval(() => {
    void diskUsage(repoPath).then((bytes) => {
      if (bytes > limits.maxBytes) stop(tooLarge);
    });
  }, 200);
  try {
    const code = await new Promise<number | null>((resolve, reject) => {
      child.on('error', reject);
      child.on('close', resolve);
    });
    if (stopped) throw new GitError(stopped);
    if (code !== 0) throw new GitError(stderr.trim() || `git clone exited with ${code}`);
  } finally {
    clearTimeout(timer);
    clearInterval(watcher);
  }
  // A clone that finished between two looks is measured once more.
  if ((await diskUsage(repoPath)) > limits.maxBytes) throw new GitError(tooLarge);
}

/** Bytes of the files under `dir` (0 when it does not exist yet). */
async function diskUsage(dir: string): Promise<number> {
  let total = 0;
  const entries = await fs.readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  for (const entry of entries) {
    if (!entry.isFile()) continue;
    const st = await fs.stat(path.join(entry.parentPath, entry.name)).catch(() => null);
    total += st?.size ?? 0;
  }
  return total;
}

async function commitTree(repoPath: string, tree: string, parents: string[], message: string, date: Date): Promise<string> {
  const when = `${Math.floor(date.getTime() / 1000)} +0000`;
  const args = ['--git-dir', repoPath, 'commit-tree', tree, ...parents.flatMap((p) => ['-p', p]), '-m', message];
  return (await git(args, { env: { GIT_AUTHOR_DATE: when, GIT_COMMITTER_DATE: when } })).trim();
}

/** Keeps `commit` reachable as the checkpoint's own ref. Idempotent. */
export async function pinCheckpoint(repoPath: string, checkpointId: string, commit: string): Promise<void> {
  await git(['--git-dir', repoPath, 'update-ref', `refs/checkpoints/${checkpointId}`, commit]);
}

function worktreeAdminDir(repoPath: string, workspace: string): string {
  return path.join(repoPath, 'worktrees', path.basename(workspace));
}

async function exists(p: string): Promise<boolean> {
  return fs.access(p).then(
    () => true,
    () => false,
  );
}

/** Checks out `commit` into a fresh worktree at `workspace`, or resets an existing one to it. Idempotent. */
export async function checkoutWorkspace(repoPath: string, workspace: string, commit: string): Promise<void> {
  const admin = worktreeAdminDir(repoPath, workspace);
  if ((await exists(admin)) && (await exists(workspace))) {
    await resetWorkspace(repoPath, workspace, commit);
    return;
  }
  // Empty the directory but keep it: a container may have it bind-mounted already (warm pool).
  await fs.mkdir(workspace, { recursive: true });
  for (const entry of await fs.readdir(workspace)) await fs.rm(path.join(workspace, entry), { recursive: true, force: true });
  await git(['--git-dir', repoPath, 'worktree', 'prune']);
  await git(['--git-dir', repoPath, 'worktree', 'add', '--quiet', '--detach', '--force', workspace, commit]);
}

/** Puts the workspace back exactly at `commit`, dropping every change and untracked file. */
export async function resetWorkspace(repoPath: string, workspace: string, commit: string): Promise<void> {
  const base = ['--git-dir', worktreeAdminDir(repoPath, workspace), '--work-tree', workspace];
  await git([...base, 'reset', '--quiet', '--hard', commit]);
  await git([...base, 'clean', '-q', '-fdx']);
}

/**
 * Commits the files of `root` as a child of `parentCommit`, without touching any worktree: `root`
 * must be a tree no machine can change (a frozen copy, {@link withFrozenCopy}), since git resolves
 * paths in it again while it reads. A private index starts from the parent's tree, so files the
 * parent tracks stay tracked even where a .gitignore now matches them. With the same files, parent,
 * message and date the commit id is the same, so a retried checkpoint yields the identical commit.
 */
export async function commitFiles(repoPath: string, root: string, parentCommit: string, message: string, date: Date): Promise<string> {
  const dir = await fs.mkdtemp(path.join(repoPath, 'tmp-index-'));
  const env = { GIT_INDEX_FILE: path.join(dir, 'index') };
  try {
    await git(['--git-dir', repoPath, 'read-tree', parentCommit], { env });
    await git(['--git-dir', repoPath, '--work-tree', root, 'add', '--all', '.'], { env, cwd: root });
    const tree = (await git(['--git-dir', repoPath, 'write-tree'], { env })).trim();
    return await commitTree(repoPath, tree, [parentCommit], message, date);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

/**
 * Commits everything in a (possibly live) workspace as a child of `parentCommit`: through a frozen
 * copy, so no link or swapped directory of the workspace is ever followed.
 */
export async function snapshotWorkspace(repoPath: string, workspace: string, parentCommit: string, message: string, date: Date): Promise<string> {
  return withFrozenCopy(workspace, defaultFreezeLimits(), (copy) => commitFiles(repoPath, copy.root, parentCommit, message, date));
}

/** Removes the worktree and its files. Idempotent. */
export async function removeWorkspace(repoPath: string, workspace: string): Promise<void> {
  await fs.rm(workspace, { recursive: true, force: true });
  await fs.rm(worktreeAdminDir(repoPath, workspace), { recursive: true, force: true });
  await git(['--git-dir', repoPath, 'worktree', 'prune']).catch(() => undefined);
}

export interface FileEntry {
  path: string;
  size: number;
  sha256: string;
}

/** Every file of a commit with its size and SHA-256. */
export async function listFiles(repoPath: string, commit: string): Promise<FileEntry[]> {
  const out = await git(['--git-dir', repoPath, 'ls-tree', '-r', '-z', '--full-tree', commit]);
  const entries = out
    .split('\0')
    .filter(Boolean)
    .map((line) => {
      const [meta, filePath] = line.split('\t') as [string, string];
      const [, type, oid] = meta.split(' ') as [string, string, string];
      return { type, oid, path: filePath };
    })
    .filter((e) => e.type === 'blob');
  const blobs = await readBlobs(
    repoPath,
    entries.map((e) => e.oid),
  );
  return entries.map((e, i) => ({
    path: e.path,
    size: blobs[i]!.length,
    sha256: crypto.createHash('sha256').update(blobs[i]!).digest('hex'),
  }));
}

/** Reads many blobs through one `git cat-file --batch` process. */
async function readBlobs(repoPath: string, oids: string[]): Promise<Buffer[]> {
  if (!oids.length) return [];
  const child = spawn('git', ['--git-dir', repoPath, 'cat-file', '--batch'], { stdio: ['pipe', 'pipe', 'inherit'] });
  const chunks: Buffer[] = [];
  child.stdout.on('data', (c: Buffer) => chunks.push(c));
  child.stdin.end(oids.join('\n') + '\n');
  await new Promise<void>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new GitError(`git cat-file exited with ${code}`))));
  });
  const all = Buffer.concat(chunks);
  const blobs: Buffer[] = [];
  let at = 0;
  for (let i = 0; i < oids.length; i++) {
    const eol = all.indexOf(0x0a, at);
    const header = all.subarray(at, eol).toString();
    const size = Number(header.split(' ')[2]);
    blobs.push(all.subarray(eol + 1, eol + 1 + size));
    at = eol + 1 + size + 1;
  }
  return blobs;
}

/** One file's bytes at a commit, or null when the commit has no such file. */
export async function readFileAt(repoPath: string, commit: string, filePath: string): Promise<Buffer | null> {
  try {
    const { stdout } = await run('git', ['--git-dir', repoPath, 'cat-file', 'blob', `${commit}:${filePath}`], {
      encoding: 'buffer',
      maxBuffer: 256 * 1024 * 1024,
    });
    return stdout;
  } catch {
    return null;
  }
}

export interface Diff {
  added: string[];
  modified: string[];
  deleted: string[];
}

export async function diffCommits(repoPath: string, from: string, to: string): Promise<Diff> {
  const out = await git(['--git-dir', repoPath, 'diff', '--name-status', '-z', '--no-renames', from, to]);
  const parts = out.split('\0').filter(Boolean);
  const diff: Diff = { added: [], modified: [], deleted: [] };
  for (let i = 0; i + 1 < parts.length; i += 2) {
    const status = parts[i]!;
    const file = parts[i + 1]!;
    if (status.startsWith('A')) diff.added.push(file);
    else if (status.startsWith('D')) diff.deleted.push(file);
    else diff.modified.push(file);
  }
  return diff;
}

/**
 * Merges commits into one commit whose parents are all of them (a step that follows several
 * steps starts from this). Refuses with the conflicting paths when the changes overlap.
 */
export async function mergeCommits(repoPath: string, commits: string[], message: string, date: Date): Promise<string> {
  if (commits.length === 0) throw new GitError('nothing to merge');
  if (commits.length === 1) return commits[0]!;
  let current = commits[0]!;
  for (const next of commits.slice(1)) {
    let tree: string;
    try {
      const { stdout } = await run('git', ['--git-dir', repoPath, 'merge-tree', '--write-tree', '--name-only', '--no-messages', current, next], {
        env: { ...process.env, ...IDENTITY },
      });
      tree = stdout.split('\n')[0]!.trim();
    } catch (e) {
      const out = ((e as { stdout?: string }).stdout ?? '').split('\n').slice(1).filter(Boolean);
      throw new GitError(`merge conflict in: ${out.join(', ') || 'unknown files'}`);
    }
    current = await commitTree(repoPath, tree, [current, next], message, date);
  }
  // One commit with every input as a parent reads best in the evolution tree.
  const tree = (await git(['--git-dir', repoPath, 'rev-parse', `${current}^{tree}`])).trim();
  return commitTree(repoPath, tree, commits, message, date);
}

/** A regular file's blob at a commit: its object id and mode, or null when there is none (or it is a directory or link). */
export async function blobAt(repoPath: string, commit: string, filePath: string): Promise<{ oid: string; mode: string } | null> {
  let out: string;
  try {
    out = await git(['--git-dir', repoPath, 'ls-tree', '-z', '--full-tree', commit, '--', filePath]);
  } catch {
    return null;
  }
  const line = out.split('\0').find((l) => l.endsWith(`\t${filePath}`));
  if (!line) return null;
  const [mode, type, oid] = line.split('\t')[0]!.split(' ') as [string, string, string];
  if (type !== 'blob' || (mode !== '100644' && mode !== '100755')) return null;
  return { oid, mode };
}

/** Stores bytes as a blob of the repository and returns its object id. */
export async function writeBlob(repoPath: string, bytes: Buffer): Promise<string> {
  const child = spawn('git', ['--git-dir', repoPath, 'hash-object', '-w', '--stdin'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  child.stdin.end(bytes);
  await new Promise<void>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new GitError(`git hash-object failed: ${stderr.trim()}`))));
  });
  return stdout.trim();
}

/**
 * A child commit of `parentCommit` with the given blobs placed at the given paths (added or
 * replaced), built in a private index so no worktree is touched. Same inputs → same commit.
 */
export async function commitWithBlobs(
  repoPath: string,
  parentCommit: string,
  entries: Array<{ path: string; oid: string; mode: string }>,
  message: string,
  date: Date,
): Promise<string> {
  const dir = await fs.mkdtemp(path.join(repoPath, 'tmp-index-'));
  const env = { GIT_INDEX_FILE: path.join(dir, 'index') };
  try {
    await git(['--git-dir', repoPath, 'read-tree', parentCommit], { env });
    for (const e of entries) {
      // Without --replace git refuses a file where the tree has a directory (or the reverse), instead of dropping that directory.
      await git(['--git-dir', repoPath, 'update-index', '--add', '--cacheinfo', `${e.mode},${e.oid},${e.path}`], { env });
    }
    const tree = (await git(['--git-dir', repoPath, 'write-tree'], { env })).trim();
    return await commitTree(repoPath, tree, [parentCommit], message, date);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

/** The id of the file tree of `commit`: equal for two commits with exactly the same files. */
export async function treeOf(repoPath: string, commit: string): Promise<string> {
  return (await git(['--git-dir', repoPath, 'rev-parse', '--verify', `${commit}^{tree}`])).trim();
}

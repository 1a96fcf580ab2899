import { execFile, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { InputError } from '../domain/errors.js';
import { defaultFreezeLimits, withFrozenCopy, type FrozenCopy, type LiveStat } from './frozen-copy.js';
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
  /** Credentials for an http(s) URL, sent as in remoteEnv (below). */
  auth?: { username: string | null; token: string };
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
    let message = redactUrlCredentials((e as Error).message);
    if (limits.auth) message = message.split(limits.auth.token).join('***');
    throw new InputError(`repoUrl could not be cloned: ${message}`, { field: 'repoUrl' });
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
      ...(limits.auth ? authConfigEnv(repoUrl, limits.auth.username, limits.auth.token, [['http.followRedirects', 'false']]) : {}),
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
 * What the last commit of each workspace read, so the next commit of it need not hash files that
 * did not change (git's own index does this for a work tree; a checkpoint commits a fresh frozen
 * copy, whose inodes and times are new every time, so the identity kept is the live workspace's).
 * A tracked file counts as unchanged when its live inode, size, mode, mtime and ctime are those it
 * had when the commit read it, and that ctime is older than the start of that copy by more than the
 * file system's timestamp granularity (a write in the same tick as the read could otherwise leave
 * every field the same: git's "racily clean"). ctime cannot be set from user space, so restoring
 * old mtimes (tar, cp -p) never hides a change. The memory holds for a parent whose tree is the
 * one it describes (a machine's next checkpoint); any other parent is committed in full. Kept in
 * this process only: after a restart the first checkpoint hashes everything again.
 */
export class GitStatCache {
  private readonly workspaces = new Map<string, { tree: string; startedAt: number; files: Map<string, LiveStat> }>();
  constructor(
    private readonly maxWorkspaces = 64,
    /** Wider than the coarsest timestamp granularity of the file systems a workspace lives on. */
    readonly racyMarginMs = 2_000,
  ) {}

  /** Paths of `live` unchanged since the commit of tree `tree` was made from `workspace`; empty for another tree. */
  unchanged(workspace: string, tree: string, live: Map<string, LiveStat>): Set<string> {
    const seen = this.workspaces.get(workspace);
    const same = new Set<string>();
    if (!seen || seen.tree !== tree) return same;
    const trusted = seen.startedAt - this.racyMarginMs;
    for (const [p, now] of live) {
      const then = seen.files.get(p);
      if (!then || then.ctimeMs >= trusted) continue;
      if (then.ino === now.ino && then.size === now.size && then.mode === now.mode && then.mtimeMs === now.mtimeMs && then.ctimeMs === now.ctimeMs) same.add(p);
    }
    return same;
  }

  remember(workspace: string, tree: string, copy: Pick<FrozenCopy, 'live' | 'startedAt'>): void {
    this.workspaces.delete(workspace); // re-inserted last: the least recently committed workspace is evicted first
    this.workspaces.set(workspace, { tree, startedAt: copy.startedAt, files: copy.live });
    while (this.workspaces.size > this.maxWorkspaces) this.workspaces.delete(this.workspaces.keys().next().value!);
  }

  forget(workspace: string): void {
    this.workspaces.delete(workspace);
  }
}

/** What a commit of files handed to git to read and hash. */
export interface CommitReport {
  /** Paths handed to `git add` (changed, new, deleted or not known); null when the whole tree was. */
  added: string[] | null;
  /** Tracked files taken from the parent's tree without being read, as the stat cache vouched. */
  reused: number;
}

/**
 * Commits the files of `root` as a child of `parentCommit`, without touching any worktree: `root`
 * must be a tree no machine can change (a frozen copy, {@link withFrozenCopy}), since git resolves
 * paths in it again while it reads. A private index starts from the parent's tree, so files the
 * parent tracks stay tracked even where a .gitignore now matches them. With the same files, parent,
 * message and date the commit id is the same, so a retried checkpoint yields the identical commit.
 *
 * With `stats` (the frozen copy of a workspace and a {@link GitStatCache}), tracked files the cache
 * vouches for keep the parent's blob and are neither read nor hashed; git adds only the other
 * tracked paths (changed, deleted, unknown) and the untracked files its ignore rules let in, which
 * gives the same tree as adding everything.
 */
export async function commitFiles(
  repoPath: string,
  root: string,
  parentCommit: string,
  message: string,
  date: Date,
  stats?: { cache: GitStatCache; workspace: string; copy: Pick<FrozenCopy, 'live' | 'startedAt'>; report?: CommitReport },
): Promise<string> {
  const dir = await fs.mkdtemp(path.join(repoPath, 'tmp-index-'));
  // Paths are names, never patterns (a file called '*' must not add its siblings).
  const env = { GIT_INDEX_FILE: path.join(dir, 'index'), GIT_LITERAL_PATHSPECS: '1' };
  const inRoot = ['--git-dir', repoPath, '--work-tree', root];
  try {
    await git(['--git-dir', repoPath, 'read-tree', parentCommit], { env });
    const unchanged = stats ? stats.cache.unchanged(stats.workspace, await treeOf(repoPath, parentCommit), stats.copy.live) : new Set<string>();
    if (!unchanged.size) {
      await git([...inRoot, 'add', '--all', '.'], { env, cwd: root });
      if (stats?.report) Object.assign(stats.report, { added: null, reused: 0 });
    } else {
      const nul = (out: string) => out.split('\0').filter(Boolean);
      const tracked = nul(await git([...inRoot, 'ls-files', '-z'], { env, cwd: root }));
      const untracked = nul(await git([...inRoot, 'ls-files', '-z', '--others', '--exclude-standard'], { env, cwd: root }));
      const added = [...tracked.filter((p) => !unchanged.has(p)), ...untracked];
      if (added.length) {
        const list = path.join(dir, 'paths');
        await fs.writeFile(list, added.join('\0') + '\0');
        await git([...inRoot, 'add', '--all', `--pathspec-from-file=${list}`, '--pathspec-file-nul'], { env, cwd: root });
      }
      if (stats?.report) Object.assign(stats.report, { added, reused: tracked.length - (added.length - untracked.length) });
    }
    const tree = (await git(['--git-dir', repoPath, 'write-tree'], { env })).trim();
    const commit = await commitTree(repoPath, tree, [parentCommit], message, date);
    stats?.cache.remember(stats.workspace, tree, stats.copy);
    return commit;
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

/**
 * Removes a directory tree a machine may have left in any state: read-only or mode-000
 * directories are opened up first when removal is refused (a worker that is not root, or a
 * sandbox user's files). Symlinks are never followed.
 */
export async function removeTree(dir: string): Promise<void> {
  try {
    await fs.rm(dir, { recursive: true, force: true });
    return;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EACCES' && code !== 'EPERM' && code !== 'ENOTEMPTY') throw err;
  }
  const openUp = async (d: string): Promise<void> => {
    await fs.chmod(d, 0o700).catch(() => undefined);
    const entries = await fs.readdir(d, { withFileTypes: true }).catch(() => []);
    for (const e of entries) if (e.isDirectory()) await openUp(path.join(d, e.name));
  };
  await openUp(dir);
  await fs.rm(dir, { recursive: true, force: true });
}

/** Removes the worktree and its files. Idempotent. */
export async function removeWorkspace(repoPath: string, workspace: string): Promise<void> {
  await removeTree(workspace);
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

/** A remote to push to or fetch from, with the credentials git sends to it (http(s) only). */
export interface RemoteAccess {
  url: string;
  username: string | null;
  token: string | null;
  /** URL schemes git may speak (also for redirects, which are not followed anyway). */
  schemes: readonly string[];
  timeoutMs: number;
}

/**
 * The environment of one git command talking to a remote. The token rides in an
 * `Authorization: Basic` header given through GIT_CONFIG_COUNT/KEY/VALUE: never on a command line
 * (other users see those), never in a config file, scoped to the remote's origin; redirects are
 * not followed, git never prompts and no other protocol may be used.
 */
function remoteEnv(remote: RemoteAccess): Record<string, string> {
  // Full commit ids in `push --porcelain` (the old commit of a forced update is not in this repository).
  const config: Array<[string, string]> = [
    ['http.followRedirects', 'false'],
    ['core.abbrev', '40'],
  ];
  return {
    GIT_TERMINAL_PROMPT: '0',
    GIT_ASKPASS: 'true',
    SSH_ASKPASS: 'true',
    GIT_PROTOCOL_FROM_USER: '0',
    GIT_ALLOW_PROTOCOL: remote.schemes.join(':'),
    ...authConfigEnv(remote.url, remote.username, remote.token, config),
  };
}

/** `config` (and, with a token, the Basic auth header scoped to the URL's origin) as GIT_CONFIG_COUNT/KEY/VALUE variables. */
function authConfigEnv(url: string, username: string | null, token: string | null, config: Array<[string, string]>): Record<string, string> {
  const all = [...config];
  if (token) {
    const u = new URL(url);
    const basic = Buffer.from(`${username ?? 'x-access-token'}:${token}`).toString('base64');
    all.push([`http.${u.protocol}//${u.host}/.extraHeader`, `Authorization: Basic ${basic}`]);
  }
  return {
    GIT_CONFIG_COUNT: String(all.length),
    ...Object.fromEntries(
      all.flatMap(([k, v], i) => [
        [`GIT_CONFIG_KEY_${i}`, k],
        [`GIT_CONFIG_VALUE_${i}`, v],
      ]),
    ),
  };
}

/** Text of git's output safe to show: no token, no credentials in a URL. */
function scrub(text: string, remote: RemoteAccess): string {
  let out = redactUrlCredentials(text);
  if (remote.token) {
    out = out.split(remote.token).join('***');
    const basic = Buffer.from(`${remote.username ?? 'x-access-token'}:${remote.token}`).toString('base64');
    out = out.split(basic).join('***');
  }
  return out
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .slice(0, 10)
    .join('; ');
}

/**
 * Runs git against a remote in its own process group, so a timeout also ends git-remote-http and
 * index-pack. Output is capped (the remote's messages are quoted, not stored).
 */
async function remoteGit(repoPath: string, args: string[], remote: RemoteAccess): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = spawn('git', ['--git-dir', repoPath, ...args], {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...IDENTITY, ...remoteEnv(remote) },
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => {
    if (stdout.length < 65536) stdout += d.toString();
  });
  child.stderr!.on('data', (d: Buffer) => {
    if (stderr.length < 8192) stderr += d.toString();
  });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // already gone
    }
  }, remote.timeoutMs);
  try {
    const code = await new Promise<number | null>((resolve, reject) => {
      child.on('error', reject);
      child.on('close', resolve);
    });
    if (timedOut) return { code: -1, stdout, stderr: `no answer within ${Math.round(remote.timeoutMs / 1000)} s` };
    return { code: code ?? -1, stdout, stderr };
  } finally {
    clearTimeout(timer);
  }
}

/** Whether the ref name is one git accepts (`git check-ref-format`). */
export async function validRefName(ref: string): Promise<boolean> {
  return git(['check-ref-format', ref]).then(
    () => true,
    () => false,
  );
}

export type PushOutcome =
  | { status: 'pushed'; previous: string | null; forced: boolean }
  | { status: 'up_to_date'; previous: string }
  | { status: 'rejected'; reason: string }
  | { status: 'failed'; message: string };

/**
 * Pushes `commit` to `refs/heads/<branch>` of the remote (`force`: even when that is not a fast
 * forward). `rejected` is git's refusal of a non-fast-forward; `failed` anything else the remote
 * or the network answered, in a message without credentials.
 */
export async function pushCommit(repoPath: string, remote: RemoteAccess, commit: string, branch: string, force: boolean): Promise<PushOutcome> {
  const refspec = `${force ? '+' : ''}${commit}:refs/heads/${branch}`;
  const { code, stdout, stderr } = await remoteGit(repoPath, ['push', '--porcelain', '--', remote.url, refspec], remote);
  const line = stdout.split('\n').find((l) => /^[ +\-*!=]\t/.test(l));
  const [flag, , summary = ''] = line?.split('\t') ?? [];
  if (flag === '!') {
    if (/non-fast-forward|fetch first|stale info/.test(summary)) return { status: 'rejected', reason: summary.replace(/^\[rejected\]\s*/, '') };
    return { status: 'failed', message: scrub(`${summary}; ${stderr}`, remote) };
  }
  if (code !== 0 || !flag) return { status: 'failed', message: scrub(stderr || stdout || `git push exited with ${code}`, remote) };
  if (flag === '=') return { status: 'up_to_date', previous: commit };
  const range = /^([0-9a-f]+)\.\.\.?([0-9a-f]+)/.exec(summary);
  const previous = range
    ? (await git(['--git-dir', repoPath, 'rev-parse', '--verify', '--quiet', `${range[1]}^{commit}`]).catch(() => range[1]!)).trim()
    : null;
  return { status: 'pushed', previous, forced: flag === '+' };
}

export type FetchOutcome = { status: 'fetched'; tip: string } | { status: 'missing' } | { status: 'failed'; message: string };

/** Fetches `refs/heads/<branch>` of the remote into `refs/imports/heads/<branch>` and returns its tip. */
export async function fetchBranch(repoPath: string, remote: RemoteAccess, branch: string): Promise<FetchOutcome> {
  const local = `refs/imports/heads/${branch}`;
  const { code, stderr } = await remoteGit(
    repoPath,
    ['fetch', '--quiet', '--no-tags', '--no-write-fetch-head', '--', remote.url, `+refs/heads/${branch}:${local}`],
    remote,
  );
  if (code !== 0) {
    if (/couldn't find remote ref/i.test(stderr)) return { status: 'missing' };
    return { status: 'failed', message: scrub(stderr || `git fetch exited with ${code}`, remote) };
  }
  return { status: 'fetched', tip: (await git(['--git-dir', repoPath, 'rev-parse', '--verify', `${local}^{commit}`])).trim() };
}

/** The newest commit among `tip` and its ancestors that is in `known` (first one git lists), or null. */
export async function nearestKnownAncestor(repoPath: string, tip: string, known: ReadonlySet<string>, max = 10_000): Promise<string | null> {
  const out = await git(['--git-dir', repoPath, 'rev-list', '--topo-order', `--max-count=${max}`, tip]);
  return out.split('\n').find((c) => known.has(c.trim())) ?? null;
}

/** One side of a conflict hunk: its lines (1-based start, count) in that side's file, and their text. */
export interface HunkSide {
  start: number;
  count: number;
  text: string;
}

/** One conflicting region of a file: where it is in the file written with conflict markers, and each side. */
export interface MergeHunk {
  /** Lines of the whole marker block (from `<<<<<<<` to `>>>>>>>`) in the conflicted file. */
  conflicted: { start: number; count: number };
  ours: HunkSide;
  /** The merge base's lines; null when the file has no base (added on both sides). */
  base: HunkSide | null;
  theirs: HunkSide;
}

/** A path the merge could not settle: git's conflict kinds and messages for it, and its hunks (text conflicts). */
export interface MergeConflict {
  path: string;
  /** git's names, e.g. `contents`, `modify/delete`, `add/add`, `binary`. */
  types: string[];
  messages: string[];
  hunks: MergeHunk[];
}

export type MergeOutcome = { clean: true; tree: string } | { clean: false; tree: string; conflicts: MergeConflict[] };

const MARK = { ours: '<<<<<<< ', base: '||||||| ', sep: '=======', theirs: '>>>>>>> ' };

/**
 * Merges `theirs` into `ours` with git's own merge (`git merge-tree --write-tree`, diff3-style
 * markers), without touching any worktree. Clean: the merged tree. Conflicts: the tree as written
 * with conflict markers (what a resolving machine starts from) and, per conflicting path, git's
 * conflict kinds and messages, and each marker block's ours/base/theirs text with its lines in
 * each side's own file.
 */
export async function mergeTrees(repoPath: string, ours: string, theirs: string): Promise<MergeOutcome> {
  let stdout: string;
  let clean = true;
  try {
    stdout = (
      await run('git', ['-c', 'merge.conflictStyle=diff3', '--git-dir', repoPath, 'merge-tree', '--write-tree', '-z', ours, theirs], {
        env: { ...process.env, ...IDENTITY },
        maxBuffer: 64 * 1024 * 1024,
      })
    ).stdout;
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string; message: string };
    if (err.code !== 1 || !err.stdout) throw new GitError(`git merge-tree failed: ${(err.stderr || err.message).trim()}`);
    stdout = err.stdout;
    clean = false;
  }
  const parts = stdout.split('\0');
  const tree = parts[0]!;
  if (clean) return { clean: true, tree };
  // Conflicted file info (`<mode> <oid> <stage>\t<path>`) up to an empty field, then messages:
  // `<n>`, n paths, a conflict type, a message; repeated.
  const stages = new Map<string, Map<number, string>>();
  let i = 1;
  for (; i < parts.length && parts[i] !== ''; i++) {
    const [meta, filePath] = parts[i]!.split('\t') as [string, string];
    const [, oid, stage] = meta.split(' ') as [string, string, string];
    if (!stages.has(filePath)) stages.set(filePath, new Map());
    stages.get(filePath)!.set(Number(stage), oid);
  }
  const info = new Map<string, { types: string[]; messages: string[] }>();
  for (i += 1; i < parts.length && parts[i] !== '';) {
    const n = Number(parts[i]);
    const paths = parts.slice(i + 1, i + 1 + n);
    const type = parts[i + 1 + n] ?? '';
    const message = (parts[i + 2 + n] ?? '').trim();
    i += n + 3;
    if (type === 'Auto-merging') continue;
    for (const p of paths) {
      const entry = info.get(p) ?? { types: [], messages: [] };
      entry.types.push(type.replace(/^CONFLICT \((.*)\)$/, '$1'));
      entry.messages.push(message);
      info.set(p, entry);
    }
  }
  const conflicts: MergeConflict[] = [];
  for (const [filePath, byStage] of stages) {
    const written = await blobAt(repoPath, tree, filePath);
    const hunks = written ? await hunksOf(repoPath, written.oid, byStage) : [];
    conflicts.push({ path: filePath, types: info.get(filePath)?.types ?? [], messages: info.get(filePath)?.messages ?? [], hunks });
  }
  return { clean: false, tree, conflicts: conflicts.sort((a, b) => a.path.localeCompare(b.path)) };
}

const linesOf = (text: string): string[] => (text === '' ? [] : text.replace(/\n$/, '').split('\n'));

/**
 * The marker blocks of a conflicted file, each side located in its own file: the conflicted file
 * with every block replaced by one side's lines differs from that side's file only where the other
 * side's clean changes landed, so a line-level diff of the two maps each block to its lines.
 */
async function hunksOf(repoPath: string, conflictedOid: string, stages: Map<number, string>): Promise<MergeHunk[]> {
  const [conflicted] = await readBlobs(repoPath, [conflictedOid]);
  const lines = linesOf(conflicted!.toString('utf8'));
  interface Block {
    start: number;
    end: number;
    ours: string[];
    base: string[] | null;
    theirs: string[];
  }
  const blocks: Block[] = [];
  let block: Block | null = null;
  let section: 'ours' | 'base' | 'theirs' = 'ours';
  lines.forEach((line, n) => {
    if (!block && line.startsWith(MARK.ours)) {
      block = { start: n, end: n, ours: [], base: null, theirs: [] };
      section = 'ours';
    } else if (block && line.startsWith(MARK.base) && section === 'ours') {
      block.base = [];
      section = 'base';
    } else if (block && line === MARK.sep && section !== 'theirs') {
      section = 'theirs';
    } else if (block && line.startsWith(MARK.theirs) && section === 'theirs') {
      block.end = n;
      blocks.push(block);
      block = null;
    } else if (block) {
      (section === 'base' ? block.base! : block[section]).push(line);
    }
  });
  if (!blocks.length) return [];
  const sideStart = async (side: 'ours' | 'base' | 'theirs', stage: number): Promise<number[] | null> => {
    const oid = stages.get(stage);
    if (!oid) return null;
    // The conflicted file with every block replaced by this side's lines, and where each block went.
    const out: string[] = [];
    const starts: number[] = [];
    let at = 0;
    for (const b of blocks) {
      out.push(...lines.slice(at, b.start));
      starts.push(out.length + 1);
      out.push(...(b[side] ?? []));
      at = b.end + 1;
    }
    out.push(...lines.slice(at));
    const replaced = await writeBlob(repoPath, Buffer.from(out.length ? out.join('\n') + '\n' : ''));
    const diff = await git(['--git-dir', repoPath, 'diff', '-U0', '--no-color', '--no-ext-diff', oid, replaced]);
    const changes = [...diff.matchAll(/^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@/gm)].map((m) => ({
      oldCount: m[2] === undefined ? 1 : Number(m[2]),
      newStart: Number(m[3]),
      newCount: m[4] === undefined ? 1 : Number(m[4]),
    }));
    // A line of the replaced file maps to the side's file by the changes before it.
    return starts.map((s) => {
      let offset = 0;
      for (const c of changes) {
        const newEnd = c.newCount === 0 ? c.newStart : c.newStart + c.newCount - 1;
        if (newEnd < s || (c.newCount === 0 && c.newStart < s)) offset += c.oldCount - c.newCount;
      }
      return s + offset;
    });
  };
  const [oursAt, baseAt, theirsAt] = await Promise.all([sideStart('ours', 2), sideStart('base', 1), sideStart('theirs', 3)]);
  const side = (text: string[], at: number[] | null, k: number): HunkSide => ({
    start: at?.[k] ?? 1,
    count: text.length,
    text: text.length ? text.join('\n') + '\n' : '',
  });
  return blocks.map((b, k) => ({
    conflicted: { start: b.start + 1, count: b.end - b.start + 1 },
    ours: side(b.ours, oursAt, k),
    base: b.base && baseAt ? side(b.base, baseAt, k) : null,
    theirs: side(b.theirs, theirsAt, k),
  }));
}

/** A merge commit of `tree` with `parents` (first: the branch merged into). */
export async function commitMerge(repoPath: string, tree: string, parents: string[], message: string, date: Date): Promise<string> {
  return commitTree(repoPath, tree, parents, message, date);
}

/** Whether any line of the file at `commit` is a conflict marker (`<<<<<<< ` or `>>>>>>> `). */
export async function hasConflictMarkers(repoPath: string, commit: string, filePath: string): Promise<boolean> {
  const bytes = await readFileAt(repoPath, commit, filePath);
  if (!bytes) return false;
  return /^(<{7}|>{7})( |$)/m.test(bytes.toString('utf8'));
}

/** Whether `ancestor` is `commit` or one of its ancestors. */
export async function isAncestor(repoPath: string, ancestor: string, commit: string): Promise<boolean> {
  return git(['--git-dir', repoPath, 'merge-base', '--is-ancestor', ancestor, commit]).then(
    () => true,
    () => false,
  );
}

/**
 * A new bare repository holding the given checkpoints' commits of another, each pinned under its
 * new id (`refs/checkpoints/<to>`): a recovered copy of a project's tree. Nothing else is copied.
 */
export async function copyCheckpointsToNewRepo(fromRepo: string, toRepo: string, pins: ReadonlyArray<{ from: string; to: string }>): Promise<void> {
  await fs.mkdir(path.dirname(toRepo), { recursive: true });
  await git(['init', '--quiet', '--bare', toRepo]);
  for (let i = 0; i < pins.length; i += 200) {
    const refspecs = pins.slice(i, i + 200).map((p) => `refs/checkpoints/${p.from}:refs/checkpoints/${p.to}`);
    await git(['--git-dir', toRepo, 'fetch', '--quiet', '--no-tags', '--no-write-fetch-head', fromRepo, ...refspecs]);
  }
}

/**
 * Moves checkpoints' pins from `refs/checkpoints/<id>` to `refs/recovered/<recoveryId>/<id>`: the
 * tree no longer shows them, and their commits stay in the repository (never collected).
 */
export async function retireCheckpointRefs(repoPath: string, recoveryId: string, pins: ReadonlyArray<{ id: string; commit: string }>): Promise<void> {
  if (!pins.length) return;
  const script = pins.flatMap((p) => [`create refs/recovered/${recoveryId}/${p.id} ${p.commit}`, `delete refs/checkpoints/${p.id}`]).join('\n');
  await new Promise<void>((resolve, reject) => {
    const child = spawn('git', ['--git-dir', repoPath, 'update-ref', '--stdin'], { env: { ...process.env, ...IDENTITY, GIT_TERMINAL_PROMPT: '0' } });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new GitError(`git update-ref failed: ${stderr.trim()}`))));
    child.stdin.end(`${script}\n`);
  });
}

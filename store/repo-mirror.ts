import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Knex } from 'knex';
import type { Db } from './db.js';
import { GitError } from './git.js';
import { getFile, putFile, type ObjectStore } from './object-store.js';

/**
 * Project repositories in the shared object store, so any api or worker host can serve any
 * project. The canonical copy of a project's git objects is one bundle per checkpoint,
 * `<projectId>/checkpoints/<checkpointId>.bundle`, holding the ref `refs/checkpoints/<id>` and the
 * objects its commit has beyond its parent checkpoints' commits; it is written when the
 * checkpoint is recorded, before its row. The refs' authority is Postgres: a checkpoint's row
 * names its commit, each ref is written once under the checkpoint's unique id and never moved, so
 * two workers recording checkpoints of one project at once never lose one another's refs. A host's
 * `<projectsDir>/<projectId>.git` is its cache: a host that lacks checkpoints of a project fetches
 * their bundles before it reads or writes the repository.
 */
const run = promisify(execFile);

async function git(args: string[], input?: string): Promise<string> {
  if (input === undefined) {
    try {
      return (await run('git', args, { maxBuffer: 64 * 1024 * 1024, env: { ...process.env, GIT_TERMINAL_PROMPT: '0' } })).stdout;
    } catch (e) {
      const err = e as { stderr?: string; message: string };
      throw new GitError(`git ${args.find((a) => !a.startsWith('-') && !a.includes('/')) ?? ''} failed: ${(err.stderr || err.message).trim()}`);
    }
  }
  return new Promise((resolve, reject) => {
    const child = spawn('git', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const errs: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => errs.push(d));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve(Buffer.concat(out).toString()) : reject(new GitError(`git failed: ${Buffer.concat(errs).toString().trim()}`)),
    );
    child.stdin.end(input);
  });
}

/** Which of `oids` are commits the repository has. */
async function presentCommits(repo: string, oids: string[]): Promise<Set<string>> {
  if (!oids.length) return new Set();
  const out = await git(['--git-dir', repo, 'cat-file', '--batch-check=%(objectname) %(objecttype)'], oids.map((o) => `${o}^{commit}`).join('\n') + '\n');
  const present = new Set<string>();
  for (const line of out.split('\n')) {
    const [oid, type] = line.split(' ');
    if (type === 'commit') present.add(oid!);
  }
  return present;
}

/** The prerequisite commits a bundle's header names (lines `-<oid> …`). */
async function bundlePrerequisites(file: string): Promise<string[]> {
  const handle = await fs.open(file, 'r');
  try {
    const { buffer, bytesRead } = await handle.read(Buffer.alloc(256 * 1024), 0, 256 * 1024, 0);
    const header = buffer.subarray(0, bytesRead).toString('latin1');
    const end = header.indexOf('\n\n');
    if (!header.startsWith('# v') || end < 0) throw new GitError(`${path.basename(file)} is not a git bundle`);
    return header
      .slice(0, end)
      .split('\n')
      .filter((l) => l.startsWith('-'))
      .map((l) => l.slice(1, 41));
  } finally {
    await handle.close();
  }
}

export interface PublishInput {
  projectId: string;
  checkpointId: string;
  commit: string;
  /** The checkpoints it continues from (their bundles carry what it shares with them). */
  parentIds: Array<string | null | undefined>;
}

export class RepoMirror {
  /** One hydration of a repository at a time in this process. */
  private readonly locks = new Map<string, Promise<unknown>>();

  /** `objects`: the shared store's `repos/` view; `projectsDir`: this host's repositories (the cache). */
  constructor(
    readonly objects: ObjectStore,
    readonly projectsDir: string,
  ) {}

  localPath(projectId: string): string {
    return path.join(this.projectsDir, `${projectId}.git`);
  }

  bundleKey(projectId: string, checkpointId: string): string {
    return `${projectId}/checkpoints/${checkpointId}.bundle`;
  }

  /**
   * Writes the bundle of a checkpoint whose ref is pinned in `repo`: its commit's objects beyond
   * its parents' commits. Idempotent (a bundle already there is kept). A commit its parents
   * already reach needs no bundle: hydrating the parents brings it.
   */
  async publish(db: Db | Knex.Transaction, repo: string, input: PublishInput): Promise<void> {
    const key = this.bundleKey(input.projectId, input.checkpointId);
    if (await this.objects.head(key)) return;
    const parentIds = input.parentIds.filter((p): p is string => Boolean(p));
    const parents = parentIds.length ? ((await db('checkpoints').whereIn('id', parentIds).pluck('commit')) as string[]) : [];
    const not = [...new Set(parents)];
    const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'autovibe-bundle-'));
    try {
      const file = path.join(tmp, 'checkpoint.bundle');
      try {
        await git(
          ['--git-dir', repo, 'bundle', 'create', '--quiet', file, '--stdin'],
          [`refs/checkpoints/${input.checkpointId}`, ...not.map((c) => `^${c}`)].join('\n') + '\n',
        );
      } catch (err) {
        if (/empty bundle/i.test((err as Error).message)) return;
        throw err;
      }
      await putFile(this.objects, key, file);
    } finally {
      await fs.rm(tmp, { recursive: true, force: true });
    }
  }

  /**
   * Writes the bundles the store lacks of the project's checkpoints this host's copy has (for a
   * deployment that turns a shared store on, or a checkpoint recorded without one). Returns how
   * many it wrote.
   */
  async publishMissing(db: Db, projectId: string): Promise<number> {
    const repo = this.localPath(projectId);
    const rows = (await db('checkpoints')
      .where({ project_id: projectId })
      .orderBy([{ column: 'created_at' }, { column: 'id' }])
      .select('id', 'commit', 'parent_id', 'merge_parent_id')) as Array<{
      id: string;
      commit: string;
      parent_id: string | null;
      merge_parent_id: string | null;
    }>;
    const have = await presentCommits(
      repo,
      rows.map((r) => r.commit),
    ).catch(() => new Set<string>());
    let written = 0;
    for (const r of rows) {
      if (!have.has(r.commit) || (await this.objects.head(this.bundleKey(projectId, r.id)))) continue;
      await git(['--git-dir', repo, 'update-ref', `refs/checkpoints/${r.id}`, r.commit]);
      await this.publish(db, repo, { projectId, checkpointId: r.id, commit: r.commit, parentIds: [r.parent_id, r.merge_parent_id] });
      if (await this.objects.head(this.bundleKey(projectId, r.id))) written += 1;
    }
    return written;
  }

  /**
   * Makes this host's copy of the project's repository hold every checkpoint recorded so far
   * (fetching the bundles it lacks from the store) and returns its path. With `commits`, a copy
   * that already has them all is returned as it is.
   */
  async hydrate(db: Db, projectId: string, commits: string[] = []): Promise<string> {
    const repo = this.localPath(projectId);
    const previous = this.locks.get(repo) ?? Promise.resolve();
    const mine = previous.catch(() => undefined).then(() => this.sync(db, projectId, repo, commits));
    this.locks.set(repo, mine);
    try {
      return await mine;
    } finally {
      if (this.locks.get(repo) === mine) this.locks.delete(repo);
    }
  }

  private async sync(db: Db, projectId: string, repo: string, commits: string[]): Promise<string> {
    const exists = await fs.stat(path.join(repo, 'HEAD')).then(
      () => true,
      () => false,
    );
    if (!exists) {
      await fs.mkdir(this.projectsDir, { recursive: true });
      await git(['init', '--quiet', '--bare', repo]);
    } else if (commits.length && (await presentCommits(repo, commits)).size === new Set(commits).size) {
      return repo;
    }
    const rows = (await db('checkpoints')
      .where({ project_id: projectId })
      .orderBy([{ column: 'created_at' }, { column: 'id' }])
      .select('id', 'commit')) as Array<{
      id: string;
      commit: string;
    }>;
    const pinned = new Set((await git(['--git-dir', repo, 'for-each-ref', '--format=%(refname)', 'refs/checkpoints/'])).split('\n').filter(Boolean));
    let missing = rows.filter((r) => !pinned.has(`refs/checkpoints/${r.id}`));
    if (!missing.length) return this.checked(repo, projectId, commits);

    const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'autovibe-hydrate-'));
    try {
      const bundles = new Map<string, { file: string; prerequisites: string[] } | null>();
      for (;;) {
        for (const m of missing) {
          if (bundles.has(m.id)) continue;
          const file = path.join(tmp, `${m.id}.bundle`);
          const found = await getFile(this.objects, this.bundleKey(projectId, m.id), file);
          bundles.set(m.id, found ? { file, prerequisites: await bundlePrerequisites(file) } : null);
        }
        const have = await presentCommits(repo, [...missing.map((m) => m.commit), ...[...bundles.values()].flatMap((b) => b?.prerequisites ?? [])]);
        // A checkpoint whose commit is here already needs its ref only.
        const pins = missing.filter((m) => have.has(m.commit));
        if (pins.length)
          await git(['--git-dir', repo, 'update-ref', '--stdin'], pins.map((m) => `update refs/checkpoints/${m.id} ${m.commit}`).join('\n') + '\n');
        missing = missing.filter((m) => !have.has(m.commit));
        let progressed = pins.length > 0;
        for (const m of missing) {
          const b = bundles.get(m.id);
          if (!b || !b.prerequisites.every((p) => have.has(p))) continue;
          await git([
            '--git-dir',
            repo,
            'fetch',
            '--quiet',
            '--no-tags',
            '--no-write-fetch-head',
            b.file,
            `+refs/checkpoints/${m.id}:refs/checkpoints/${m.id}`,
          ]);
          progressed = true;
          bundles.delete(m.id);
          missing = missing.filter((x) => x.id !== m.id);
          await fs.rm(b.file, { force: true });
          // What it brought may hold other checkpoints' commits and prerequisites: look again.
          break;
        }
        if (!progressed || !missing.length) break;
      }
    } finally {
      await fs.rm(tmp, { recursive: true, force: true });
    }
    return this.checked(repo, projectId, commits);
  }

  private async checked(repo: string, projectId: string, commits: string[]): Promise<string> {
    if (!commits.length) return repo;
    const have = await presentCommits(repo, commits);
    const absent = commits.filter((c) => !have.has(c));
    if (absent.length) throw new GitError(`commit ${absent[0]} of project ${projectId} is in no bundle of ${this.objects.location} yet`);
    return repo;
  }
}

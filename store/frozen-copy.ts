import { constants as C } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';

/**
 * A frozen copy of a live workspace: the only code that reads a workspace a machine may still be
 * changing. Everything downstream (git's commit, the chunk-store snapshot) reads the copy, which
 * lives beside the workspace where the machine cannot reach it, so the commit and the snapshot
 * agree and nothing the machine does afterwards can change what they read.
 *
 * The walk never resolves a path the machine controls twice. Each directory is opened once
 * (O_NOFOLLOW | O_DIRECTORY) and its entries are reached through that open descriptor
 * (`/proc/self/fd/<fd>/<name>`, Node's stand-in for openat), each opened with O_NOFOLLOW and
 * O_NONBLOCK and checked with fstat on the descriptor itself: a directory swapped for a symlink to
 * /etc, or a file swapped for a FIFO, is refused or skipped — never followed, never waited on.
 * Symlinks are copied as links (their target text), never followed. Modes are changed only through
 * descriptors of inodes already checked, never through a path (no chmod through links).
 *
 * Files that are no content of a workspace are skipped with a reason: FIFOs, sockets, devices, files
 * larger than the limit (a 3 GiB sparse file is skipped from its size, without reading it), trees
 * deeper than the limit, and `.git` files or `commondir` files that would make git read another
 * repository of the host. The walk ends with {@link FreezeError} when it passes its deadline.
 */

/** Linux's O_PATH (Node does not export it): an fd naming an inode without opening it for I/O. */
const O_PATH = 0o10000000;
const OPEN_DIR = C.O_RDONLY | C.O_DIRECTORY | C.O_NOFOLLOW | C.O_NONBLOCK;
const OPEN_FILE = C.O_RDONLY | C.O_NOFOLLOW | C.O_NONBLOCK | C.O_NOCTTY;
/** setuid/setgid never reach the copy (the worker may be root; restores would bring them back). */
const KEPT_MODE = 0o1777;

export interface FreezeLimits {
  /** Files larger than this are left out (with a reason). */
  maxFileBytes: number;
  /** Directories nested deeper than this are left out (each level holds one descriptor). */
  maxDepth: number;
  /** Epoch ms after which the copy gives up with {@link FreezeError}. */
  deadline: number;
}

export const DEFAULT_FREEZE_LIMITS = {
  maxFileBytes: 1024 * 1024 * 1024,
  maxDepth: 200,
  /** Within the one minute a checkpoint activity has. */
  timeoutMs: 40_000,
};

export function defaultFreezeLimits(now = Date.now()): FreezeLimits {
  return { maxFileBytes: DEFAULT_FREEZE_LIMITS.maxFileBytes, maxDepth: DEFAULT_FREEZE_LIMITS.maxDepth, deadline: now + DEFAULT_FREEZE_LIMITS.timeoutMs };
}

export interface SkippedEntry {
  path: string;
  reason: string;
}

/** What a workspace entry's stat said when the copy read it: its identity for a stat cache. */
export interface LiveStat {
  ino: number;
  size: number;
  mode: number;
  mtimeMs: number;
  ctimeMs: number;
}

export interface FrozenCopy {
  /** The copy's root directory (private to the host). */
  root: string;
  /** Entries of the workspace left out of the copy, and why. */
  skipped: SkippedEntry[];
  files: number;
  bytes: number;
  /**
   * The live workspace's stat of every file and symlink in the copy (by path), taken on the
   * descriptor the copy read from, before it read: a file whose stat is the same at the next copy
   * has the same content, unless it changed in the same timestamp tick (see `startedAt`).
   */
  live: Map<string, LiveStat>;
  /** Epoch ms at which the copy began: stats whose ctime is this close to it are not trusted later. */
  startedAt: number;
}

/** The workspace could not be copied (deadline passed, root not a directory). */
export class FreezeError extends Error {
  override name = 'FreezeError';
}

const viaFd = (fd: number, name?: string) => (name === undefined ? `/proc/self/fd/${fd}` : `/proc/self/fd/${fd}/${name}`);
const code = (err: unknown) => (err as NodeJS.ErrnoException).code;
/** The machine removed or replaced the entry while we looked: it is not in the copy. */
const RACED = new Set(['ENOENT', 'ELOOP', 'ENOTDIR', 'EINVAL', 'ENXIO']);

function kindOf(mode: number): string {
  switch (mode & C.S_IFMT) {
    case C.S_IFIFO:
      return 'a FIFO';
    case C.S_IFSOCK:
      return 'a socket';
    case C.S_IFCHR:
      return 'a character device';
    case C.S_IFBLK:
      return 'a block device';
    default:
      return 'not a regular file, directory or symlink';
  }
}

/**
 * Opens `name` in the directory open as `dirFd`, never following a link at its last component.
 * An entry the worker may not read (a machine made it mode 000; only when the worker is not root)
 * is lent the owner's `bits` through an O_PATH descriptor of the checked inode, then given back.
 */
async function openAt(dirFd: number, name: string, flags: number, bits: number): Promise<fs.FileHandle> {
  try {
    return await fs.open(viaFd(dirFd, name), flags);
  } catch (err) {
    if (code(err) !== 'EACCES') throw err;
  }
  const pinned = await fs.open(viaFd(dirFd, name), O_PATH | C.O_NOFOLLOW);
  try {
    const st = await pinned.stat();
    if (!st.isFile() && !st.isDirectory()) throw Object.assign(new Error('changed while read'), { code: 'EINVAL' });
    // chmod through the O_PATH descriptor's magic link: the inode just checked, not a path.
    await fs.chmod(viaFd(pinned.fd), (st.mode & 0o7777) | bits);
    try {
      return await fs.open(viaFd(pinned.fd), flags & ~C.O_NOFOLLOW);
    } finally {
      await fs.chmod(viaFd(pinned.fd), st.mode & 0o7777);
    }
  } finally {
    await pinned.close();
  }
}

/** Copies the live tree at `source` (without its top-level `.git`) into the new directory `dest`. */
export async function freezeTree(source: string, dest: string, limits: FreezeLimits): Promise<Omit<FrozenCopy, 'root'>> {
  const startedAt = Date.now();
  const live = new Map<string, LiveStat>();
  const identity = (st: { ino: number; size: number; mode: number; mtimeMs: number; ctimeMs: number }): LiveStat => ({
    ino: st.ino,
    size: st.size,
    mode: st.mode,
    mtimeMs: st.mtimeMs,
    ctimeMs: st.ctimeMs,
  });
  const skipped: SkippedEntry[] = [];
  let files = 0;
  let bytes = 0;
  let root: fs.FileHandle;
  try {
    root = await fs.open(source, OPEN_DIR);
  } catch (err) {
    throw new FreezeError(`workspace ${source} cannot be read as a directory: ${(err as Error).message}`);
  }
  const rootDev = (await root.stat()).dev;
  const dirModes: Array<{ abs: string; mode: number }> = [];

  async function walk(dir: fs.FileHandle, rel: string, out: string, depth: number): Promise<void> {
    let names: string[];
    try {
      names = (await fs.readdir(viaFd(dir.fd))).sort();
    } catch (err) {
      if (RACED.has(code(err) ?? '')) return;
      throw err;
    }
    for (const name of names) {
      if (Date.now() > limits.deadline)
        throw new FreezeError(`the workspace could not be copied for a checkpoint before its deadline (${files} files, ${bytes} bytes so far)`);
      const relPath = rel ? `${rel}/${name}` : name;
      if (relPath === '.git') continue; // the worktree's link into the host repository
      const skip = (reason: string) => void skipped.push({ path: relPath, reason });
      let st;
      try {
        st = await fs.lstat(viaFd(dir.fd, name));
      } catch (err) {
        if (RACED.has(code(err) ?? '')) continue;
        throw err;
      }
      const target = path.join(out, name);
      if (st.isSymbolicLink()) {
        if (name === '.git') {
          skip('a .git link would make git read another repository');
          continue;
        }
        const link = await fs.readlink(viaFd(dir.fd, name)).catch((err) => (RACED.has(code(err) ?? '') ? null : Promise.reject(err)));
        if (link !== null) {
          await fs.symlink(link, target);
          live.set(relPath, identity(st));
        }
      } else if (st.isDirectory()) {
        if (depth + 1 > limits.maxDepth) {
          skip(`nested deeper than ${limits.maxDepth} directories`);
          continue;
        }
        let child: fs.FileHandle;
        try {
          child = await openAt(dir.fd, name, OPEN_DIR, 0o500);
        } catch (err) {
          if (RACED.has(code(err) ?? '')) continue; // swapped for a link or a file since the lstat
          throw err;
        }
        try {
          const cst = await child.stat();
          if (cst.dev !== rootDev) {
            skip('another file system is mounted there');
            continue;
          }
          await fs.mkdir(target, { mode: 0o700 });
          dirModes.push({ abs: target, mode: cst.mode & KEPT_MODE });
          await walk(child, relPath, target, depth + 1);
        } finally {
          await child.close();
        }
      } else if (st.isFile()) {
        if (name === '.git' || (name === 'commondir' && path.basename(rel) === '.git')) {
          skip('a .git file would make git read another repository');
          continue;
        }
        if (st.size > limits.maxFileBytes) {
          skip(`larger than ${limits.maxFileBytes} bytes (${st.size})`);
          continue;
        }
        let fh: fs.FileHandle;
        try {
          fh = await openAt(dir.fd, name, OPEN_FILE, 0o400);
        } catch (err) {
          if (RACED.has(code(err) ?? '')) continue;
          throw err;
        }
        try {
          const fst = await fh.stat();
          // Swapped since the lstat (a FIFO opened non-blocking, a device): not read.
          if (!fst.isFile()) {
            skip(`${kindOf(fst.mode)} (swapped in while the checkpoint read it)`);
            continue;
          }
          if (fst.size > limits.maxFileBytes) {
            skip(`larger than ${limits.maxFileBytes} bytes (${fst.size})`);
            continue;
          }
          // The open descriptor's magic link names the inode checked above, not a path again.
          await fs.copyFile(viaFd(fh.fd), target, C.COPYFILE_FICLONE);
          const copied = await fs.stat(target);
          // It grew past the limit while copied.
          if (copied.size > limits.maxFileBytes) {
            await fs.rm(target, { force: true });
            skip(`larger than ${limits.maxFileBytes} bytes (grew while copied)`);
            continue;
          }
          await fs.chmod(target, fst.mode & KEPT_MODE);
          live.set(relPath, identity(fst));
          files += 1;
          bytes += copied.size;
        } finally {
          await fh.close();
        }
      } else {
        skip(kindOf(st.mode));
      }
    }
  }

  try {
    if (!(await root.stat()).isDirectory()) throw new FreezeError(`workspace ${source} is not a directory`);
    await fs.mkdir(dest, { mode: 0o700 });
    await walk(root, '', dest, 0);
    // Children first: a read-only directory of the copy is made read-only after it is filled.
    for (const d of dirModes.reverse()) await fs.chmod(d.abs, d.mode);
  } finally {
    await root.close();
  }
  return { skipped, files, bytes, live, startedAt };
}

/**
 * Runs `fn` over a frozen copy of `workspace`, made beside it (same file system, out of the
 * machine's sight) and removed afterwards whatever happens.
 */
export async function withFrozenCopy<T>(workspace: string, limits: FreezeLimits, fn: (copy: FrozenCopy) => Promise<T>): Promise<T> {
  const holder = await fs.mkdtemp(path.join(path.dirname(workspace), '.autovibe-frozen-'));
  try {
    const root = path.join(holder, 'tree');
    const result = await freezeTree(workspace, root, limits);
    return await fn({ root, ...result });
  } finally {
    await removeTree(holder);
  }
}

/** Removes a frozen copy, read-only directories included (its owner may write them after a chmod). */
async function removeTree(dir: string): Promise<void> {
  try {
    await fs.rm(dir, { recursive: true, force: true });
  } catch (err) {
    if (code(err) !== 'EACCES') throw err;
    // Not root: make the copy's own directories (none a link: it is private) writable, then remove.
    const stack = [dir];
    while (stack.length) {
      const d = stack.pop()!;
      await fs.chmod(d, 0o700).catch(() => undefined);
      for (const e of await fs.readdir(d, { withFileTypes: true }).catch(() => [])) if (e.isDirectory()) stack.push(path.join(d, e.name));
    }
    await fs.rm(dir, { recursive: true, force: true });
  }
}

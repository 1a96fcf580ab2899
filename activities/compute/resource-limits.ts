import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { RESOURCE_LIMIT_REASONS, type ResourceLimits } from '../../domain/machines.js';

/**
 * Resource limits of a sandbox on this host, through the kernel's control groups: memory (the OOM
 * killer acts inside the group only), processes (fork fails at the limit), CPU (a CFS quota of the
 * profile's cores, and a matching share). Works with cgroup v1 controllers (this host: memory, pids
 * and cpu mounted under /sys/fs/cgroup/<controller>) and with the unified v2 hierarchy. A group is
 * made per command, below the worker's own group (so the worker's limits still hold over it), and
 * removed when the command ends. A limit that was hit is reported by name: the caller stops the
 * whole sandbox and fails the machine with it.
 */
export interface SandboxCgroup {
  /** `cgroup.procs` files a process writes its pid to, to join the group (before exec of the sandbox). */
  readonly procsFiles: string[];
  /** Which limit was hit, if any (read from the kernel's event counters). */
  exceeded(): string | null;
  /** Memory the group uses now (bytes), or null when the kernel does not say. */
  memoryBytes(): number | null;
  /** SIGKILLs every process still in the group (repeats while new ones appear). */
  killAll(): void;
  /** Removes the group (after its processes ended); whether it is gone. Safe to repeat. */
  remove(): boolean;
}

const CGROUP_ROOT = '/sys/fs/cgroup';
const V1_CONTROLLERS = ['memory', 'pids', 'cpu'] as const;
const CFS_PERIOD_US = 100_000;

const read = (file: string): string | null => {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return null;
  }
};
/** `key value` lines (memory.oom_control, pids.events, memory.events) → the value of `key`. */
const counter = (text: string | null, key: string): number => {
  const m = text && new RegExp(`^${key} (\\d+)$`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
};

/** The worker's own group path per controller ('' key: the v2 hierarchy), from /proc/self/cgroup. */
function ownGroups(pid: number | 'self' = 'self'): Map<string, string> {
  const groups = new Map<string, string>();
  for (const line of (read(`/proc/${pid}/cgroup`) ?? '').split('\n')) {
    const m = /^\d+:([^:]*):(.*)$/.exec(line);
    if (!m) continue;
    for (const c of m[1]!.split(',')) groups.set(c, m[2]!);
  }
  return groups;
}

function isV2(): boolean {
  return fs.existsSync(path.join(CGROUP_ROOT, 'cgroup.controllers'));
}

let warned = false;

/**
 * A new group for one sandbox with `limits`, or null where the kernel offers none to this process
 * (no cgroup filesystem, not writable): the sandbox then has its rlimits and the disk watch only.
 */
export function createSandboxCgroup(name: string, limits: ResourceLimits, onUnavailable?: (reason: string) => void): SandboxCgroup | null {
  const unique = `${name.replace(/[^A-Za-z0-9_.-]/g, '_')}-${crypto.randomBytes(4).toString('hex')}`;
  try {
    return isV2() ? createV2(unique, limits) : createV1(unique, limits);
  } catch (err) {
    if (!warned) onUnavailable?.(`no cgroup limits for sandboxes: ${(err as Error).message}`);
    warned = true;
    return null;
  }
}

function createV1(unique: string, limits: ResourceLimits): SandboxCgroup {
  const own = ownGroups();
  const dirs: Record<(typeof V1_CONTROLLERS)[number], string> = { memory: '', pids: '', cpu: '' };
  const made: string[] = [];
  try {
    for (const c of V1_CONTROLLERS) {
      const mount = path.join(CGROUP_ROOT, c);
      if (!fs.existsSync(path.join(mount, 'cgroup.procs'))) throw new Error(`cgroup v1 controller ${c} is not mounted at ${mount}`);
      const dir = path.join(mount, own.get(c) ?? '/', 'autovibe', unique);
      fs.mkdirSync(dir, { recursive: true });
      made.push(dir);
      dirs[c] = dir;
    }
    const bytes = limits.memoryMiB * 1024 * 1024;
    fs.writeFileSync(path.join(dirs.memory, 'memory.limit_in_bytes'), String(bytes));
    // With swap, memory+swap is capped too (the file exists only when swap accounting is on).
    if (fs.existsSync(path.join(dirs.memory, 'memory.memsw.limit_in_bytes'))) {
      fs.writeFileSync(path.join(dirs.memory, 'memory.memsw.limit_in_bytes'), String(bytes));
    }
    fs.writeFileSync(path.join(dirs.pids, 'pids.max'), String(limits.pids));
    fs.writeFileSync(path.join(dirs.cpu, 'cpu.cfs_period_us'), String(CFS_PERIOD_US));
    fs.writeFileSync(path.join(dirs.cpu, 'cpu.cfs_quota_us'), String(Math.max(1000, Math.round(limits.cpus * CFS_PERIOD_US))));
    fs.writeFileSync(path.join(dirs.cpu, 'cpu.shares'), String(Math.max(2, Math.round(limits.cpus * 1024))));
  } catch (err) {
    for (const d of made) tryRmdir(d);
    throw err;
  }
  return groupOf(
    made,
    () => counter(read(path.join(dirs.memory, 'memory.oom_control')), 'oom_kill') > 0,
    () => counter(read(path.join(dirs.pids, 'pids.events')), 'max') > 0,
    limits,
    path.join(dirs.memory, 'memory.usage_in_bytes'),
  );
}

function createV2(unique: string, limits: ResourceLimits): SandboxCgroup {
  // v2 forbids processes in a group whose controllers are delegated to children, so the sandboxes'
  // groups hang below a group of their own next to the worker's, with the controllers enabled.
  const own = ownGroups().get('') ?? '/';
  const parent = path.join(CGROUP_ROOT, path.dirname(own), 'autovibe-sandboxes');
  fs.mkdirSync(parent, { recursive: true });
  fs.writeFileSync(path.join(parent, 'cgroup.subtree_control'), '+memory +pids +cpu');
  const dir = path.join(parent, unique);
  fs.mkdirSync(dir);
  try {
    fs.writeFileSync(path.join(dir, 'memory.max'), String(limits.memoryMiB * 1024 * 1024));
    if (fs.existsSync(path.join(dir, 'memory.swap.max'))) fs.writeFileSync(path.join(dir, 'memory.swap.max'), '0');
    fs.writeFileSync(path.join(dir, 'pids.max'), String(limits.pids));
    fs.writeFileSync(path.join(dir, 'cpu.max'), `${Math.max(1000, Math.round(limits.cpus * CFS_PERIOD_US))} ${CFS_PERIOD_US}`);
  } catch (err) {
    tryRmdir(dir);
    throw err;
  }
  return groupOf(
    [dir],
    () => counter(read(path.join(dir, 'memory.events')), 'oom_kill') > 0,
    () => counter(read(path.join(dir, 'pids.events')), 'max') > 0,
    limits,
    path.join(dir, 'memory.current'),
  );
}

/**
 * Removes the groups sandboxes named `name` left behind (a worker that died mid-command), killing
 * whatever still runs in them first. Returns how many were removed.
 */
export function removeSandboxCgroups(name: string): number {
  const prefix = `${name.replace(/[^A-Za-z0-9_.-]/g, '_')}-`;
  const parents = isV2()
    ? [path.join(CGROUP_ROOT, path.dirname(ownGroups().get('') ?? '/'), 'autovibe-sandboxes')]
    : V1_CONTROLLERS.map((c) => path.join(CGROUP_ROOT, c, ownGroups().get(c) ?? '/', 'autovibe'));
  let removed = 0;
  for (const parent of parents) {
    let entries: string[];
    try {
      entries = fs.readdirSync(parent).filter((e) => e.startsWith(prefix));
    } catch {
      continue;
    }
    for (const e of entries) {
      const group = groupOf(
        [path.join(parent, e)],
        () => false,
        () => false,
        { cpus: 1, memoryMiB: 1, pids: 1, diskMiB: 1 },
        path.join(parent, e, 'memory.current'),
      );
      group.killAll();
      if (group.remove()) removed += 1;
    }
  }
  return removed;
}

/**
 * The groups a container of the Docker API runs in (found from its first process on this host), to
 * read which limit it hit: the engine sets the limits, this only watches the kernel's counters.
 */
export function containerCgroup(pid: number, limits: ResourceLimits): SandboxCgroup | null {
  const groups = ownGroups(pid);
  if (groups.size === 0) return null;
  if (isV2()) {
    const dir = path.join(CGROUP_ROOT, groups.get('') ?? '/');
    return groupOf(
      [],
      () => counter(read(path.join(dir, 'memory.events')), 'oom_kill') > 0,
      () => counter(read(path.join(dir, 'pids.events')), 'max') > 0,
      limits,
      path.join(dir, 'memory.current'),
    );
  }
  const memory = path.join(CGROUP_ROOT, 'memory', groups.get('memory') ?? '/');
  const pids = path.join(CGROUP_ROOT, 'pids', groups.get('pids') ?? '/');
  return groupOf(
    [],
    () => counter(read(path.join(memory, 'memory.oom_control')), 'oom_kill') > 0,
    () => counter(read(path.join(pids, 'pids.events')), 'max') > 0,
    limits,
    path.join(memory, 'memory.usage_in_bytes'),
  );
}

function tryRmdir(dir: string): boolean {
  try {
    fs.rmdirSync(dir);
    return true;
  } catch (err) {
    // gone already, or still busy (a process that has not been reaped yet)
    return (err as NodeJS.ErrnoException).code === 'ENOENT';
  }
}

function groupOf(dirs: string[], oom: () => boolean, forkFailed: () => boolean, limits: ResourceLimits, memoryFile: string): SandboxCgroup {
  return {
    procsFiles: dirs.map((d) => path.join(d, 'cgroup.procs')),
    memoryBytes() {
      const text = read(memoryFile)?.trim();
      return text && /^\d+$/.test(text) ? Number(text) : null;
    },
    exceeded() {
      if (oom()) return RESOURCE_LIMIT_REASONS.memory(limits);
      if (forkFailed()) return RESOURCE_LIMIT_REASONS.pids(limits);
      return null;
    },
    killAll() {
      // A fork bomb refills the group as it is emptied: go round until it stays empty.
      for (let round = 0; round < 100; round++) {
        const pids = new Set<number>();
        for (const d of dirs) {
          for (const p of (read(path.join(d, 'cgroup.procs')) ?? '').split('\n').filter(Boolean)) pids.add(Number(p));
        }
        if (pids.size === 0) return;
        for (const p of pids) {
          try {
            process.kill(p, 'SIGKILL');
          } catch {
            // gone already
          }
        }
      }
    },
    remove() {
      return dirs.map(tryRmdir).every(Boolean);
    },
  };
}

/**
 * Bytes the workspace takes on disk (allocated blocks, hard links once, symlinks not followed, one
 * filesystem), by `du`, which is quick and copes with files vanishing while it counts.
 */
export function workspaceBytes(workspace: string, timeoutMs = 30_000): Promise<number | null> {
  return new Promise((resolve) => {
    execFile('du', ['-s', '-x', '-B1', workspace], { timeout: timeoutMs, maxBuffer: 1 << 20 }, (_err, stdout) => {
      const m = /^(\d+)\s/.exec(String(stdout));
      resolve(m ? Number(m[1]) : null);
    });
  });
}

/** A running sandbox's memory and workspace size beside its limits (bytes; null: not measured). */
export interface ResourceUsage {
  memoryBytes: number | null;
  memoryLimitBytes: number;
  diskBytes: number | null;
  diskLimitBytes: number;
}

/**
 * Watches a running sandbox: every `intervalMs` (and more slowly when counting the workspace takes
 * long) asks the group which limit was hit and counts the workspace; calls `onExceeded` once with
 * the limit's reason. `final()` checks one last time after the command ended (a limit hit in its
 * last second still fails the machine).
 */
export function watchLimits(opts: {
  limits: ResourceLimits;
  cgroup: SandboxCgroup | null;
  workspace: string | null;
  onExceeded: (reason: string) => void;
  /** What each check measured (memory and disk beside their limits): the alert engine's resource samples. */
  onSample?: (usage: ResourceUsage) => void;
  intervalMs?: number;
}): { stop(): void; final(): Promise<string | null> } {
  const interval = opts.intervalMs ?? 1000;
  let stopped = false;
  let reported: string | null = null;
  let timer: NodeJS.Timeout | undefined;
  const check = async (): Promise<string | null> => {
    const hit = opts.cgroup?.exceeded() ?? null;
    if (hit) return hit;
    const bytes = opts.workspace ? await workspaceBytes(opts.workspace) : null;
    opts.onSample?.({
      memoryBytes: opts.cgroup?.memoryBytes() ?? null,
      memoryLimitBytes: opts.limits.memoryMiB * 1024 * 1024,
      diskBytes: bytes,
      diskLimitBytes: opts.limits.diskMiB * 1024 * 1024,
    });
    if (bytes !== null && bytes >= opts.limits.diskMiB * 1024 * 1024) return RESOURCE_LIMIT_REASONS.disk(opts.limits);
    return null;
  };
  const tick = async () => {
    const started = Date.now();
    const hit = await check();
    if (stopped) return;
    if (hit && !reported) {
      reported = hit;
      opts.onExceeded(hit);
      return;
    }
    timer = setTimeout(() => void tick(), Math.max(interval, 2 * (Date.now() - started)));
  };
  timer = setTimeout(() => void tick(), interval);
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
    async final() {
      stopped = true;
      clearTimeout(timer);
      return reported ?? (await check());
    },
  };
}

import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ResourceLimits } from '../../domain/machines.js';
import { createSandboxCgroup, type SandboxCgroup } from './resource-limits.js';
import { seccompProgram } from './seccomp.js';

/**
 * The `local` compute provider: one bubblewrap sandbox per machine. It has its own user, mount,
 * pid, network, ipc and uts namespaces; the host's /usr is read-only, a few files of /etc are
 * visible read-only, everything else of the host (home directories, AutoVibe's data) is absent.
 * The workspace is the only writable host directory. With `--die-with-parent` the sandbox dies
 * with the worker process, so a crashed worker leaves nothing running.
 *
 * Kernel attack surface: a seccomp filter (./seccomp.ts) refuses new namespaces, keyrings, ptrace,
 * eBPF, perf, io_uring, mounts, kexec and modules, and `--disable-userns` (where bwrap has it)
 * makes nested user namespaces impossible too. With `limits`, the sandbox runs in its own cgroup
 * (memory, processes, CPU; ./resource-limits.ts) and no file it writes can pass the disk limit
 * (RLIMIT_FSIZE); the caller watches the workspace's total.
 */
export interface SandboxSpec {
  machineId: string;
  workspace: string;
  /** A shell command line, or an argv run without a shell. */
  command: string | string[];
  network: boolean;
  env?: Record<string, string>;
  /** Extra host paths to mount: read-only unless `writable`. */
  mounts?: Array<{ source: string; target: string; writable?: boolean }>;
  /** The sandbox's $HOME; a private tmpfs directory unless given. */
  home?: string;
  /** Resource limits (the machine's profile); none when absent. */
  limits?: ResourceLimits;
}

const ETC_READ_ONLY = [
  '/etc/alternatives',
  '/etc/ssl',
  '/etc/ca-certificates',
  '/etc/ld.so.cache',
  '/etc/localtime',
  '/etc/nsswitch.conf',
  '/etc/hosts',
  '/etc/resolv.conf',
  '/etc/gitconfig',
];

export class SandboxUnavailableError extends Error {
  override name = 'SandboxUnavailableError';
}

export function bubblewrapPath(): string {
  for (const candidate of [process.env.BWRAP_PATH, '/usr/bin/bwrap', '/usr/local/bin/bwrap']) {
    if (candidate && fs.existsSync(candidate)) return candidate;
  }
  throw new SandboxUnavailableError('bubblewrap is not installed (apt-get install bubblewrap); the local provider needs it');
}

/** The marker every sandbox of a machine carries on its command line, used to find leaks. */
export function sandboxMarker(machineId: string): string {
  return `autovibe-machine=${machineId}`;
}

/** Whether the installed bwrap has `--disable-userns` (0.8 and later). */
let disableUserns: boolean | undefined;
function bwrapDisablesUserns(): boolean {
  if (disableUserns === undefined) {
    try {
      disableUserns = execFileSync(bubblewrapPath(), ['--help'], { encoding: 'utf8' }).includes('--disable-userns');
    } catch {
      disableUserns = false;
    }
  }
  return disableUserns;
}

/** The seccomp program as a file bwrap reads through an inherited fd (written once per process). */
let seccompFile: string | null | undefined;
export function seccompProgramFile(): string | null {
  if (seccompFile === undefined) {
    const program = seccompProgram();
    if (!program) {
      seccompFile = null;
    } else {
      const file = path.join(os.tmpdir(), `autovibe-seccomp-${crypto.createHash('sha256').update(program).digest('hex').slice(0, 16)}.bpf`);
      if (!fs.existsSync(file)) {
        const partial = `${file}.${process.pid}`;
        fs.writeFileSync(partial, program, { mode: 0o644 });
        fs.renameSync(partial, file);
      }
      seccompFile = file;
    }
  }
  return seccompFile;
}

/** The fd number the seccomp program is passed on (stdio index 3). */
const SECCOMP_FD = 3;

export function bubblewrapArgs(spec: SandboxSpec, opts: { seccomp?: boolean } = {}): string[] {
  const args = [
    '--unshare-all',
    // Explicit (not the `-try` of --unshare-all): --disable-userns needs it.
    '--unshare-user',
    ...(bwrapDisablesUserns() ? ['--disable-userns'] : []),
    ...(opts.seccomp ? ['--seccomp', String(SECCOMP_FD)] : []),
    ...(spec.network ? ['--share-net'] : []),
    '--die-with-parent',
    '--new-session',
    '--cap-drop',
    'ALL',
    '--uid',
    '1000',
    '--gid',
    '1000',
    '--hostname',
    'machine',
    '--ro-bind',
    '/usr',
    '/usr',
    '--symlink',
    'usr/bin',
    '/bin',
    '--symlink',
    'usr/sbin',
    '/sbin',
    '--symlink',
    'usr/lib',
    '/lib',
    '--symlink',
    'usr/lib64',
    '/lib64',
    ...ETC_READ_ONLY.flatMap((p) => ['--ro-bind-try', p, p]),
    '--proc',
    '/proc',
    '--dev',
    '/dev',
    '--tmpfs',
    '/tmp',
    '--dir',
    '/tmp/home',
    '--bind',
    spec.workspace,
    '/workspace',
    ...(spec.mounts ?? []).flatMap((m) => [m.writable ? '--bind' : '--ro-bind', m.source, m.target]),
    '--chdir',
    '/workspace',
    '--clearenv',
    '--setenv',
    'PATH',
    spec.env?.PATH ?? '/usr/local/bin:/usr/bin:/bin',
    '--setenv',
    'HOME',
    spec.home ?? '/tmp/home',
    '--setenv',
    'AUTOVIBE_MACHINE_ID',
    spec.machineId,
    ...Object.entries(spec.env ?? {}).flatMap(([k, v]) => ['--setenv', k, v]),
    // A no-op argument that marks the process as this machine's sandbox for leak checks.
    '--setenv',
    'AUTOVIBE_SANDBOX',
    sandboxMarker(spec.machineId),
    '--',
    ...(typeof spec.command === 'string' ? ['/bin/sh', '-c', spec.command] : spec.command),
  ];
  return args;
}

/** A wrapper that puts itself into the sandbox's cgroups and sets its rlimits, then becomes bwrap. */
const JOIN_AND_EXEC = [
  'for f in $AUTOVIBE_CGROUP_PROCS; do echo $$ > "$f" || exit 125; done',
  'if [ -n "$AUTOVIBE_FSIZE_BLOCKS" ]; then ulimit -f "$AUTOVIBE_FSIZE_BLOCKS" || exit 125; fi',
  'if [ -n "$AUTOVIBE_AS_KIB" ]; then ulimit -v "$AUTOVIBE_AS_KIB" || exit 125; fi',
  'exec "$@"',
].join('\n');

export interface RunningSandbox {
  child: ChildProcess;
  /** The sandbox's own cgroup, when it has limits and the host offers cgroups. */
  cgroup: SandboxCgroup | null;
  /** Kills every process of the sandbox. */
  kill(): void;
  /** After the sandbox ended (and its cgroup was read): kills stragglers and removes the cgroup. */
  release(): void;
}

/**
 * Starts the sandbox. With `spec.limits` it first joins a new cgroup with those limits (and
 * RLIMIT_FSIZE at the disk limit; RLIMIT_AS at the memory limit where there is no cgroup), so
 * every process of it is held by them from its first instruction.
 */
export function startSandbox(spec: SandboxSpec, onWarning?: (message: string) => void): RunningSandbox {
  const limits = spec.limits;
  const cgroup = limits ? createSandboxCgroup(`machine-${spec.machineId}`, limits, onWarning) : null;
  const program = seccompProgramFile();
  const fd = program ? fs.openSync(program, 'r') : null;
  let child: ChildProcess;
  try {
    const env: Record<string, string> = {
      AUTOVIBE_CGROUP_PROCS: cgroup ? cgroup.procsFiles.join(' ') : '',
      // ulimit -f counts 512-byte blocks, -v KiB.
      AUTOVIBE_FSIZE_BLOCKS: limits ? String(limits.diskMiB * 2048) : '',
      AUTOVIBE_AS_KIB: limits && !cgroup ? String(limits.memoryMiB * 1024) : '',
    };
    child = spawn('/bin/sh', ['-c', JOIN_AND_EXEC, 'autovibe-sandbox', bubblewrapPath(), ...bubblewrapArgs(spec, { seccomp: fd !== null })], {
      stdio: ['ignore', 'pipe', 'pipe', ...(fd !== null ? [fd] : [])],
      env,
    });
  } catch (err) {
    cgroup?.remove();
    throw err;
  } finally {
    if (fd !== null) fs.closeSync(fd);
  }
  const kill = () => {
    child.kill('SIGKILL');
    cgroup?.killAll();
  };
  const release = () => {
    if (!cgroup) return;
    cgroup.killAll();
    // A group can be removed only once its last process is gone (reaped): try again a little later.
    if (!cgroup.remove()) {
      for (const ms of [200, 2000, 10_000]) setTimeout(() => cgroup.remove(), ms).unref();
    }
  };
  return { child, cgroup, kill, release };
}

/** Pids of live sandboxes of `machineId` (any, if omitted) on this host. */
export function liveSandboxPids(machineId?: string): number[] {
  const marker = machineId ? sandboxMarker(machineId) : 'autovibe-machine=';
  const pids: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (cmdline.includes(marker) && cmdline.startsWith(bubblewrapPathOrEmpty())) pids.push(Number(entry));
    } catch {
      // the process ended while we looked
    }
  }
  return pids;
}

function bubblewrapPathOrEmpty(): string {
  try {
    return bubblewrapPath();
  } catch {
    return '\0';
  }
}

/** Kills every sandbox of `machineId` still alive on this host (after a crash, before cleanup). */
export function killSandboxes(machineId: string): number {
  const pids = liveSandboxPids(machineId);
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  return pids.length;
}

export function bubblewrapVersion(): string | null {
  try {
    return execFileSync(bubblewrapPath(), ['--version'], { encoding: 'utf8' }).trim();
  } catch {
    return null;
  }
}

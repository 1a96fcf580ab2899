import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';

/**
 * The `local` compute provider: one bubblewrap sandbox per machine. It has its own user, mount,
 * pid, network, ipc and uts namespaces; the host's /usr is read-only, a few files of /etc are
 * visible read-only, everything else of the host (home directories, AutoVibe's data) is absent.
 * The workspace is the only writable host directory. With `--die-with-parent` the sandbox dies
 * with the worker process, so a crashed worker leaves nothing running.
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

export function bubblewrapArgs(spec: SandboxSpec): string[] {
  const args = [
    '--unshare-all',
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

export function startSandbox(spec: SandboxSpec): ChildProcess {
  return spawn(bubblewrapPath(), bubblewrapArgs(spec), { stdio: ['ignore', 'pipe', 'pipe'] });
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

/**
 * Spawning long-running service processes (Temporal dev server, PostgreSQL) that
 * must never outlive the Node process that started them.
 *
 * Three layers make sure of that:
 *  1. The service stays in our process group, so a Ctrl-C or a group kill reaches it.
 *  2. On process 'exit' we send it its graceful stop signal.
 *  3. A tiny watchdog shell holds a pipe from us on its stdin. When we die in any way
 *     (even SIGKILL) the kernel closes the pipe, the watchdog's `read` returns, and it
 *     stops the service (graceful signal, SIGKILL after a grace period) and removes
 *     any scratch paths. It ignores INT/TERM/HUP so a Ctrl-C does not take it down
 *     before it has done that.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';

export interface ServiceProcessOptions {
  /** Human-readable name used in errors, e.g. "temporal dev server". */
  name: string;
  command: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  uid?: number;
  gid?: number;
  /** Append stdout+stderr here. Without it, the last few KB are kept in memory for error messages. */
  logFile?: string;
  /** Signal for a graceful stop (SIGTERM by default). */
  stopSignal?: NodeJS.Signals;
  /** Milliseconds to wait after stopSignal before SIGKILL. */
  killAfterMs?: number;
  /** Paths the watchdog removes if it has to clean up after us. */
  scratchPaths?: string[];
}

export interface ServiceProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  /** Resolves with the exit code / signal once the process has exited. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  hasExited(): boolean;
  /** Recent output (from logFile or the in-memory buffer), for error messages. */
  recentOutput(): string;
  /** stopSignal, wait up to killAfterMs, then SIGKILL; resolves once the process is gone. */
  stop(): Promise<void>;
}

const TAIL_BYTES = 8 * 1024;

const WATCHDOG = `
trap '' INT TERM HUP
pid="$1"; sig="$2"; grace="$3"; shift 3
alive() {
  kill -0 "$pid" 2>/dev/null || return 1
  [ "$(sed -n 's/^State:[[:space:]]*\\([A-Z]\\).*/\\1/p' "/proc/$pid/status" 2>/dev/null)" != Z ]
}
while read -r _; do :; done
kill -s "$sig" "$pid" 2>/dev/null || true
i=0
while alive && [ "$i" -lt "$grace" ]; do sleep 0.1; i=$((i + 1)); done
kill -s KILL "$pid" 2>/dev/null || true
for p in "$@"; do rm -rf -- "$p"; done
`;

export function spawnServiceProcess(opts: ServiceProcessOptions): ServiceProcess {
  const stopSignal = opts.stopSignal ?? 'SIGTERM';
  const killAfterMs = opts.killAfterMs ?? 10_000;

  let logFd: number | undefined;
  if (opts.logFile !== undefined) logFd = fs.openSync(opts.logFile, 'a');
  let memTail = '';

  const child = spawn(opts.command, opts.args, {
    cwd: opts.cwd,
    env: opts.env ?? process.env,
    uid: opts.uid,
    gid: opts.gid,
    detached: false,
    stdio: ['ignore', logFd ?? 'pipe', logFd ?? 'pipe'],
  });
  if (logFd !== undefined) fs.closeSync(logFd);

  const keepTail = (chunk: Buffer): void => {
    memTail = (memTail + chunk.toString('utf8')).slice(-TAIL_BYTES);
  };
  for (const stream of [child.stdout, child.stderr]) {
    if (stream) {
      stream.on('data', keepTail);
      // Don't let an idle service's output pipe keep the event loop alive.
      (stream as unknown as { unref?: () => void }).unref?.();
    }
  }

  let exitInfo: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  let spawnError: Error | undefined;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('error', (err) => {
      spawnError = err;
      exitInfo ??= { code: null, signal: null };
      resolve(exitInfo);
    });
    child.once('exit', (code, signal) => {
      exitInfo = { code, signal };
      resolve(exitInfo);
    });
  });

  const pid = child.pid;
  let watchdog: ChildProcess | undefined;
  if (pid !== undefined) {
    watchdog = spawn(
      '/bin/sh',
      ['-c', WATCHDOG, 'autovibe-watchdog', String(pid), stopSignal.replace(/^SIG/, ''), String(Math.ceil(killAfterMs / 100)), ...(opts.scratchPaths ?? [])],
      { stdio: ['pipe', 'ignore', 'ignore'], detached: false },
    );
    watchdog.on('error', () => {});
    watchdog.stdin?.on('error', () => {});
    watchdog.unref();
    (watchdog.stdin as unknown as { unref?: () => void } | null)?.unref?.();
  }

  const onProcessExit = (): void => {
    if (exitInfo === undefined) {
      try {
        child.kill(stopSignal);
      } catch {
        // already gone
      }
    }
  };
  process.on('exit', onProcessExit);

  void exited.then(() => {
    process.off('exit', onProcessExit);
    // The service is gone; the watchdog must not signal a (possibly reused) pid.
    if (watchdog && watchdog.exitCode === null && watchdog.signalCode === null) watchdog.kill('SIGKILL');
  });

  const recentOutput = (): string => {
    if (opts.logFile !== undefined) {
      try {
        const buf = fs.readFileSync(opts.logFile);
        return buf.subarray(Math.max(0, buf.length - TAIL_BYTES)).toString('utf8');
      } catch {
        return '';
      }
    }
    return memTail;
  };

  if (pid === undefined) {
    // spawn failed synchronously-ish (ENOENT etc. arrive via 'error'); surface it on await.
    return {
      child,
      pid: -1,
      exited,
      hasExited: () => true,
      recentOutput: () => (spawnError ? `${opts.name}: ${String(spawnError)}` : recentOutput()),
      stop: async () => {
        await exited;
      },
    };
  }

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (exitInfo !== undefined) return;
      child.kill(stopSignal);
      const timer = setTimeout(() => {
        if (exitInfo === undefined) child.kill('SIGKILL');
      }, killAfterMs);
      try {
        await exited;
      } finally {
        clearTimeout(timer);
      }
    })();
    return stopping;
  };

  return {
    child,
    pid,
    exited,
    hasExited: () => exitInfo !== undefined,
    recentOutput: () => (spawnError ? `${opts.name}: ${String(spawnError)}\n${recentOutput()}` : recentOutput()),
    stop,
  };
}

export function describeExit(info: { code: number | null; signal: NodeJS.Signals | null }): string {
  return info.signal !== null ? `killed by ${info.signal}` : `exited with code ${String(info.code)}`;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

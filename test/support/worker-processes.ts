import { spawn, type ChildProcess } from 'node:child_process';
import os from 'node:os';
import type { TestPlatform } from './platform.js';

/** Where a worker process works: a platform's home, database, Temporal and task queue. */
export type WorkerTarget = { config: Pick<TestPlatform['config'], 'home' | 'taskQueue'> } & Pick<TestPlatform, 'databaseUrl' | 'temporalAddress'>;

/**
 * The same database, Temporal and task queue with a home of its own: another host, whose
 * workspaces, logs and snapshots are its own (project repositories stay where the api made them).
 */
export function onHome(p: WorkerTarget, home: string): WorkerTarget {
  return { config: { home, taskQueue: p.config.taskQueue }, databaseUrl: p.databaseUrl, temporalAddress: p.temporalAddress };
}

/** Resolves when the process has exited (at once if it already has). */
export function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', () => resolve())));
}

/**
 * Real worker processes (the production entry point, workers/main.ts) on a test platform's
 * database, Temporal and task queue, so a test can SIGKILL them mid-work.
 */
export class WorkerProcesses {
  private readonly children: ChildProcess[] = [];

  start(p: WorkerTarget, env: Record<string, string> = {}): ChildProcess {
    const child = spawn(process.execPath, ['--import', 'tsx', 'workers/main.ts'], {
      env: {
        ...process.env,
        ...env,
        AUTOVIBE_HOME: p.config.home,
        DATABASE_URL: p.databaseUrl!,
        TEMPORAL_ADDRESS: p.temporalAddress,
        TEMPORAL_TASK_QUEUE: p.config.taskQueue,
        LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    this.children.push(child);
    return child;
  }

  /** The Temporal identity the worker polls with (the SDK's default, `pid@host`): whose history events are whose. */
  static identity(child: ChildProcess): string {
    return `${child.pid}@${os.hostname()}`;
  }

  /**
   * Stops a worker the way a deploy does (SIGTERM) and waits for it to exit, at most `withinMs`:
   * resolves with how it exited, or rejects naming the limit.
   */
  async stop(child: ChildProcess, withinMs: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        exited(child),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`the worker did not exit within ${withinMs} ms of SIGTERM`)), withinMs);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
    return { code: child.exitCode, signal: child.signalCode };
  }

  async kill(child: ChildProcess): Promise<void> {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGKILL');
    await exited(child);
  }

  /** Kills every worker started so far (after each test: the next test's workers are the only ones polling). */
  async killAll(): Promise<void> {
    for (const child of this.children.splice(0)) await this.kill(child);
  }
}

import { spawn, type ChildProcess } from 'node:child_process';
import type { TestPlatform } from './platform.js';

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

  start(p: TestPlatform, env: Record<string, string> = {}): ChildProcess {
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

  async kill(child: ChildProcess): Promise<void> {
    child.kill('SIGKILL');
    await exited(child);
  }

  /** Kills every worker started so far (after each test: the next test's workers are the only ones polling). */
  async killAll(): Promise<void> {
    for (const child of this.children.splice(0)) await this.kill(child);
  }
}

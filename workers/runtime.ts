import { DefaultLogger, Runtime, type LogLevel } from '@temporalio/worker';

let installed = false;

const LEVELS: Record<string, LogLevel> = {
  trace: 'TRACE',
  debug: 'DEBUG',
  info: 'INFO',
  warn: 'WARN',
  error: 'ERROR',
  fatal: 'ERROR',
  silent: 'ERROR',
};

/** Sets the Temporal SDK's log level once per process (it can only be installed before first use). */
export function installTemporalRuntime(level: string): void {
  if (installed) return;
  installed = true;
  try {
    Runtime.install({ logger: new DefaultLogger(LEVELS[level] ?? 'INFO') });
  } catch {
    // Already installed by someone else in this process: keep theirs.
  }
}

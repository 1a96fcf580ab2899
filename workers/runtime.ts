import { DefaultLogger, Runtime, type LogLevel, type LogMetadata } from '@temporalio/worker';

/** The SDK's logger without the notice each activities-only worker (a machine queue's) gives at start. */
class WorkerLogger extends DefaultLogger {
  override log(level: LogLevel, message: string, meta?: LogMetadata): void {
    if (message.startsWith('No workflows registered')) return;
    super.log(level, message, meta);
  }
}

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

/**
 * Sets the Temporal SDK's log level once per process (it can only be installed before first use),
 * and, given an address, serves the SDK's own Prometheus metrics there (workflow/activity task
 * latencies, `temporal_activity_execution_failed`, sticky cache, pollers) at `/metrics`.
 */
export function installTemporalRuntime(level: string, opts: { metricsAddress?: string | undefined } = {}): void {
  if (installed) return;
  installed = true;
  try {
    Runtime.install({
      logger: new WorkerLogger(LEVELS[level] ?? 'INFO'),
      ...(opts.metricsAddress ? { telemetryOptions: { metrics: { prometheus: { bindAddress: opts.metricsAddress, countersTotalSuffix: true } } } } : {}),
    });
  } catch {
    // Already installed by someone else in this process: keep theirs.
  }
}

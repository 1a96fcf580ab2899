import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import type { ActivityInterceptorsFactory } from '@temporalio/worker';
import { Counter, register } from 'prom-client';

/**
 * Activity failures of this worker process, by activity and error type. On prom-client's default
 * registry, which GET /metrics includes when the api runs in the same process (npm start); a
 * standalone worker's failures are in its Temporal SDK metrics (`temporal_activity_execution_failed`).
 */
export const activityFailures = new Counter({
  name: 'autovibe_activity_failures_total',
  help: 'Activity attempts that failed (each retry counts), by activity type and error type',
  labelNames: ['activity', 'error'] as const,
  registers: [register],
});

/** Counts each failed activity attempt; a cancellation (a machine terminated on purpose) is not a failure. */
export const countActivityFailures: ActivityInterceptorsFactory = (ctx) => ({
  inbound: {
    async execute(input, next) {
      try {
        return await next(input);
      } catch (err) {
        if (!(err instanceof CancelledFailure)) {
          const error = err instanceof ApplicationFailure ? (err.type ?? 'ApplicationFailure') : err instanceof Error ? err.name : 'unknown';
          activityFailures.inc({ activity: ctx.info.activityType, error });
        }
        throw err;
      }
    },
  },
});

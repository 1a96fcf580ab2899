import type { ActivityOptions, LocalActivityOptions, RetryPolicy } from '@temporalio/workflow';
import { INPUT_ERROR, NOT_FOUND } from '../domain/errors.js';

/** Activity options every workflow shares; the failure types no retry can fix are named in domain/errors.ts. */
export { INPUT_ERROR, MERGE_CONFLICT, NOT_FOUND } from '../domain/errors.js';

/** Backoff from 1 s to `maximumInterval`, without end, stopping at once on the given failure types. */
export function retryUnless(nonRetryable: readonly string[], more: Omit<RetryPolicy, 'nonRetryableErrorTypes'> = {}): RetryPolicy {
  return { initialInterval: '1s', maximumInterval: '30s', ...more, nonRetryableErrorTypes: [...nonRetryable] };
}

/**
 * Options of a short activity (database bookkeeping, a signal, a status mark): one attempt may
 * take `timeout`; a worker dying mid-attempt costs that much before the retry.
 */
export function shortActivity(
  timeout: ActivityOptions['startToCloseTimeout'] = '1 minute',
  nonRetryable: readonly string[] = [NOT_FOUND, INPUT_ERROR],
): ActivityOptions {
  return { startToCloseTimeout: timeout, retry: retryUnless(nonRetryable) };
}

/**
 * Options of a short database write run as a local activity: in the workflow's own task, on the
 * worker that runs the workflow, with no activity task and no extra workflow task. Only for writes
 * that are idempotent on their keys (a local activity whose result was not yet recorded runs again
 * when its workflow task is retried, e.g. after a worker dies).
 */
export function shortLocalActivity(
  timeout: LocalActivityOptions['startToCloseTimeout'] = '1 minute',
  nonRetryable: readonly string[] = [NOT_FOUND, INPUT_ERROR],
): LocalActivityOptions {
  return { startToCloseTimeout: timeout, retry: retryUnless(nonRetryable) };
}

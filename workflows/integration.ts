import {
  ActivityCancellationType,
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  condition,
  continueAsNew,
  defineSignal,
  proxyActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import { NOT_FOUND, shortActivity } from './activity-options.js';

export interface IntegrationDispatcherInput {
  integrationId: string;
  projectId: string;
  /** The retry policy of acting on one event (a comment, a pull request): exponential backoff (coefficient 3) from `initialMs` to `maxSeconds`. */
  retry: { maxAttempts: number; initialMs: number; maxSeconds: number };
  /** One attempt's timeout (it may push a branch and call the tracker a few times). */
  attemptTimeoutSeconds?: number;
  /** How long one wait for new events may last before the dispatcher looks again. */
  waitSeconds: number;
}

/** The integration changed or was removed: look at it again now. */
export const wakeIntegrationSignal = defineSignal('wakeIntegration');

/** Rounds before the dispatcher continues as new (a fresh, short history). */
const ROUNDS_PER_RUN = 200;

const isNotFound = (e: unknown) => e instanceof ActivityFailure && e.cause instanceof ApplicationFailure && e.cause.type === NOT_FOUND;

/**
 * One integration's dispatcher (workflow id `integration-dispatcher-<integration id>`): reads the
 * project's events after the integration's cursor and acts on each in order (comments on linked
 * issues and pull requests, the pull request of an objective that completed), one activity per
 * event with Temporal's retry policy for the backoff; the cursor moves past an event once it was
 * acted on or every attempt failed, so a restart of any worker resumes at the next event. Ends
 * when the integration is removed.
 */
export async function integrationDispatcher(input: IntegrationDispatcherInput): Promise<void> {
  let woken = false;
  setHandler(wakeIntegrationSignal, () => void (woken = true));

  const bookkeeping = proxyActivities<Activities>(shortActivity());
  const acting = proxyActivities<Activities>({
    startToCloseTimeout: `${(input.attemptTimeoutSeconds ?? 120) + 10}s`,
    retry: {
      initialInterval: input.retry.initialMs,
      backoffCoefficient: 3,
      maximumInterval: `${input.retry.maxSeconds}s`,
      maximumAttempts: input.retry.maxAttempts,
      nonRetryableErrorTypes: [NOT_FOUND],
    },
  });
  const waiting = proxyActivities<Activities>({
    startToCloseTimeout: `${input.waitSeconds + 60}s`,
    heartbeatTimeout: '30s',
    cancellationType: ActivityCancellationType.TRY_CANCEL,
    retry: { initialInterval: '1s', maximumInterval: '30s', nonRetryableErrorTypes: [NOT_FOUND] },
  });
  const { integrationId } = input;

  for (let round = 0; ; round++) {
    if (round >= ROUNDS_PER_RUN || workflowInfo().continueAsNewSuggested) await continueAsNew<typeof integrationDispatcher>(input);
    // Wait for events, or for a signal (a change, a removal), whichever comes first.
    woken = false;
    const scope = new CancellationScope();
    const work = scope.run(() => waiting.waitForIntegrationWork({ integrationId, waitSeconds: input.waitSeconds }));
    const signalled = scope.run(() => condition(() => woken));
    const first = await Promise.race([work.then((w) => ({ work: w })), signalled.then(() => null)]);
    scope.cancel();
    await Promise.allSettled([work, signalled]);
    if (!first) continue;
    if (first.work.status === 'deleted') return;
    for (const seq of first.work.seqs) {
      try {
        await acting.actOnIntegrationEvent({ integrationId, seq });
      } catch (e) {
        if (isNotFound(e)) return;
        // Every attempt failed: given up (the failure stays in the workflow's history); the next event goes on.
      }
      await bookkeeping.integrationEventDone({ integrationId, seq });
    }
  }
}

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
import { setStatusAttribute } from './visibility.js';

export interface WebhookDispatcherInput {
  endpointId: string;
  projectId: string | null;
  /** The retry policy of one delivery: exponential backoff (coefficient 3) from `initialMs` to `maxSeconds`. */
  retry: { maxAttempts: number; initialMs: number; maxSeconds: number };
  /** One attempt's HTTP timeout: an attempt lost with its worker is retried this much (plus a margin) later. */
  attemptTimeoutSeconds?: number;
  /** How long one wait for new events may last before the dispatcher looks again. */
  waitSeconds: number;
  /** Redeliveries asked for and not yet made, carried over a continue-as-new. */
  redeliveries?: string[];
}

/** Deliver this delivery (a manual redelivery made by the api) soon. */
export const redeliverWebhookSignal = defineSignal<[string]>('redeliverWebhook');
/** The endpoint changed (re-enabled): look at it again now. */
export const wakeWebhookSignal = defineSignal('wakeWebhook');

/** Rounds before the dispatcher continues as new (a fresh, short history). */
const ROUNDS_PER_RUN = 200;

const isNotFound = (e: unknown) => e instanceof ActivityFailure && e.cause instanceof ApplicationFailure && e.cause.type === NOT_FOUND;

/**
 * One endpoint's dispatcher (workflow id `webhook-<endpoint id>`): reads the events after the
 * endpoint's cursor and delivers each in order, one activity attempt per HTTP request with
 * Temporal's retry policy for the backoff. Each attempt is in the delivery log; a success moves the
 * cursor (in the database, with the log), so a restart of any worker resumes at the next event.
 * When every attempt of an event failed, the event is given up (kept in the log for a manual
 * redelivery) and the endpoint may be disabled; it then waits for a re-enable or a redelivery.
 * Ends when the endpoint is deleted.
 */
export async function webhookDispatcher(input: WebhookDispatcherInput): Promise<void> {
  const redeliveries = [...(input.redeliveries ?? [])];
  let woken = false;
  setHandler(redeliverWebhookSignal, (id) => void redeliveries.push(id));
  setHandler(wakeWebhookSignal, () => void (woken = true));

  const bookkeeping = proxyActivities<Activities>(shortActivity());
  const delivery = proxyActivities<Activities>({
    startToCloseTimeout: `${(input.attemptTimeoutSeconds ?? 110) + 10}s`,
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
  const { endpointId } = input;

  /** Delivers; false when the endpoint is gone. Every attempt failing gives the delivery up (and may disable the endpoint). */
  async function deliver(what: { seq: number } | { deliveryId: string }): Promise<{ gone: boolean; disabled: boolean }> {
    try {
      await delivery.deliverWebhook({ endpointId, ...what });
      return { gone: false, disabled: false };
    } catch (e) {
      if (isNotFound(e)) return { gone: 'seq' in what, disabled: false };
      const { disabled } = await bookkeeping.giveUpWebhookDelivery({ endpointId, ...what });
      return { gone: false, disabled };
    }
  }

  for (let round = 0; ; round++) {
    while (redeliveries.length) {
      if ((await deliver({ deliveryId: redeliveries.shift()! })).gone) return;
    }
    if (round >= ROUNDS_PER_RUN || workflowInfo().continueAsNewSuggested) {
      await continueAsNew<typeof webhookDispatcher>({ ...input, redeliveries });
    }
    // Wait for events, or for a signal (a redelivery or a re-enable), whichever comes first.
    woken = false;
    const scope = new CancellationScope();
    const work = scope.run(() => waiting.waitForWebhookWork({ endpointId, waitSeconds: input.waitSeconds }));
    const signalled = scope.run(() => condition(() => woken || redeliveries.length > 0));
    const first = await Promise.race([work.then((w) => ({ work: w })), signalled.then(() => null)]);
    scope.cancel();
    await Promise.allSettled([work, signalled]);
    if (!first) continue;
    const { status, seqs } = first.work;
    if (status === 'deleted') return;
    setStatusAttribute(status);
    if (status === 'disabled') {
      woken = false;
      await condition(() => woken || redeliveries.length > 0);
      continue;
    }
    for (const seq of seqs) {
      const outcome = await deliver({ seq });
      if (outcome.gone) return;
      if (outcome.disabled) break;
    }
  }
}

import { Context } from '@temporalio/activity';
import { eventFeedOf } from '../../store/event-feed.js';
import { handleIntegrationEvent, integrationEventDone, pendingIntegrationEvents, type DispatcherWork } from '../../services/integrations.js';
import type { ServiceContext } from '../../services/context.js';
import type { ActivityDeps } from '../deps.js';

/** Events handed to the dispatcher per round. */
const BATCH = 100;

/** The activities of an integration's dispatcher (workflows/integration.ts): wait for events, act on one, move the cursor. */
export function createIntegrationActivities(deps: ActivityDeps) {
  const ctx: ServiceContext = { db: deps.db, temporal: deps.temporal, config: deps.config, log: deps.log };

  return {
    /**
     * The integration's next events after its cursor; when there are none, waits (heartbeating)
     * for the event feed to bring one, up to `waitSeconds`, and answers with what there is then.
     */
    async waitForIntegrationWork(input: { integrationId: string; waitSeconds: number }): Promise<DispatcherWork> {
      const feed = eventFeedOf(deps.db);
      await feed.ready();
      const until = Date.now() + input.waitSeconds * 1000;
      for (;;) {
        const work = await pendingIntegrationEvents(ctx, input.integrationId, BATCH);
        if (work.status === 'deleted' || work.seqs.length || Date.now() >= until) return work;
        const activity = Context.current();
        await new Promise<void>((resolve) => {
          const timer = setTimeout(done, Math.min(5_000, Math.max(0, until - Date.now())));
          const unsubscribe = feed.subscribe(done);
          void activity.cancelled.catch(() => done());
          function done() {
            clearTimeout(timer);
            unsubscribe();
            resolve();
          }
        });
        activity.heartbeat();
        if (activity.cancellationSignal.aborted) return { status: 'active', seqs: [] };
      }
    },

    /** Acts on one event (comments, a pull request); a tracker failure is thrown for Temporal to retry. */
    async actOnIntegrationEvent(input: { integrationId: string; seq: number }): Promise<{ comments: number; pullRequest: number | null }> {
      return handleIntegrationEvent(ctx, input.integrationId, input.seq);
    },

    /** The event was acted on or given up: the cursor moves past it. */
    async integrationEventDone(input: { integrationId: string; seq: number }): Promise<void> {
      await integrationEventDone(ctx, input.integrationId, input.seq);
    },
  };
}

import { InputError, NotFoundError } from '../../domain/errors.js';
import { eventFeedOf } from '../../store/event-feed.js';
import type { EventRecord } from '../../store/events.js';
import { MESSAGES } from '../errors.js';
import { EventCursor, eventFilterOf, resumePoint } from '../event-stream.js';
import { can, visible, type GraphqlContext } from './context.js';

/** How long one wait for new events lasts before it checks whether the subscriber left. */
const WAIT_MS = 15_000;

interface EventsArgs {
  projectId?: string | null;
  kinds?: string[] | null;
  after?: string | null;
}

const present = (e: EventRecord) => ({ seq: String(e.seq), at: e.at, kind: e.kind, projectId: e.projectId, subjectId: e.subjectId, data: e.data });

/**
 * `events`: the event feed with the filters, scoping and resume point of GET /v1/events, read
 * through the process's one feed (store/event-feed.ts) — a subscriber never polls the database
 * unless it resumes from behind the feed's memory. Events come in seq order and none is skipped:
 * after a reconnect, `after: <last seq received>` goes on from exactly there.
 */
export const eventSubscription = {
  async subscribe(_: unknown, args: EventsArgs, ctx: GraphqlContext): Promise<AsyncIterableIterator<{ events: ReturnType<typeof present> }>> {
    // As REST: another project reads as a missing one (scope before role).
    if (args.projectId && !(await visible(ctx, 'project', args.projectId))) throw new NotFoundError(MESSAGES.notFound('project', args.projectId));
    await can(ctx, 'projects.read', args.projectId ?? null);
    const filter = eventFilterOf(ctx.principal, {
      ...(args.projectId ? { projectId: args.projectId } : {}),
      ...(args.kinds?.length ? { kinds: args.kinds.join(',') } : {}),
    });
    let from: number | null;
    try {
      from = resumePoint(undefined, args.after ?? undefined);
    } catch {
      throw new InputError('after: must be the seq of an event received, or 0 for the whole feed', {
        field: 'after',
      });
    }
    const feed = eventFeedOf(ctx.api.db);
    await feed.ready();
    return events(new EventCursor(ctx.api.db, feed, filter, from ?? feed.last));
  },
  resolve: (payload: { events: ReturnType<typeof present> }) => payload.events,
};

/**
 * The cursor as an async iterator whose `return()` (the client unsubscribed or left) ends a wait at
 * once; an async generator would hold it until the wait ran out.
 */
function events(cursor: EventCursor): AsyncIterableIterator<{ events: ReturnType<typeof present> }> {
  const gone = new AbortController();
  let queue: EventRecord[] = [];
  const done = { done: true as const, value: undefined };
  const iterator: AsyncIterableIterator<{ events: ReturnType<typeof present> }> = {
    async next() {
      while (!queue.length) {
        if (gone.signal.aborted) return done;
        queue = await cursor.next(gone.signal, WAIT_MS);
      }
      if (gone.signal.aborted) return done;
      return { done: false, value: { events: present(queue.shift()!) } };
    },
    async return() {
      gone.abort();
      queue = [];
      return done;
    },
    async throw(err: unknown) {
      gone.abort();
      throw err;
    },
    [Symbol.asyncIterator]() {
      return iterator;
    },
  };
  return iterator;
}

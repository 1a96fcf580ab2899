import type { RequestHandler } from 'express';
import { z } from 'zod';
import { InputError } from '../domain/errors.js';
import { roleAllows, type Permission, type Principal } from '../domain/permissions.js';
import type { Db } from '../store/db.js';
import { eventFeedOf, type EventFeed } from '../store/event-feed.js';
import { currentStatus, eventMatches, eventsAfter, type EventFilter, type EventRecord } from '../store/events.js';
import { MACHINE_STATUSES } from '../domain/machines.js';
import { OBJECTIVE_STATUSES } from '../domain/objectives.js';
import { PIPELINE_STATUSES } from '../store/pipelines.js';
import { param } from './context.js';

/**
 * An event's wire forms, made once per event however many subscribers send it: the feed hands
 * every live subscriber the same EventRecord objects, so a thousand subscribers cost one
 * serialization (and one UTF-8 encoding) per event, not a thousand.
 */
const wireForms = new WeakMap<EventRecord, { json?: string; bytes?: Buffer; sse?: Buffer }>();

function formsOf(e: EventRecord) {
  let forms = wireForms.get(e);
  if (!forms) wireForms.set(e, (forms = {}));
  return forms;
}

/** The event as the JSON object clients receive (a WebSocket message, an SSE frame's data). */
export function eventJson(e: EventRecord): string {
  const forms = formsOf(e);
  return (forms.json ??= JSON.stringify({ seq: e.seq, at: e.at, kind: e.kind, projectId: e.projectId, subjectId: e.subjectId, data: e.data }));
}

/** `eventJson` as UTF-8 bytes (one WebSocket text message). */
export function eventBytes(e: EventRecord): Buffer {
  const forms = formsOf(e);
  return (forms.bytes ??= Buffer.from(eventJson(e)));
}

/** The event as one Server-Sent Events frame (`id` is its seq, for Last-Event-ID). */
export function sseFrame(e: EventRecord): Buffer {
  const forms = formsOf(e);
  return (forms.sse ??= Buffer.from(`id: ${e.seq}\nevent: ${e.kind}\ndata: ${eventJson(e)}\n\n`));
}

/**
 * Events handed to a subscriber together. The fan-out gives every subscriber with the same filter
 * the same batch, so its SSE form is made once for all of them.
 */
export class EventBatch {
  private sse: Buffer | undefined;
  constructor(readonly events: readonly EventRecord[]) {}

  /** The batch as SSE frames, in one buffer (one socket write). */
  sseBytes(): Buffer {
    return (this.sse ??= this.events.length === 1 ? sseFrame(this.events[0]!) : Buffer.concat(this.events.map(sseFrame)));
  }
}

/** Which permission reads which kinds of event. */
const KIND_PERMISSIONS: Array<[prefix: string, permission: Permission]> = [
  ['machine.', 'machines.read'],
  ['checkpoint.', 'checkpoints.read'],
  ['objective.', 'objectives.read'],
  ['pipeline.', 'pipelines.read'],
  ['payment.', 'payments.read'],
  ['budget.', 'costs.read'],
  ['alert.', 'projects.read'],
  ['webhook.', 'webhooks.read'],
];

const KIND = /^[a-z][a-z_-]*(\.[a-z_*][a-z_-]*)?$/;
const SEQ = /^\d{1,15}$/;

/** `?projectId=&kinds=a,b.*` and what the caller may see: the filter of one subscription. */
export function eventFilterOf(p: Principal, query: Record<string, unknown>): EventFilter {
  const projectId = query.projectId;
  if (projectId !== undefined && (typeof projectId !== 'string' || projectId === ''))
    throw new InputError('projectId: must be a project id', { field: 'projectId' });
  const kindsRaw = query.kinds;
  if (kindsRaw !== undefined && typeof kindsRaw !== 'string')
    throw new InputError('kinds: give one comma-separated list, e.g. kinds=machine.status,budget.*', { field: 'kinds' });
  const kinds = kindsRaw
    ? kindsRaw
        .split(',')
        .map((k) => k.trim())
        .filter(Boolean)
    : [];
  for (const k of kinds) {
    if (!KIND.test(k) || (k.includes('*') && !k.endsWith('.*'))) {
      throw new InputError(`kinds: "${k.slice(0, 50)}" is not an event kind (e.g. machine.status) or a family (e.g. budget.*)`, { field: 'kinds' });
    }
  }
  if (kinds.length > 20) throw new InputError('kinds: at most 20', { field: 'kinds' });
  return {
    projectIds: p.projectIds,
    ...(projectId ? { projectId } : {}),
    kinds,
    readable: KIND_PERMISSIONS.filter(([, perm]) => roleAllows(p.role, perm)).map(([prefix]) => prefix),
  };
}

/** Where a subscription resumes: `Last-Event-ID` (a reconnecting EventSource) wins over `?cursor=`; null: from now on. */
export function resumePoint(lastEventId: string | undefined, cursor: unknown): number | null {
  const raw = lastEventId !== undefined && lastEventId !== '' ? lastEventId : cursor;
  if (raw === undefined || raw === '') return null;
  if (typeof raw !== 'string' || !SEQ.test(raw)) {
    throw new InputError('cursor: must be an event id (the `id` of the last event received), or 0 for the whole feed', { field: 'cursor' });
  }
  return Number(raw);
}

/**
 * One subscriber's position in the feed. Behind the feed's memory it reads the table (filtered
 * in SQL); within it, it reads memory. Either way it moves strictly forward in seq order, and
 * since seq order is commit order (store/events.ts), it never skips an event.
 */
export class EventCursor {
  constructor(
    private readonly db: Db,
    private readonly feed: EventFeed,
    private readonly filter: EventFilter,
    public position: number,
  ) {}

  /** The next matching events (oldest first), or [] when `waitMs` passed (or `signal` fired) with none. */
  async next(signal: AbortSignal, waitMs: number): Promise<EventRecord[]> {
    const until = Date.now() + waitMs;
    for (;;) {
      if (signal.aborted) return [];
      const floor = this.feed.floor;
      if (this.position < floor) {
        const rows = await eventsAfter(this.db, this.position, this.filter, 500);
        // Everything up to `floor` has committed: a short page means nothing else matched below it.
        this.position = Math.max(rows.at(-1)?.seq ?? this.position, rows.length < 500 ? floor : 0);
        if (rows.length) return rows;
        continue;
      }
      const found = this.feed.after(this.position).filter((e) => eventMatches(e, this.filter));
      this.position = Math.max(this.position, this.feed.last);
      if (found.length) return found;
      if (!(await advanced(this.feed, this.position, signal, until - Date.now()))) return [];
    }
  }

  /**
   * Hands the matching events to `take` as they arrive, in seq order, until `signal` fires. While
   * the subscriber is caught up it is a member of the feed's fan-out, which pushes each new batch
   * to it synchronously (no wait, timer or read of its own per event). When `take` answers with a
   * promise (a full socket), the subscriber leaves the fan-out, waits for it, catches up from its
   * position (memory, or the table when it fell behind the memory) and joins again.
   */
  async follow(signal: AbortSignal, take: (batch: EventBatch) => true | Promise<void>): Promise<void> {
    const fanout = fanoutOf(this.feed);
    while (!signal.aborted) {
      if (this.position < this.feed.floor) {
        const rows = await this.next(signal, 0);
        if (rows.length) await take(new EventBatch(rows));
        continue;
      }
      const found = this.feed.after(this.position).filter((e) => eventMatches(e, this.filter));
      this.position = Math.max(this.position, this.feed.last);
      if (found.length) {
        const r = take(new EventBatch(found));
        if (r !== true) {
          await r;
          continue;
        }
      }
      // Still synchronous since reading the memory: nothing arrived in between, so joining here
      // at the fan-out's position neither skips nor repeats an event.
      if (this.position !== fanout.position) {
        // A resume point ahead of the feed (an id it has not reached yet): wait until it passes it.
        await advanced(this.feed, this.position, signal, 60_000);
        continue;
      }
      const wait = await fanout.member(this.filter, signal, take);
      this.position = wait.position;
      if (wait.until) await wait.until;
    }
  }
}

interface Member {
  take: (batch: EventBatch) => true | Promise<void>;
  /** It stops being pushed batches; everything up to `position` it has been given. */
  leave(position: number, until: Promise<void> | null): void;
}

/**
 * The live subscribers of one feed, grouped by filter: each new page of events is filtered once
 * per distinct filter and pushed to every member of the group as one shared batch.
 */
class Fanout {
  /** Every event up to here has been offered to the members (equal to the feed's `last` between pages). */
  position: number;
  private readonly groups = new Map<string, { filter: EventFilter; members: Set<Member> }>();

  constructor(private readonly feed: EventFeed) {
    this.position = feed.last;
    feed.subscribe(() => this.deliver());
  }

  /** Joins at the fan-out's position; resolves when the member leaves (with what it waits for). */
  member(filter: EventFilter, signal: AbortSignal, take: Member['take']): Promise<{ position: number; until: Promise<void> | null }> {
    const key = JSON.stringify([filter.projectIds, filter.projectId ?? null, filter.kinds ?? [], filter.readable ?? null]);
    let group = this.groups.get(key);
    if (!group) this.groups.set(key, (group = { filter, members: new Set() }));
    const members = group.members;
    return new Promise((resolve) => {
      const member: Member = {
        take,
        leave: (position, until) => {
          members.delete(member);
          if (!members.size && this.groups.get(key)?.members === members) this.groups.delete(key);
          signal.removeEventListener('abort', onAbort);
          resolve({ position, until });
        },
      };
      const onAbort = () => member.leave(this.position, null);
      members.add(member);
      signal.addEventListener('abort', onAbort);
    });
  }

  private deliver() {
    const from = this.position;
    if (from < this.feed.floor) {
      // Events left the memory before they were offered (cannot happen with a page smaller than the
      // memory, but if it did): every member catches up from the table.
      for (const g of [...this.groups.values()]) for (const m of [...g.members]) m.leave(from, null);
      this.position = this.feed.last;
      return;
    }
    const fresh = this.feed.after(from);
    this.position = this.feed.last;
    if (!fresh.length) return;
    for (const g of [...this.groups.values()]) {
      const matched = fresh.filter((e) => eventMatches(e, g.filter));
      if (!matched.length) continue;
      const batch = new EventBatch(matched);
      for (const m of [...g.members]) {
        let r: true | Promise<void>;
        try {
          r = m.take(batch);
        } catch (err) {
          r = Promise.reject(err as Error);
        }
        if (r !== true) m.leave(this.position, r);
      }
    }
  }
}

const fanouts = new WeakMap<EventFeed, Fanout>();

function fanoutOf(feed: EventFeed): Fanout {
  let f = fanouts.get(feed);
  if (!f) fanouts.set(feed, (f = new Fanout(feed)));
  return f;
}

/** Resolves true when the feed moves past `position`, false at the timeout or abort. */
function advanced(feed: EventFeed, position: number, signal: AbortSignal, ms: number): Promise<boolean> {
  if (feed.last > position) return Promise.resolve(true);
  if (ms <= 0 || signal.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const done = (v: boolean) => {
      clearTimeout(timer);
      unsubscribe();
      signal.removeEventListener('abort', onAbort);
      resolve(v);
    };
    const onAbort = () => done(false);
    const timer = setTimeout(() => done(false), ms);
    const unsubscribe = feed.subscribe(() => {
      if (feed.last > position) done(true);
    });
    signal.addEventListener('abort', onAbort);
    if (feed.last > position) done(true);
  });
}

export const MAX_WAIT_SECONDS = 60;
const waitQuery = z.object({
  waitFor: z.string().max(500).optional(),
  timeout: z.coerce
    .number({ error: 'must be a number of seconds' })
    .int('must be whole seconds')
    .min(0)
    .max(MAX_WAIT_SECONDS, `must be at most ${MAX_WAIT_SECONDS} seconds`)
    .optional(),
});

/**
 * Long-polling for a status endpoint: `?waitFor=a,b&timeout=<s>` holds the request until the
 * subject's status is one of those (or the timeout: then the current state with
 * `X-Wait-Timed-Out: true`), then the route answers as usual. Woken by the subject's status
 * events, never by polling the row.
 */
export function longPoll(
  db: Db,
  kind: 'machine' | 'objective' | 'pipeline' | 'payment',
  statuses: readonly string[],
  statusOf: (id: string) => Promise<string | null>,
): RequestHandler {
  return async (req, res, next) => {
    try {
      if (req.query.waitFor === undefined) return next();
      const parsed = waitQuery.safeParse(req.query);
      if (!parsed.success) {
        const issue = parsed.error.issues[0]!;
        throw new InputError(`${issue.path.join('.')}: ${issue.message}`, { field: String(issue.path[0]) });
      }
      const wanted = (parsed.data.waitFor ?? '')
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
      const unknown = wanted.filter((s) => !statuses.includes(s));
      if (!wanted.length || unknown.length) {
        throw new InputError(`waitFor: give one or more ${kind} statuses, comma-separated (${statuses.join(', ')})`, { field: 'waitFor' });
      }
      const id = param(req, 'id');
      const feed = eventFeedOf(db);
      await feed.ready();
      const gone = new AbortController();
      res.on('close', () => gone.abort());
      const until = Date.now() + (parsed.data.timeout ?? 30) * 1000;
      // The position is taken before the status is read: a change committing in between wakes the wait.
      let position = feed.last;
      for (;;) {
        const status = await statusOf(id);
        if (status === null || wanted.includes(status)) break;
        if (gone.signal.aborted) return;
        let relevant = false;
        while (!relevant) {
          if (!(await advanced(feed, position, gone.signal, until - Date.now()))) break;
          relevant = position < feed.floor || feed.after(position).some((e) => e.subjectId === id && e.kind === `${kind}.status`);
          position = feed.last;
        }
        if (!relevant) {
          if (gone.signal.aborted) return;
          res.set('X-Wait-Timed-Out', 'true');
          break;
        }
      }
      next();
    } catch (e) {
      next(e);
    }
  };
}

const PAYMENT_STATUSES = ['running', 'manual_required', 'succeeded', 'failed'] as const;

/** `?waitFor=&timeout=` for each status endpoint (put before the route's handler). */
export const waitForStatus = {
  machine: (db: Db) => longPoll(db, 'machine', MACHINE_STATUSES, (id) => currentStatus(db, 'machine', id)),
  objective: (db: Db) => longPoll(db, 'objective', OBJECTIVE_STATUSES, (id) => currentStatus(db, 'objective', id)),
  pipeline: (db: Db) => longPoll(db, 'pipeline', PIPELINE_STATUSES, (id) => currentStatus(db, 'pipeline', id)),
  payment: (db: Db) => longPoll(db, 'payment', PAYMENT_STATUSES, (id) => currentStatus(db, 'payment', id)),
};

import type { Knex } from 'knex';
import { AUDIT_LOCK } from './audit.js';
import type { Db } from './db.js';
import type { PlatformEvent } from '../domain/events.js';

/**
 * The event feed: one append-only row per state change (machine/objective/pipeline/payment
 * status, budget changes), written in the transaction of the change. Every writer takes one
 * advisory lock before it allocates its `seq` and holds it to commit, so rows commit in seq order:
 * a reader that has seen seq N has seen every row below N, and resuming "after N" loses nothing.
 * The lock is the audit log's (appendAudit): many transactions write both, in either order, and
 * one lock cannot be taken in opposite orders. Take other advisory locks (placement) before it.
 */
export type Conn = Db | Knex.Transaction;

export const EVENTS_CHANNEL = 'autovibe_events';

export interface NewEvent {
  kind: string;
  projectId: string | null;
  subjectId: string;
  data?: Record<string, unknown>;
}

export type EventRecord = PlatformEvent;

/** Runs `fn` in the caller's transaction, or in a new one. */
export async function inTransaction<T>(db: Conn, fn: (trx: Knex.Transaction) => Promise<T>): Promise<T> {
  if ((db as Knex.Transaction).isTransaction) return fn(db as Knex.Transaction);
  return (db as Db).transaction(fn);
}

/** Appends events inside `trx` (call it last in the transaction); listeners hear of them at commit. */
export async function appendEvents(trx: Knex.Transaction, events: NewEvent[]): Promise<void> {
  if (!events.length) return;
  // One statement (one round trip while the lock is held, which every writer of the feed waits on):
  // the rows are produced only after the lock's row, so each seq is drawn under the lock, in the
  // order given; the notification is delivered when the transaction commits, never on a rollback.
  const rows = events.map((e) => ({ kind: e.kind, project_id: e.projectId, subject_id: e.subjectId, data: e.data ?? {} }));
  await trx.raw(
    `WITH held AS (SELECT pg_advisory_xact_lock(?)),
          added AS (
            INSERT INTO events (kind, project_id, subject_id, data)
            SELECT e.v->>'kind', e.v->>'project_id', e.v->>'subject_id', e.v->'data'
              FROM held, jsonb_array_elements(?::jsonb) WITH ORDINALITY AS e(v, n)
             ORDER BY e.n
            RETURNING seq)
     SELECT pg_notify(?, max(seq)::text) FROM added`,
    [AUDIT_LOCK, JSON.stringify(rows), EVENTS_CHANNEL],
  );
}

export const appendEvent = (trx: Knex.Transaction, e: NewEvent) => appendEvents(trx, [e]);

const toEvent = (r: Record<string, any>): EventRecord => ({
  seq: Number(r.seq),
  at: new Date(r.at).toISOString(),
  kind: r.kind,
  projectId: r.project_id,
  subjectId: r.subject_id,
  data: typeof r.data === 'string' ? JSON.parse(r.data) : r.data,
});

/** Who may see which events, and what the caller asked for. */
export interface EventFilter {
  /** The caller's projects (null: every project, and deployment-level events too). */
  projectIds: readonly string[] | null;
  projectId?: string;
  /** Exact kinds, or `prefix.*`; empty: every kind the caller may read. */
  kinds?: readonly string[];
  /** Kind prefixes (`machine.`) the caller may read; null: all. */
  readable?: readonly string[] | null;
}

const kindMatches = (kind: string, pattern: string) => (pattern.endsWith('.*') ? kind.startsWith(pattern.slice(0, -1)) : kind === pattern);

/** The filter as a predicate (the same rule the SQL of `eventsAfter` applies). */
export function eventMatches(e: Pick<EventRecord, 'kind' | 'projectId'>, f: EventFilter): boolean {
  if (f.projectIds !== null && (e.projectId === null || !f.projectIds.includes(e.projectId))) return false;
  if (f.projectId && e.projectId !== f.projectId) return false;
  if (f.kinds?.length && !f.kinds.some((k) => kindMatches(e.kind, k))) return false;
  if (f.readable && !f.readable.some((prefix) => e.kind.startsWith(prefix))) return false;
  return true;
}

/** Events after `after` that pass the filter, oldest first. */
export async function eventsAfter(db: Conn, after: number, f: EventFilter, limit: number): Promise<EventRecord[]> {
  const q = db('events').where('seq', '>', after).orderBy('seq').limit(limit);
  if (f.projectIds !== null) q.whereIn('project_id', [...f.projectIds]);
  if (f.projectId) q.where('project_id', f.projectId);
  const like = (p: string) => p.replace(/[\\%_]/g, (c) => `\\${c}`) + '%';
  if (f.kinds?.length) {
    q.where((w) => {
      for (const k of f.kinds!) {
        if (k.endsWith('.*')) w.orWhere('kind', 'like', like(k.slice(0, -1)));
        else w.orWhere('kind', k);
      }
    });
  }
  if (f.readable) {
    const readable = f.readable;
    if (!readable.length) return [];
    q.where((w) => {
      for (const prefix of readable) w.orWhere('kind', 'like', like(prefix));
    });
  }
  return (await q).map(toEvent);
}

/** Every event after `after` (no filter), oldest first: what the feed reads. */
export async function allEventsAfter(db: Conn, after: number, limit: number): Promise<EventRecord[]> {
  return (await db('events').where('seq', '>', after).orderBy('seq').limit(limit)).map(toEvent);
}

export async function lastEventSeq(db: Conn): Promise<number> {
  const row = await db('events').max({ seq: 'seq' }).first();
  return Number(row?.seq ?? 0);
}

const STATUS_TABLES = { machine: 'machines', objective: 'objectives', pipeline: 'pipelines', payment: 'payments' } as const;

/** The current status of a machine, objective, pipeline or payment (null: none with that id). */
export async function currentStatus(db: Conn, kind: keyof typeof STATUS_TABLES, id: string): Promise<string | null> {
  const row = await db(STATUS_TABLES[kind]).where({ id }).first('status');
  return row?.status ?? null;
}

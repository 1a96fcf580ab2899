import crypto from 'node:crypto';
import type { Knex } from 'knex';
import type { Db } from './db.js';

export interface AuditEntry {
  actor: string;
  action: string;
  subjectType: string;
  subjectId: string;
  projectId?: string | null;
  details?: Record<string, unknown>;
  /** When given, the same entry is written at most once (activity retries, API replays). */
  idempotencyKey?: string;
}

export interface AuditRecord extends Required<Omit<AuditEntry, 'idempotencyKey'>> {
  seq: string;
  at: string;
  hash: string;
  prevHash: string;
}

const GENESIS = '0'.repeat(64);
// Serialises writers so each row chains onto the true previous hash, on real Postgres and PGlite alike.
/** Also orders event writers (store/events.ts): one lock, so the two never wait on each other in opposite order. */
export const AUDIT_LOCK = 0x617564;

/** JSON with object keys sorted, so a row hashes the same after a jsonb round trip (jsonb reorders keys). */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

function hashOf(prevHash: string, e: AuditEntry, at: string): string {
  const body = canonicalJson([prevHash, at, e.actor, e.action, e.subjectType, e.subjectId, e.projectId ?? null, e.details ?? {}]);
  return crypto.createHash('sha256').update(body).digest('hex');
}

/** Appends one audit record (hash-chained). Idempotent on `idempotencyKey`. */
export async function appendAudit(db: Db | Knex.Transaction, entry: AuditEntry): Promise<void> {
  const write = async (trx: Knex.Transaction) => {
    await trx.raw('SELECT pg_advisory_xact_lock(?)', [AUDIT_LOCK]);
    if (entry.idempotencyKey) {
      const seen = await trx('audit_log').where({ idempotency_key: entry.idempotencyKey }).first('seq');
      if (seen) return;
    }
    const last = await trx('audit_log').orderBy('seq', 'desc').first('hash');
    const prevHash: string = last?.hash ?? GENESIS;
    const at = new Date().toISOString();
    await trx('audit_log').insert({
      idempotency_key: entry.idempotencyKey ?? null,
      at,
      actor: entry.actor,
      action: entry.action,
      subject_type: entry.subjectType,
      subject_id: entry.subjectId,
      project_id: entry.projectId ?? null,
      details: JSON.stringify(entry.details ?? {}),
      prev_hash: prevHash,
      hash: hashOf(prevHash, entry, at),
    });
  };
  if (db.isTransaction) await write(db as Knex.Transaction);
  else await (db as Db).transaction(write);
}

export interface AuditFilter {
  projectId?: string;
  subjectId?: string;
  actor?: string;
  action?: string;
  afterSeq?: string;
  /** Only these projects' records (a project-bound key never reads deployment-level records). */
  projectIds?: readonly string[] | null;
  limit: number;
}

export async function listAudit(db: Db, f: AuditFilter): Promise<AuditRecord[]> {
  const q = db('audit_log').orderBy('seq', 'asc').limit(f.limit);
  if (f.projectId) q.where({ project_id: f.projectId });
  if (f.subjectId) q.where({ subject_id: f.subjectId });
  if (f.actor) q.where({ actor: f.actor });
  if (f.action) q.where({ action: f.action });
  if (f.afterSeq) q.where('seq', '>', f.afterSeq);
  if (f.projectIds) q.whereIn('project_id', f.projectIds);
  const rows = await q;
  return rows.map(toRecord);
}

/** The first `limitEach` audit records of each subject (oldest first), one query for all subjects. */
export async function auditOfSubjects(db: Db, subjectIds: readonly string[], limitEach: number): Promise<Map<string, AuditRecord[]>> {
  const out = new Map<string, AuditRecord[]>();
  if (!subjectIds.length) return out;
  const ranked = db('audit_log')
    .whereIn('subject_id', [...new Set(subjectIds)])
    .select('*', db.raw('row_number() over (partition by subject_id order by seq) as rank_in_subject'));
  const rows = await db.from(ranked.as('ranked')).where('rank_in_subject', '<=', limitEach).orderBy('seq', 'asc');
  for (const r of rows) {
    const list = out.get(r.subject_id);
    if (list) list.push(toRecord(r));
    else out.set(r.subject_id, [toRecord(r)]);
  }
  return out;
}

function toRecord(r: Record<string, any>): AuditRecord {
  return {
    seq: String(r.seq),
    at: new Date(r.at).toISOString(),
    actor: r.actor,
    action: r.action,
    subjectType: r.subject_type,
    subjectId: r.subject_id,
    projectId: r.project_id,
    details: typeof r.details === 'string' ? JSON.parse(r.details) : r.details,
    prevHash: r.prev_hash,
    hash: r.hash,
  };
}

/** Recomputes the chain; returns the seq of the first broken link, or null when intact. */
export async function verifyAuditChain(db: Db): Promise<string | null> {
  const rows = await db('audit_log').orderBy('seq', 'asc');
  let prev = GENESIS;
  for (const row of rows) {
    const r = toRecord(row);
    if (r.prevHash !== prev || hashOf(prev, r, r.at) !== r.hash) return r.seq;
    prev = r.hash;
  }
  return null;
}

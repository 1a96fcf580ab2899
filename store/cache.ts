import crypto from 'node:crypto';
import type { Knex } from 'knex';
import { type CurrencyCode, fromNumeric, toNumeric } from '../domain/money.js';
import type { Db } from './db.js';

/**
 * The result cache of machines. A machine's input is its parent checkpoint's file tree (not the
 * checkpoint id: the same files are the same input), its type, model, prompt, command and profile.
 * A machine that completed with a final checkpoint is an entry for its key; a later machine with
 * the same key reuses that checkpoint's commit instead of running.
 */
export const CACHE_OUTCOMES = ['hit', 'miss', 'bypass'] as const;
export type CacheOutcome = (typeof CACHE_OUTCOMES)[number];

export interface CacheKeyInput {
  /** Git tree id of the parent checkpoint's commit. */
  tree: string;
  type: string;
  model: string | null;
  prompt: string | null;
  command: string | null;
  profile: string;
  /** Anything else that changes the result (e.g. inputs placed at the start), as a stable string. */
  extra?: string;
}

/** sha256 over the machine's input; empty strings and nulls are the same (no prompt is no prompt). */
export function cacheKey(i: CacheKeyInput): string {
  const parts = [i.tree, i.type, i.model || '', i.prompt || '', i.command || '', i.profile, ...(i.extra ? [i.extra] : [])];
  return crypto.createHash('sha256').update(JSON.stringify(parts)).digest('hex');
}

export interface CacheRecord {
  machineId: string;
  projectId: string;
  key: string;
  outcome: CacheOutcome;
  sourceMachineId: string | null;
  checkpointId: string | null;
  savedAmount: bigint | null;
  currency: CurrencyCode | null;
  createdAt: string;
}

function toRecord(r: Record<string, any>): CacheRecord {
  return {
    machineId: r.machine_id,
    projectId: r.project_id,
    key: r.cache_key,
    outcome: r.outcome,
    sourceMachineId: r.source_machine_id,
    checkpointId: r.checkpoint_id,
    savedAmount: r.saved_amount === null ? null : fromNumeric(r.saved_amount),
    currency: r.currency,
    createdAt: new Date(r.created_at).toISOString(),
  };
}

/** Records a machine's lookup once; a repeat for the same machine keeps the first. */
export async function insertCacheRecord(db: Db | Knex.Transaction, r: Omit<CacheRecord, 'createdAt'>): Promise<void> {
  await db('machine_cache')
    .insert({
      machine_id: r.machineId,
      project_id: r.projectId,
      cache_key: r.key,
      outcome: r.outcome,
      source_machine_id: r.sourceMachineId,
      checkpoint_id: r.checkpointId,
      saved_amount: r.savedAmount === null ? null : toNumeric(r.savedAmount),
      currency: r.currency,
    })
    .onConflict('machine_id')
    .ignore();
}

export async function getCacheRecord(db: Db, machineId: string): Promise<CacheRecord | null> {
  const row = await db('machine_cache').where({ machine_id: machineId }).first();
  return row ? toRecord(row) : null;
}

/** The cache records of several machines, one query (machines that never looked are absent). */
export async function getCacheRecords(db: Db, machineIds: readonly string[]): Promise<Map<string, CacheRecord>> {
  const out = new Map<string, CacheRecord>();
  if (!machineIds.length) return out;
  for (const r of await db('machine_cache').whereIn('machine_id', [...new Set(machineIds)])) out.set(r.machine_id, toRecord(r));
  return out;
}

export interface CacheEntry {
  machineId: string;
  exitCode: number | null;
  checkpointId: string;
  commit: string;
}

/**
 * The newest entry for `key` in the project: a machine that ran (a miss or an opt-out, never a
 * hit, so a hit always names the machine that did the work), completed with exit code 0 and left
 * a final checkpoint.
 */
export async function findCacheEntry(db: Db, projectId: string, key: string): Promise<CacheEntry | null> {
  const row = await db('machine_cache as mc')
    .join('machines as m', 'm.id', 'mc.machine_id')
    .join('checkpoints as c', function () {
      this.on('c.machine_id', '=', 'm.id').andOnVal('c.kind', '=', 'final');
    })
    .where({ 'mc.project_id': projectId, 'mc.cache_key': key, 'm.status': 'completed' })
    .whereIn('mc.outcome', ['miss', 'bypass'])
    .whereRaw('coalesce(m.exit_code, 0) = 0')
    .orderBy([
      { column: 'm.ended_at', order: 'desc' },
      { column: 'c.created_at', order: 'desc' },
    ])
    .first('m.id as machine_id', 'm.exit_code', 'c.id as checkpoint_id', 'c.commit');
  return row ? { machineId: row.machine_id, exitCode: row.exit_code, checkpointId: row.checkpoint_id, commit: row.commit } : null;
}

export interface CacheSummary {
  hits: number;
  misses: number;
  bypassed: number;
  /** What the hits would have cost: the sum of their source machines' charges. */
  saved: bigint;
}

/** Hit, miss and opt-out counts of a project's machines, and the money the hits saved. */
export async function cacheSummary(db: Db, projectId: string): Promise<CacheSummary> {
  const rows = (await db('machine_cache')
    .where({ project_id: projectId })
    .select('outcome')
    .count({ n: '*' })
    .sum({ saved: 'saved_amount' })
    .groupBy('outcome')) as Array<{ outcome: CacheOutcome; n: string | number; saved: string | null }>;
  const by = new Map(rows.map((r) => [r.outcome, r]));
  return {
    hits: Number(by.get('hit')?.n ?? 0),
    misses: Number(by.get('miss')?.n ?? 0),
    bypassed: Number(by.get('bypass')?.n ?? 0),
    saved: fromNumeric(by.get('hit')?.saved ?? null),
  };
}

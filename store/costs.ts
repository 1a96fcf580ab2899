import { type CurrencyCode, fromNumeric, toNumeric } from '../domain/money.js';
import type { Db } from './db.js';

/** `cache`: a machine whose result came from the cache (amount zero; details name the source and what it saved). */
export const COST_CATEGORIES = ['api', 'infra', 'storage', 'network', 'cache'] as const;
export type CostCategory = (typeof COST_CATEGORIES)[number];

export interface CostEvent {
  /** Position in the cost log (a paging cursor). */
  seq: string;
  idempotencyKey: string;
  projectId: string;
  machineId: string | null;
  category: CostCategory;
  amount: bigint;
  currency: CurrencyCode;
  projectAmount: bigint;
  projectCurrency: CurrencyCode;
  details: Record<string, unknown>;
  /** The cost center the spend is allocated to (the machine's override, else the project's). */
  costCenterId?: string | null;
  /** The rate `amount` was converted to `projectAmount` with, when the currencies differ. */
  fx?: { rate: string; source: string; asOf: string } | null;
  createdAt?: string;
}

/** Records a cost event once per idempotency key; returns true when this call wrote it. */
/** A cost event before it is written (the log gives it its seq). */
export type NewCostEvent = Omit<CostEvent, 'seq'>;

export async function recordCost(db: Db, e: NewCostEvent): Promise<boolean> {
  const inserted = await db('cost_events')
    .insert({
      idempotency_key: e.idempotencyKey,
      project_id: e.projectId,
      machine_id: e.machineId,
      category: e.category,
      amount: toNumeric(e.amount),
      currency: e.currency,
      project_amount: toNumeric(e.projectAmount),
      project_currency: e.projectCurrency,
      details: JSON.stringify(e.details),
      cost_center_id: e.costCenterId ?? null,
      fx_rate: e.fx?.rate ?? null,
      fx_source: e.fx?.source ?? null,
      fx_as_of: e.fx?.asOf ?? null,
      // When the spend happened, if not now (imports and seeded histories).
      ...(e.createdAt ? { created_at: e.createdAt } : {}),
    })
    .onConflict('idempotency_key')
    .ignore()
    .returning('seq');
  return inserted.length > 0;
}

function toCostEvent(r: Record<string, any>): CostEvent {
  return {
    seq: String(r.seq),
    idempotencyKey: r.idempotency_key,
    projectId: r.project_id,
    machineId: r.machine_id,
    category: r.category,
    amount: fromNumeric(r.amount),
    currency: r.currency,
    projectAmount: fromNumeric(r.project_amount),
    projectCurrency: r.project_currency,
    details: typeof r.details === 'string' ? JSON.parse(r.details) : r.details,
    costCenterId: r.cost_center_id ?? null,
    fx: r.fx_rate ? { rate: r.fx_rate, source: r.fx_source, asOf: new Date(r.fx_as_of).toISOString() } : null,
    createdAt: new Date(r.created_at).toISOString(),
  };
}

export async function listCosts(
  db: Db,
  f: { projectId?: string; machineId?: string; costCenterId?: string; since?: Date; limit?: number; afterSeq?: string },
): Promise<CostEvent[]> {
  const q = db('cost_events').orderBy('seq', 'asc');
  if (f.afterSeq) q.where('seq', '>', f.afterSeq);
  if (f.costCenterId) q.where({ cost_center_id: f.costCenterId });
  if (f.projectId) q.where({ project_id: f.projectId });
  if (f.machineId) q.where({ machine_id: f.machineId });
  if (f.since) q.where('created_at', '>=', f.since);
  if (f.limit) q.limit(f.limit);
  return (await q).map(toCostEvent);
}

/** Total spent per category, in the project's currency. */
/** `costTotals` of several machines (by category), one query for all; machines without costs are absent. */
export async function costTotalsOfMachines(db: Db, machineIds: readonly string[]): Promise<Map<string, Record<string, bigint>>> {
  const out = new Map<string, Record<string, bigint>>();
  if (!machineIds.length) return out;
  const rows = (await db('cost_events')
    .whereIn('machine_id', [...new Set(machineIds)])
    .select('machine_id', 'category')
    .sum({ total: 'project_amount' })
    .groupBy('machine_id', 'category')) as Array<{ machine_id: string; category: string; total: string }>;
  for (const r of rows) {
    let totals = out.get(r.machine_id);
    if (!totals) out.set(r.machine_id, (totals = {}));
    totals[r.category] = fromNumeric(r.total);
  }
  return out;
}

export async function costTotals(db: Db, f: { projectId?: string; machineId?: string }): Promise<Record<string, bigint>> {
  const q = db('cost_events').select('category').sum({ total: 'project_amount' }).groupBy('category');
  if (f.projectId) q.where({ project_id: f.projectId });
  if (f.machineId) q.where({ machine_id: f.machineId });
  const out: Record<string, bigint> = {};
  for (const r of (await q) as Array<{ category: string; total: string }>) out[r.category] = fromNumeric(r.total);
  return out;
}

export type CostBucket = 'hour' | 'day';

/**
 * A project's spend per time bucket (UTC hours or days) and category in [from, to), in the
 * project's currency: one grouped query; buckets without spend are absent.
 */
export async function costSeries(
  db: Db,
  f: { projectId: string; bucket: CostBucket; from: Date; to: Date },
): Promise<Array<{ start: Date; category: string; amount: bigint }>> {
  const rows = (await db('cost_events')
    .where({ project_id: f.projectId })
    .where('created_at', '>=', f.from)
    .where('created_at', '<', f.to)
    .select(db.raw(`extract(epoch from date_trunc(?, created_at at time zone 'UTC'))::bigint as bucket`, [f.bucket]), 'category')
    .sum({ total: 'project_amount' })
    .groupByRaw('1, 2')
    .orderByRaw('1, 2')) as Array<{ bucket: string | number; category: string; total: string }>;
  return rows.map((r) => ({ start: new Date(Number(r.bucket) * 1000), category: r.category, amount: fromNumeric(r.total) }));
}

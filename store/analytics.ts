import { fromNumeric } from '../domain/money.js';
import type { Db } from './db.js';

/** What a cost breakdown groups by. `category` is the cost record's kind: api, infra, storage, network, cache. */
export const BREAKDOWN_DIMENSIONS = ['machineType', 'provider', 'model', 'category', 'costCenter', 'objective', 'project'] as const;
export type BreakdownDimension = (typeof BREAKDOWN_DIMENSIONS)[number];

/** The SQL expression of each dimension over cost_events `e` left-joined to machines `m`. */
const DIMENSION_SQL: Record<BreakdownDimension, string> = {
  machineType: 'm.type',
  provider: `coalesce(e.details->>'provider', m.provider)`,
  model: `e.details->>'model'`,
  category: 'e.category',
  costCenter: 'e.cost_center_id',
  objective: 'm.objective_id',
  project: 'e.project_id',
};

/** Whose spend: a project's, a cost center's (what is allocated to it), or a department's (its cost centers'). */
export type BreakdownScope = { projectId: string } | { costCenterId: string } | { department: string };

/**
 * Spend in [from, to) grouped by one dimension and the projects' currency, exact (numeric sums of
 * each record's amount in its project's currency). Every record is in exactly one group (`key`
 * null: it has no such attribute, e.g. the model of a compute record), so the groups of a currency
 * add up to its total.
 */
export async function costBreakdown(
  db: Db,
  f: { scope: BreakdownScope; by: BreakdownDimension; from: Date; to: Date },
): Promise<Array<{ key: string | null; currency: string; amount: bigint; records: number }>> {
  const q = db('cost_events as e')
    .leftJoin('machines as m', 'm.id', 'e.machine_id')
    .where('e.created_at', '>=', f.from)
    .where('e.created_at', '<', f.to)
    .select(db.raw(`${DIMENSION_SQL[f.by]} as key`), db.raw('e.project_currency as currency'))
    .sum({ total: 'e.project_amount' })
    .count({ n: '*' })
    .groupByRaw('1, 2')
    .orderByRaw('2, 1 nulls last');
  if ('projectId' in f.scope) q.where('e.project_id', f.scope.projectId);
  else if ('costCenterId' in f.scope) q.where('e.cost_center_id', f.scope.costCenterId);
  else q.join('cost_centers as c', 'c.id', 'e.cost_center_id').where('c.department', f.scope.department);
  const rows = (await q) as Array<{ key: string | null; currency: string; total: string; n: string | number }>;
  return rows.map((r) => ({ key: r.key ?? null, currency: r.currency, amount: fromNumeric(r.total), records: Number(r.n) }));
}

/**
 * A project's spend per period (UTC day, ISO week from Monday, or month), cost category and
 * machine type (null: spend of no machine) in [from, to).
 */
export async function periodSpend(
  db: Db,
  f: { projectId: string; unit: 'day' | 'week' | 'month'; from: Date; to: Date },
): Promise<Array<{ start: Date; category: string; machineType: string | null; amount: bigint }>> {
  const rows = (await db('cost_events as e')
    .leftJoin('machines as m', 'm.id', 'e.machine_id')
    .where('e.project_id', f.projectId)
    .where('e.created_at', '>=', f.from)
    .where('e.created_at', '<', f.to)
    .select(
      db.raw(`extract(epoch from date_trunc(?, e.created_at at time zone 'UTC'))::bigint as start`, [f.unit]),
      'e.category',
      db.raw('m.type as machine_type'),
    )
    .sum({ total: 'e.project_amount' })
    .groupByRaw('1, 2, 3')
    .orderByRaw('1, 2, 3')) as Array<{ start: string | number; category: string; machine_type: string | null; total: string }>;
  return rows.map((r) => ({
    start: new Date(Number(r.start) * 1000),
    category: r.category,
    machineType: r.machine_type ?? null,
    amount: fromNumeric(r.total),
  }));
}

/** Finished on-demand machines of a project on the given providers since `since`, with what their compute cost. */
export async function onDemandRuns(
  db: Db,
  f: { projectId: string; providers: readonly string[]; since: Date },
): Promise<Array<{ machineId: string; provider: string; profile: string; status: string; region: string | null; hourly: string | null; infra: bigint }>> {
  if (!f.providers.length) return [];
  const rows = (await db('machines as m')
    .join('cost_events as e', 'e.machine_id', 'm.id')
    .where('m.project_id', f.projectId)
    .where('m.spot', false)
    .whereIn('m.provider', [...f.providers])
    .where('e.category', 'infra')
    .where('e.created_at', '>=', f.since)
    .select('m.id', 'm.provider', 'm.profile', 'm.status', db.raw(`m.compute_price->>'region' as region`), db.raw(`m.compute_price->>'hourly' as hourly`))
    .sum({ total: 'e.project_amount' })
    .groupBy('m.id', 'm.provider', 'm.profile', 'm.status', db.raw(`m.compute_price->>'region'`), db.raw(`m.compute_price->>'hourly'`))
    .orderBy('m.id')) as Array<{ id: string; provider: string; profile: string; status: string; region: string | null; hourly: string | null; total: string }>;
  return rows.map((r) => ({
    machineId: r.id,
    provider: r.provider,
    profile: r.profile,
    status: r.status,
    region: r.region,
    hourly: r.hourly,
    infra: fromNumeric(r.total),
  }));
}

/**
 * Identical requests run more than once: machines of a project with the same cache key that ran
 * (a miss or a bypass of the result cache) since `since`, oldest first, each with its whole cost.
 */
export async function repeatedRuns(
  db: Db,
  f: { projectId: string; since: Date },
): Promise<Array<{ key: string; runs: Array<{ machineId: string; cost: bigint }> }>> {
  const rows = (await db('machine_cache as c')
    .leftJoin('cost_events as e', 'e.machine_id', 'c.machine_id')
    .where('c.project_id', f.projectId)
    .whereIn('c.outcome', ['miss', 'bypass'])
    .where('c.created_at', '>=', f.since)
    .whereIn('c.cache_key', (q) =>
      q
        .from('machine_cache')
        .select('cache_key')
        .where('project_id', f.projectId)
        .whereIn('outcome', ['miss', 'bypass'])
        .where('created_at', '>=', f.since)
        .groupBy('cache_key')
        .havingRaw('count(*) > 1'),
    )
    .select('c.cache_key', 'c.machine_id', db.raw('min(c.created_at) as at'))
    .sum({ total: 'e.project_amount' })
    .groupBy('c.cache_key', 'c.machine_id')
    .orderBy([{ column: 'c.cache_key' }, { column: 'at' }, { column: 'c.machine_id' }])) as Array<{
    cache_key: string;
    machine_id: string;
    total: string | null;
  }>;
  const out = new Map<string, Array<{ machineId: string; cost: bigint }>>();
  for (const r of rows) {
    const runs = out.get(r.cache_key) ?? [];
    runs.push({ machineId: r.machine_id, cost: fromNumeric(r.total) });
    out.set(r.cache_key, runs);
  }
  return [...out].map(([key, runs]) => ({ key, runs }));
}

/**
 * Agent machines of a project (a type other than `shell`) that ended since `since` after at most
 * `maxSeconds` and `maxApiCalls` model calls, with their model spend: short, simple work.
 */
export async function shortAgentRuns(
  db: Db,
  f: { projectId: string; since: Date; maxSeconds: number; maxApiCalls: number },
): Promise<Array<{ machineId: string; type: string; seconds: number; apiCalls: number; api: bigint; models: string[] }>> {
  const rows = (await db('machines as m')
    .join('cost_events as e', 'e.machine_id', 'm.id')
    .where('m.project_id', f.projectId)
    .whereNot('m.type', 'shell')
    .whereNotNull('m.started_at')
    .whereNotNull('m.ended_at')
    .where('m.ended_at', '>=', f.since)
    .whereRaw('extract(epoch from (m.ended_at - m.started_at)) <= ?', [f.maxSeconds])
    .where('e.category', 'api')
    .select(
      'm.id',
      'm.type',
      db.raw('extract(epoch from (m.ended_at - m.started_at))::float as seconds'),
      db.raw(`array_agg(distinct e.details->>'model') as models`),
    )
    .count({ calls: '*' })
    .sum({ total: 'e.project_amount' })
    .groupBy('m.id', 'm.type', 'm.started_at', 'm.ended_at')
    .havingRaw('count(*) <= ?', [f.maxApiCalls])
    .orderBy('m.id')) as Array<{ id: string; type: string; seconds: number; models: string[] | null; calls: string | number; total: string }>;
  return rows.map((r) => ({
    machineId: r.id,
    type: r.type,
    seconds: Number(r.seconds),
    apiCalls: Number(r.calls),
    api: fromNumeric(r.total),
    models: (r.models ?? []).filter((x): x is string => !!x),
  }));
}

/** Warm-pool instances waiting unclaimed (deployment-wide), with how long each has waited by `now`. */
export async function idleWarmInstances(db: Db, now: Date): Promise<Array<{ instanceRef: string; provider: string; profile: string; idleSeconds: number }>> {
  const rows = await db('warm_instances').whereNull('machine_id').orderBy('created_at').select('instance_ref', 'provider', 'profile', 'created_at');
  return rows.map((r) => ({
    instanceRef: r.instance_ref,
    provider: r.provider,
    profile: r.profile,
    idleSeconds: Math.max(0, (now.getTime() - new Date(r.created_at).getTime()) / 1000),
  }));
}

/** The model calls (api cost records) of some machines, oldest first, with what each cost in USD and in the project's currency. */
export async function apiCallsOf(
  db: Db,
  machineIds: readonly string[],
): Promise<Array<{ machineId: string; amount: bigint; currency: string; projectAmount: bigint; details: Record<string, unknown> }>> {
  if (!machineIds.length) return [];
  const rows = await db('cost_events')
    .whereIn('machine_id', [...machineIds])
    .where({ category: 'api' })
    .orderBy('seq')
    .select('machine_id', 'amount', 'currency', 'project_amount', 'details');
  return rows.map((r) => ({
    machineId: r.machine_id,
    amount: fromNumeric(r.amount),
    currency: r.currency,
    projectAmount: fromNumeric(r.project_amount),
    details: (typeof r.details === 'string' ? JSON.parse(r.details) : r.details) ?? {},
  }));
}

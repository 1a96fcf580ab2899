/** Read use cases a dashboard needs of a project: its whole evolution tree, its spend over time, and every budget it has. */
import { z } from 'zod';
import { MACHINE_TYPE_SCOPE, PROJECT_SCOPE, machineTypeScopeId, windowEnd, windowStart } from '../domain/budget.js';
import { MACHINE_TYPES } from '../domain/machines.js';
import { machineTypeSpec, type MachineTypeId } from '../domain/machine-types.js';
import { parseAmount } from '../domain/money.js';
import { budgetStatus, DEFAULT_ALERT_PERCENTS, projectBudgets, type BudgetStatus } from '../store/budgets.js';
import { checkpointTree, checkpointTreeVersion, type CheckpointNode } from '../store/checkpoints.js';
import { costSeries, type CostBucket } from '../store/costs.js';
import { balanceStatus, type BalanceStatus } from '../store/payments.js';
import type { Project } from '../store/projects.js';
import type { ServiceContext } from './context.js';
import { requireProject } from './projects.js';

/**
 * The whole evolution tree of a project: every checkpoint, parents before children, with the
 * tree's version (changes whenever the tree does). When `known(version)` says the caller has this
 * version already, the checkpoints are not read (`nodes` is null): a refresh costs one aggregate.
 */
export async function projectCheckpointTree(
  ctx: ServiceContext,
  projectId: string,
  known: (version: string) => boolean = () => false,
): Promise<{ project: Project; version: string; nodes: CheckpointNode[] | null }> {
  const project = await requireProject(ctx, projectId);
  // The version first: a checkpoint added between the two reads is in the nodes and the next refresh sees a new version.
  const version = await checkpointTreeVersion(ctx.db, project.id);
  return { project, version, nodes: known(version) ? null : await checkpointTree(ctx.db, project.id) };
}

/** At most this many buckets in one series. */
export const MAX_SERIES_BUCKETS = 1000;
const HOUR_MS = 3_600_000;
const BUCKET_MS: Record<CostBucket, number> = { hour: HOUR_MS, day: 24 * HOUR_MS };
/** How many buckets when `from` is not given: the last 48 hours, or the last 30 days (the current one included). */
const DEFAULT_BUCKETS: Record<CostBucket, number> = { hour: 48, day: 30 };

const isoTime = z.iso.datetime({ offset: true, error: 'must be an ISO 8601 time such as 2026-12-01T00:00:00Z' });

/** `?bucket=hour|day&from=&to=` of a spend series (from and to are ISO times; to is exclusive). */
export const costSeriesQuery = z.strictObject({
  bucket: z.enum(['hour', 'day'], { error: 'must be hour or day' }).default('day'),
  from: isoTime.optional(),
  to: isoTime.optional(),
});

/** The bucket starting at or before `t` (UTC). */
const bucketStart = (t: number, bucket: CostBucket) => Math.floor(t / BUCKET_MS[bucket]) * BUCKET_MS[bucket];

/**
 * The series' range from the query: `to` (default now) and `from` (default: the start of the 48
 * hours or 30 days ending with the one `to` falls in), `from` moved back to its bucket's start. A range that is empty, reversed or longer
 * than {@link MAX_SERIES_BUCKETS} buckets is refused (a ZodError: 400 naming the parameter).
 */
export function resolveSeriesRange(input: unknown, now: Date): { bucket: CostBucket; from: Date; to: Date; starts: Date[] } {
  return costSeriesQuery
    .transform((q, c) => {
      const to = q.to ? Date.parse(q.to) : now.getTime();
      const from = q.from ? bucketStart(Date.parse(q.from), q.bucket) : bucketStart(to - 1, q.bucket) - (DEFAULT_BUCKETS[q.bucket] - 1) * BUCKET_MS[q.bucket];
      if (from >= to) {
        c.addIssue({ code: 'custom', path: [q.from ? 'from' : 'to'], message: 'from must be before to' });
        return z.NEVER;
      }
      const count = Math.ceil((to - from) / BUCKET_MS[q.bucket]);
      if (count > MAX_SERIES_BUCKETS) {
        c.addIssue({
          code: 'custom',
          path: ['from'],
          message: `the range spans ${count} ${q.bucket} buckets; at most ${MAX_SERIES_BUCKETS}: narrow from..to${q.bucket === 'hour' ? ' or use bucket=day' : ''}`,
        });
        return z.NEVER;
      }
      const starts = Array.from({ length: count }, (_, i) => new Date(from + i * BUCKET_MS[q.bucket]));
      return { bucket: q.bucket, from: new Date(from), to: new Date(to), starts };
    })
    .parse(input);
}

export interface CostSeries {
  project: Project;
  bucket: CostBucket;
  from: Date;
  to: Date;
  /** Every category with spend in the range, sorted. */
  categories: string[];
  /** Every bucket of the range, oldest first, those without spend too (with zero). */
  buckets: Array<{ start: Date; total: bigint; byCategory: Record<string, bigint> }>;
  total: bigint;
}

/** A project's spend per hour or day and category, in its currency, from its cost records. */
export async function projectCostSeries(ctx: ServiceContext, projectId: string, query: unknown, now = new Date()): Promise<CostSeries> {
  const range = resolveSeriesRange(query, now);
  const project = await requireProject(ctx, projectId);
  const rows = await costSeries(ctx.db, { projectId: project.id, bucket: range.bucket, from: range.from, to: range.to });
  const byStart = new Map(range.starts.map((s) => [s.getTime(), { start: s, total: 0n, byCategory: {} as Record<string, bigint> }]));
  const categories = new Set<string>();
  let total = 0n;
  for (const r of rows) {
    const b = byStart.get(r.start.getTime());
    if (!b) continue; // cannot happen: every record in [from, to) is in one of its buckets
    b.byCategory[r.category] = (b.byCategory[r.category] ?? 0n) + r.amount;
    b.total += r.amount;
    total += r.amount;
    categories.add(r.category);
  }
  return { project, bucket: range.bucket, from: range.from, to: range.to, categories: [...categories].sort(), buckets: [...byStart.values()], total };
}

/** A per-type budget of a project: set (or created from the type's default at its first spend), or the type's default not yet used. */
export interface TypeBudgetView {
  machineType: MachineTypeId;
  source: 'stored' | 'default';
  budget: BudgetStatus;
}

/**
 * Every budget of a project with what is spent and reserved in its current window: its own (null
 * when none is set) and one per machine type that has a budget here or a default daily one.
 */
export async function projectBudgetsView(
  ctx: ServiceContext,
  projectId: string,
  now = new Date(),
): Promise<{ project: Project; budget: BudgetStatus | null; balance: BalanceStatus; machineTypes: TypeBudgetView[] }> {
  const project = await requireProject(ctx, projectId);
  const budgets = await projectBudgets(ctx.db, project.id);
  const own = budgets.find((b) => b.scopeType === PROJECT_SCOPE) ?? null;
  const machineTypes: TypeBudgetView[] = [];
  for (const type of MACHINE_TYPES) {
    const stored = budgets.find((b) => b.scopeType === MACHINE_TYPE_SCOPE && b.scopeId === machineTypeScopeId(project.id, type));
    if (stored) {
      machineTypes.push({ machineType: type, source: 'stored', budget: await budgetStatus(ctx.db, stored, now) });
      continue;
    }
    const daily = machineTypeSpec(type).dailyBudget;
    if (!daily) continue;
    // What the first spend of this type will create (store/spend-budgets.ts budgetsOfScopes), nothing used yet.
    const limit = parseAmount(daily, 'USD');
    const start = windowStart('daily', now);
    machineTypes.push({
      machineType: type,
      source: 'default',
      budget: {
        id: `budget-${machineTypeScopeId(project.id, type)}`,
        scopeType: MACHINE_TYPE_SCOPE,
        scopeId: machineTypeScopeId(project.id, type),
        period: 'daily',
        limit,
        currency: 'USD',
        alertPercents: [...DEFAULT_ALERT_PERCENTS],
        windowStart: start,
        windowEnd: windowEnd('daily', start),
        spent: 0n,
        reserved: 0n,
        remaining: limit,
      },
    });
  }
  return { project, budget: own ? await budgetStatus(ctx.db, own, now) : null, balance: await balanceStatus(ctx.db, project), machineTypes };
}

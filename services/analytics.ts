/**
 * Cost analytics of a project: breakdowns by dimension, variance of actual against allocated spend
 * per period and category with its trend, and optimization opportunities with estimated savings.
 * Exact money throughout (bigint ledger units); only the trend's percentages are floats.
 */
import { z } from 'zod';
import { MACHINE_TYPE_SCOPE, PROJECT_SCOPE, machineTypeScopeId, type BudgetPeriod } from '../domain/budget.js';
import { MACHINE_TYPE_IDS, machineTypeSpec, tokenCost, type MachineTypeId, type ModelPrice, type TokenUsage } from '../domain/machine-types.js';
import { PROFILES, type ProfileId } from '../domain/machines.js';
import { divRound, parseAmount, roundToMinor, type CurrencyCode } from '../domain/money.js';
import { SPOT_PROVIDERS } from '../domain/placement.js';
import { hourlyUnits, lookupComputePrice, type ComputePriceList } from '../domain/compute-prices.js';
import {
  apiCallsOf,
  BREAKDOWN_DIMENSIONS,
  costBreakdown,
  idleWarmInstances,
  onDemandRuns,
  periodSpend,
  repeatedRuns,
  shortAgentRuns,
  type BreakdownDimension,
} from '../store/analytics.js';
import { projectBudgets, type Budget } from '../store/budgets.js';
import type { Project } from '../store/projects.js';
import type { ServiceContext } from './context.js';
import { requireCostCenter, requireDepartment } from './cost-centers.js';
import { requireProject } from './projects.js';

const DAY_MS = 86_400_000;
const isoTime = z.iso.datetime({ offset: true, error: 'must be an ISO 8601 time such as 2026-12-01T00:00:00Z' });

export const breakdownQuery = z
  .strictObject({
    by: z.enum(BREAKDOWN_DIMENSIONS, { error: `must be one of ${BREAKDOWN_DIMENSIONS.join(', ')}` }),
    from: isoTime.optional(),
    to: isoTime.optional(),
  })
  .refine((q) => !q.from || !q.to || Date.parse(q.from) < Date.parse(q.to), { path: ['from'], message: 'from must be before to' });

export interface CostBreakdown {
  project: Project;
  by: BreakdownDimension;
  from: Date;
  to: Date;
  total: bigint;
  groups: Array<{ key: string | null; amount: bigint; records: number }>;
}

/** The range of a breakdown query: `to` (default now) and `from` (default 30 days before `to`). */
function breakdownRange(query: unknown, now: Date): { by: BreakdownDimension; from: Date; to: Date } {
  const q = breakdownQuery.parse(query);
  const to = q.to ? new Date(q.to) : now;
  const from = q.from ? new Date(q.from) : new Date(to.getTime() - 30 * DAY_MS);
  if (from >= to) throw new z.ZodError([{ code: 'custom', path: ['from'], message: 'from must be before to', input: q.from }]);
  return { by: q.by, from, to };
}

/** Spend of [from, to) (default: the last 30 days up to now) grouped by one dimension; the groups add up to the total exactly. */
export async function projectCostBreakdown(ctx: ServiceContext, projectId: string, query: unknown, now = new Date()): Promise<CostBreakdown> {
  const { by, from, to } = breakdownRange(query, now);
  const project = await requireProject(ctx, projectId);
  const groups = (await costBreakdown(ctx.db, { scope: { projectId: project.id }, by, from, to })).map(({ key, amount, records }) => ({
    key,
    amount,
    records,
  }));
  return { project, by, from, to, groups, total: groups.reduce((s, g) => s + g.amount, 0n) };
}

export interface ScopeCostBreakdown {
  by: BreakdownDimension;
  from: Date;
  to: Date;
  /** Per currency of the projects whose spend it is (amounts are never converted here). */
  totals: Array<{ currency: CurrencyCode; amount: bigint }>;
  groups: Array<{ key: string | null; currency: CurrencyCode; amount: bigint; records: number }>;
}

/**
 * The spend allocated to a cost center, or to a department's cost centers, in [from, to) grouped
 * by one dimension (`project` too) and by the projects' currency; each currency's groups add up to
 * its total exactly. 404 for an unknown cost center or a department without cost centers.
 */
export async function scopeCostBreakdown(
  ctx: ServiceContext,
  scope: { costCenterId: string } | { department: string },
  query: unknown,
  now = new Date(),
): Promise<ScopeCostBreakdown> {
  const { by, from, to } = breakdownRange(query, now);
  if ('costCenterId' in scope) await requireCostCenter(ctx, scope.costCenterId);
  else await requireDepartment(ctx, scope.department);
  const groups = (await costBreakdown(ctx.db, { scope, by, from, to })).map((g) => ({ ...g, currency: g.currency as CurrencyCode }));
  const totals = new Map<CurrencyCode, bigint>();
  for (const g of groups) totals.set(g.currency, (totals.get(g.currency) ?? 0n) + g.amount);
  return { by, from, to, groups, totals: [...totals].map(([currency, amount]) => ({ currency, amount })) };
}

export const varianceQuery = z.strictObject({
  period: z.enum(['day', 'week', 'month'], { error: 'must be day, week or month' }).default('day'),
  count: z.coerce.number().int().min(1).max(90, 'must be at most 90').optional(),
});

type Unit = 'day' | 'week' | 'month';

/** The UTC start of the `unit` containing `t` (weeks start on Monday, as budget weeks do). */
function unitStart(unit: Unit, t: Date): Date {
  const y = t.getUTCFullYear();
  const m = t.getUTCMonth();
  const d = t.getUTCDate();
  if (unit === 'day') return new Date(Date.UTC(y, m, d));
  if (unit === 'week') return new Date(Date.UTC(y, m, d - ((t.getUTCDay() + 6) % 7)));
  return new Date(Date.UTC(y, m, 1));
}
function unitAdd(unit: Unit, t: Date, n: number): Date {
  if (unit === 'day') return new Date(t.getTime() + n * DAY_MS);
  if (unit === 'week') return new Date(t.getTime() + 7 * n * DAY_MS);
  return new Date(Date.UTC(t.getUTCFullYear(), t.getUTCMonth() + n, 1));
}
const daysInMonth = (t: Date) => new Date(Date.UTC(t.getUTCFullYear(), t.getUTCMonth() + 1, 0)).getUTCDate();

/**
 * What a budget allocates to [start, end): its limit spread evenly over the days of its own window
 * (a weekly limit is a seventh a day, a monthly one a share of its month's days), summed per day
 * and rounded half-even to the currency's minor unit. A `total` budget allocates no period: null.
 */
export function allocatedFor(b: { period: BudgetPeriod; limit: bigint; currency: CurrencyCode }, start: Date, end: Date): bigint | null {
  if (b.period === 'total') return null;
  let sum = 0n;
  for (let t = start.getTime(); t < end.getTime(); t += DAY_MS) {
    const per = b.period === 'daily' ? 1 : b.period === 'weekly' ? 7 : daysInMonth(new Date(t));
    sum += divRound(b.limit, BigInt(per), 'half-even');
  }
  return roundToMinor(sum, b.currency, 'half-even');
}

export interface VariancePeriod {
  start: Date;
  end: Date;
  actual: bigint;
  allocated: bigint | null;
  byCategory: Record<string, bigint>;
}

/** A machine type's daily budget as it allocates spend: stored for this project, or the type's default (what its first spend creates). */
export interface TypeAllocation {
  machineType: string;
  budget: { id: string | null; period: BudgetPeriod; limit: bigint; currency: CurrencyCode; source: 'stored' | 'default' } | null;
  actual: bigint[];
  /** Per period; null when the type has no budget or one in another currency than the project's. */
  allocated: Array<bigint | null>;
  trendPerPeriod: bigint;
}

export interface CostVariance {
  project: Project;
  period: Unit;
  budget: Budget | null;
  periods: VariancePeriod[];
  /** Per cost category: the actual spend of each period, oldest first, and its trend. */
  categories: Array<{ category: string; actual: bigint[]; trendPerPeriod: bigint }>;
  /** Per machine type with spend in the window or a stored budget: actual against its type budget's allocation. */
  machineTypes: TypeAllocation[];
  /** Least-squares slope of actual spend per period, exact to the ledger unit (rounded half-even to the minor unit). */
  trendPerPeriod: bigint;
}

const isMachineType = (t: string): t is MachineTypeId => (MACHINE_TYPE_IDS as readonly string[]).includes(t);

/**
 * Actual against allocated spend for the last `count` periods (the current one included): per
 * period, the project budget's allocation (in the project's currency; a budget in another currency
 * allocates nothing here), the variance, the spend per category with each category's trend, each
 * machine type's spend against its daily type budget, and the trend of actual spend.
 */
export async function projectCostVariance(ctx: ServiceContext, projectId: string, query: unknown, now = new Date()): Promise<CostVariance> {
  const q = varianceQuery.parse(query);
  const count = q.count ?? { day: 14, week: 8, month: 6 }[q.period];
  const project = await requireProject(ctx, projectId);
  const c = project.currency;
  const current = unitStart(q.period, now);
  const first = unitAdd(q.period, current, -(count - 1));
  const starts = Array.from({ length: count }, (_, i) => unitAdd(q.period, first, i));
  const rows = await periodSpend(ctx.db, { projectId: project.id, unit: q.period, from: first, to: unitAdd(q.period, current, 1) });
  const budgets = await projectBudgets(ctx.db, project.id);
  const budget = budgets.find((b) => b.scopeType === PROJECT_SCOPE && b.currency === c) ?? null;
  const periods: VariancePeriod[] = starts.map((start) => {
    const end = unitAdd(q.period, start, 1);
    return { start, end, actual: 0n, allocated: budget ? allocatedFor(budget, start, end) : null, byCategory: {} };
  });
  const index = new Map(periods.map((p, i) => [p.start.getTime(), i]));
  const categories = new Set<string>();
  const byType = new Map<string, bigint[]>();
  for (const r of rows) {
    const i = index.get(r.start.getTime());
    const p = i === undefined ? undefined : periods[i];
    if (i === undefined || !p) continue;
    p.actual += r.amount;
    p.byCategory[r.category] = (p.byCategory[r.category] ?? 0n) + r.amount;
    categories.add(r.category);
    if (r.machineType !== null) {
      const series = byType.get(r.machineType) ?? periods.map(() => 0n);
      series[i] = (series[i] ?? 0n) + r.amount;
      byType.set(r.machineType, series);
    }
  }
  const trend = (y: bigint[]) => roundToMinor(slope(y), c, 'half-even');
  for (const b of budgets) {
    const type = b.scopeType === MACHINE_TYPE_SCOPE ? b.scopeId.slice(project.id.length + 1) : null;
    if (type && !byType.has(type))
      byType.set(
        type,
        periods.map(() => 0n),
      );
  }
  const machineTypes: TypeAllocation[] = [...byType.keys()].sort().map((type) => {
    const actual = byType.get(type)!;
    const stored = budgets.find((b) => b.scopeType === MACHINE_TYPE_SCOPE && b.scopeId === machineTypeScopeId(project.id, type));
    const daily = isMachineType(type) ? machineTypeSpec(type).dailyBudget : null;
    const tb: TypeAllocation['budget'] = stored
      ? { id: stored.id, period: stored.period, limit: stored.limit, currency: stored.currency, source: 'stored' }
      : daily
        ? { id: null, period: 'daily', limit: parseAmount(daily, 'USD'), currency: 'USD', source: 'default' }
        : null;
    const allocated = periods.map((p) => (tb && tb.currency === c ? allocatedFor(tb, p.start, p.end) : null));
    return { machineType: type, budget: tb, actual, allocated, trendPerPeriod: trend(actual) };
  });
  return {
    project,
    period: q.period,
    budget,
    periods,
    categories: [...categories].sort().map((category) => {
      const actual = periods.map((p) => p.byCategory[category] ?? 0n);
      return { category, actual, trendPerPeriod: trend(actual) };
    }),
    machineTypes,
    trendPerPeriod: trend(periods.map((p) => p.actual)),
  };
}

/** Least-squares slope of y over x = 0..n−1, exact: Σ(x−x̄)(y−ȳ)/Σ(x−x̄)², computed as n·Σxy − Σx·Σy over n·Σx² − (Σx)². */
export function slope(y: readonly bigint[]): bigint {
  const n = BigInt(y.length);
  if (n < 2n) return 0n;
  let sx = 0n;
  let sy = 0n;
  let sxy = 0n;
  let sxx = 0n;
  y.forEach((v, i) => {
    const x = BigInt(i);
    sx += x;
    sy += v;
    sxy += x * v;
    sxx += x * x;
  });
  return divRound(n * sxy - sx * sy, n * sxx - sx * sx, 'half-even');
}

/**
 * Assumptions where no price data says better (documented in README):
 * - a model call of a short, simple agent run whose token usage is unknown (charged at its worst
 *   case) costs this share less on a cheaper model (small models are priced at roughly a fifth of
 *   large ones). Calls with their usage are re-priced instead (`cheaperModel`).
 */
export const ASSUMED_SMALL_MODEL_SAVING_PERCENT = 80n;
/** What counts as short and simple for an agent machine. */
export const SHORT_RUN = { maxSeconds: 120, maxApiCalls: 3 };

/** A call's token usage from its cost record's details, or null when it was not reported. */
function usageOf(details: Record<string, unknown>): TokenUsage | null {
  const n = (k: string) => (typeof details[k] === 'number' && Number.isInteger(details[k]) && (details[k] as number) >= 0 ? (details[k] as number) : null);
  const inputTokens = n('inputTokens');
  const outputTokens = n('outputTokens');
  if (inputTokens === null || outputTokens === null || details.charged === 'worst case') return null;
  return { inputTokens, outputTokens, cachedInputTokens: n('cachedInputTokens') ?? 0, cacheWriteTokens: n('cacheWriteTokens') ?? 0 };
}

/**
 * What a run's model calls would have cost on the cheapest model of its type's price table, exact:
 * each call with its reported usage re-priced (tokens × the model's prices, converted at the
 * call's own rate to the project's currency); a call without usage at the assumed share less.
 * Returns the model and the saving, or null when no model of the table is cheaper.
 */
export function cheaperModel(
  prices: Record<string, ModelPrice>,
  calls: ReadonlyArray<{ amount: bigint; projectAmount: bigint; details: Record<string, unknown> }>,
): { model: string; saving: bigint; repriced: number; assumed: number } | null {
  const priced = calls.map((c) => ({ ...c, usage: usageOf(c.details) }));
  let best: { model: string; saving: bigint } | null = null;
  for (const [model, price] of Object.entries(prices)) {
    if (model.endsWith('*')) continue;
    let saving = 0n;
    for (const c of priced) {
      if (c.usage === null) {
        saving += (c.projectAmount * ASSUMED_SMALL_MODEL_SAVING_PERCENT) / 100n;
        continue;
      }
      if (c.amount <= 0n) continue;
      const cheap = tokenCost(price, c.usage);
      if (cheap < c.amount) saving += divRound((c.amount - cheap) * c.projectAmount, c.amount, 'down');
    }
    if (saving > 0n && (!best || saving > best.saving)) best = { model, saving };
  }
  const repriced = priced.filter((c) => c.usage !== null).length;
  return best ? { ...best, repriced, assumed: priced.length - repriced } : null;
}

/**
 * What spot capacity would have saved an on-demand run, from the price list (config/compute-prices.json):
 * the on-demand rate it was charged (its recorded price, else the list's) against the list's spot
 * entry for the same provider, region and profile; null when the list has no cheaper spot price.
 */
export function spotSaving(
  list: ComputePriceList,
  r: { provider: string; region: string | null; profile: string; hourly: string | null },
): { onDemand: bigint; less: bigint; onDemandHourly: string; spotHourly: string; percentLess: number } | null {
  const q = { provider: r.provider, region: r.region, profile: r.profile };
  const listed = lookupComputePrice(list, { ...q, spot: false });
  const spot = lookupComputePrice(list, { ...q, spot: true });
  const onDemandHourly = r.hourly ?? listed?.hourly;
  // Without a spot entry the lookup answers the on-demand one: nothing to compare.
  if (!onDemandHourly || !spot || spot.entry === listed?.entry) return null;
  const onDemand = hourlyUnits(onDemandHourly);
  const less = onDemand - hourlyUnits(spot.hourly);
  if (onDemand <= 0n || less <= 0n) return null;
  return { onDemand, less, onDemandHourly, spotHourly: spot.hourly, percentLess: Number(divRound(less * 100n, onDemand, 'half-even')) };
}

export const opportunitiesQuery = z.strictObject({ days: z.coerce.number().int().min(1).max(365, 'must be at most 365').default(30) });

export type OpportunityKind = 'spot' | 'cache' | 'smaller_model' | 'idle_warm_capacity';
export interface Opportunity {
  kind: OpportunityKind;
  /** Ids of what shows it: machines, or warm-pool instances. */
  evidence: string[];
  saving: bigint;
  explanation: string;
}

/**
 * Where the project could have spent less in the last `days` days, each with the ids that show it
 * and an estimated saving in the project's currency: on-demand runs on providers that sell spot
 * capacity, identical requests run again that the result cache could have answered, agent
 * machines doing short simple work on their type's model, and (for deployment-wide callers) warm
 * capacity waiting unused. Largest saving first.
 */
export async function projectCostOpportunities(
  ctx: ServiceContext,
  projectId: string,
  query: unknown,
  opts: { includeDeployment: boolean; now?: Date },
): Promise<{ project: Project; days: number; opportunities: Opportunity[]; total: bigint }> {
  const q = opportunitiesQuery.parse(query);
  const now = opts.now ?? new Date();
  const project = await requireProject(ctx, projectId);
  const since = new Date(now.getTime() - q.days * DAY_MS);
  const c = project.currency;
  const out: Opportunity[] = [];

  for (const r of await onDemandRuns(ctx.db, { projectId: project.id, providers: SPOT_PROVIDERS, since })) {
    const spot = spotSaving(ctx.config.computePrices, r);
    if (!spot) continue;
    const saving = roundToMinor(divRound(r.infra * spot.less, spot.onDemand, 'down'), c, 'down');
    if (saving <= 0n) continue;
    out.push({
      kind: 'spot',
      evidence: [r.machineId],
      saving,
      explanation: `machine ${r.machineId} ran on-demand on ${r.provider} (${r.profile}${r.region ? `, ${r.region}` : ''}) at ${spot.onDemandHourly} USD/h; the price list's spot price there is ${spot.spotHourly} USD/h, so the same runtime would have cost ${spot.percentLess} % less, and a run that ${r.status === 'completed' ? 'completed' : 'ended'} with checkpoints can be resumed after an interruption. Ask for spot: true or a placement rule with spot.`,
    });
  }

  for (const g of await repeatedRuns(ctx.db, { projectId: project.id, since })) {
    const [firstRun, ...again] = g.runs;
    const saving = again.reduce((s, r) => s + r.cost, 0n);
    if (!firstRun || saving <= 0n) continue;
    out.push({
      kind: 'cache',
      evidence: g.runs.map((r) => r.machineId),
      saving: roundToMinor(saving, c, 'down'),
      explanation: `${g.runs.length} machines ran the same request on the same files (cache key ${g.key.slice(0, 12)}…); the result cache could have answered the ${again.length} after ${firstRun.machineId} (each ran with cache: false or before the first finished).`,
    });
  }

  const short = await shortAgentRuns(ctx.db, { projectId: project.id, since, ...SHORT_RUN });
  const calls = await apiCallsOf(
    ctx.db,
    short.map((r) => r.machineId),
  );
  for (const r of short) {
    const prices = (ctx.config.modelPrices as Record<string, Record<string, ModelPrice> | undefined>)[r.type] ?? {};
    const cheaper = cheaperModel(
      prices,
      calls.filter((x) => x.machineId === r.machineId),
    );
    if (!cheaper) continue;
    const saving = roundToMinor(cheaper.saving, c, 'down');
    if (saving <= 0n) continue;
    const how = [
      cheaper.repriced ? `${cheaper.repriced} call(s) re-priced at ${cheaper.model}'s prices for the same tokens` : '',
      cheaper.assumed ? `${cheaper.assumed} call(s) without reported usage at ${ASSUMED_SMALL_MODEL_SAVING_PERCENT} % less (assumed)` : '',
    ].filter(Boolean);
    out.push({
      kind: 'smaller_model',
      evidence: [r.machineId],
      saving,
      explanation: `machine ${r.machineId} (${r.type}${r.models.length ? `, ${r.models.join(', ')}` : ''}) finished in ${Math.round(r.seconds)} s with ${r.apiCalls} model call(s): simple work that ${cheaper.model} (model: "${cheaper.model}" on the machine) or a shell machine could do; ${how.join('; ')}.`,
    });
  }

  if (opts.includeDeployment) {
    for (const w of await idleWarmInstances(ctx.db, now)) {
      const profile = (Object.hasOwn(PROFILES, w.profile) ? w.profile : 'lightweight') as ProfileId;
      const hourly = parseAmount(PROFILES[profile].hourlyPrice, 'USD');
      // Prices are USD; shown only when the project counts in USD (no rate applied here).
      if (c !== 'USD') continue;
      // The wait inside the look-back window only.
      const seconds = Math.min(Math.floor(w.idleSeconds), q.days * 86_400);
      const saving = roundToMinor((hourly * BigInt(seconds)) / 3600n, c, 'down');
      if (saving <= 0n) continue;
      out.push({
        kind: 'idle_warm_capacity',
        evidence: [w.instanceRef],
        saving,
        explanation: `warm-pool instance ${w.instanceRef} (${w.provider}, ${w.profile}) has waited ${Math.round(w.idleSeconds / 60)} min unclaimed at ${PROFILES[profile].hourlyPrice} USD/h: lower the pool's min (AUTOVIBE_WARM_POOLS) if it is seldom claimed. Deployment-wide, not this project's spend.`,
      });
    }
  }
  out.sort((a, b) => (a.saving === b.saving ? a.kind.localeCompare(b.kind) : a.saving > b.saving ? -1 : 1));
  return { project, days: q.days, opportunities: out, total: out.filter((o) => o.kind !== 'idle_warm_capacity').reduce((s, o) => s + o.saving, 0n) };
}

/**
 * Budget reallocation within a cost center's limit (README "Reallocation"): settings, runs (a
 * preview, or real moves applied through the project set-budget use case), and their history.
 */
import { z } from 'zod';
import { PROJECT_SCOPE, windowEnd, windowStart, type BudgetPeriod } from '../domain/budget.js';
import { COST_CENTER_SCOPE, DEPARTMENT_SCOPE } from '../domain/cost-centers.js';
import { ConflictError, InputError } from '../domain/errors.js';
import { formatAmount, type CurrencyCode } from '../domain/money.js';
import type { Principal } from '../domain/permissions.js';
import { HIT_BP, millionthsText, percentText, planMoves, type Assessed, type Candidate, type ReallocationSettings } from '../domain/reallocation.js';
import { appendAudit } from '../store/audit.js';
import { budgetStatus, findBudget } from '../store/budgets.js';
import { idFromIdempotencyKey, idFromName } from '../store/ids.js';
import {
  budgetWindowsFrom,
  enabledReallocationScopes,
  finishRun,
  getReallocationSettings,
  getRun,
  insertRun,
  listRuns,
  lockPlannedMove,
  markMove,
  projectSpendSince,
  projectsWithBudgets,
  putReallocationSettings,
  type NewMove,
  type StoredRun,
  type StoredSettings,
} from '../store/reallocation.js';
import { objectivesCompletedSince } from '../store/roi.js';
import { actorOfCaller, type Caller, type ServiceContext } from './context.js';
import { requireCostCenter, requireDepartment } from './cost-centers.js';
import { parseAmountField } from './inputs.js';
import { setProjectBudget } from './projects.js';

const DAY_MS = 86_400_000;
const decimal = z
  .string()
  .max(100, 'must be a decimal string of at most 100 characters')
  .regex(/^\d+(\.\d+)?$/, 'must be a decimal string such as "10.00"');

export const DEFAULT_SETTINGS = { enabled: false, dryRun: false, maxStepPercent: 10, lookbackDays: 7, minAllocation: '0', maxAllocation: null } as const;

export const putReallocationBody = z.strictObject({
  enabled: z.boolean({ error: 'must be true or false' }),
  dryRun: z.boolean({ error: 'must be true or false' }).default(DEFAULT_SETTINGS.dryRun),
  maxStepPercent: z
    .number({ error: 'must be a whole percentage from 1 to 50' })
    .int('must be a whole percentage from 1 to 50')
    .min(1, 'must be a whole percentage from 1 to 50')
    .max(50, 'must be a whole percentage from 1 to 50')
    .default(DEFAULT_SETTINGS.maxStepPercent),
  lookbackDays: z
    .number({ error: 'must be a whole number of days from 1 to 90' })
    .int('must be a whole number of days from 1 to 90')
    .min(1, 'must be a whole number of days from 1 to 90')
    .max(90, 'must be a whole number of days from 1 to 90')
    .default(DEFAULT_SETTINGS.lookbackDays),
  minAllocation: decimal.default(DEFAULT_SETTINGS.minAllocation),
  maxAllocation: decimal.nullable().default(DEFAULT_SETTINGS.maxAllocation),
});

export const runReallocationQuery = z.strictObject({
  dryRun: z.enum(['true', 'false'], { error: 'must be true or false' }).optional(),
});

export const listRunsQuery = z.strictObject({
  limit: z.coerce.number().int('must be a whole number').min(1, 'must be from 1 to 100').max(100, 'must be from 1 to 100').default(20),
});

/** Parses settings or a query; what does not fit is a 422 naming the first field and what to give. */
function parse422<T extends z.ZodType>(schema: T, input: unknown): z.output<T> {
  const r = schema.safeParse(input ?? {});
  if (r.success) return r.data;
  const issues = r.error.issues.map((i) => ({ field: i.path.join('.') || '(body)', message: i.message }));
  throw new InputError(issues.map((i) => `${i.field}: ${i.message}`).join('; '), { field: issues[0]!.field, issues });
}

export type ScopeType = typeof COST_CENTER_SCOPE | typeof DEPARTMENT_SCOPE;

/**
 * A scope whose projects' budgets are reallocated within its budget: a cost center (the projects
 * allocated to it) or a department (the projects of its cost centers).
 */
export interface Scope {
  scopeType: ScopeType;
  scopeId: string;
}

interface ResolvedScope extends Scope {
  /** As messages name it, and its REST path under /v1. */
  label: string;
  path: string;
  costCenterIds: string[];
}

/** Who applies a scheduled run's moves (the audit actor `user:reallocation`). */
export const SCHEDULE_PRINCIPAL: Principal = {
  userId: 'system:reallocation',
  name: 'reallocation',
  role: 'admin',
  apiKeyId: 'system:reallocation',
  projectIds: null,
};

/** The cost center or department (NotFoundError when there is none) with the cost centers whose projects it covers. */
async function resolveScope(ctx: ServiceContext, scope: Scope): Promise<ResolvedScope> {
  if (scope.scopeType === COST_CENTER_SCOPE) {
    const c = await requireCostCenter(ctx, scope.scopeId);
    return { scopeType: COST_CENTER_SCOPE, scopeId: c.id, label: `cost center ${c.id}`, path: `/v1/cost-centers/${c.id}`, costCenterIds: [c.id] };
  }
  const centers = await requireDepartment(ctx, scope.scopeId);
  return {
    scopeType: DEPARTMENT_SCOPE,
    scopeId: scope.scopeId,
    label: `department ${scope.scopeId}`,
    path: `/v1/departments/${encodeURIComponent(scope.scopeId)}`,
    costCenterIds: centers.map((c) => c.id),
  };
}

/** The scope's settings, or the defaults (`configured: false`) when none were set. */
export async function reallocationSettings(ctx: ServiceContext, ref: Scope) {
  const scope = await resolveScope(ctx, ref);
  const s = await getReallocationSettings(ctx.db, scope.scopeType, scope.scopeId);
  return { scope: { scopeType: scope.scopeType, scopeId: scope.scopeId }, settings: s };
}

/** Sets a cost center's or department's reallocation settings (amounts in its budget's currency, which must exist); audited. */
export async function setReallocation(ctx: ServiceContext, caller: Caller, ref: Scope, input: unknown): Promise<StoredSettings> {
  const scope = await resolveScope(ctx, ref);
  const body = parse422(putReallocationBody, input);
  const budget = await findBudget(ctx.db, scope.scopeType, scope.scopeId);
  if (!budget)
    throw new ConflictError(`${scope.label} has no budget: set one with PUT ${scope.path}/budget first (reallocation moves money within it)`, 'no_budget');
  const minAllocation = parseAmountField('minAllocation', body.minAllocation, budget.currency);
  const maxAllocation = body.maxAllocation === null ? null : parseAmountField('maxAllocation', body.maxAllocation, budget.currency);
  if (maxAllocation !== null && maxAllocation < minAllocation)
    throw new InputError(`maxAllocation: must be at least minAllocation (${body.minAllocation})`, { field: 'maxAllocation' });
  if (maxAllocation !== null && maxAllocation > budget.limit)
    throw new InputError(
      `maxAllocation: must not exceed the ${scope.scopeType === COST_CENTER_SCOPE ? "cost center's" : "department's"} limit (${formatAmount(budget.limit, budget.currency)} ${budget.currency})`,
      {
        field: 'maxAllocation',
      },
    );
  const settings: ReallocationSettings = { ...body, currency: budget.currency, minAllocation, maxAllocation };
  return ctx.db.transaction(async (trx) => {
    const saved = await putReallocationSettings(trx, scope.scopeType, scope.scopeId, settings, actorOfCaller(caller));
    await appendAudit(trx, {
      actor: actorOfCaller(caller),
      action: 'reallocation.settings',
      subjectType: scope.scopeType,
      subjectId: scope.scopeId,
      details: { ...body, currency: budget.currency },
    });
    return saved;
  });
}

/** The periods a run looks at: every budget window overlapping the look-back days, the current one included. */
function periodsOf(period: BudgetPeriod, now: Date, lookbackDays: number): { first: Date; count: number } {
  const first = windowStart(period, new Date(now.getTime() - lookbackDays * DAY_MS));
  if (period === 'total') return { first, count: 1 };
  let count = 0;
  for (let s: Date | null = first; s && s.getTime() <= now.getTime(); s = windowEnd(period, s)) count++;
  return { first, count };
}

const settingsRecord = (s: ReallocationSettings) => ({
  enabled: s.enabled,
  dryRun: s.dryRun,
  maxStepPercent: s.maxStepPercent,
  lookbackDays: s.lookbackDays,
  currency: s.currency,
  minAllocation: formatAmount(s.minAllocation, s.currency),
  maxAllocation: s.maxAllocation === null ? null : formatAmount(s.maxAllocation, s.currency),
});

function projectRecord(p: Assessed, currency: CurrencyCode) {
  return {
    projectId: p.projectId,
    name: p.name,
    role: p.role as string,
    reason: p.reason,
    limit: formatAmount(p.limit, currency),
    usedNow: formatAmount(p.usedNow, currency),
    periods: p.periods,
    hits: p.hits,
    utilisationPercent: percentText(p.utilisationBp),
    spend: formatAmount(p.spend, currency),
    completed: p.completed,
    roi: p.roiMillionths === null ? null : millionthsText(p.roiMillionths),
  };
}

export interface RunOptions {
  runId: string;
  /** Overrides the settings' dryRun (a preview from the API); the schedule follows the settings. */
  dryRun?: boolean | undefined;
  trigger: 'api' | 'schedule';
  workflowId?: string | null;
}

/**
 * One run over the scope. Idempotent by `runId`: a run already stored is not planned again, and
 * only its moves still planned are applied (each in the transaction that marks it applied).
 */
export async function runReallocation(ctx: ServiceContext, caller: Caller, ref: Scope, o: RunOptions): Promise<StoredRun> {
  const scope = await resolveScope(ctx, ref);
  const existing = await getRun(ctx.db, o.runId);
  if (existing) {
    if (existing.scopeType !== scope.scopeType || existing.scopeId !== scope.scopeId)
      throw new ConflictError(`run ${o.runId} belongs to ${existing.scopeType} ${existing.scopeId}`, 'run_id_taken');
    if (existing.status === 'planned') await applyRun(ctx, caller, existing);
    return (await getRun(ctx.db, o.runId))!;
  }
  const now = new Date();
  const stored = await getReallocationSettings(ctx.db, scope.scopeType, scope.scopeId);
  const base = {
    id: o.runId,
    scopeType: scope.scopeType,
    scopeId: scope.scopeId,
    trigger: o.trigger,
    workflowId: o.workflowId ?? null,
    createdBy: actorOfCaller(caller),
  };
  const skip = async (reason: string, dryRun: boolean, settings: Record<string, unknown>) => {
    await insertRun(
      ctx.db,
      {
        ...base,
        dryRun,
        status: 'skipped',
        reason,
        currency: null,
        period: null,
        limit: null,
        allocatedBefore: null,
        allocatedAfter: null,
        settings,
        projects: [],
      },
      [],
    );
    return (await getRun(ctx.db, o.runId))!;
  };
  if (!stored) throw new ConflictError(`reallocation is not configured for ${scope.label}: PUT ${scope.path}/reallocation first`, 'not_configured');
  const settings: ReallocationSettings = stored;
  const dryRun = o.dryRun ?? settings.dryRun;
  if (!settings.enabled && !dryRun)
    return skip('reallocation is disabled for this scope (a preview with dryRun=true still works)', dryRun, settingsRecord(settings));
  const budget = await findBudget(ctx.db, scope.scopeType, scope.scopeId);
  if (!budget) return skip('the scope has no budget', dryRun, settingsRecord(settings));
  if (budget.currency !== settings.currency)
    return skip(`the scope's budget is in ${budget.currency}, its settings in ${settings.currency}: PUT the settings again`, dryRun, settingsRecord(settings));

  const { first, count } = periodsOf(budget.period, now, settings.lookbackDays);
  const since = new Date(now.getTime() - settings.lookbackDays * DAY_MS);
  const candidates: Candidate[] = [];
  const left: Array<Record<string, unknown>> = [];
  for (const p of await projectsWithBudgets(ctx.db, scope.costCenterIds)) {
    const b = p.budgetId ? await findBudget(ctx.db, PROJECT_SCOPE, p.projectId) : null;
    if (!b) {
      left.push({ projectId: p.projectId, name: p.name, role: 'skipped', reason: 'no project budget' });
      continue;
    }
    if (b.currency !== budget.currency || b.period !== budget.period) {
      left.push({
        projectId: p.projectId,
        name: p.name,
        role: 'skipped',
        reason: `its budget is ${b.period} in ${b.currency}; the ${scope.label}'s is ${budget.period} in ${budget.currency}`,
      });
      continue;
    }
    const status = await budgetStatus(ctx.db, b, now);
    const windows = await budgetWindowsFrom(ctx.db, b.id, first);
    const hits = windows.filter((w) => b.limit > 0n && (w.spent + w.reserved) * 10_000n >= b.limit * BigInt(HIT_BP)).length;
    candidates.push({
      projectId: p.projectId,
      name: p.name,
      limit: b.limit,
      usedNow: status.spent + status.reserved,
      periods: count,
      hits,
      usedInPeriods: windows.reduce((a, w) => a + w.spent + w.reserved, 0n),
      spend: await projectSpendSince(ctx.db, p.projectId, since),
      completed: await objectivesCompletedSince(ctx.db, p.projectId, since),
    });
  }
  const lookback = `the last ${settings.lookbackDays} days (${count} ${budget.period} periods)`;
  const plan = planMoves(candidates, settings, lookback);
  const allocated = candidates.reduce((a, c) => a + c.limit, 0n);
  const moves: NewMove[] = plan.moves.map((m, i) => ({
    seq: i + 1,
    fromProjectId: m.from.projectId,
    toProjectId: m.to.projectId,
    amount: m.amount,
    fromBefore: m.fromBefore,
    toBefore: m.toBefore,
    explanation: m.explanation,
    figures: { from: projectRecord(m.from, budget.currency), to: projectRecord(m.to, budget.currency) },
    status: dryRun ? 'preview' : 'planned',
  }));
  await insertRun(
    ctx.db,
    {
      ...base,
      dryRun,
      status: dryRun ? 'previewed' : moves.length ? 'planned' : 'applied',
      reason: moves.length ? null : 'no project both needs more and has a donor with room to give',
      currency: budget.currency,
      period: budget.period,
      limit: budget.limit,
      allocatedBefore: allocated,
      allocatedAfter: allocated,
      settings: { ...settingsRecord(settings), meanRoi: plan.meanRoiMillionths === null ? null : millionthsText(plan.meanRoiMillionths) },
      projects: [...plan.projects.map((p) => projectRecord(p, budget.currency)), ...left],
    },
    moves,
  );
  // Whoever stored the run (this call or a concurrent one with the same id), its planned moves are applied once.
  const run = (await getRun(ctx.db, o.runId))!;
  if (run.status === 'planned') await applyRun(ctx, caller, run);
  return (await getRun(ctx.db, o.runId))!;
}

/**
 * Applies a run's planned moves one at a time. Each move, in one transaction: locked (skipped when
 * another call did it), checked against the budgets as they are now (unchanged since the plan; the
 * donor still above what it spent and reserved and above the minimum), then both limits set through
 * the project set-budget use case (its audit record and budget.set event) and the move marked applied.
 */
async function applyRun(ctx: ServiceContext, caller: Caller, run: StoredRun): Promise<void> {
  const currency = run.currency!;
  const settings = await getReallocationSettings(ctx.db, run.scopeType, run.scopeId);
  const minAllocation = settings?.currency === currency ? settings.minAllocation : 0n;
  for (const m of run.moves) {
    if (m.status !== 'planned') continue;
    await ctx.db.transaction(async (trx) => {
      const move = await lockPlannedMove(trx, run.id, m.seq);
      if (!move) return;
      const txCtx: ServiceContext = { ...ctx, db: trx as unknown as ServiceContext['db'] };
      const from = await findBudget(txCtx.db, PROJECT_SCOPE, move.fromProjectId);
      const to = await findBudget(txCtx.db, PROJECT_SCOPE, move.toProjectId);
      const stale =
        !from || !to
          ? 'a project budget is gone'
          : from.limit !== move.fromBefore || to.limit !== move.toBefore || from.currency !== currency || to.currency !== currency || from.period !== run.period
            ? 'a budget changed since the plan'
            : null;
      if (stale || !from || !to) return markMove(trx, run.id, move.seq, 'skipped', stale);
      const now = await budgetStatus(txCtx.db, from, new Date());
      const newFrom = from.limit - move.amount;
      if (newFrom < now.spent + now.reserved || newFrom < minAllocation)
        return markMove(trx, run.id, move.seq, 'skipped', 'the donor has spent or reserved more since the plan');
      const period = from.period;
      await setProjectBudget(txCtx, caller, move.fromProjectId, { amount: formatAmount(newFrom, currency), currency, period });
      await setProjectBudget(txCtx, caller, move.toProjectId, { amount: formatAmount(to.limit + move.amount, currency), currency, period: to.period });
      await appendAudit(trx, {
        actor: actorOfCaller(caller),
        action: 'budget.reallocated',
        subjectType: run.scopeType,
        subjectId: run.scopeId,
        details: {
          runId: run.id,
          seq: move.seq,
          from: move.fromProjectId,
          to: move.toProjectId,
          amount: formatAmount(move.amount, currency),
          currency,
          explanation: move.explanation,
        },
        idempotencyKey: `reallocation:${run.id}:${move.seq}`,
      });
      await markMove(trx, run.id, move.seq, 'applied');
    });
  }
  const after = await getRun(ctx.db, run.id);
  let allocated = 0n;
  const counted = new Set<string>();
  for (const p of after!.projects as Array<{ projectId: string; role: string }>) {
    if (p.role === 'skipped' || counted.has(p.projectId)) continue;
    counted.add(p.projectId);
    allocated += (await findBudget(ctx.db, PROJECT_SCOPE, p.projectId))?.limit ?? 0n;
  }
  await finishRun(ctx.db, run.id, 'applied', allocated);
}

/** POST …/reallocation/runs: a run now (a preview with dryRun=true); the Idempotency-Key names the run. */
export async function runReallocationNow(ctx: ServiceContext, caller: Caller, ref: Scope, query: unknown): Promise<StoredRun> {
  const scope = await resolveScope(ctx, ref);
  const q = parse422(runReallocationQuery, query);
  // The same key on another scope names another run.
  const key = caller.idempotencyKey === undefined ? undefined : `${scope.scopeType}\0${scope.scopeId}\0${caller.idempotencyKey}`;
  const runId = idFromIdempotencyKey('reallocation', caller.principal.apiKeyId, key);
  return runReallocation(ctx, caller, scope, { runId, dryRun: q.dryRun === undefined ? undefined : q.dryRun === 'true', trigger: 'api' });
}

export async function reallocationRuns(ctx: ServiceContext, ref: Scope, query: unknown): Promise<StoredRun[]> {
  const scope = await resolveScope(ctx, ref);
  const q = parse422(listRunsQuery, query);
  return listRuns(ctx.db, scope.scopeType, scope.scopeId, q.limit);
}

export interface ScheduledReallocationResult {
  scopes: number;
  moves: number;
  applied: number;
  previewed: number;
}

/** The daily schedule's work: one run per enabled scope, its id from the workflow's, so a retry repeats nothing. */
export async function runScheduledReallocations(ctx: ServiceContext, input: { workflowId: string }): Promise<ScheduledReallocationResult> {
  const result: ScheduledReallocationResult = { scopes: 0, moves: 0, applied: 0, previewed: 0 };
  for (const s of await enabledReallocationScopes(ctx.db)) {
    if (s.scopeType !== COST_CENTER_SCOPE && s.scopeType !== DEPARTMENT_SCOPE) continue;
    const runId = idFromName('reallocation', `${input.workflowId}\0${s.scopeType}\0${s.scopeId}`);
    const run = await runReallocation(
      ctx,
      { principal: SCHEDULE_PRINCIPAL },
      { scopeType: s.scopeType, scopeId: s.scopeId },
      {
        runId,
        trigger: 'schedule',
        workflowId: input.workflowId,
      },
    );
    result.scopes++;
    result.moves += run.moves.length;
    result.applied += run.moves.filter((m) => m.status === 'applied').length;
    result.previewed += run.moves.filter((m) => m.status === 'preview').length;
  }
  return result;
}

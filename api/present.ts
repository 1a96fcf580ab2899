import type { ComputePrice } from '../domain/compute-prices.js';
import { routingOfMachines, type StoredRoutingDecision } from '../store/routing.js';
import { failureSummariesOf, type StoredFailureSummary } from '../store/refinement.js';
import { predictionsOfMachines, type StoredPrediction } from '../store/predictions.js';
import { formatAmount, type CurrencyCode } from '../domain/money.js';
import { auditOfSubjects } from '../store/audit.js';
import type { BudgetStatus } from '../store/budgets.js';
import { getCacheRecords, type CacheRecord, type CacheSummary } from '../store/cache.js';
import { checkpointIdsOfMachines, type Checkpoint } from '../store/checkpoints.js';
import { costTotalsOfMachines, type CostEvent } from '../store/costs.js';
import type { Db } from '../store/db.js';
import type { Machine } from '../store/machines.js';
import type { BalanceStatus } from '../store/payments.js';
import { getProjects, type Project } from '../store/projects.js';
import type { CostBreakdown, projectCostOpportunities } from '../services/analytics.js';

type ProjectCostBreakdown = CostBreakdown;
type ProjectCostOpportunities = Awaited<ReturnType<typeof projectCostOpportunities>>;

/** Domain objects → the JSON shapes of the v1 contract (money as decimal string + currency). */
export const money = (units: bigint, currency: CurrencyCode) => ({ amount: formatAmount(units, currency), currency });

export function presentBudget(b: BudgetStatus | null) {
  if (!b) return null;
  return {
    limit: formatAmount(b.limit, b.currency),
    spent: formatAmount(b.spent, b.currency),
    reserved: formatAmount(b.reserved, b.currency),
    remaining: formatAmount(b.remaining, b.currency),
    currency: b.currency,
    period: b.period,
    windowStart: b.windowStart.toISOString(),
    windowEnd: b.windowEnd?.toISOString() ?? null,
    alertPercents: b.alertPercents,
  };
}

/** A project's prepaid balance (store/payments.ts BalanceStatus) beside its budgets. */
export function presentBalance(b: BalanceStatus) {
  const f = (units: bigint) => formatAmount(units, b.currency);
  return {
    billing: b.billing,
    currency: b.currency,
    credited: f(b.credited),
    spent: f(b.spent),
    reserved: f(b.reserved),
    balance: f(b.balance),
    available: f(b.available),
  };
}

export function presentProject(p: Project, budget: BudgetStatus | null) {
  return {
    id: p.id,
    name: p.name,
    repoUrl: p.repoUrl,
    currency: p.currency,
    greediness: p.greediness,
    defaultMachineMoney: formatAmount(p.defaultMachineMoney, p.currency),
    rootCheckpointId: p.rootCheckpointId,
    limitPolicy: { policy: p.limitPolicy, pauseMinutes: p.pauseMinutes },
    costCenterId: p.costCenterId,
    createdAt: p.createdAt,
    budget: presentBudget(budget),
  };
}

export function presentCheckpoint(c: Checkpoint) {
  return {
    id: c.id,
    parentId: c.parentId,
    mergeParentId: c.mergeParentId,
    machineId: c.machineId,
    commit: c.commit,
    kind: c.kind,
    trigger: c.trigger,
    status: c.status,
    createdAt: c.createdAt,
  };
}

/** The price a machine is charged at and where it came from (fields in a fixed order). */
export function presentComputePrice(p: ComputePrice) {
  return {
    provider: p.provider,
    region: p.region,
    profile: p.profile,
    market: p.market,
    hourly: p.hourly,
    maxHourly: p.maxHourly,
    currency: p.currency,
    source: p.source,
    entry: p.entry,
    ...(p.listHourly !== undefined ? { listHourly: p.listHourly } : {}),
  };
}

export function presentMachine(m: Machine, cost: bigint, currency: CurrencyCode, checkpoints: string[]) {
  return {
    id: m.id,
    projectId: m.projectId,
    objectiveId: m.objectiveId,
    type: m.type,
    provider: m.provider,
    profile: m.profile,
    spot: m.spot,
    computePrice: m.computePrice ? presentComputePrice(m.computePrice) : null,
    instanceRef: m.instanceRef,
    status: m.status,
    command: m.command,
    prompt: m.prompt,
    limits: m.limits,
    cost: money(cost, currency),
    usage: { inputTokens: m.usage.inputTokens ?? 0, outputTokens: m.usage.outputTokens ?? 0, apiCalls: m.usage.apiCalls ?? 0 },
    checkpoints,
    parentCheckpointId: m.parentCheckpointId,
    costCenterId: m.costCenterId,
    network: { mode: m.network.mode, hosts: m.network.hosts, ...m.networkTotals },
    workflowId: m.workflowId,
    stopReason: m.stopReason,
    exitCode: m.exitCode,
    ...(m.error ? { error: m.error } : {}),
    createdAt: m.createdAt,
    startedAt: m.startedAt,
    endedAt: m.endedAt,
  };
}

/** The sum of totals by category. */
export const sumOf = (totals: Record<string, bigint> | undefined) => Object.values(totals ?? {}).reduce((a, b) => a + b, 0n);

/** The audit records a presented machine carries (its history), oldest first. */
const MACHINE_EVENTS = 200;

/**
 * Machines as the REST API answers them (GET /v1/machines, /v1/machines/:id): each with its
 * cost, checkpoints, cache outcome and history. What they need besides their rows is read with
 * one query per kind for all of them (a page costs five queries, not five per machine).
 */
export async function presentMachines(db: Db, machines: readonly Machine[]) {
  const ids = machines.map((m) => m.id);
  const [projects, costs, checkpoints, cache, audit, routing, predictions, failures] = await Promise.all([
    getProjects(
      db,
      machines.map((m) => m.projectId),
    ),
    costTotalsOfMachines(db, ids),
    checkpointIdsOfMachines(db, ids),
    getCacheRecords(db, ids),
    auditOfSubjects(db, ids, MACHINE_EVENTS),
    routingOfMachines(db, ids),
    predictionsOfMachines(db, ids),
    failureSummariesOf(db, ids),
  ]);
  return machines.map((m) => {
    const project = projects.get(m.projectId);
    // Machines always have their project (a foreign key); a missing one is a bug, not a 404.
    if (!project) throw new Error(`project ${m.projectId} of machine ${m.id} is missing`);
    const events = (audit.get(m.id) ?? []).map((a) => ({ at: a.at, action: a.action, actor: a.actor, details: a.details }));
    return {
      ...presentMachine(m, sumOf(costs.get(m.id)), project.currency, checkpoints.get(m.id) ?? []),
      cache: presentCache(cache.get(m.id) ?? null),
      routing: presentMachineRouting(routing.get(m.id) ?? null),
      prediction: presentPrediction(predictions.get(m.id) ?? null),
      failureSummary: presentFailureSummary(failures.get(m.id) ?? null),
      events,
    };
  });
}

/**
 * A machine's cost and duration predicted before it started (README "Cost prediction"): median and
 * 80 % interval, and once it ended its actuals; null when there was too little history.
 */
export function presentPrediction(p: StoredPrediction | null) {
  if (!p) return null;
  const f = (u: bigint) => formatAmount(u, p.currency);
  return {
    cost: { p10: f(p.cost.p10), p50: f(p.cost.p50), p90: f(p.cost.p90), currency: p.currency },
    durationSeconds: { ...p.durationSeconds },
    basis: p.basis,
    scope: p.scope,
    operationClass: p.operationClass,
    actual: p.actual
      ? { cost: f(p.actual.cost), durationSeconds: p.actual.durationSeconds, finalStatus: p.actual.finalStatus, settledAt: p.actual.settledAt }
      : null,
  };
}

/** What went wrong with a failed machine (README "Prompt refinement"); null when it did not fail. */
export function presentFailureSummary(s: StoredFailureSummary | null) {
  if (!s) return null;
  return {
    summary: s.summary,
    operationClass: s.operationClass,
    finalStatus: s.finalStatus,
    stopReason: s.stopReason,
    error: s.error,
    errorLines: s.errorLines,
    files: s.files,
    createdAt: s.createdAt,
  };
}

/** Why a `type: "auto"` machine got its type (null: the type was asked for). */
export function presentMachineRouting(d: StoredRoutingDecision | null) {
  if (!d) return null;
  return {
    requestedType: 'auto' as const,
    operationClass: d.operationClass,
    complexity: d.complexity,
    classifier: d.classifier,
    mode: d.mode,
    reason: d.reason,
    outcome: d.outcome,
    promptArm: d.promptArm,
  };
}

/** A routing decision as GET /v1/routing lists it. */
export function presentRoutingDecision(d: StoredRoutingDecision) {
  return {
    machineId: d.machineId,
    projectId: d.projectId,
    operationClass: d.operationClass,
    complexity: d.complexity,
    classifier: d.classifier,
    chosenType: d.chosenType,
    mode: d.mode,
    reason: d.reason,
    quality: d.quality,
    exploration: d.exploration,
    promptArm: d.promptArm,
    refinement: d.refinement,
    candidates: d.candidates.map((c) => ({
      type: c.type,
      capability: c.capability,
      mean: c.mean,
      sample: c.sample,
      relativeCost: c.relativeCost,
      expectedCost: { amount: c.expectedCost, currency: 'USD' },
      utility: c.utility,
    })),
    createdAt: d.createdAt,
    outcome: d.outcome,
    finalStatus: d.finalStatus,
    cost: d.cost !== null && d.costCurrency ? { amount: d.cost, currency: d.costCurrency } : null,
    settledAt: d.settledAt,
  };
}

export function presentCost(e: CostEvent) {
  return {
    idempotencyKey: e.idempotencyKey,
    machineId: e.machineId,
    category: e.category,
    amount: formatAmount(e.amount, e.currency),
    currency: e.currency,
    projectAmount: formatAmount(e.projectAmount, e.projectCurrency),
    projectCurrency: e.projectCurrency,
    costCenterId: e.costCenterId ?? null,
    fx: e.fx ?? null,
    details: e.details,
    createdAt: e.createdAt,
  };
}

/** A machine's cache outcome: null when it never looked (started before the cache existed). */
export function presentCache(r: CacheRecord | null) {
  if (!r) return null;
  return {
    hit: r.outcome === 'hit',
    outcome: r.outcome,
    ...(r.sourceMachineId ? { sourceMachineId: r.sourceMachineId } : {}),
    ...(r.savedAmount !== null && r.currency ? { saved: money(r.savedAmount, r.currency) } : {}),
  };
}

export function presentCacheSummary(s: CacheSummary, currency: CurrencyCode) {
  return { hits: s.hits, misses: s.misses, bypassed: s.bypassed, saved: money(s.saved, currency) };
}

/** A project's spend grouped by one dimension (REST GET /v1/projects/:id/costs/breakdown, GraphQL Project.costBreakdown). */
export function presentCostBreakdown(b: ProjectCostBreakdown) {
  const c = b.project.currency;
  return {
    projectId: b.project.id,
    currency: c,
    by: b.by,
    from: b.from.toISOString(),
    to: b.to.toISOString(),
    total: formatAmount(b.total, c),
    groups: b.groups.map((g) => ({ key: g.key, amount: formatAmount(g.amount, c), records: g.records })),
  };
}

/** Where a project could have spent less (REST GET /v1/projects/:id/costs/opportunities, GraphQL Project.costOpportunities). */
export function presentCostOpportunities(o: ProjectCostOpportunities) {
  const c = o.project.currency;
  return {
    projectId: o.project.id,
    currency: c,
    days: o.days,
    totalSaving: formatAmount(o.total, c),
    items: o.opportunities.map((x) => ({ kind: x.kind, evidence: x.evidence, saving: formatAmount(x.saving, c), explanation: x.explanation })),
  };
}

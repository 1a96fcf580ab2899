import { z } from 'zod';
import {
  ALERT_COMPARATORS,
  ALERT_METRIC_INFO,
  ALERT_METRICS,
  compareMetric,
  MAX_ALERT_RULES,
  RATE_LIMIT_LOW_PERCENT,
  RATE_LIMIT_SAMPLE_TTL_MS,
  remainingPercent,
  RESOURCE_NEAR_PERCENT,
  RESOURCE_SAMPLE_TTL_MS,
  timeLimitEnd,
  type AlertComparator,
  type AlertEvaluationResult,
  type AlertMetric,
} from '../domain/alerts.js';
import { type BudgetPeriod, windowStart } from '../domain/budget.js';
import { InputError, NotFoundError } from '../domain/errors.js';
import { formatAmount, fromNumeric, LEDGER_SCALE, parseAmount, type CurrencyCode } from '../domain/money.js';
import {
  ALERT_SEVERITIES,
  availableProviders,
  budgetForAlert,
  countAlertRules,
  deleteAlertRule,
  insertAlertRule,
  listAlertRules,
  listRateLimitSamples,
  openAlerts,
  paymentSucceededSince,
  projectMetric,
  recordAlerts,
  resolveAlerts,
  ruleAlertKey,
  runningMachineLimits,
  runningResourceSamples,
  subjectStatuses,
  type AlertKind,
  type AlertRule,
  type AlertSeverity,
  type NewAlert,
  type OpenAlert,
} from '../store/alerts.js';
import { appendAudit } from '../store/audit.js';
import type { Db } from '../store/db.js';
import { appendEvents, type NewEvent } from '../store/events.js';
import { getForecast, type ForecastScope } from '../store/forecasts.js';
import type { Project } from '../store/projects.js';
import { actorOfCaller, type Caller, type ServiceContext } from './context.js';
import { requireProject } from './projects.js';

// ---- custom rules -------------------------------------------------------------------------

export const createAlertRuleBody = z.strictObject({
  name: z.string().min(1).max(200).optional(),
  metric: z.string().max(100),
  comparator: z.string().max(10),
  threshold: z.union([z.string().max(60), z.number()]),
  severity: z.string().max(20).optional(),
});

const SCALE = 10n ** BigInt(LEDGER_SCALE);
const DECIMAL = /^(\d{1,15})(?:\.(\d{1,18}))?$/;

/** A rule's threshold in its metric's unit: money in the project's currency, a percent, a whole count. */
function parseThreshold(metric: AlertMetric, text: string, project: Project): bigint {
  const unit = ALERT_METRIC_INFO[metric].unit;
  if (unit === 'money') {
    try {
      return parseAmount(text, project.currency, { allowNegative: metric === 'balance_remaining' });
    } catch (err) {
      throw new InputError(`threshold: ${(err as Error).message} (${metric} is an amount in ${project.currency}, the project's currency)`, {
        field: 'threshold',
      });
    }
  }
  const m = DECIMAL.exec(text.trim());
  if (!m || (unit === 'count' && m[2])) {
    throw new InputError(
      unit === 'count'
        ? `threshold: "${text}" is not a whole number; ${metric} counts ${ALERT_METRIC_INFO[metric].description}`
        : `threshold: "${text}" is not a percentage (a decimal like "75" or "92.5")`,
      { field: 'threshold' },
    );
  }
  const units = BigInt(m[1]!) * SCALE + BigInt((m[2] ?? '').padEnd(LEDGER_SCALE, '0'));
  if (unit === 'percent' && units > 1000n * SCALE) throw new InputError('threshold: a percentage of at most 1000', { field: 'threshold' });
  return units;
}

/** A value of a metric as a decimal string in its unit. */
function formatMetric(metric: AlertMetric, units: bigint, currency: CurrencyCode): string {
  if (ALERT_METRIC_INFO[metric].unit === 'money') return formatAmount(units, currency);
  const negative = units < 0n;
  const abs = negative ? -units : units;
  const frac = (abs % SCALE).toString().padStart(LEDGER_SCALE, '0').replace(/0+$/, '').slice(0, 2);
  return `${negative ? '-' : ''}${abs / SCALE}${frac ? `.${frac}` : ''}`;
}

export interface PresentedAlertRule {
  id: string;
  projectId: string;
  name: string;
  metric: AlertMetric;
  comparator: AlertComparator;
  threshold: string;
  unit: 'money' | 'percent' | 'count';
  currency: CurrencyCode | null;
  severity: AlertSeverity;
  createdBy: string;
  createdAt: string;
}

const presentRule = (r: AlertRule, currency: CurrencyCode): PresentedAlertRule => {
  const unit = ALERT_METRIC_INFO[r.metric].unit;
  return {
    id: r.id,
    projectId: r.projectId,
    name: r.name,
    metric: r.metric,
    comparator: r.comparator,
    threshold: formatMetric(r.metric, r.threshold, currency),
    unit,
    currency: unit === 'money' ? currency : null,
    severity: r.severity,
    createdBy: r.createdBy,
    createdAt: r.createdAt,
  };
};

/** Adds a project's own alert rule (audited); each wrong field is a 422 naming it and what it may be. */
export async function createAlertRule(ctx: ServiceContext, caller: Caller, projectId: string, input: unknown): Promise<PresentedAlertRule> {
  const body = createAlertRuleBody.parse(input);
  const project = await requireProject(ctx, projectId);
  if (!(ALERT_METRICS as readonly string[]).includes(body.metric)) {
    throw new InputError(`metric: "${body.metric}" is not a metric; use one of ${ALERT_METRICS.join(', ')}`, { field: 'metric' });
  }
  const metric = body.metric as AlertMetric;
  if (!(ALERT_COMPARATORS as readonly string[]).includes(body.comparator)) {
    throw new InputError(`comparator: "${body.comparator}" is not a comparator; use one of ${ALERT_COMPARATORS.join(' ')}`, { field: 'comparator' });
  }
  const severity = body.severity ?? 'warning';
  if (!(ALERT_SEVERITIES as readonly string[]).includes(severity)) {
    throw new InputError(`severity: "${severity}" is not a severity; use one of ${ALERT_SEVERITIES.join(', ')}`, { field: 'severity' });
  }
  const threshold = parseThreshold(metric, String(body.threshold), project);
  if ((await countAlertRules(ctx.db, projectId)) >= MAX_ALERT_RULES) {
    throw new InputError(`a project has at most ${MAX_ALERT_RULES} alert rules; delete one first`, { field: 'metric' });
  }
  const comparator = body.comparator as AlertComparator;
  const name = body.name ?? `${metric} ${comparator} ${formatMetric(metric, threshold, project.currency)}`;
  // The rule and its audit record commit together.
  const rule = await ctx.db.transaction(async (trx) => {
    const made = await insertAlertRule(trx, {
      projectId,
      name,
      metric,
      comparator,
      threshold,
      severity: severity as AlertSeverity,
      createdBy: actorOfCaller(caller),
    });
    await appendAudit(trx, {
      actor: actorOfCaller(caller),
      action: 'alert_rule.created',
      subjectType: 'alert_rule',
      subjectId: made.id,
      projectId,
      details: { name, metric, comparator, threshold: formatMetric(metric, threshold, project.currency), severity },
    });
    return made;
  });
  return presentRule(rule, project.currency);
}

export async function listProjectAlertRules(ctx: ServiceContext, projectId: string): Promise<PresentedAlertRule[]> {
  const project = await requireProject(ctx, projectId);
  return (await listAlertRules(ctx.db, { projectId })).map((r) => presentRule(r, project.currency));
}

/** Deletes a rule; its open alert resolves with it (audited). */
export async function removeAlertRule(ctx: ServiceContext, caller: Caller, projectId: string, ruleId: string): Promise<void> {
  await requireProject(ctx, projectId);
  await ctx.db.transaction(async (trx) => {
    const { deleted, events } = await deleteAlertRule(trx, projectId, ruleId);
    if (!deleted) throw new NotFoundError(`alert rule ${ruleId} not found in project ${projectId}`);
    await appendAudit(trx, { actor: actorOfCaller(caller), action: 'alert_rule.deleted', subjectType: 'alert_rule', subjectId: ruleId, projectId });
    await appendEvents(trx, events);
  });
}

// ---- the evaluator ------------------------------------------------------------------------

/** Kinds the evaluator alone raises: an open one whose condition it no longer finds is resolved. */
const EVALUATED_KINDS: readonly AlertKind[] = ['time_limit_exceeded', 'rate_limit_low', 'resource_exhaustion', 'alert_rule'];
/** Kinds a change raises in its transaction; the evaluator resolves them when their condition cleared. */
const CHANGE_KINDS: readonly AlertKind[] = [
  'budget_threshold',
  'budget_forecast',
  'machine_paused',
  'provider_unavailable',
  'webhook_disabled',
  'payment_failed',
];

/** The conditions that hold now, as alerts keyed by condition. */
async function currentConditions(db: Db, now: Date): Promise<NewAlert[]> {
  const out: NewAlert[] = [];
  for (const m of await runningMachineLimits(db)) {
    const end = timeLimitEnd(m.startedAt, m.minutes);
    if (!end || end > now) continue;
    const minutes = m.minutes as number;
    out.push({
      kind: 'time_limit_exceeded',
      severity: 'warning',
      projectId: m.projectId,
      subjectId: m.id,
      message: `machine ${m.id} is still running past its time limit of ${minutes} minute${minutes === 1 ? '' : 's'} (started ${m.startedAt!.toISOString()})`,
      data: { machineId: m.id, minutes, startedAt: m.startedAt!.toISOString() },
      dedupeKey: `time_limit:${m.id}`,
    });
  }
  for (const s of await listRateLimitSamples(db)) {
    if (now.getTime() - s.at.getTime() > RATE_LIMIT_SAMPLE_TTL_MS || (s.resetAt && s.resetAt <= now)) continue;
    const low = (
      [
        ['requests', remainingPercent(s.requestsRemaining, s.requestsLimit), s.requestsRemaining, s.requestsLimit],
        ['tokens', remainingPercent(s.tokensRemaining, s.tokensLimit), s.tokensRemaining, s.tokensLimit],
      ] as const
    ).filter(([, pct]) => pct !== null && pct < RATE_LIMIT_LOW_PERCENT);
    if (!low.length) continue;
    out.push({
      kind: 'rate_limit_low',
      severity: low.some(([, pct]) => pct === 0) ? 'critical' : 'warning',
      projectId: s.projectId,
      subjectId: s.provider,
      message: `${s.provider} rate limit nearly used up for project ${s.projectId}: ${low.map(([what, pct, rem, lim]) => `${rem} of ${lim} ${what} left (${pct}%)`).join(', ')}`,
      data: {
        provider: s.provider,
        ...(s.machineId ? { machineId: s.machineId } : {}),
        requestsRemaining: s.requestsRemaining,
        requestsLimit: s.requestsLimit,
        tokensRemaining: s.tokensRemaining,
        tokensLimit: s.tokensLimit,
        resetAt: s.resetAt?.toISOString() ?? null,
        sampledAt: s.at.toISOString(),
      },
      dedupeKey: `rate_limit:${s.projectId}:${s.provider}`,
    });
  }
  for (const s of await runningResourceSamples(db)) {
    if (now.getTime() - s.at.getTime() > RESOURCE_SAMPLE_TTL_MS) continue;
    for (const [resource, used, limit] of [
      ['memory', s.memoryBytes, s.memoryLimitBytes],
      ['disk', s.diskBytes, s.diskLimitBytes],
    ] as const) {
      if (used === null || limit === null || limit <= 0) continue;
      const pct = Math.floor((used * 100) / limit);
      if (pct < RESOURCE_NEAR_PERCENT) continue;
      out.push({
        kind: 'resource_exhaustion',
        severity: pct >= 100 ? 'critical' : 'warning',
        projectId: s.projectId,
        subjectId: s.machineId,
        message: `machine ${s.machineId} uses ${pct}% of its ${resource} limit (${Math.round(used / 1048576)} of ${Math.round(limit / 1048576)} MiB)`,
        data: { machineId: s.machineId, resource, usedBytes: used, limitBytes: limit, percent: pct, sampledAt: s.at.toISOString() },
        dedupeKey: `resource:${s.machineId}:${resource}`,
      });
    }
  }
  const currencies = new Map<string, CurrencyCode>();
  for (const rule of await listAlertRules(db)) {
    const value = await projectMetric(db, rule.projectId, rule.metric, now);
    if (value === null || !compareMetric(value, rule.comparator, rule.threshold)) continue;
    if (!currencies.has(rule.projectId)) {
      const p = await db('projects').where({ id: rule.projectId }).first('currency');
      currencies.set(rule.projectId, (p?.currency ?? 'USD') as CurrencyCode);
    }
    const currency = currencies.get(rule.projectId)!;
    const shown = formatMetric(rule.metric, value, currency);
    const threshold = formatMetric(rule.metric, rule.threshold, currency);
    out.push({
      kind: 'alert_rule',
      severity: rule.severity,
      projectId: rule.projectId,
      subjectId: rule.id,
      message: `alert rule "${rule.name}": ${rule.metric} is ${shown} (${rule.comparator} ${threshold})`,
      data: { ruleId: rule.id, name: rule.name, metric: rule.metric, comparator: rule.comparator, threshold, value: shown },
      dedupeKey: ruleAlertKey(rule.id),
    });
  }
  return out;
}

const EVALUATED_RESOLUTION: Partial<Record<AlertKind, string>> = {
  time_limit_exceeded: 'the machine stopped or its time limit was extended',
  rate_limit_low: `the provider's rate limit is back above ${RATE_LIMIT_LOW_PERCENT}% remaining or its window reset`,
  resource_exhaustion: `the machine stopped or its use fell below ${RESOURCE_NEAR_PERCENT}% of the limit`,
  alert_rule: "the rule's condition no longer holds",
};

/** Why an open alert raised by a change resolved, or null while its condition still holds. */
async function clearedChangeAlert(db: Db, a: OpenAlert, now: Date, cache: { providers?: Set<string> }): Promise<string | null> {
  switch (a.kind) {
    case 'budget_threshold':
    case 'budget_forecast': {
      const budget = await budgetForAlert(db, String(a.data.budgetId ?? a.subjectId));
      if (!budget) return 'the budget was removed';
      const current = windowStart(budget.period as BudgetPeriod, now);
      if (typeof a.data.windowStart === 'string' && Date.parse(a.data.windowStart) < current.getTime()) return 'a new budget period started';
      if (a.kind === 'budget_threshold') {
        const pct = Number(a.data.percent);
        if (!budget.alertPercents.includes(pct)) return `the budget no longer has a ${pct}% threshold`;
        const w = await db('budget_windows')
          .where({ budget_id: String(a.data.budgetId), window_start: current })
          .first('spent', 'reserved');
        const used = fromNumeric(w?.spent) + fromNumeric(w?.reserved);
        const currency = String(a.data.currency ?? 'USD') as CurrencyCode;
        const raisedAt = typeof a.data.limit === 'string' ? parseAmount(a.data.limit, currency) : null;
        // Raising the limit clears the threshold; money released by a stopped machine does not.
        if (raisedAt !== null && budget.limit > raisedAt && used * 100n < budget.limit * BigInt(pct))
          return `the limit was raised to ${formatAmount(budget.limit, currency)}, above the threshold`;
        return null;
      }
      const forecast = await getForecast(db, { scopeType: budget.scopeType, scopeId: budget.scopeId } as ForecastScope);
      const body = forecast?.body as { budget?: { exhaustedBeforePeriodEnd?: boolean } | null } | undefined;
      if (forecast && Date.parse(forecast.computedAt) > Date.parse(a.at) && body?.budget?.exhaustedBeforePeriodEnd !== true) {
        return 'the forecast no longer runs out before the period ends';
      }
      return null;
    }
    case 'machine_paused': {
      const status = (await subjectStatuses(db, 'machines', [a.subjectId])).get(a.subjectId);
      return status === 'paused' ? null : `the machine is ${status ?? 'gone'}`;
    }
    case 'provider_unavailable':
      cache.providers ??= await availableProviders(db);
      return cache.providers.has(a.subjectId) ? 'the provider is available again' : null;
    case 'webhook_disabled': {
      const status = (await subjectStatuses(db, 'webhook_endpoints', [a.subjectId])).get(a.subjectId);
      return status === 'disabled' ? null : status ? 'the webhook was enabled again' : 'the webhook was deleted';
    }
    case 'payment_failed':
      return (await paymentSucceededSince(db, a.projectId, a.at)) ? 'a later payment of the project succeeded' : null;
    default:
      return null;
  }
}

export type { AlertEvaluationResult };

/**
 * One run of the alert engine: raises every condition that holds now and has no open alert, and
 * resolves every open alert whose condition cleared, each with its event (`alert.<kind>`,
 * `alert.resolved`) delivered like any other. Deduplicated by condition key, so running it twice
 * (or on two workers at once) raises and resolves each thing once.
 */
export async function evaluateAlerts(ctx: Pick<ServiceContext, 'db'> & { log?: ServiceContext['log'] }, now = new Date()): Promise<AlertEvaluationResult> {
  const { db } = ctx;
  const conditions = await currentConditions(db, now);
  const holding = new Set(conditions.map((c) => c.dedupeKey!));
  const toResolve = new Map<string, string[]>();
  const add = (reason: string, id: string) => toResolve.set(reason, [...(toResolve.get(reason) ?? []), id]);
  for (const a of await openAlerts(db, EVALUATED_KINDS)) {
    if (!a.dedupeKey || !holding.has(a.dedupeKey)) add(EVALUATED_RESOLUTION[a.kind]!, a.id);
  }
  const cache = {};
  for (const a of await openAlerts(db, CHANGE_KINDS)) {
    try {
      const reason = await clearedChangeAlert(db, a, now, cache);
      if (reason) add(reason, a.id);
    } catch (err) {
      // One alert the evaluator cannot judge (data it does not understand) stays open; the others go on.
      ctx.log?.warn({ err: (err as Error).message, alertId: a.id, kind: a.kind }, 'alert not evaluated');
    }
  }
  return db.transaction(async (trx) => {
    const events: NewEvent[] = [];
    for (const [reason, ids] of toResolve) events.push(...(await resolveAlerts(trx, { ids }, reason)));
    const resolved = events.length;
    const raised = await recordAlerts(trx, conditions);
    events.push(...raised);
    await appendEvents(trx, events);
    const [row] = await trx('alerts').whereNull('resolved_at').count({ n: '*' });
    return { raised: raised.length, resolved, open: Number(row?.n ?? 0) };
  });
}

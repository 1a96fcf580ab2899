/**
 * Spend forecasts per project, cost center and department: computed by the `forecastRefresh`
 * workflow (a Temporal Schedule), stored, and served as stored. Figures are floats on the model
 * side only and leave here as decimal strings rounded to the currency's minor unit; nothing here
 * writes to the ledger.
 */
import { budgetProjectId, COST_CENTER_SCOPE, DEPARTMENT_SCOPE, PROJECT_SCOPE } from '../domain/budget.js';
import { NotFoundError } from '../domain/errors.js';
import { budgetOutlook, floatToDecimal, forecastSeries, type BudgetOutlook, type ForecastPoint } from '../domain/forecast.js';
import { CURRENCIES, type CurrencyCode, LEDGER_SCALE } from '../domain/money.js';
import type { NewAlert } from '../store/alerts.js';
import { budgetStatus, findBudget } from '../store/budgets.js';
import { getCostCenter, listCostCenters } from '../store/cost-centers.js';
import { dailySpend, forecastScopes, getForecast, mainSpendCurrency, saveForecast, type ForecastScope, type StoredForecast } from '../store/forecasts.js';
import { getProject } from '../store/projects.js';
import type { ServiceContext } from './context.js';
import { requireCostCenter, requireDepartment } from './cost-centers.js';
import { requireProject } from './projects.js';

const DAY_MS = 86_400_000;
const startOfDay = (t: Date) => new Date(Math.floor(t.getTime() / DAY_MS) * DAY_MS);
const isoDay = (d: Date) => d.toISOString().slice(0, 10);
/** Ledger units (10^-18) as a float of the main unit: the model side only. */
const toFloat = (units: bigint) => Number(units) / 10 ** LEDGER_SCALE;

export interface ForecastRefreshResult {
  scopes: number;
  /** Scopes whose budget is forecast to run out before its period ends. */
  exhausting: number;
  /** Budget-forecast alerts raised by this run (each budget's period raises at most one, ever). */
  alerts: number;
}

/** Computes and stores the forecast of every scope with recent spend or a budget. */
export async function refreshForecasts(ctx: ServiceContext, opts: { now?: Date; workflowId?: string | null } = {}): Promise<ForecastRefreshResult> {
  const now = opts.now ?? new Date();
  const { historyDays } = ctx.config.forecast;
  const scopes = await forecastScopes(ctx.db, new Date(startOfDay(now).getTime() - historyDays * DAY_MS));
  const out: ForecastRefreshResult = { scopes: 0, exhausting: 0, alerts: 0 };
  for (const scope of scopes) {
    const computed = await computeForecast(ctx, scope, now);
    if (!computed) continue;
    out.scopes++;
    if (computed.alert) out.exhausting++;
    out.alerts += await saveForecast(
      ctx.db,
      { ...scope, currency: computed.currency, computedAt: now, workflowId: opts.workflowId ?? null, body: computed.body },
      computed.alert ? [computed.alert] : [],
    );
  }
  ctx.log.info(out, 'forecasts refreshed');
  return out;
}

/** A scope's forecast as served, and the alert it raises; null when the scope is gone. */
export async function computeForecast(
  ctx: ServiceContext,
  scope: ForecastScope,
  now: Date,
): Promise<{ currency: CurrencyCode; body: Record<string, unknown>; alert: NewAlert | null } | null> {
  const { db } = ctx;
  const { historyDays, horizonDays } = ctx.config.forecast;
  const today = startOfDay(now);
  const from = new Date(today.getTime() - historyDays * DAY_MS);
  const budget = scope.scopeType === DEPARTMENT_SCOPE || (await scopeExists(ctx, scope)) ? await findBudget(db, scope.scopeType, scope.scopeId) : undefined;
  if (budget === undefined) return null;
  const project = scope.scopeType === PROJECT_SCOPE ? await getProject(db, scope.scopeId) : null;
  const currency: CurrencyCode = project?.currency ?? budget?.currency ?? (await mainSpendCurrency(db, scope, from)) ?? 'USD';
  const rows = await dailySpend(db, { ...scope, currency, from, to: now });
  const byDay = new Map(rows.map((r) => [r.day.getTime(), r.amount]));
  const first = rows.length ? rows[0]!.day.getTime() : today.getTime();
  // History: complete days from the first with spend up to yesterday; today so far is apart.
  const history: number[] = [];
  for (let t = first; t < today.getTime(); t += DAY_MS) history.push(toFloat(byDay.get(t) ?? 0n));
  const todaySoFar = toFloat(byDay.get(today.getTime()) ?? 0n);
  const f = forecastSeries(history, { period: 7, horizon: horizonDays });

  const decimals = CURRENCIES[currency].precision;
  const fmt = (x: number, mode: 'nearest' | 'up' = 'nearest') => floatToDecimal(x, decimals, mode);
  const present = (p: ForecastPoint) => ({ mean: fmt(p.mean), lo80: fmt(p.lo80), hi80: fmt(p.hi80), lo95: fmt(p.lo95), hi95: fmt(p.hi95) });
  const dayOf = (h: number) => new Date(today.getTime() + (h - 1) * DAY_MS);

  let outlook: (BudgetOutlook & { status: Awaited<ReturnType<typeof budgetStatus>> }) | null = null;
  let note: string | null = scope.scopeType === PROJECT_SCOPE ? null : `spend recorded in ${currency} only (amounts in other currencies are not converted)`;
  if (budget && budget.currency !== currency) {
    note = `the budget is in ${budget.currency} and the spend in ${currency}: no exhaustion date (rates are not applied to forecasts)`;
  } else if (budget) {
    const status = await budgetStatus(db, budget, now);
    const o = budgetOutlook(
      f,
      today,
      todaySoFar,
      {
        period: budget.period,
        limit: toFloat(budget.limit),
        used: toFloat(status.spent + status.reserved),
        windowStart: status.windowStart,
        windowEnd: status.windowEnd,
      },
      fmt,
      currency,
    );
    outlook = { ...o, status };
  }
  const ceil = (x: number | null) => (x === null ? null : Math.round(x * 10_000) / 10_000);
  const body = {
    scopeType: scope.scopeType,
    scopeId: scope.scopeId,
    currency,
    computedAt: now.toISOString(),
    asOf: isoDay(today),
    method: f.method,
    backtested: f.backtested,
    history: { from: isoDay(new Date(first)), days: history.length, todaySoFar: fmt(todaySoFar) },
    backtest: f.candidates.map((c) => ({
      method: c.method,
      chosen: c.method === f.method,
      mape: ceil(c.mape),
      smape: ceil(c.smape),
      coverage80: ceil(c.coverage80),
      coverage95: ceil(c.coverage95),
      origins: c.origins,
    })),
    daily: f.points.map((p, i) => ({ date: isoDay(dayOf(i + 1)), ...present(p) })),
    /** Spend over the next 7, 14, … days (today whole included). */
    totals: f.cumulative.flatMap((p, i) => ((i + 1) % 7 === 0 ? [{ days: i + 1, until: isoDay(dayOf(i + 1)), ...present(p) }] : [])),
    budget: outlook
      ? {
          budgetId: outlook.status.id,
          period: outlook.status.period,
          limit: fmt(toFloat(outlook.status.limit)),
          used: fmt(toFloat(outlook.status.spent + outlook.status.reserved)),
          remaining: fmt(toFloat(outlook.status.remaining)),
          windowStart: outlook.status.windowStart.toISOString(),
          windowEnd: outlook.status.windowEnd?.toISOString() ?? null,
          exhaustion: outlook.exhaustion,
          exhaustedBeforePeriodEnd: outlook.exhaustedBeforePeriodEnd,
          projectedPeriodSpend: outlook.projectedPeriodSpend ? present(outlook.projectedPeriodSpend) : null,
        }
      : null,
    recommendations: outlook?.recommendations ?? [],
    note,
  };
  const alert: NewAlert | null =
    outlook && outlook.exhaustedBeforePeriodEnd && budget
      ? {
          kind: 'budget_forecast',
          severity: 'warning',
          projectId: budgetProjectId(budget.scopeType, budget.scopeId),
          subjectId: budget.id,
          message: `${scopeLabel(scope)}: ${outlook.recommendations[0]!.message}`,
          data: {
            budgetId: budget.id,
            scopeType: scope.scopeType,
            scopeId: scope.scopeId,
            expected: outlook.exhaustion.expected,
            earliest80: outlook.exhaustion.earliest80,
            latest80: outlook.exhaustion.latest80,
            windowStart: outlook.status.windowStart.toISOString(),
            raiseTo: outlook.recommendations.find((r) => r.kind === 'raise_limit')?.amount ?? null,
            currency,
          },
          dedupeKey: `forecast:${budget.id}:${outlook.status.windowStart.toISOString()}`,
        }
      : null;
  return { currency, body, alert };
}

const scopeLabel = (s: ForecastScope) =>
  s.scopeType === PROJECT_SCOPE ? `project ${s.scopeId}` : s.scopeType === COST_CENTER_SCOPE ? `cost center ${s.scopeId}` : `department ${s.scopeId}`;

async function scopeExists(ctx: ServiceContext, s: ForecastScope): Promise<boolean> {
  if (s.scopeType === PROJECT_SCOPE) return (await getProject(ctx.db, s.scopeId)) !== null;
  if (s.scopeType === COST_CENTER_SCOPE) return (await getCostCenter(ctx.db, s.scopeId)) !== null;
  return (await listCostCenters(ctx.db, { department: s.scopeId })).length > 0;
}

/** The stored forecast of a scope, or a 404 saying when one will be there. */
export async function storedForecast(ctx: ServiceContext, scope: ForecastScope): Promise<StoredForecast> {
  const f = await getForecast(ctx.db, scope);
  if (!f) {
    const every = ctx.config.forecast.everySeconds;
    throw new NotFoundError(
      `no forecast of ${scopeLabel(scope)} yet: ${every > 0 ? `the forecast-refresh schedule computes one every ${every} s for scopes with spend or a budget` : 'the forecast-refresh schedule is off (AUTOVIBE_FORECAST_EVERY_S=0)'}`,
    );
  }
  return f;
}

/** The stored forecast of a project, cost center or department (404 when the scope is unknown or has none yet). */
export async function scopeForecast(ctx: ServiceContext, scopeType: ForecastScope['scopeType'], id: string): Promise<StoredForecast> {
  if (scopeType === PROJECT_SCOPE) await requireProject(ctx, id);
  else if (scopeType === COST_CENTER_SCOPE) await requireCostCenter(ctx, id);
  else await requireDepartment(ctx, id);
  return storedForecast(ctx, { scopeType, scopeId: id });
}

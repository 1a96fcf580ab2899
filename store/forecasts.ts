import { COST_CENTER_SCOPE, DEPARTMENT_SCOPE, PROJECT_SCOPE } from '../domain/budget.js';
import { type CurrencyCode, fromNumeric } from '../domain/money.js';
import { recordAlerts, type NewAlert } from './alerts.js';
import type { Db } from './db.js';
import { appendEvents } from './events.js';

/** What a forecast is of: a project, a cost center (its id) or a department (its name). */
export type ForecastScopeType = typeof PROJECT_SCOPE | typeof COST_CENTER_SCOPE | typeof DEPARTMENT_SCOPE;
export const FORECAST_SCOPE_TYPES: readonly ForecastScopeType[] = [PROJECT_SCOPE, COST_CENTER_SCOPE, DEPARTMENT_SCOPE];

export interface ForecastScope {
  scopeType: ForecastScopeType;
  scopeId: string;
}

/** Restricts cost_events (aliased `e`) to a scope's spend. */
function scoped(db: Db, s: ForecastScope) {
  const q = db('cost_events as e');
  if (s.scopeType === PROJECT_SCOPE) q.where('e.project_id', s.scopeId);
  else if (s.scopeType === COST_CENTER_SCOPE) q.where('e.cost_center_id', s.scopeId);
  else q.join('cost_centers as c', 'c.id', 'e.cost_center_id').where('c.department', s.scopeId);
  return q;
}

/**
 * A scope's spend per UTC day in [from, to) in one currency (the project's currency of each record:
 * a cost center's projects may use several, and amounts of different currencies are never added).
 * Days without spend are absent.
 */
export async function dailySpend(db: Db, s: ForecastScope & { currency: CurrencyCode; from: Date; to: Date }): Promise<Array<{ day: Date; amount: bigint }>> {
  const rows = (await scoped(db, s)
    .where('e.project_currency', s.currency)
    .where('e.created_at', '>=', s.from)
    .where('e.created_at', '<', s.to)
    .select(db.raw(`extract(epoch from date_trunc('day', e.created_at at time zone 'UTC'))::bigint as day`))
    .sum({ total: 'e.project_amount' })
    .groupByRaw('1')
    .orderByRaw('1')) as Array<{ day: string | number; total: string }>;
  return rows.map((r) => ({ day: new Date(Number(r.day) * 1000), amount: fromNumeric(r.total) }));
}

/** The currency most of a scope's spend since `since` is recorded in (by number of records), or null without spend. */
export async function mainSpendCurrency(db: Db, s: ForecastScope, since: Date): Promise<CurrencyCode | null> {
  const row = (await scoped(db, s)
    .where('e.created_at', '>=', since)
    .select('e.project_currency')
    .count({ n: '*' })
    .groupBy('e.project_currency')
    .orderBy([{ column: 'n', order: 'desc' }, { column: 'e.project_currency' }])
    .first()) as { project_currency?: string } | undefined;
  return (row?.project_currency as CurrencyCode | undefined) ?? null;
}

/** Every scope to forecast: those with spend since `since` or a budget (projects, cost centers, departments). */
export async function forecastScopes(db: Db, since: Date): Promise<ForecastScope[]> {
  const projects = await db
    .select('project_id as id')
    .from('cost_events')
    .where('created_at', '>=', since)
    .union((q) => q.select('scope_id as id').from('budgets').where('scope_type', PROJECT_SCOPE).whereIn('scope_id', db('projects').select('id')))
    .orderBy('id');
  const centers = await db
    .select('cost_center_id as id')
    .from('cost_events')
    .where('created_at', '>=', since)
    .whereNotNull('cost_center_id')
    .union((q) => q.select('scope_id as id').from('budgets').where('scope_type', COST_CENTER_SCOPE).whereIn('scope_id', db('cost_centers').select('id')))
    .orderBy('id');
  const departments = await db
    .select('department as id')
    .from('cost_centers')
    .whereIn(
      'id',
      centers.map((c) => c.id as string),
    )
    .union((q) => q.select('scope_id as id').from('budgets').where('scope_type', DEPARTMENT_SCOPE))
    .orderBy('id');
  return [
    ...projects.map((r) => ({ scopeType: PROJECT_SCOPE, scopeId: String(r.id) }) as ForecastScope),
    ...centers.map((r) => ({ scopeType: COST_CENTER_SCOPE, scopeId: String(r.id) }) as ForecastScope),
    ...departments.map((r) => ({ scopeType: DEPARTMENT_SCOPE, scopeId: String(r.id) }) as ForecastScope),
  ];
}

export interface StoredForecast extends ForecastScope {
  currency: CurrencyCode;
  computedAt: string;
  workflowId: string | null;
  /** The forecast as served (decimal strings). */
  body: Record<string, unknown>;
}

/**
 * Stores a scope's latest forecast (replacing the previous one) and raises its alerts (deduplicated
 * by their keys) in one transaction, with their `alert.*` events.
 */
export async function saveForecast(db: Db, f: Omit<StoredForecast, 'computedAt'> & { computedAt: Date }, alerts: NewAlert[]): Promise<number> {
  return db.transaction(async (trx) => {
    await trx('forecasts')
      .insert({
        scope_type: f.scopeType,
        scope_id: f.scopeId,
        currency: f.currency,
        computed_at: f.computedAt,
        workflow_id: f.workflowId,
        body: JSON.stringify(f.body),
      })
      .onConflict(['scope_type', 'scope_id'])
      .merge();
    const events = await recordAlerts(trx, alerts);
    if (events.length) await appendEvents(trx, events);
    return events.length;
  });
}

export async function getForecast(db: Db, s: ForecastScope): Promise<StoredForecast | null> {
  const r = await db('forecasts').where({ scope_type: s.scopeType, scope_id: s.scopeId }).first();
  if (!r) return null;
  return {
    scopeType: r.scope_type,
    scopeId: r.scope_id,
    currency: r.currency,
    computedAt: new Date(r.computed_at).toISOString(),
    workflowId: r.workflow_id ?? null,
    body: typeof r.body === 'string' ? JSON.parse(r.body) : r.body,
  };
}

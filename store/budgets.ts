import crypto from 'node:crypto';
import type { Knex } from 'knex';
import { type BudgetPeriod, budgetProjectId, MACHINE_TYPE_SCOPE, PROJECT_SCOPE, windowStart, windowEnd } from '../domain/budget.js';
import { InputError, NotFoundError } from '../domain/errors.js';
import { type CurrencyCode, formatAmount, fromNumeric, minUnits, toNumeric } from '../domain/money.js';
import type { Db } from './db.js';
import { recordAlerts, type NewAlert } from './alerts.js';
import { appendEvent, appendEvents, inTransaction } from './events.js';

/**
 * The budget ledger. A spend is first reserved with one conditional UPDATE per budget
 * (`spent + reserved + amount <= limit`) inside a transaction, then settled to the real amount
 * (never more than was reserved) or released. Every step is keyed by the caller's idempotency
 * key, so retries after a crash change nothing twice.
 */
export interface Budget {
  id: string;
  scopeType: string;
  scopeId: string;
  period: BudgetPeriod;
  limit: bigint;
  currency: CurrencyCode;
  /** Percentages of the limit at which an `alert.budget_threshold` is raised, once per window each. */
  alertPercents: number[];
}

export const DEFAULT_ALERT_PERCENTS = [50, 80, 100] as const;

/** Why `percents` are not alert thresholds, or null when they are: whole percentages 1..100, each once. */
export function alertPercentsProblem(percents: readonly number[]): string | null {
  if (percents.length > 10) return 'at most 10 thresholds';
  if (percents.some((p) => !Number.isInteger(p) || p < 1 || p > 100)) return 'each threshold is a whole percentage from 1 to 100';
  if (new Set(percents).size !== percents.length) return 'each threshold once';
  return null;
}

/**
 * The threshold alerts of a budget whose window now holds `spent + reserved` (what reservations are
 * checked against): one per threshold reached, keyed by budget, window and threshold, so each is
 * raised once per budget period however many spends reach it, concurrent or not.
 */
function thresholdAlerts(b: Record<string, any>, start: Date, spent: bigint, reserved: bigint): NewAlert[] {
  const limit = fromNumeric(b.limit_amount);
  if (limit <= 0n) return [];
  const used = spent + reserved;
  const currency = b.currency as CurrencyCode;
  return (b.alert_percents as number[])
    .filter((pct) => used * 100n >= limit * BigInt(pct))
    .map((pct) => ({
      kind: 'budget_threshold' as const,
      severity: pct >= 100 ? ('critical' as const) : pct >= 80 ? ('warning' as const) : ('info' as const),
      projectId: budgetProjectId(b.scope_type, b.scope_id),
      subjectId: b.id,
      message: `budget ${b.id} (${b.scope_type} ${b.scope_id}) reached ${pct}% of its ${b.period} limit: ${formatAmount(used, currency)} of ${formatAmount(limit, currency)} ${currency} spent or reserved`,
      data: {
        budgetId: b.id,
        scopeType: b.scope_type,
        scopeId: b.scope_id,
        percent: pct,
        spent: formatAmount(spent, currency),
        reserved: formatAmount(reserved, currency),
        limit: formatAmount(limit, currency),
        currency,
        windowStart: start.toISOString(),
      },
      dedupeKey: `budget:${b.id}:${start.toISOString()}:${pct}`,
    }));
}

export interface BudgetStatus extends Budget {
  windowStart: Date;
  windowEnd: Date | null;
  spent: bigint;
  reserved: bigint;
  remaining: bigint;
}

function toBudget(r: Record<string, any>): Budget {
  return {
    id: r.id,
    scopeType: r.scope_type,
    scopeId: r.scope_id,
    period: r.period,
    limit: fromNumeric(r.limit_amount),
    currency: r.currency,
    alertPercents: r.alert_percents ?? [...DEFAULT_ALERT_PERCENTS],
  };
}

export async function setBudget(
  db: Db | Knex.Transaction,
  b: { scopeType: string; scopeId: string; period: BudgetPeriod; limit: bigint; currency: CurrencyCode; alertPercents?: readonly number[] },
): Promise<Budget> {
  const problem = b.alertPercents ? alertPercentsProblem(b.alertPercents) : null;
  if (problem) throw new InputError(`alertPercents: ${problem}`, { field: 'alertPercents' });
  // Unchanged on an update that does not give them.
  const percents = b.alertPercents ? { alert_percents: [...b.alertPercents].sort((x, y) => x - y) } : {};
  return inTransaction(db, async (trx) => {
    const [row] = await trx('budgets')
      .insert({
        id: `budget-${crypto.randomUUID()}`,
        scope_type: b.scopeType,
        scope_id: b.scopeId,
        period: b.period,
        limit_amount: toNumeric(b.limit),
        currency: b.currency,
        ...percents,
      })
      .onConflict(['scope_type', 'scope_id'])
      .merge({ period: b.period, limit_amount: toNumeric(b.limit), currency: b.currency, ...percents, updated_at: trx.fn.now() })
      .returning('*');
    const budget = toBudget(row);
    await appendEvent(trx, {
      kind: 'budget.set',
      projectId: budgetProjectId(b.scopeType, b.scopeId),
      subjectId: budget.id,
      data: { scopeType: b.scopeType, scopeId: b.scopeId, period: b.period, limit: formatAmount(b.limit, b.currency), currency: b.currency },
    });
    return budget;
  });
}

export async function findBudget(db: Db, scopeType: string, scopeId: string): Promise<Budget | null> {
  const row = await db('budgets').where({ scope_type: scopeType, scope_id: scopeId }).first();
  return row ? toBudget(row) : null;
}

export async function budgetStatus(db: Db, budget: Budget, now: Date): Promise<BudgetStatus> {
  const start = windowStart(budget.period, now);
  const w = await db('budget_windows').where({ budget_id: budget.id, window_start: start }).first();
  const spent = fromNumeric(w?.spent);
  const reserved = fromNumeric(w?.reserved);
  const remaining = budget.limit - spent - reserved;
  return {
    ...budget,
    windowStart: start,
    windowEnd: windowEnd(budget.period, start),
    spent,
    reserved,
    remaining: remaining > 0n ? remaining : 0n,
  };
}

export type ReserveOutcome = { ok: true; reservationId: string; amount: bigint } | { ok: false; budgetId: string; remaining: bigint; limit: bigint };

/** The rate an amount was converted with, as records keep it. */
export interface FxRecord {
  rate: string;
  source: string;
  asOf: string;
}

class Refused extends Error {
  constructor(readonly outcome: Extract<ReserveOutcome, { ok: false }>) {
    super('refused');
  }
}

const isUniqueViolation = (e: unknown) => (e as { code?: string })?.code === '23505';

/**
 * Reserves `amount` on every budget in `budgetIds` at once, or on none. Budgets are locked in id
 * order so concurrent multi-budget reservations cannot deadlock.
 */
export async function reserve(
  db: Db,
  r: {
    key: string;
    budgetIds: string[];
    projectId: string;
    machineId?: string;
    amount: bigint;
    now: Date;
    /** The currency of `amount`; recorded on budgets in another currency, which get `perBudget`. */
    currency?: CurrencyCode;
    /** For a budget in another currency: the amount in its currency and the rate it was converted with. */
    perBudget?: Record<string, { amount: bigint; fx: FxRecord | null }>;
  },
): Promise<ReserveOutcome> {
  const reservedAmount = async () => {
    const rows = await db('reservations').where({ id: r.key }).select('amount', 'source_amount');
    if (rows.length === 0) return null;
    // The requester's figure: kept as source_amount on rows converted to another currency.
    const row = rows.find((x) => x.source_amount === null) ?? rows[0]!;
    return fromNumeric(row.source_amount ?? row.amount);
  };
  const existing = await reservedAmount();
  if (existing !== null) return { ok: true, reservationId: r.key, amount: existing };
  try {
    await db.transaction(async (trx) => {
      const alerts: NewAlert[] = [];
      for (const budgetId of [...r.budgetIds].sort()) {
        const budget = await trx('budgets').where({ id: budgetId }).first();
        if (!budget) throw new NotFoundError(`budget ${budgetId} not found`);
        const start = windowStart(budget.period, r.now);
        const converted = r.perBudget?.[budgetId];
        const amount = toNumeric(converted ? converted.amount : r.amount);
        await trx('budget_windows').insert({ budget_id: budgetId, window_start: start }).onConflict(['budget_id', 'window_start']).ignore();
        const updated = await trx.raw(
          `UPDATE budget_windows w SET reserved = w.reserved + ?::numeric
             FROM budgets b
            WHERE w.budget_id = b.id AND w.budget_id = ? AND w.window_start = ?
              AND w.spent + w.reserved + ?::numeric <= b.limit_amount
            RETURNING w.spent, w.reserved`,
          [amount, budgetId, start, amount],
        );
        if (updated.rows.length === 0) {
          const w = await trx('budget_windows').where({ budget_id: budgetId, window_start: start }).first();
          const limit = fromNumeric(budget.limit_amount);
          const left = limit - fromNumeric(w?.spent) - fromNumeric(w?.reserved);
          throw new Refused({ ok: false, budgetId, remaining: left > 0n ? left : 0n, limit });
        }
        alerts.push(...thresholdAlerts(budget, start, fromNumeric(updated.rows[0].spent), fromNumeric(updated.rows[0].reserved)));
        await trx('reservations').insert({
          id: r.key,
          budget_id: budgetId,
          window_start: start,
          project_id: r.projectId,
          machine_id: r.machineId ?? null,
          amount,
          status: 'reserved',
          ...(converted
            ? {
                source_amount: toNumeric(r.amount),
                source_currency: r.currency ?? null,
                fx_rate: converted.fx?.rate ?? null,
                fx_source: converted.fx?.source ?? null,
                fx_as_of: converted.fx?.asOf ?? null,
              }
            : {}),
        });
      }
      // After every budget row is locked (in id order): the alerts' unique keys wait on nothing else.
      const alertEvents = await recordAlerts(trx, alerts);
      await appendEvents(trx, [
        {
          kind: 'budget.reserved',
          projectId: r.projectId,
          subjectId: r.key,
          data: {
            budgetIds: [...r.budgetIds].sort(),
            ...(r.machineId ? { machineId: r.machineId } : {}),
            ...(r.currency ? { amount: formatAmount(r.amount, r.currency), currency: r.currency } : {}),
          },
        },
        ...alertEvents,
      ]);
    });
  } catch (e) {
    if (e instanceof Refused) {
      // A concurrent call with the same key may have won while this one waited on the budget
      // row, and its amount is what made this one not fit: that reservation is this one.
      const won = await reservedAmount();
      if (won !== null) return { ok: true, reservationId: r.key, amount: won };
      return e.outcome;
    }
    if (isUniqueViolation(e)) return reserve(db, r); // a concurrent call with the same key won
    throw e;
  }
  return { ok: true, reservationId: r.key, amount: r.amount };
}

/**
 * Settles a reservation to `actual` (capped at the reserved amount) on each of its budgets.
 * Returns what was charged; a second call returns the first call's figure and changes nothing.
 */
export async function settle(db: Db, key: string, actual: bigint): Promise<bigint> {
  return closeReservation(db, key, 'settled', actual);
}

/** Gives a reservation back untouched (the spend did not happen). Idempotent. */
export async function release(db: Db, key: string): Promise<void> {
  await closeReservation(db, key, 'released', 0n);
}

/**
 * Settles a reservation held on budgets of different currencies: each budget is charged its own
 * figure from `byBudget` (capped at what it holds). Returns what each budget was charged.
 */
export async function settleEach(db: Db, key: string, byBudget: Record<string, bigint>): Promise<Record<string, bigint>> {
  const charged: Record<string, bigint> = {};
  await closeReservation(
    db,
    key,
    'settled',
    (budgetId) => byBudget[budgetId] ?? 0n,
    (budgetId, c) => (charged[budgetId] = c),
  );
  return charged;
}

/** The budgets a reservation holds money on, with the currency of each. */
export async function reservationBudgets(
  db: Db,
  key: string,
): Promise<Array<{ budgetId: string; scopeType: string; currency: CurrencyCode; amount: bigint; status: string }>> {
  const rows = await db('reservations as r')
    .join('budgets as b', 'b.id', 'r.budget_id')
    .where('r.id', key)
    .orderBy('r.budget_id')
    .select('r.budget_id', 'b.scope_type', 'b.currency', 'r.amount', 'r.status');
  return rows.map((x) => ({ budgetId: x.budget_id, scopeType: x.scope_type, currency: x.currency, amount: fromNumeric(x.amount), status: x.status }));
}

async function closeReservation(
  db: Db,
  key: string,
  status: 'settled' | 'released',
  actual: bigint | ((budgetId: string) => bigint),
  onCharged?: (budgetId: string, charged: bigint) => void,
): Promise<bigint> {
  const actualFor = (budgetId: string) => (typeof actual === 'bigint' ? actual : actual(budgetId));
  return db.transaction(async (trx) => {
    const rows = await trx('reservations').where({ id: key }).orderBy('budget_id').forUpdate();
    if (rows.length === 0) throw new NotFoundError(`reservation ${key} not found`);
    let charged = 0n;
    const closed: Array<{ budgetId: string; chargedUnits: string }> = [];
    for (const row of rows) {
      if (row.status !== 'reserved') {
        charged = fromNumeric(row.settled_amount);
        onCharged?.(row.budget_id, charged);
        continue;
      }
      const reserved = fromNumeric(row.amount);
      const charge = status === 'settled' ? minUnits(actualFor(row.budget_id), reserved) : 0n;
      await trx.raw(
        `UPDATE budget_windows SET reserved = reserved - ?::numeric, spent = spent + ?::numeric
          WHERE budget_id = ? AND window_start = ?`,
        [toNumeric(reserved), toNumeric(charge), row.budget_id, row.window_start],
      );
      await trx('reservations')
        .where({ id: key, budget_id: row.budget_id })
        .update({ status, settled_amount: toNumeric(charge), closed_at: trx.fn.now() });
      charged = charge;
      onCharged?.(row.budget_id, charge);
      closed.push({ budgetId: row.budget_id, chargedUnits: toNumeric(charge) });
    }
    if (closed.length) {
      await appendEvent(trx, { kind: `budget.${status}`, projectId: rows[0].project_id, subjectId: key, data: { budgets: closed } });
    }
    return charged;
  });
}

export async function reservationStatus(db: Db, key: string): Promise<'reserved' | 'settled' | 'released' | null> {
  const row = await db('reservations').where({ id: key }).first('status');
  return row?.status ?? null;
}

/** The keys of a machine's extension reservations (`machine:<id>:ext:<n>`), in the order they were made. */
export async function machineExtensionKeys(db: Db, machineId: string): Promise<string[]> {
  const rows = await db('reservations').where('id', 'like', `machine:${machineId}:ext:%`).distinct('id');
  return rows.map((r) => r.id as string).sort((a, b) => Number(a.split(':').pop()) - Number(b.split(':').pop()));
}

/** The money held under reservation `key`, in the requester's currency (its rows per budget carry the source amount). */
export async function reservedInRequesterCurrency(db: Db, key: string): Promise<bigint> {
  const rows = await db('reservations').where({ id: key }).select('amount', 'source_amount');
  const row = rows.find((x) => x.source_amount === null) ?? rows[0];
  return fromNumeric(row?.source_amount ?? row?.amount);
}

/** Which of the given reservation keys hold money on `budgetId`. */
export async function keysReservedOnBudget(db: Db, keys: string[], budgetId: string): Promise<Set<string>> {
  if (!keys.length) return new Set();
  const rows = await db('reservations').whereIn('id', keys).where({ budget_id: budgetId }).select('id');
  return new Set(rows.map((r) => String(r.id)));
}

/** A project's budgets in one query: its own and its per-machine-type ones (scope ids `<projectId>:<type>`). */
export async function projectBudgets(db: Db, projectId: string): Promise<Budget[]> {
  const rows = await db('budgets')
    .where((q) =>
      q
        .where({ scope_type: PROJECT_SCOPE, scope_id: projectId })
        .orWhere((w) => w.where({ scope_type: MACHINE_TYPE_SCOPE }).where('scope_id', 'like', `${projectId.replace(/[\\%_]/g, '\\$&')}:%`)),
    )
    .orderBy([{ column: 'scope_type', order: 'desc' }, { column: 'scope_id' }]);
  return rows.map(toBudget);
}

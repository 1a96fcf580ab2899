import type { Db } from './db.js';

/**
 * Aggregates read at each Prometheus scrape (GET /metrics). Amounts stay the database's exact
 * decimal text here; only the exposition turns them into floats.
 */
export async function machinesByStatus(db: Db): Promise<Array<{ status: string; count: number }>> {
  const rows = (await db('machines').select('status').count({ n: '*' }).groupBy('status')) as Array<Record<string, unknown>>;
  return rows.map((r) => ({ status: String(r.status), count: Number(r.n) }));
}

/**
 * Reservations still holding money, by the currency and scope of the budget they hold it on
 * (a machine under a cost center holds on the project's budget and on the cost center's).
 */
export async function openReservations(db: Db): Promise<Array<{ currency: string; scope: string; count: number; amount: string }>> {
  const rows = (await db('reservations as r')
    .join('budgets as b', 'b.id', 'r.budget_id')
    .where('r.status', 'reserved')
    .select('b.currency', 'b.scope_type')
    .count({ n: '*' })
    .sum({ amount: 'r.amount' })
    .groupBy('b.currency', 'b.scope_type')) as Array<Record<string, unknown>>;
  return rows.map((r) => ({ currency: String(r.currency), scope: String(r.scope_type), count: Number(r.n), amount: String(r.amount ?? '0') }));
}

/** Everything ever spent, by the currency it was charged in (the cost log only grows). */
export async function spendByCurrency(db: Db): Promise<Array<{ currency: string; amount: string }>> {
  const rows = (await db('cost_events').select('currency').sum({ amount: 'amount' }).groupBy('currency')) as Array<Record<string, unknown>>;
  return rows.map((r) => ({ currency: String(r.currency), amount: String(r.amount ?? '0') }));
}

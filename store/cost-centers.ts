import type { Knex } from 'knex';
import { type CurrencyCode, fromNumeric } from '../domain/money.js';
import type { Db } from './db.js';
import { keyOfRow, keyset, type CreatedKey, type KeysetPage } from './paging.js';

import type { CostCenterKind } from '../domain/cost-centers.js';

/** Where spending is allocated: a kind of work, grouped by department. */
export interface CostCenter {
  id: string;
  name: string;
  kind: CostCenterKind;
  department: string;
  createdBy: string;
  createdAt: string;
}

function toCostCenter(r: Record<string, any>): CostCenter {
  return { id: r.id, name: r.name, kind: r.kind, department: r.department, createdBy: r.created_by, createdAt: new Date(r.created_at).toISOString() };
}

/** Inserts a cost center; returns the existing one when the id is taken (a repeated request). */
export async function insertCostCenter(db: Db | Knex.Transaction, c: Omit<CostCenter, 'createdAt'>): Promise<CostCenter> {
  await db('cost_centers').insert({ id: c.id, name: c.name, kind: c.kind, department: c.department, created_by: c.createdBy }).onConflict('id').ignore();
  return toCostCenter(await db('cost_centers').where({ id: c.id }).first());
}

export async function getCostCenter(db: Db, id: string): Promise<CostCenter | null> {
  const row = await db('cost_centers').where({ id }).first();
  return row ? toCostCenter(row) : null;
}

export async function findCostCenterByName(db: Db, name: string): Promise<CostCenter | null> {
  const row = await db('cost_centers').where({ name }).first();
  return row ? toCostCenter(row) : null;
}

export async function listCostCenters(db: Db, f: { department?: string } = {}): Promise<CostCenter[]> {
  const q = db('cost_centers').orderBy('created_at', 'asc');
  if (f.department) q.where({ department: f.department });
  return (await q).map(toCostCenter);
}

/** Cost centers oldest first, one page; `ids` narrows to the ones a project-bound key may see. */
export async function pageCostCenters(
  db: Db,
  f: KeysetPage & { department?: string; ids?: readonly string[] | null },
): Promise<Array<{ item: CostCenter; key: CreatedKey }>> {
  const q = keyset(db('cost_centers'), 'cost_centers', f);
  if (f.department) q.where('cost_centers.department', f.department);
  if (f.ids) q.whereIn('cost_centers.id', f.ids);
  return (await q).map((r: any) => ({ item: toCostCenter(r), key: keyOfRow(r) }));
}

/** One line of a roll-up: what was spent, per category and per the currency it was charged in. */
export interface CostTotal {
  costCenterId: string | null;
  category: string;
  currency: CurrencyCode;
  amount: bigint;
}

/**
 * Totals of cost events by cost center, category and project currency. Amounts of different
 * currencies are never added together here: converting is the reader's choice, with a rate.
 */
export async function costCenterTotals(db: Db, f: { costCenterId?: string; department?: string }): Promise<CostTotal[]> {
  const q = db('cost_events as e')
    .select('e.cost_center_id', 'e.category', 'e.project_currency')
    .sum({ total: 'e.project_amount' })
    .groupBy('e.cost_center_id', 'e.category', 'e.project_currency')
    .orderBy(['e.cost_center_id', 'e.category', 'e.project_currency']);
  if (f.costCenterId) q.where('e.cost_center_id', f.costCenterId);
  if (f.department) q.join('cost_centers as c', 'c.id', 'e.cost_center_id').where('c.department', f.department);
  return ((await q) as Array<Record<string, string>>).map((r) => ({
    costCenterId: r.cost_center_id ?? null,
    category: r.category!,
    currency: r.project_currency as CurrencyCode,
    amount: fromNumeric(r.total),
  }));
}

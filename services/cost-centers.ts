/** Use cases of cost centers: create one, and set its budget or its department's. */
import { z } from 'zod';
import { COST_CENTER_SCOPE, DEPARTMENT_SCOPE } from '../domain/cost-centers.js';
import { ConflictError, NotFoundError } from '../domain/errors.js';
import { appendAudit } from '../store/audit.js';
import { budgetStatus, findBudget, setBudget, type BudgetStatus } from '../store/budgets.js';
import { findCostCenterByName, getCostCenter, insertCostCenter, listCostCenters, type CostCenter } from '../store/cost-centers.js';
import { idFromIdempotencyKey } from '../store/ids.js';
import { actorOfCaller, type Caller, type ServiceContext } from './context.js';
import { notFoundMessage, parseAmountField } from './inputs.js';
import { createCostCenterBody, putBudgetBody, rollupCurrencyQuery } from './schemas.js';
import { convert } from '../domain/fx.js';
import type { CurrencyCode } from '../domain/money.js';
import { createFxService } from '../fx/service.js';

/** The cost center, or NotFoundError. */
export async function requireCostCenter(ctx: ServiceContext, id: string): Promise<CostCenter> {
  const c = await getCostCenter(ctx.db, id);
  if (!c) throw new NotFoundError(notFoundMessage('cost center', id));
  return c;
}

/** A department's cost centers; a department is known by having at least one (else NotFoundError with `missing`). */
export async function requireDepartment(ctx: ServiceContext, name: string, missing = `department ${name} has no cost centers`): Promise<CostCenter[]> {
  const centers = await listCostCenters(ctx.db, { department: name });
  if (centers.length === 0) throw new NotFoundError(missing);
  return centers;
}

/** The budget of a scope (a cost center, a department) with what is spent and reserved now, or null when it has none. */
export async function scopeBudget(ctx: ServiceContext, scopeType: string, scopeId: string): Promise<BudgetStatus | null> {
  const b = await findBudget(ctx.db, scopeType, scopeId);
  return b ? budgetStatus(ctx.db, b, new Date()) : null;
}

/** Creates a cost center; names are unique. A repeat with the same idempotency key returns the same one. */
export async function createCostCenter(ctx: ServiceContext, caller: Caller, input: z.input<typeof createCostCenterBody>): Promise<CostCenter> {
  const body = createCostCenterBody.parse(input);
  const id = idFromIdempotencyKey('cost-center', caller.principal.apiKeyId, caller.idempotencyKey);
  const clash = await findCostCenterByName(ctx.db, body.name);
  if (clash && clash.id !== id)
    throw new ConflictError(`name: a cost center named "${body.name}" exists (${clash.id})`, 'name_taken', { field: 'name', id: clash.id });
  const center = await insertCostCenter(ctx.db, { id, ...body, createdBy: caller.principal.userId });
  await appendAudit(ctx.db, {
    actor: actorOfCaller(caller),
    action: 'cost_center.created',
    subjectType: 'cost-center',
    subjectId: id,
    details: body,
    idempotencyKey: `cost-center:${id}:created`,
  });
  return center;
}

/** Stores a deployment-level budget (a cost center's, a department's) with its audit record. */
async function saveScopeBudget(
  ctx: ServiceContext,
  caller: Caller,
  scopeType: string,
  scopeId: string,
  input: z.input<typeof putBudgetBody>,
): Promise<BudgetStatus> {
  const b = putBudgetBody.parse(input);
  const limit = parseAmountField('amount', b.amount, b.currency);
  const saved = await ctx.db.transaction(async (trx) => {
    // Alert thresholds as on a project's budget; left as they are when not given.
    const s = await setBudget(trx, {
      scopeType,
      scopeId,
      period: b.period,
      limit,
      currency: b.currency,
      ...(b.alertPercents ? { alertPercents: b.alertPercents } : {}),
    });
    await appendAudit(trx, { actor: actorOfCaller(caller), action: 'budget.set', subjectType: scopeType, subjectId: scopeId, details: b });
    return s;
  });
  return budgetStatus(ctx.db, saved, new Date());
}

/** Sets the cost center's budget: every spend allocated to it must fit. */
export async function setCostCenterBudget(ctx: ServiceContext, caller: Caller, id: string, input: z.input<typeof putBudgetBody>): Promise<BudgetStatus> {
  const c = await requireCostCenter(ctx, id);
  return saveScopeBudget(ctx, caller, COST_CENTER_SCOPE, c.id, input);
}

/** Sets the department's budget: every spend allocated to one of its cost centers must fit. */
export async function setDepartmentBudget(ctx: ServiceContext, caller: Caller, name: string, input: z.input<typeof putBudgetBody>): Promise<BudgetStatus> {
  await requireDepartment(ctx, name, `department ${name} has no cost centers; create one with POST /v1/cost-centers first`);
  return saveScopeBudget(ctx, caller, DEPARTMENT_SCOPE, name, input);
}

export interface GrandTotal {
  currency: CurrencyCode;
  /** The sum of every currency's total converted at current rates (half-even at the ledger unit, as settlements are). */
  amount: bigint;
  /** Each currency's total and what it became, with the rate used. */
  conversions: Array<{ from: CurrencyCode; amount: bigint; converted: bigint; rate: string; source: string; asOf: string }>;
}

/**
 * A roll-up's totals (one per currency, never added across currencies by the ledger) added up in
 * the viewer's currency (`?currency=`, USD unless asked) at current rates, each conversion shown.
 * Without a usable rate: FxUnavailableError (503), never a guess.
 */
export async function grandTotal(ctx: ServiceContext, totals: Array<{ currency: CurrencyCode; amount: bigint }>, query: unknown): Promise<GrandTotal> {
  const { currency } = rollupCurrencyQuery.parse(query);
  const byCurrency = new Map<CurrencyCode, bigint>();
  for (const t of totals) byCurrency.set(t.currency, (byCurrency.get(t.currency) ?? 0n) + t.amount);
  const fx = ctx.fx ?? createFxService(ctx);
  const conversions: GrandTotal['conversions'] = [];
  let amount = 0n;
  for (const [from, units] of [...byCurrency].sort(([a], [b]) => a.localeCompare(b))) {
    const rate = await fx.rate(from, currency);
    const converted = from === currency ? units : convert(units, rate.ratio, currency, 'half-even', 'ledger');
    amount += converted;
    conversions.push({ from, amount: units, converted, rate: rate.rate, source: rate.source, asOf: rate.asOf });
  }
  return { currency, amount, conversions };
}

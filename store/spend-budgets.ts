import { allocatedCostCenterId, spendScopes, PROJECT_SCOPE, type SpendScope } from '../domain/budget.js';
import type { MachineTypeId } from '../domain/machine-types.js';
import { machineTypeSpec } from '../domain/machine-types.js';
import { parseAmount, toNumeric } from '../domain/money.js';
import { findBudget, type Budget } from './budgets.js';
import { getCostCenter } from './cost-centers.js';
import type { Db } from './db.js';
import { getMachine } from './machines.js';
import { ensureBalanceAccount } from './payments.js';
import type { Project } from './projects.js';

/** A budget a spend falls under, with how a refusal names it. */
export interface SpendBudget {
  budget: Budget;
  label: string;
}

/**
 * The budgets of a scope list (domain/budget.ts `spendScopes`), in its order: each looked up, a
 * scope's default created on first use (once, whoever races), a scope without one left out.
 */
export async function budgetsOfScopes(db: Db, scopes: SpendScope[]): Promise<SpendBudget[]> {
  const out: SpendBudget[] = [];
  for (const s of scopes) {
    let budget = await findBudget(db, s.scopeType, s.scopeId);
    if (!budget && s.default) {
      await db('budgets')
        .insert({
          id: `budget-${s.scopeId}`,
          scope_type: s.scopeType,
          scope_id: s.scopeId,
          period: s.default.period,
          limit_amount: toNumeric(parseAmount(s.default.limit, s.default.currency)),
          currency: s.default.currency,
        })
        .onConflict(['scope_type', 'scope_id'])
        .ignore();
      budget = await findBudget(db, s.scopeType, s.scopeId);
    }
    if (budget) out.push({ budget, label: s.label(budget.period) });
  }
  return out;
}

/** The cost center a machine's spend is allocated to (domain/budget.ts `allocatedCostCenterId`). */
export async function machineCostCenterId(db: Db, machineId: string, project: Project): Promise<string | null> {
  return allocatedCostCenterId(await getMachine(db, machineId), project);
}

/**
 * The budgets a machine's spend falls under (the policy is domain/budget.ts `spendScopes`): its
 * project's, its type's, and those of the cost center it is allocated to (its own, else its
 * project's) and that center's department, and a prepaid project's balance. `project` is null
 * when the project has no budget.
 */
export async function machineSpendBudgets(
  db: Db,
  m: { project: Project; machineId: string; type: MachineTypeId | null },
): Promise<{ project: Budget | null; budgets: SpendBudget[] }> {
  const costCenterId = await machineCostCenterId(db, m.machineId, m.project);
  const costCenter = costCenterId ? await getCostCenter(db, costCenterId) : null;
  const prepaid = m.project.billing === 'prepaid';
  // A prepaid project without an account yet (made prepaid by hand) has an empty one: nothing fits.
  if (prepaid) await ensureBalanceAccount(db, m.project.id, m.project.currency);
  const budgets = await budgetsOfScopes(
    db,
    spendScopes({
      projectId: m.project.id,
      type: m.type,
      typeDailyBudget: m.type ? machineTypeSpec(m.type).dailyBudget : null,
      costCenter,
      prepaid,
    }),
  );
  return { project: budgets.find((b) => b.budget.scopeType === PROJECT_SCOPE)?.budget ?? null, budgets };
}

import { COST_CENTER_SCOPE, DEPARTMENT_SCOPE } from './cost-centers.js';

/** Budget periods and their windows. All windows are in UTC so every process agrees on them. */
export const BUDGET_PERIODS = ['daily', 'weekly', 'monthly', 'total'] as const;
export type BudgetPeriod = (typeof BUDGET_PERIODS)[number];

/** The start of the window `now` falls in. `total` has one window that starts at the epoch. */
export function windowStart(period: BudgetPeriod, now: Date): Date {
  const y = now.getUTCFullYear();
  const m = now.getUTCMonth();
  const d = now.getUTCDate();
  switch (period) {
    case 'daily':
      return new Date(Date.UTC(y, m, d));
    case 'weekly': {
      // Weeks start on Monday (ISO 8601).
      const sinceMonday = (now.getUTCDay() + 6) % 7;
      return new Date(Date.UTC(y, m, d - sinceMonday));
    }
    case 'monthly':
      return new Date(Date.UTC(y, m, 1));
    case 'total':
      return new Date(0);
  }
}

/** The first instant after the window that starts at `start`, or null for `total`. */
export function windowEnd(period: BudgetPeriod, start: Date): Date | null {
  const y = start.getUTCFullYear();
  const m = start.getUTCMonth();
  const d = start.getUTCDate();
  switch (period) {
    case 'daily':
      return new Date(Date.UTC(y, m, d + 1));
    case 'weekly':
      return new Date(Date.UTC(y, m, d + 7));
    case 'monthly':
      return new Date(Date.UTC(y, m + 1, 1));
    case 'total':
      return null;
  }
}

/** The scope of a project's own budget (its id is the project's id). */
export const PROJECT_SCOPE = 'project';
/** The scope of a project's daily budget for one machine type (its id is `<projectId>:<type>`). */
export const MACHINE_TYPE_SCOPE = 'machine-type';
/**
 * A project's prepaid balance (its id is the project's id): a ledger account of period `total`
 * whose limit is everything credited to it (top-ups) and whose spent is everything drawn from it.
 * Only a prepaid project's spend is held on it (domain/budget.ts `spendScopes`).
 */
export const BALANCE_SCOPE = 'balance';
/** The id of a project's balance account. */
export const balanceAccountId = (projectId: string) => `balance-${projectId}`;
/** How a project pays: `postpaid` spend is capped by its budgets only; `prepaid` spend must also fit its balance. */
export const BILLING_MODES = ['prepaid', 'postpaid'] as const;
export type BillingMode = (typeof BILLING_MODES)[number];
/** A cost center's budget (its id is the center's id); a department's (its id is the department's name). */
export { COST_CENTER_SCOPE, DEPARTMENT_SCOPE } from './cost-centers.js';

export const machineTypeScopeId = (projectId: string, type: string) => `${projectId}:${type}`;

/** The project a budget belongs to: a project's own and per-type budgets are the project's; cost centers' and departments' the deployment's (null). */
export function budgetProjectId(scopeType: string, scopeId: string): string | null {
  return scopeType === PROJECT_SCOPE || scopeType === BALANCE_SCOPE ? scopeId : scopeType === MACHINE_TYPE_SCOPE ? scopeId.split(':')[0]! : null;
}

/** The cost center a machine's spend is allocated to: the machine's own, else its project's. */
export const allocatedCostCenterId = (machine: { costCenterId: string | null } | null, project: { costCenterId: string | null }): string | null =>
  machine?.costCenterId ?? project.costCenterId;

/** One budget a spend must fit: where it is found, how a refusal names it, and what it is when never set. */
export interface SpendScope {
  scopeType: string;
  scopeId: string;
  /** The budget as a refusal names it, given its period: "daily budget", "cost center Ops monthly budget", … */
  label: (period: BudgetPeriod) => string;
  /** The budget this scope has until one is set; without it a scope with no budget limits nothing. */
  default?: { period: BudgetPeriod; limit: string; currency: 'USD' };
}

/**
 * Budget policy, the one place it is decided: the budgets a machine's spend falls under, in the
 * order a refusal names them — its project's (required), its type's per project and day (the
 * type's default until the project sets one), its cost center's, that center's department's, and,
 * for a prepaid project, its balance. A spend is reserved on all of them at once or on none
 * (store/budgets.ts `reserve`): it must fit the period's remaining limits and the balance not yet
 * held by other reservations.
 */
export function spendScopes(spend: {
  projectId: string;
  /** The machine type; null for a spend no type budget applies to (shell machines). */
  type: string | null;
  /** Its daily default, from the type's spec (null: none). */
  typeDailyBudget?: string | null;
  /** The cost center the spend is allocated to (the machine's own, else its project's). */
  costCenter: { id: string; name: string; department: string } | null;
  /** The project pays from a prepaid balance (its billing mode is `prepaid`). */
  prepaid?: boolean;
}): SpendScope[] {
  const { projectId, type, costCenter } = spend;
  return [
    { scopeType: PROJECT_SCOPE, scopeId: projectId, label: (period) => `${period} budget` },
    ...(type
      ? [
          {
            scopeType: MACHINE_TYPE_SCOPE,
            scopeId: machineTypeScopeId(projectId, type),
            label: () => `${type} daily budget`,
            ...(spend.typeDailyBudget ? { default: { period: 'daily' as const, limit: spend.typeDailyBudget, currency: 'USD' as const } } : {}),
          },
        ]
      : []),
    ...(costCenter
      ? [
          { scopeType: COST_CENTER_SCOPE, scopeId: costCenter.id, label: (period: BudgetPeriod) => `cost center ${costCenter.name} ${period} budget` },
          {
            scopeType: DEPARTMENT_SCOPE,
            scopeId: costCenter.department,
            label: (period: BudgetPeriod) => `department ${costCenter.department} ${period} budget`,
          },
        ]
      : []),
    ...(spend.prepaid ? [{ scopeType: BALANCE_SCOPE, scopeId: projectId, label: () => 'prepaid balance' }] : []),
  ];
}

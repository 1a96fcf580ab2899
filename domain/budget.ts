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

export type BudgetScope = 'project';

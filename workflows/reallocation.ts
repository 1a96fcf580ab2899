import { proxyActivities, upsertMemo, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import { SEARCH_ATTRIBUTES } from '../domain/search-attributes.js';
import type { Activities } from '../activities/index.js';
import { shortActivity } from './activity-options.js';

export interface BudgetReallocationInput {
  /** What started it (the schedule, a test, an operator): shown in the memo. */
  trigger?: string;
}

export interface BudgetReallocationResult {
  scopes: number;
  moves: number;
  applied: number;
  previewed: number;
}

const acts = proxyActivities<Activities>(shortActivity('10 minutes'));

/**
 * Moves budget between the projects of every cost center whose reallocation is enabled (README
 * "Reallocation"). Started daily by the `budget-reallocation` Temporal Schedule
 * (workers/schedules.ts). The activity names each run after this workflow's id, so a retried
 * activity applies no move twice. AutoVibeStatus goes running → completed; the memo has the counts.
 */
export async function budgetReallocation(input: BudgetReallocationInput = {}): Promise<BudgetReallocationResult> {
  const labelled = workflowInfo().typedSearchAttributes.get(SEARCH_ATTRIBUTES.status) !== undefined;
  const result = await acts.reallocateBudgets({ workflowId: workflowInfo().workflowId });
  upsertMemo({ trigger: input.trigger ?? 'schedule', ...result });
  if (labelled) upsertSearchAttributes([{ key: SEARCH_ATTRIBUTES.status, value: 'completed' }]);
  return result;
}

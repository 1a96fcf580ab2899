import { runScheduledReallocations, type ScheduledReallocationResult } from '../services/reallocation.js';
import type { ActivityDeps } from './deps.js';

/** The budget-reallocation workflow's activity: one run per enabled cost center, named after the workflow (idempotent). */
export function createReallocationActivities(deps: ActivityDeps) {
  return {
    async reallocateBudgets(input: { workflowId: string }): Promise<ScheduledReallocationResult> {
      return runScheduledReallocations(deps, { workflowId: input.workflowId });
    },
  };
}

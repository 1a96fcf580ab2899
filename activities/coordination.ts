import { ApplicationFailure } from '@temporalio/common';
import type { ResourceRequest } from '../domain/scheduling.js';
import { signalCoordinator } from '../services/scheduling.js';
import { budgetStatus, findBudget, keysReservedOnBudget } from '../store/budgets.js';
import { getProject } from '../store/projects.js';
import type { ActivityDeps } from './deps.js';

/**
 * The requester's side of the project coordinator (workflows/project.ts): requests reach it by
 * signal-with-start, so the coordinator starts on first use and a retried request changes
 * nothing (the coordinator deduplicates by request id and resource).
 */
export function createCoordinationActivities(deps: ActivityDeps) {
  const { db } = deps;
  return {
    async requestResource(input: { projectId: string; request: Omit<ResourceRequest, 'seq'> }): Promise<void> {
      await signalCoordinator(deps, input.projectId, 'acquire', input.request);
    },

    async releaseResources(input: { projectId: string; requestId: string }): Promise<void> {
      await signalCoordinator(deps, input.projectId, 'release', { requestId: input.requestId });
    },

    /**
     * The project's limits as the coordinator sees them. `remaining` is what is left of the
     * budget for machines not yet granted: the budget's remaining amount, less the money limits
     * of granted machines that have not reserved theirs yet.
     */
    async projectSchedulingLimits(input: { projectId: string; slotHolds?: Array<{ requestId: string; cost: string }> }): Promise<{
      maxConcurrentMachines: number;
      greedinessPermille: number;
      capacities: Record<string, number>;
      remaining: string | null;
    }> {
      const project = await getProject(db, input.projectId);
      if (!project) throw ApplicationFailure.nonRetryable(`project ${input.projectId} not found`, 'NotFoundError');
      const budget = await findBudget(db, 'project', project.id);
      let remaining: bigint | null = null;
      if (budget) {
        remaining = (await budgetStatus(db, budget, new Date())).remaining;
        const holds = input.slotHolds ?? [];
        if (holds.length) {
          const reserved = await keysReservedOnBudget(
            db,
            holds.map((h) => `machine:${h.requestId}`),
            budget.id,
          );
          const reservedIds = new Set([...reserved].map((id) => id.slice('machine:'.length)));
          for (const h of holds) if (!reservedIds.has(h.requestId)) remaining -= BigInt(h.cost);
          if (remaining < 0n) remaining = 0n;
        }
      }
      return {
        maxConcurrentMachines: project.maxConcurrentMachines,
        greedinessPermille: Math.round(project.greediness * 1000),
        capacities: project.resources,
        remaining: remaining === null ? null : remaining.toString(),
      };
    },
  };
}

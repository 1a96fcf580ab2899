import {
  allHandlersFinished,
  condition,
  continueAsNew,
  defineQuery,
  defineSignal,
  getExternalWorkflowHandle,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import { allocate, MACHINE_SLOT, waitForCycles, type Hold, type ResourceRequest } from '../domain/scheduling.js';
import { resourceGrantedSignal } from './coordination.js';
import { NOT_FOUND, shortActivity, shortLocalActivity } from './activity-options.js';

/**
 * The long-lived `project` workflow: one per project (id `coordinatorWorkflowId(projectId)`),
 * started on first use by signal-with-start. It hands out machine slots and named resources to
 * the project's objectives and pipeline steps in rank order (domain/scheduling.ts), within the
 * concurrent-machine limit and the budget. It continues as new to keep its history short.
 */
export interface ProjectCoordinatorState {
  pending: ResourceRequest[];
  holds: Hold[];
  seq: number;
  /** Why each pending request waits (by request id). */
  waiting: Record<string, string>;
  /** Cycles of requests waiting on each other (should stay empty: acquisition is ordered). */
  deadlocks: string[][];
  granted: number;
}

export interface ProjectCoordinatorInput {
  projectId: string;
  state?: ProjectCoordinatorState;
}

export type AcquireRequest = Omit<ResourceRequest, 'seq'>;

export const acquireSignal = defineSignal<[AcquireRequest]>('acquire');
/** Releases what a request holds and withdraws what it still waits for. */
export const releaseSignal = defineSignal<[{ requestId: string }]>('release');
/** Settings or budget changed: look again. */
export const rescheduleSignal = defineSignal<[{ by: string }]>('reschedule');
/** New priority for the requests of one piece of work (matched by label, e.g. "objective o-1"). */
export const reprioritizeSignal = defineSignal<[{ label: string; priority: number }]>('reprioritize');
export const coordinatorStateQuery = defineQuery<ProjectCoordinatorState>('state');

const acts = proxyActivities<Activities>(shortActivity('30 seconds', [NOT_FOUND]));
const local = proxyLocalActivities<Activities>(shortLocalActivity('30 seconds', [NOT_FOUND]));
/** The limits are read by a local activity, in the coordinator's own workflow task (absent from older histories). */
const LOCAL_LIMITS = 'coordinator-local-limits';

/** Signals handled before the history is cut with continue-as-new. */
const EVENTS_PER_RUN = 500;
/** How often requests waiting for budget look at the budget again. */
const BUDGET_RECHECK = '30 seconds';

export async function project(input: ProjectCoordinatorInput): Promise<void> {
  const state: ProjectCoordinatorState = input.state ?? { pending: [], holds: [], seq: 0, waiting: {}, deadlocks: [], granted: 0 };
  let dirty = true;
  let handled = 0;
  const regrant: Array<{ requestId: string; requester: string; resource: string }> = [];
  setHandler(coordinatorStateQuery, () => state);
  const reads = patched(LOCAL_LIMITS) ? local : acts;
  setHandler(acquireSignal, (r) => {
    handled++;
    const held = state.holds.find((h) => h.requestId === r.requestId && h.resource === r.resource);
    // A retried request: tell the requester again.
    if (held) regrant.push({ requestId: r.requestId, requester: r.requester, resource: r.resource });
    else if (!state.pending.some((p) => p.requestId === r.requestId && p.resource === r.resource)) state.pending.push({ ...r, seq: ++state.seq });
    dirty = true;
  });
  setHandler(releaseSignal, ({ requestId }) => {
    handled++;
    state.holds = state.holds.filter((h) => h.requestId !== requestId);
    state.pending = state.pending.filter((p) => p.requestId !== requestId);
    delete state.waiting[requestId];
    dirty = true;
  });
  setHandler(rescheduleSignal, () => {
    handled++;
    dirty = true;
  });
  setHandler(reprioritizeSignal, ({ label, priority }) => {
    handled++;
    for (const p of state.pending) if (p.label === label) p.priority = priority;
    dirty = true;
  });

  for (;;) {
    if (!dirty && !regrant.length) {
      if (state.pending.length) await condition(() => dirty || regrant.length > 0, BUDGET_RECHECK);
      else await condition(() => dirty || regrant.length > 0 || handled >= EVENTS_PER_RUN);
    }
    dirty = false;
    while (regrant.length) {
      const g = regrant.shift()!;
      await tell(g);
    }
    if (state.pending.length) {
      const limits = await reads.projectSchedulingLimits({
        projectId: input.projectId,
        slotHolds: state.holds.filter((h) => h.resource === MACHINE_SLOT).map((h) => ({ requestId: h.requestId, cost: h.cost })),
      });
      const { grants, waiting } = allocate(state.pending, state.holds, {
        maxConcurrentMachines: limits.maxConcurrentMachines,
        greedinessPermille: limits.greedinessPermille,
        capacities: limits.capacities,
        remaining: limits.remaining === null ? null : BigInt(limits.remaining),
      });
      for (const g of grants) {
        const i = state.pending.findIndex((p) => p.requestId === g.requestId && p.resource === g.resource);
        const [r] = state.pending.splice(i, 1);
        state.holds.push({ requestId: r!.requestId, requester: r!.requester, resource: r!.resource, cost: r!.cost, label: r!.label });
        state.granted++;
      }
      state.waiting = waiting;
      state.deadlocks = waitForCycles(state.pending, state.holds, {
        maxConcurrentMachines: limits.maxConcurrentMachines,
        greedinessPermille: limits.greedinessPermille,
        capacities: limits.capacities,
        remaining: null,
      });
      for (const g of grants) await tell(g);
    }
    if (handled >= EVENTS_PER_RUN || workflowInfo().continueAsNewSuggested) {
      await condition(allHandlersFinished);
      await continueAsNew<typeof project>({ projectId: input.projectId, state });
    }
  }

  async function tell(g: { requestId: string; requester: string; resource: string }): Promise<void> {
    try {
      await getExternalWorkflowHandle(g.requester).signal(resourceGrantedSignal, { requestId: g.requestId, resource: g.resource });
    } catch {
      // The requester has ended: what it held is free again.
      state.holds = state.holds.filter((h) => h.requestId !== g.requestId);
      state.pending = state.pending.filter((p) => p.requestId !== g.requestId);
      dirty = true;
    }
  }
}

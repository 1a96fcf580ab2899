/**
 * How a project hands out what its work competes for: machine slots (at most
 * `maxConcurrentMachines` machines of its objectives and pipelines at once) and named resources
 * (e.g. a shared staging database) of fixed capacity.
 *
 * Requests are granted one resource at a time, in rank order:
 *   1. higher priority first,
 *   2. then the request whose work unblocks more dependent work (dependency depth),
 *   3. then the cheaper one (more work fits the budget that is left),
 *   4. then the older one.
 * A machine slot is granted only while the machine's money limit fits what is left of the
 * project's budget, and — when other machines already run — only while it is at most
 * `greediness` of what is left: a greedy project (1) spends everything left on parallel machines,
 * a cautious one (0.2) starts another machine only while it costs at most a fifth of what is left.
 *
 * Deadlock: a holder may wait for more resources, so requesters must acquire in
 * `orderedAcquisition` order (domain/dag.ts). `waitForCycles` finds any cycle of holders waiting
 * on each other, so one that slipped through is reported instead of hanging silently.
 *
 * Pure: no clock, no I/O; amounts are decimal strings of ledger units so the state survives JSON.
 */
import { findCycle } from './dag.js';

/** Workflow id of a project's coordinator (the `project` workflow). */
export function coordinatorWorkflowId(projectId: string): string {
  return `coordinator-${projectId}`;
}

/** The resource every machine of an objective or pipeline step holds while it runs. */
export const MACHINE_SLOT = 'slot:machines';
/** Resource key of a named resource. Sorts before MACHINE_SLOT, so machine slots are taken last. */
export const resourceKey = (name: string) => `lock:${name}`;

export interface ResourceRequest {
  requestId: string;
  /** Workflow id to tell when granted. */
  requester: string;
  resource: string;
  priority: number;
  /** How many other pieces of work wait, directly or not, on this one. */
  dependents: number;
  /** Money limit of the machine, in ledger units (decimal string); "0" for named resources. */
  cost: string;
  /** Arrival order, assigned by the coordinator. */
  seq: number;
  /** What the request is for, shown to users (e.g. "objective o-1", "pipeline p-1 step b"). */
  label: string;
}

export interface Hold {
  requestId: string;
  requester: string;
  resource: string;
  cost: string;
  label: string;
}

export interface SchedulingLimits {
  maxConcurrentMachines: number;
  /** 0..1000: the share (per mille) of the remaining budget one more concurrent machine may cost. */
  greedinessPermille: number;
  /** Capacity of each named resource (by name, without the `lock:` prefix); unknown names have 1. */
  capacities: Record<string, number>;
  /** What is left of the project's budget in ledger units, or null when it has no budget. */
  remaining: bigint | null;
}

export function capacityOf(resource: string, limits: SchedulingLimits): number {
  if (resource === MACHINE_SLOT) return limits.maxConcurrentMachines;
  const name = resource.startsWith('lock:') ? resource.slice(5) : resource;
  return limits.capacities[name] ?? 1;
}

/** Rank order: priority, dependents, cost, arrival. */
export function compareRequests(a: ResourceRequest, b: ResourceRequest): number {
  if (a.priority !== b.priority) return b.priority - a.priority;
  if (a.dependents !== b.dependents) return b.dependents - a.dependents;
  const ca = BigInt(a.cost);
  const cb = BigInt(b.cost);
  if (ca !== cb) return ca < cb ? -1 : 1;
  return a.seq - b.seq;
}

export interface Grant {
  requestId: string;
  requester: string;
  resource: string;
}

export interface Allocation {
  grants: Grant[];
  /** Why each request still waits (by requestId), for users. */
  waiting: Record<string, string>;
}

/**
 * Which pending requests to grant now, given what is held. A request waits behind a
 * higher-ranked request for the same resource (no overtaking), except that a machine slot
 * request too expensive for the budget does not block cheaper ones behind it.
 */
export function allocate(pending: readonly ResourceRequest[], holds: readonly Hold[], limits: SchedulingLimits): Allocation {
  const grants: Grant[] = [];
  const waiting: Record<string, string> = {};
  const used = new Map<string, number>();
  for (const h of holds) used.set(h.resource, (used.get(h.resource) ?? 0) + 1);
  let remaining = limits.remaining;
  const byResource = new Map<string, ResourceRequest[]>();
  for (const r of pending) {
    const list = byResource.get(r.resource) ?? [];
    list.push(r);
    byResource.set(r.resource, list);
  }
  for (const resource of [...byResource.keys()].sort()) {
    const queue = byResource.get(resource)!.sort(compareRequests);
    const capacity = capacityOf(resource, limits);
    for (const r of queue) {
      const inUse = used.get(resource) ?? 0;
      if (inUse >= capacity) {
        waiting[r.requestId] = resource === MACHINE_SLOT ? `all ${capacity} machine slots are in use` : `${resource.slice(5)} is held (capacity ${capacity})`;
        continue;
      }
      if (resource === MACHINE_SLOT && remaining !== null) {
        const cost = BigInt(r.cost);
        if (cost > remaining) {
          waiting[r.requestId] = 'its money limit does not fit what is left of the budget';
          continue;
        }
        if (inUse > 0 && cost * 1000n > remaining * BigInt(limits.greedinessPermille)) {
          waiting[r.requestId] = `another machine now would commit more than ${limits.greedinessPermille / 10}% of what is left of the budget (greediness)`;
          // Cheaper requests behind it may still fit.
          continue;
        }
        remaining -= cost;
      }
      used.set(resource, inUse + 1);
      grants.push({ requestId: r.requestId, requester: r.requester, resource });
    }
  }
  return { grants, waiting };
}

/**
 * Cycles of requests waiting on each other: request A waits for a resource whose every unit is
 * held by requests that themselves wait. Returned as closed paths of request ids.
 */
export function waitForCycles(pending: readonly ResourceRequest[], holds: readonly Hold[], limits: SchedulingLimits): string[][] {
  const holdersOf = new Map<string, string[]>();
  for (const h of holds) holdersOf.set(h.resource, [...(holdersOf.get(h.resource) ?? []), h.requestId]);
  const nodes = new Map<string, Set<string>>();
  for (const r of pending) {
    const holders = holdersOf.get(r.resource) ?? [];
    if (holders.length < capacityOf(r.resource, limits)) continue;
    const edges = nodes.get(r.requestId) ?? new Set<string>();
    for (const h of holders) if (h !== r.requestId) edges.add(h);
    nodes.set(r.requestId, edges);
  }
  const ids = new Set([...nodes.keys(), ...[...nodes.values()].flatMap((s) => [...s])]);
  const graph = [...ids].map((id) => ({ id, dependsOn: [...(nodes.get(id) ?? [])] }));
  const cycle = findCycle(graph);
  return cycle ? [cycle] : [];
}

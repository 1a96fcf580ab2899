/**
 * Task queue names (README "Task queues and workers"). The control queue carries every workflow
 * and the bookkeeping activities; each compute provider has a machine queue for the activities
 * that run sandboxes, and each worker host a queue of its own per provider, to which a machine's
 * activities go once it is provisioned there (its workspace lives on that host's disk).
 * Pure: the workflows derive the names from their own task queue.
 */
import type { ProviderId } from './machines.js';

export const WORKER_ROLES = ['control', 'machines'] as const;
export type WorkerRole = (typeof WORKER_ROLES)[number];

/** The queue of a provider's machines: `autovibe-machines-local` for control queue `autovibe-machines`. */
export function machineQueue(controlQueue: string, provider: ProviderId): string {
  return `${controlQueue}-${provider}`;
}

/** One host's queue for a provider's machines: `autovibe-machines-container@host1`. */
export function hostQueue(controlQueue: string, provider: ProviderId, host: string): string {
  return `${machineQueue(controlQueue, provider)}@${host}`;
}

/** Host names go into queue names: letters, digits, `.`, `_` and `-`. */
export const HOST_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

/** What a machine's provisioning tells the workflow: where the rest of the machine's activities go. */
export interface HostQueue {
  host: string;
  queue: string;
  /** How long an activity may wait on that queue before the host is presumed gone (the machine then moves). */
  waitSeconds: number;
}

/** A task queue a worker serves. */
export interface ServedQueue {
  name: string;
  role: WorkerRole;
  provider: ProviderId | null;
  host: string | null;
}

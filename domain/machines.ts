/**
 * Machine types, compute profiles and the machine's life cycle: the facts every layer shares.
 */
import { MACHINE_TYPE_IDS, type MachineTypeId } from './machine-types.js';

export const MACHINE_TYPES = MACHINE_TYPE_IDS;
export type MachineType = MachineTypeId;

/** Where a machine can run; see activities/compute/ for each provider. */
export const PROVIDERS = ['local', 'container', 'aws-ec2', 'aws-ecs', 'kubernetes'] as const;
export type ProviderId = (typeof PROVIDERS)[number];

export interface ComputeProfile {
  cpus: number;
  memoryMiB: number;
  /** Most processes (and threads) the machine may have at once. */
  pids: number;
  /** Most bytes the machine's workspace may hold, in MiB. */
  diskMiB: number;
  /**
   * Decimal on-demand price per hour in `currency` when the price list (config/compute-prices.json,
   * domain/compute-prices.ts) has no entry for the machine; also the most a spot instance may bid.
   */
  hourlyPrice: string;
  currency: 'USD';
}

/** Compute profiles a machine type or request chooses (placement's default: lightweight). */
export const PROFILES = {
  lightweight: { cpus: 1, memoryMiB: 2048, pids: 1024, diskMiB: 10240, hourlyPrice: '0.02', currency: 'USD' },
  standard: { cpus: 2, memoryMiB: 4096, pids: 2048, diskMiB: 20480, hourlyPrice: '0.05', currency: 'USD' },
  large: { cpus: 4, memoryMiB: 16384, pids: 4096, diskMiB: 51200, hourlyPrice: '0.20', currency: 'USD' },
} as const satisfies Record<string, ComputeProfile>;
export type ProfileId = keyof typeof PROFILES;

/** What a sandbox may use: enforced by the `local` and `container` providers (cgroups, rlimits, a disk watch). */
export interface ResourceLimits {
  cpus: number;
  memoryMiB: number;
  pids: number;
  diskMiB: number;
}

/**
 * The limits of `profile` (lightweight when unknown), with a deployment's overrides applied
 * (AUTOVIBE_PROFILE_LIMITS, e.g. tests that want a 64 MiB machine).
 */
export function resourceLimitsOf(profile: string, overrides: Record<string, Partial<ResourceLimits>> = {}): ResourceLimits {
  const base: ComputeProfile = Object.hasOwn(PROFILES, profile) ? PROFILES[profile as ProfileId] : PROFILES.lightweight;
  const { cpus, memoryMiB, pids, diskMiB } = base;
  return { cpus, memoryMiB, pids, diskMiB, ...(overrides[profile] ?? {}) };
}

/** `2048` → `2 GiB`, `64` → `64 MiB`: how limits are named in stop reasons. */
export function formatMiB(mib: number): string {
  return mib >= 1024 && mib % 1024 === 0 ? `${mib / 1024} GiB` : `${mib} MiB`;
}

/** Why a sandbox was stopped at one of its resource limits: the machine fails with this error. */
export const RESOURCE_LIMIT_REASONS = {
  memory: (l: ResourceLimits) => `memory limit (${formatMiB(l.memoryMiB)}) exceeded`,
  pids: (l: ResourceLimits) => `process limit (${l.pids} processes) exceeded`,
  disk: (l: ResourceLimits) => `workspace disk limit (${formatMiB(l.diskMiB)}) exceeded`,
} as const;

export const MACHINE_STATUSES = ['pending', 'provisioning', 'running', 'checkpointing', 'paused', 'completed', 'failed', 'terminated', 'refused'] as const;
export type MachineStatus = (typeof MACHINE_STATUSES)[number];
export const FINAL_MACHINE_STATUSES: readonly MachineStatus[] = ['completed', 'failed', 'terminated', 'refused'];

/** Why a machine stopped before its command finished by itself. */
export const STOP_REASONS = {
  timeLimit: 'time budget exceeded',
  moneyLimit: 'money limit reached',
  apiCallLimit: 'API call limit reached',
  terminated: 'terminated by request',
  workerLost: 'worker lost during the run; resume from the latest checkpoint',
  interrupted: 'instance interrupted (vanished at its provider)',
} as const;

export const DEFAULT_MACHINE_MINUTES = 30;
/** Default per-machine money limit of a new project, in the project's currency. */
export const DEFAULT_MACHINE_MONEY = '0.50';

export const CHECKPOINT_KINDS = ['root', 'final', 'manual', 'turn', 'pause', 'merge', 'inputs', 'imported'] as const;
export type CheckpointKind = (typeof CHECKPOINT_KINDS)[number];

/**
 * Where a checkpoint stands: `ready` (every ordinary checkpoint), `conflicted` (a merge written with
 * its conflict markers, where a resolving machine starts), `proposed` (a machine's resolution of a
 * merge, waiting for a human to accept or reject it) and `rejected` (a proposal turned down, kept).
 */
export const CHECKPOINT_STATUSES = ['ready', 'conflicted', 'proposed', 'rejected'] as const;
export type CheckpointStatus = (typeof CHECKPOINT_STATUSES)[number];

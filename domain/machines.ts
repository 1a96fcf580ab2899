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
  /** Decimal price per hour in `currency`. */
  hourlyPrice: string;
  currency: 'USD';
}

export const PROFILES = {
  lightweight: { cpus: 1, memoryMiB: 2048, hourlyPrice: '0.02', currency: 'USD' },
} as const satisfies Record<string, ComputeProfile>;
export type ProfileId = keyof typeof PROFILES;

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

export const CHECKPOINT_KINDS = ['root', 'final', 'manual', 'turn', 'pause', 'merge', 'inputs'] as const;
export type CheckpointKind = (typeof CHECKPOINT_KINDS)[number];

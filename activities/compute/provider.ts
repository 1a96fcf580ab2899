import type { ResourceUsage } from './resource-limits.js';
/**
 * One interface for every place a machine can run: `local` (bubblewrap), `container`
 * (Docker Engine API: docker or podman), `aws-ec2` (spot VMs), `aws-ecs` (Fargate) and
 * `kubernetes` (a Job per machine). The machine workflow's activities talk only to this.
 *
 * The life of an instance: provision it from a checkpoint's files → exec commands in it
 * (output streamed) → snapshot it (checkpoint) → terminate it (always; safe to repeat).
 * `listInstances` lets the reconciliation workflow find instances no live machine owns.
 */
export const PROVIDER_IDS = ['local', 'container', 'aws-ec2', 'aws-ecs', 'kubernetes'] as const;
export type ProviderId = (typeof PROVIDER_IDS)[number];

export interface ProvisionRequest {
  machineId: string;
  projectId: string;
  /** Compute profile (domain/machines.ts PROFILES), e.g. `lightweight`. */
  profile: string;
  /** Run on interruptible capacity (spot / Fargate Spot) when the provider has it. */
  spot: boolean;
  /** Host directory holding the checkpoint's files (a git worktree); local-style providers mount it. */
  workspace: string;
  /** Tags every cloud resource carries (project, machine, …). */
  tags: Record<string, string>;
  /**
   * More host paths the instance sees (agent machines: the CLIs, the agent's home, the metering
   * proxy's socket dir). Read-only unless `writable`. Only host-sharing providers (local, container) honour them.
   */
  mounts?: Mount[];
}

/** A host path bound into an instance at `target`. */
export interface Mount {
  source: string;
  target: string;
  writable?: boolean;
}

export interface Instance {
  provider: ProviderId;
  /** Opaque id of the instance at its provider (container id, EC2 instance id, Job name, …). */
  instanceRef: string;
  machineId: string;
  projectId: string;
  /** Provider-specific facts worth showing (instance type, AZ, spot price, node, …). */
  details?: Record<string, string>;
}

export interface ExecRequest {
  /** A shell command line, or an argv run without a shell. */
  command: string | string[];
  env?: Record<string, string>;
  network: boolean;
  /**
   * More host paths this command's sandbox sees (a shell machine's egress proxy socket dir and
   * forwarder). Honoured by `local`, whose sandbox is made per command; `container` binds at provision.
   */
  mounts?: Mount[];
  /** Epoch ms after which the command is killed. */
  deadline: number;
  /** Called with each chunk of stdout/stderr as it arrives. */
  onOutput?: (chunk: Buffer, stream: 'stdout' | 'stderr') => void;
  /** Aborts the command (activity cancelled, stop requested). */
  signal?: AbortSignal;
  /** Called with what the sandbox uses, each time the limit watch measures it (`local`, `container`). */
  onResources?: (usage: ResourceUsage) => void;
}

export interface ExecResult {
  /** null when the command was killed (deadline, abort) or the instance vanished. */
  exitCode: number | null;
  /** Why the command did not run to its end, when it did not. */
  stopReason: 'deadline' | 'aborted' | 'interrupted' | 'limit' | null;
  /** With `limit`: which resource limit of the profile the command hit, e.g. `memory limit (2 GiB) exceeded`. */
  limit?: string;
}

export interface SnapshotResult {
  /** Provider-side reference (EBS snapshot id, chunk-store manifest id, image id, …). */
  snapshotRef: string;
}

export interface ComputeProvider {
  readonly id: ProviderId;
  /** Whether this provider can run here, and if not, what to do about it. */
  availability(): Promise<{ available: boolean; reason?: string }>;
  provision(request: ProvisionRequest): Promise<Instance>;
  exec(instance: Instance, request: ExecRequest): Promise<ExecResult>;
  snapshot(instance: Instance, input: { checkpointId: string }): Promise<SnapshotResult>;
  /** Every instance this provider runs for AutoVibe (found by tags/labels/markers). */
  listInstances(): Promise<Instance[]>;
  /** Frees the instance and everything it holds. Safe to repeat and on a vanished instance. */
  terminate(instance: Instance): Promise<void>;
  /** Stops every process a previous exec left running (a retried command starts clean). */
  reset?(instance: Instance): Promise<void>;
  /**
   * For providers whose instances keep their own copy of the files (a VM, a Fargate task, a pod):
   * replaces the instance's working directory with the host `workspace`'s files (without .git),
   * so a retried command starts from them. Stops any command still running there first.
   */
  deliverWorkspace?(instance: Instance, workspace: string, deadline: number): Promise<void>;
  /**
   * The other way: replaces the host `workspace`'s files (everything except .git) with the
   * instance's, so the host can commit them as a checkpoint. Files deleted on the instance are
   * deleted in the checkpoint too.
   */
  collectWorkspace?(instance: Instance, workspace: string, deadline: number): Promise<void>;
}

/** One region's copy of a disk snapshot. */
export interface DiskSnapshotReplica {
  region: string;
  /** The copy's id in that region, once the copy was started. */
  snapshotId?: string;
  /** The provider's state of the copy, or `waiting-for-source` / `missing` when there is none yet. */
  state: string;
  progress?: string;
}

/**
 * A provider that keeps a whole-disk snapshot of an instance at each checkpoint (EBS on aws-ec2)
 * and can start a new instance from one: an interrupted machine comes back with its whole disk,
 * not only the files the checkpoint committed. `snapshot` takes the disk snapshot here.
 */
export interface DiskSnapshotProvider extends ComputeProvider {
  readonly diskSnapshots: true;
  /** The region new snapshots are taken in (their home). */
  readonly snapshotRegion: string;
  /** Starts copies to the replica regions that have none yet; returns every copy's status. */
  replicate(snapshotRef: string): Promise<DiskSnapshotReplica[]>;
  replicaStatus(snapshotRef: string): Promise<DiskSnapshotReplica[]>;
  /** A new instance whose disk is made from the snapshot (or a replica's copy when the original is gone). */
  provisionFromSnapshot(request: ProvisionRequest, snapshotRef: string): Promise<Instance>;
  /** Deletes the snapshot and every copy of it, in every region. Safe to repeat. */
  deleteSnapshot(snapshotRef: string): Promise<{ deleted: Array<{ region: string; snapshotId: string }> }>;
}

/** Whether the provider keeps disk snapshots (a capability, not a provider id check). */
export function hasDiskSnapshots(provider: ComputeProvider): provider is DiskSnapshotProvider {
  return (provider as Partial<DiskSnapshotProvider>).diskSnapshots === true;
}

/** The disk snapshot (or the copy a restore needs) is still being made: try again later. */
export class SnapshotNotReadyError extends Error {
  override readonly name = 'SnapshotNotReadyError';
}

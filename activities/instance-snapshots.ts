/**
 * Whole-disk snapshots of a machine's instance at its checkpoints, for providers that keep them
 * (DiskSnapshotProvider: EBS on aws-ec2). The checkpoint's files are already safe in git and the
 * chunk store; the disk snapshot adds everything else the instance held (installed packages,
 * caches, files outside the workspace), so a re-provisioned machine comes back with its whole disk.
 */
import { appendAudit } from '../store/audit.js';
import { getCheckpoint } from '../store/checkpoints.js';
import {
  getInstanceSnapshot,
  markInstanceSnapshotDeleted,
  recordInstanceSnapshot,
  setInstanceSnapshotReplicas,
  type InstanceSnapshot,
} from '../store/instance-snapshots.js';
import { getMachine } from '../store/machines.js';
import { hasDiskSnapshots, type DiskSnapshotProvider, type DiskSnapshotReplica, type ProviderId } from './compute/provider.js';
import type { ActivityDeps } from './deps.js';

type Deps = Pick<ActivityDeps, 'db' | 'log' | 'providers'>;

const errorText = (err: unknown) => (err instanceof Error ? err.message : String(err));

function diskProvider(deps: Deps, id: string): DiskSnapshotProvider | null {
  const provider = deps.providers.get(id as ProviderId);
  return provider && hasDiskSnapshots(provider) ? provider : null;
}

/**
 * Takes the disk snapshot of the instance the machine runs on for checkpoint `checkpointId`, and
 * records it. The snapshot call is idempotent at the provider (found again by its checkpoint tag).
 * A failure never loses the checkpoint: it is logged and audited, nothing is recorded, and the
 * checkpoint stands on its commit and chunk-store snapshot. Returns what was recorded.
 */
export async function takeInstanceSnapshot(deps: Deps, input: { checkpointId: string; machineId: string }): Promise<InstanceSnapshot | null> {
  const existing = await getInstanceSnapshot(deps.db, input.checkpointId);
  if (existing) return existing;
  const machine = await getMachine(deps.db, input.machineId);
  if (!machine?.instanceRef) return null;
  const provider = diskProvider(deps, machine.provider);
  if (!provider) return null;
  const instance = { provider: provider.id, instanceRef: machine.instanceRef, machineId: machine.id, projectId: machine.projectId };
  try {
    const { snapshotRef } = await provider.snapshot(instance, { checkpointId: input.checkpointId });
    const replicas = await provider.replicaStatus(snapshotRef);
    const recorded = await recordInstanceSnapshot(deps.db, {
      checkpointId: input.checkpointId,
      projectId: machine.projectId,
      machineId: machine.id,
      provider: provider.id,
      snapshotRef,
      region: provider.snapshotRegion,
      replicas,
    });
    await appendAudit(deps.db, {
      actor: 'system',
      action: 'checkpoint.instance_snapshot',
      subjectType: 'checkpoint',
      subjectId: input.checkpointId,
      projectId: machine.projectId,
      details: { provider: provider.id, snapshotRef, region: provider.snapshotRegion, instanceRef: machine.instanceRef },
      idempotencyKey: `checkpoint:${input.checkpointId}:instance-snapshot`,
    });
    return recorded;
  } catch (err) {
    deps.log.warn({ checkpointId: input.checkpointId, machineId: machine.id, err: errorText(err) }, 'instance snapshot failed; the checkpoint keeps its files');
    await appendAudit(deps.db, {
      actor: 'system',
      action: 'checkpoint.instance_snapshot_failed',
      subjectType: 'checkpoint',
      subjectId: input.checkpointId,
      projectId: machine.projectId,
      details: { provider: provider.id, instanceRef: machine.instanceRef, error: errorText(err) },
      idempotencyKey: `checkpoint:${input.checkpointId}:instance-snapshot-failed`,
    });
    return null;
  }
}

/** The checkpoint's disk snapshot a machine on `providerId` can be restored from, if any. */
export async function restorableInstanceSnapshot(deps: Deps, checkpointId: string, providerId: string): Promise<InstanceSnapshot | null> {
  if (!diskProvider(deps, providerId)) return null;
  const snapshot = await getInstanceSnapshot(deps.db, checkpointId);
  return snapshot && !snapshot.deletedAt && snapshot.provider === providerId ? snapshot : null;
}

export interface ReplicaWait {
  /** Give up waiting for the original at this epoch ms (the daily backup starts the copies later). */
  until: number;
  pollMs: number;
  /** Wait only while the snapshot is younger than this (an older one still not complete is stuck, not slow). */
  maxAgeMs?: number;
  /** Called before each pause (an activity heartbeats). */
  heartbeat?: () => void;
  sleep?: (ms: number) => Promise<void>;
}

/**
 * Calls `replicate` until no copy is `waiting-for-source` (the original finished and every copy
 * started) or the time is up; returns the last states. A fresh EBS snapshot takes minutes.
 */
export async function replicateWhenReady(replicate: () => Promise<DiskSnapshotReplica[]>, wait: ReplicaWait): Promise<DiskSnapshotReplica[]> {
  const sleep = wait.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  for (;;) {
    const replicas = await replicate();
    if (!replicas.some((r) => r.state === 'waiting-for-source') || Date.now() + wait.pollMs > wait.until) return replicas;
    wait.heartbeat?.();
    await sleep(wait.pollMs);
  }
}

/**
 * Starts the copies of the checkpoint's disk snapshot that are missing (a copy can only start once
 * the original is complete), waiting for the original within `wait`, and keeps their states. Best
 * effort: a failure is logged and the next lifecycle step or scheduled backup tries again.
 */
export async function replicateInstanceSnapshot(deps: Deps, checkpointId: string, wait?: ReplicaWait): Promise<InstanceSnapshot | null> {
  const snapshot = await getInstanceSnapshot(deps.db, checkpointId);
  if (!snapshot || snapshot.deletedAt) return snapshot;
  const provider = diskProvider(deps, snapshot.provider);
  if (!provider) return snapshot;
  try {
    const replicate = () => provider.replicate(snapshot.snapshotRef);
    const until = wait ? Math.min(wait.until, wait.maxAgeMs !== undefined ? Date.parse(snapshot.createdAt) + wait.maxAgeMs : Infinity) : 0;
    await setInstanceSnapshotReplicas(deps.db, checkpointId, wait ? await replicateWhenReady(replicate, { ...wait, until }) : await replicate());
  } catch (err) {
    deps.log.warn({ checkpointId, snapshotRef: snapshot.snapshotRef, err: errorText(err) }, 'instance snapshot replication failed');
  }
  return getInstanceSnapshot(deps.db, checkpointId);
}

/**
 * Deletes the checkpoint's disk snapshot and its copies at the provider, then marks it deleted.
 * Only for checkpoints the retention prune let go. When the provider cannot be reached the row
 * stays live, so the next prune tries again. Returns what was deleted, or null when nothing was.
 */
export async function deleteInstanceSnapshot(deps: Deps, checkpointId: string): Promise<Array<{ region: string; snapshotId: string }> | null> {
  const snapshot = await getInstanceSnapshot(deps.db, checkpointId);
  if (!snapshot || snapshot.deletedAt) return null;
  const provider = diskProvider(deps, snapshot.provider);
  if (!provider) {
    deps.log.warn({ checkpointId, provider: snapshot.provider }, 'instance snapshot kept: its provider is not configured here');
    return null;
  }
  let deleted;
  try {
    ({ deleted } = await provider.deleteSnapshot(snapshot.snapshotRef));
  } catch (err) {
    deps.log.warn({ checkpointId, snapshotRef: snapshot.snapshotRef, err: errorText(err) }, 'instance snapshot deletion failed; the next prune retries');
    return null;
  }
  if (!(await markInstanceSnapshotDeleted(deps.db, checkpointId))) return null;
  const checkpoint = await getCheckpoint(deps.db, checkpointId);
  await appendAudit(deps.db, {
    actor: 'system',
    action: 'snapshot.instance_deleted',
    subjectType: 'checkpoint',
    subjectId: checkpointId,
    projectId: checkpoint?.projectId ?? snapshot.projectId,
    details: { provider: snapshot.provider, snapshotRef: snapshot.snapshotRef, deleted },
    idempotencyKey: `snapshot:${checkpointId}:instance-deleted`,
  });
  return deleted;
}

/** What the api uses to show a disk snapshot's copies live: asks the snapshot's own provider. */
export function diskSnapshotReader(providers: ActivityDeps['providers']) {
  return {
    async replicaStatus(providerId: string, snapshotRef: string) {
      const provider = providers.get(providerId as ProviderId);
      return provider && hasDiskSnapshots(provider) ? provider.replicaStatus(snapshotRef) : null;
    },
  };
}

import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import { NOT_FOUND, retryUnless } from './activity-options.js';

/** What a checkpoint's snapshot looks like after a lifecycle step. */
export interface SnapshotLifecycleResult {
  checkpointId: string;
  status: string;
  bytes: number;
  storedBytes: number;
  replicas: Array<{ region: string; status: string }>;
}

export interface SnapshotBackupResult {
  checked: number;
  replicated: number;
  failed: Array<{ checkpointId: string; error: string }>;
}

export interface SnapshotPruneInput {
  /** Chunks touched this recently are spared (a snapshot may be being stored). Default one hour. */
  graceMs?: number;
}

export interface SnapshotPruneResult {
  pruned: string[];
  kept: number;
  freedChunks: number;
  freedBytes: number;
}

const acts = proxyActivities<Activities>({
  startToCloseTimeout: '30 minutes',
  heartbeatTimeout: '5 minutes',
  retry: retryUnless([NOT_FOUND], { initialInterval: '2s', maximumInterval: '1 minute', maximumAttempts: 10 }),
});

/**
 * One checkpoint's snapshot: store it (a no-op when the checkpoint already stored its workspace) →
 * copy it to the replica region → mark it replicated. Started by the checkpoint itself, id
 * `snapshot-<checkpoint id>`.
 */
export async function snapshotLifecycle(input: { checkpointId: string }): Promise<SnapshotLifecycleResult> {
  const stored = await acts.storeCheckpointSnapshot({ checkpointId: input.checkpointId });
  if (stored.status === 'pruned') return stored;
  await acts.replicateCheckpointSnapshot({ checkpointId: input.checkpointId });
  return acts.markSnapshot({ checkpointId: input.checkpointId });
}

/**
 * Scheduled daily: catches up every checkpoint whose snapshot is missing or not yet replicated
 * (a lifecycle that failed, checkpoints made outside a machine such as roots and merges).
 */
export async function snapshotBackup(input: { limit?: number } = {}): Promise<SnapshotBackupResult> {
  const ids = await acts.listSnapshotBacklog({ limit: input.limit ?? 200 });
  const result: SnapshotBackupResult = { checked: ids.length, replicated: 0, failed: [] };
  for (const checkpointId of ids) {
    try {
      const stored = await acts.storeCheckpointSnapshot({ checkpointId });
      if (stored.status === 'pruned') continue;
      await acts.replicateCheckpointSnapshot({ checkpointId });
      await acts.markSnapshot({ checkpointId });
      result.replicated += 1;
    } catch (err) {
      result.failed.push({ checkpointId, error: err instanceof Error ? err.message : String(err) });
    }
  }
  return result;
}

/**
 * Scheduled daily: applies the retention grid (domain/retention.ts) at the workflow's time, drops
 * the snapshots nothing needs, then frees the chunks no snapshot uses.
 */
export async function snapshotPrune(input: SnapshotPruneInput = {}): Promise<SnapshotPruneResult> {
  const plan = await acts.planSnapshotPrune({ at: new Date(Date.now()).toISOString() });
  if (plan.prune.length) await acts.pruneCheckpointSnapshots({ checkpointIds: plan.prune });
  const freed = await acts.collectSnapshotGarbage({ graceMs: input.graceMs ?? 3_600_000 });
  return { pruned: plan.prune, kept: plan.kept, freedChunks: freed.chunks, freedBytes: freed.bytes };
}

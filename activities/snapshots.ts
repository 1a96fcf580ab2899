import { runVisibility } from '../domain/search-attributes.js';
import { Context } from '@temporalio/activity';
import { ApplicationFailure, WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import { decideRetention, type KeepReason } from '../domain/retention.js';
import { appendAudit } from '../store/audit.js';
import { getCheckpoint } from '../store/checkpoints.js';
import { getMachine } from '../store/machines.js';
import { getProject } from '../store/projects.js';
import {
  collectGarbage,
  getSnapshot,
  pruneSnapshot,
  replicateSnapshot,
  restoreSnapshot,
  retentionInputs,
  snapshotBacklog,
  storeCommitSnapshot,
  storeSnapshot,
  type RestoreResult,
  type SnapshotSummary,
} from '../store/snapshots.js';
import { instanceSnapshotBacklog, liveInstanceSnapshotIds } from '../store/instance-snapshots.js';
import { deleteInstanceSnapshot, replicateInstanceSnapshot } from './instance-snapshots.js';
import { projectRepo, snapshotStores } from '../store/shared-storage.js';
import type { ActivityDeps } from './deps.js';

/** How long the lifecycle waits for a new disk snapshot to complete before its copies can start (the daily backup goes on later). */
const DISK_REPLICA_WAIT_MS = 15 * 60_000;
const DISK_REPLICA_POLL_MS = 15_000;

/** The snapshot lifecycle workflow of a checkpoint: one per checkpoint, by this id. */
export const snapshotWorkflowId = (checkpointId: string) => `snapshot-${checkpointId}`;

type Deps = Pick<ActivityDeps, 'db' | 'config' | 'log'>;

export interface SnapshotView {
  checkpointId: string;
  status: SnapshotSummary['status'];
  bytes: number;
  storedBytes: number;
  replicas: Array<{ region: string; status: string }>;
}

const view = (s: SnapshotSummary): SnapshotView => ({
  checkpointId: s.checkpointId,
  status: s.status,
  bytes: s.bytes,
  storedBytes: s.storedBytes,
  replicas: s.replicas.map((r) => ({ region: r.region, status: r.status })),
});

/**
 * Right after a checkpoint is committed: stores the whole workspace (ignored files, modes and all)
 * in the chunk store from `root`, the frozen copy the commit was made from (null on a retry after
 * the workspace is gone: the lifecycle stores the commit's files then), then starts the
 * checkpoint's snapshot lifecycle workflow (replicate → mark) when running inside an activity.
 * Idempotent.
 */
export async function snapshotCheckpoint(deps: Deps, input: { checkpointId: string; projectId: string; root: string | null }): Promise<void> {
  const stored = input.root
    ? await storeSnapshot(deps.db, snapshotStores(deps.config), {
        checkpointId: input.checkpointId,
        projectId: input.projectId,
        root: input.root,
        source: 'workspace',
      })
    : await getSnapshot(deps.db, input.checkpointId);
  let client;
  try {
    client = Context.current().client;
  } catch {
    return; // not in an activity: the scheduled backup replicates it
  }
  if (stored && stored.status !== 'stored') return;
  try {
    await client.workflow.start('snapshotLifecycle', {
      workflowId: snapshotWorkflowId(input.checkpointId),
      taskQueue: deps.config.taskQueue,
      ...runVisibility(
        'snapshot lifecycle',
        { project: input.projectId },
        { searchAttributes: deps.config.searchAttributes, details: { checkpoint: input.checkpointId } },
      ),
      args: [{ checkpointId: input.checkpointId }],
      // One lifecycle per checkpoint, also when a retried checkpoint asks again after it finished.
      workflowIdReusePolicy: 'REJECT_DUPLICATE',
    });
  } catch (err) {
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
  }
}

/**
 * Makes a freshly checked-out workspace hold the checkpoint's full snapshot (files beyond git come
 * back). A checkpoint without a snapshot (never stored or pruned) keeps what git checked out.
 */
export async function restoreCheckpointFiles(deps: Deps, input: { checkpointId: string; workspace: string }): Promise<RestoreResult | null> {
  const restored = await restoreSnapshot(deps.db, snapshotStores(deps.config), input.checkpointId, input.workspace);
  if (restored?.chunksFrom.replica) {
    deps.log.warn({ checkpointId: input.checkpointId, chunksFromReplica: restored.chunksFrom.replica }, 'restored from the replica region');
  }
  return restored;
}

/** After a workspace is reset to a machine's starting commit: restores its starting checkpoint's snapshot. */
export async function restoreMachineStart(deps: Deps, input: { machineId: string; baseCommit: string; workspace: string }): Promise<void> {
  const machine = await getMachine(deps.db, input.machineId);
  if (!machine) return;
  const start = await getCheckpoint(deps.db, machine.parentCheckpointId);
  if (start?.commit !== input.baseCommit) return;
  await restoreCheckpointFiles(deps, { checkpointId: start.id, workspace: input.workspace });
}

/** Activities of the snapshot lifecycle and of the scheduled backup and prune workflows. */
export function createSnapshotActivities({ db, config, log, providers }: ActivityDeps) {
  const regions = snapshotStores(config);
  const disks = { db, log, providers };
  return {
    /** Stores the checkpoint's snapshot if it has none yet, from its git commit (the workspace is gone by now). */
    async storeCheckpointSnapshot(input: { checkpointId: string }): Promise<SnapshotView> {
      const existing = await getSnapshot(db, input.checkpointId);
      if (existing) return view(existing);
      const checkpoint = await getCheckpoint(db, input.checkpointId);
      if (!checkpoint) throw ApplicationFailure.nonRetryable(`checkpoint ${input.checkpointId} not found`, 'NotFoundError');
      const project = await getProject(db, checkpoint.projectId);
      if (!project) throw ApplicationFailure.nonRetryable(`project ${checkpoint.projectId} not found`, 'NotFoundError');
      return view(
        await storeCommitSnapshot(db, regions, {
          checkpointId: checkpoint.id,
          projectId: project.id,
          repoPath: await projectRepo(db, config, project, [checkpoint.commit]),
          commit: checkpoint.commit,
        }),
      );
    },

    /** Copies the snapshot to the replica region (missing chunks only, each verified). */
    async replicateCheckpointSnapshot(input: { checkpointId: string }): Promise<SnapshotView> {
      const snapshot = await getSnapshot(db, input.checkpointId);
      if (!snapshot) throw ApplicationFailure.nonRetryable(`checkpoint ${input.checkpointId} has no snapshot`, 'NotFoundError');
      if (snapshot.status === 'pruned') return view(snapshot);
      const replicated = view(await replicateSnapshot(db, regions, input.checkpointId));
      // The instance's disk snapshot too (EBS copies to the replica regions), best effort: a fresh
      // original takes minutes to complete, so wait for it a while, heartbeating.
      await replicateInstanceSnapshot(disks, input.checkpointId, {
        until: Date.now() + DISK_REPLICA_WAIT_MS,
        pollMs: DISK_REPLICA_POLL_MS,
        maxAgeMs: 2 * DISK_REPLICA_WAIT_MS,
        heartbeat: () => Context.current().heartbeat(),
      });
      return replicated;
    },

    /** Records the finished lifecycle in the audit log. */
    async markSnapshot(input: { checkpointId: string }): Promise<SnapshotView> {
      const snapshot = await getSnapshot(db, input.checkpointId);
      if (!snapshot) throw ApplicationFailure.nonRetryable(`checkpoint ${input.checkpointId} has no snapshot`, 'NotFoundError');
      if (snapshot.status === 'replicated') {
        await appendAudit(db, {
          actor: 'system',
          action: 'snapshot.replicated',
          subjectType: 'checkpoint',
          subjectId: input.checkpointId,
          projectId: snapshot.projectId,
          details: { bytes: snapshot.bytes, storedBytes: snapshot.storedBytes, regions: snapshot.replicas.map((r) => `${r.region}:${r.status}`) },
          idempotencyKey: `snapshot:${input.checkpointId}:replicated`,
        });
      }
      return view(snapshot);
    },

    /** Checkpoints with no snapshot or one not yet replicated. */
    async listSnapshotBacklog(input: { limit: number }): Promise<string[]> {
      const ids = await snapshotBacklog(db, input.limit);
      // Disk snapshots whose copies could not start yet (the original was still being made).
      for (const id of await instanceSnapshotBacklog(db, input.limit)) if (ids.length < input.limit && !ids.includes(id)) ids.push(id);
      return ids;
    },

    /** Applies the retention grid at `at` to every project: which snapshots to prune. */
    async planSnapshotPrune(input: { at: string }): Promise<{ prune: string[]; kept: number; reasons: Record<string, KeepReason[]> }> {
      const now = Date.parse(input.at);
      const prune: string[] = [];
      const reasons: Record<string, KeepReason[]> = {};
      let kept = 0;
      for (const p of await retentionInputs(db)) {
        // Chunk-store snapshots are complete manifests: none depends on its parent's.
        const decision = decideRetention(p.checkpoints, { now, referenced: p.referenced });
        const withSnapshot = new Set(p.checkpoints.filter((c) => c.hasSnapshot).map((c) => c.id));
        // A disk snapshot left behind (its deletion failed last time) is pruned with its checkpoint.
        for (const id of await liveInstanceSnapshotIds(db, p.projectId)) withSnapshot.add(id);
        for (const id of decision.prune) if (withSnapshot.has(id)) prune.push(id);
        for (const k of decision.keep) {
          if (!withSnapshot.has(k.id)) continue;
          kept += 1;
          reasons[k.id] = k.reasons;
        }
      }
      return { prune, kept, reasons };
    },

    /** Drops the given snapshots (their rows stay, marked pruned), with an audit record each. */
    async pruneCheckpointSnapshots(input: { checkpointIds: string[] }): Promise<number> {
      let n = 0;
      for (const id of input.checkpointIds) {
        // The checkpoint's disk snapshot and its copies go with it (a failure leaves it for the next prune).
        await deleteInstanceSnapshot(disks, id);
        const snapshot = await getSnapshot(db, id);
        if (!snapshot || !(await pruneSnapshot(db, id))) continue;
        n += 1;
        await appendAudit(db, {
          actor: 'system',
          action: 'snapshot.pruned',
          subjectType: 'checkpoint',
          subjectId: id,
          projectId: snapshot.projectId,
          details: { bytes: snapshot.bytes },
          idempotencyKey: `snapshot:${id}:pruned`,
        });
        Context.current().heartbeat(n);
      }
      log.info({ pruned: n }, 'snapshots pruned');
      return n;
    },

    /** Frees the chunks no snapshot uses any more, in every region. */
    async collectSnapshotGarbage(input: { graceMs: number }): Promise<{ chunks: number; bytes: number }> {
      return collectGarbage(db, regions, { graceMs: input.graceMs });
    },
  };
}

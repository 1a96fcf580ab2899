/** Use cases of checkpoints: read one (files, snapshots, parent and children, diffs) and mark it a milestone. */
import { z } from 'zod';
import { InputError, NotFoundError } from '../domain/errors.js';
import { appendAudit } from '../store/audit.js';
import { getCheckpoint, pageCheckpoints, type Checkpoint } from '../store/checkpoints.js';
import { diffCommits, listFiles, readFileAt, type Diff, type FileEntry } from '../store/git.js';
import { getInstanceSnapshot, type InstanceSnapshot } from '../store/instance-snapshots.js';
import type { CreatedKey, KeysetPage } from '../store/paging.js';
import type { Project } from '../store/projects.js';
import { snapshotStores, withLocalRepo } from '../store/shared-storage.js';
import { getSnapshot, isMilestone, readSnapshotFile, setMilestone, type SnapshotSummary } from '../store/snapshots.js';
import { actorOfCaller, type Caller, type ServiceContext } from './context.js';
import { notFoundMessage } from './inputs.js';
import { requireProject } from './projects.js';
import { putMilestoneBody } from './schemas.js';

/** The checkpoint, or NotFoundError. */
export async function requireCheckpoint(ctx: ServiceContext, id: string): Promise<Checkpoint> {
  const c = await getCheckpoint(ctx.db, id);
  if (!c) throw new NotFoundError(notFoundMessage('checkpoint', id));
  return c;
}

/** A checkpoint's disk snapshot with its copies as the provider reports them now, else as last recorded. */
export interface LiveInstanceSnapshot extends InstanceSnapshot {
  replicasSource: 'provider' | 'recorded';
}

/** Everything known about a checkpoint: its project, files, milestone mark and snapshots. */
export interface CheckpointDetail {
  checkpoint: Checkpoint;
  project: Project;
  files: FileEntry[];
  milestone: boolean;
  snapshot: SnapshotSummary | null;
  instanceSnapshot: LiveInstanceSnapshot | null;
}

export async function checkpointDetail(ctx: ServiceContext, id: string): Promise<CheckpointDetail> {
  const checkpoint = await requireCheckpoint(ctx, id);
  const project = await withLocalRepo(ctx.db, ctx.config, await requireProject(ctx, checkpoint.projectId), [checkpoint.commit]);
  const [files, snapshot, milestone, instanceSnapshot] = await Promise.all([
    listFiles(project.repoPath, checkpoint.commit),
    getSnapshot(ctx.db, checkpoint.id),
    isMilestone(ctx.db, checkpoint.id),
    getInstanceSnapshot(ctx.db, checkpoint.id),
  ]);
  return { checkpoint, project, files, milestone, snapshot, instanceSnapshot: instanceSnapshot ? await liveInstanceSnapshot(ctx, instanceSnapshot) : null };
}

/**
 * A checkpoint's disk snapshot at its provider (EBS on aws-ec2) and its copies in the replica
 * regions: read live through the provider, else as last recorded (`replicasSource` says which).
 */
async function liveInstanceSnapshot(ctx: ServiceContext, s: InstanceSnapshot): Promise<LiveInstanceSnapshot> {
  if (!s.deletedAt && ctx.diskSnapshots) {
    try {
      const live = await ctx.diskSnapshots.replicaStatus(s.provider, s.snapshotRef);
      if (live) {
        const replicas = live.map((r) => ({ region: r.region, state: r.state, ...(r.snapshotId ? { snapshotId: r.snapshotId } : {}) }));
        return { ...s, replicas, replicasSource: 'provider' };
      }
    } catch (err) {
      ctx.log.warn({ checkpointId: s.checkpointId, err: (err as Error).message }, 'disk snapshot replicas could not be read; showing the recorded ones');
    }
  }
  return { ...s, replicasSource: 'recorded' };
}

/** The files of a checkpoint (its git tree). */
export async function checkpointFiles(ctx: ServiceContext, c: Checkpoint): Promise<FileEntry[]> {
  const project = await withLocalRepo(ctx.db, ctx.config, await requireProject(ctx, c.projectId), [c.commit]);
  return listFiles(project.repoPath, c.commit);
}

/** One file of a checkpoint; files git does not keep (ignored build output, …) come from its snapshot. */
export async function readCheckpointFile(ctx: ServiceContext, id: string, filePath: string): Promise<Buffer> {
  const checkpoint = await requireCheckpoint(ctx, id);
  const project = await withLocalRepo(ctx.db, ctx.config, await requireProject(ctx, checkpoint.projectId), [checkpoint.commit]);
  const bytes =
    (await readFileAt(project.repoPath, checkpoint.commit, filePath)) ?? (await readSnapshotFile(ctx.db, snapshotStores(ctx.config), checkpoint.id, filePath));
  if (!bytes) throw new NotFoundError(`file ${filePath} not found in checkpoint ${checkpoint.id}`);
  return bytes;
}

/** What changed from checkpoint `a` to `b` (of one project). */
export async function diffCheckpoints(ctx: ServiceContext, aId: string, bId: string): Promise<{ from: string; to: string } & Diff> {
  const [a, b] = await Promise.all([requireCheckpoint(ctx, aId), requireCheckpoint(ctx, bId)]);
  if (a.projectId !== b.projectId) throw new InputError(`checkpoints ${a.id} and ${b.id} belong to different projects`, { field: 'b' });
  const project = await withLocalRepo(ctx.db, ctx.config, await requireProject(ctx, a.projectId), [a.commit, b.commit]);
  return { from: a.id, to: b.id, ...(await diffCommits(project.repoPath, a.commit, b.commit)) };
}

/** The checkpoint a checkpoint continues from (null for a project's root). */
export async function parentCheckpoint(ctx: ServiceContext, c: Checkpoint): Promise<Checkpoint | null> {
  return c.parentId ? getCheckpoint(ctx.db, c.parentId) : null;
}

/** The checkpoints that continue from `c`, oldest first, one page. */
export async function childCheckpoints(ctx: ServiceContext, c: Checkpoint, page: KeysetPage): Promise<Array<{ item: Checkpoint; key: CreatedKey }>> {
  return pageCheckpoints(ctx.db, c.projectId, { ...page, parentId: c.id });
}

/** Marks (or unmarks) a checkpoint as a milestone: the snapshot retention grid keeps milestones forever. */
export async function setCheckpointMilestone(
  ctx: ServiceContext,
  caller: Caller,
  id: string,
  input: z.input<typeof putMilestoneBody>,
): Promise<{ id: string; milestone: boolean }> {
  const checkpoint = await requireCheckpoint(ctx, id);
  const body = putMilestoneBody.parse(input);
  await setMilestone(ctx.db, checkpoint.id, body.milestone);
  await appendAudit(ctx.db, {
    actor: actorOfCaller(caller),
    action: body.milestone ? 'checkpoint.milestone_set' : 'checkpoint.milestone_cleared',
    subjectType: 'checkpoint',
    subjectId: checkpoint.id,
    projectId: checkpoint.projectId,
  });
  return { id: checkpoint.id, milestone: body.milestone };
}

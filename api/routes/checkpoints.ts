import * as R from '../responses.js';
import { RouteGroup, inPath } from './table.js';
import { InputError, NotFoundError } from '../../domain/errors.js';
import { getCheckpoint, type Checkpoint } from '../../store/checkpoints.js';
import { diffCommits, listFiles, readFileAt } from '../../store/git.js';
import { appendAudit } from '../../store/audit.js';
import { getSnapshot, readSnapshotFile, setMilestone, type SnapshotSummary } from '../../store/snapshots.js';
import { getInstanceSnapshot, type InstanceSnapshot } from '../../store/instance-snapshots.js';
import { actorOf, param, type ApiContext } from '../context.js';
import { putMilestoneBody } from '../../services/schemas.js';
import { MESSAGES } from '../errors.js';
import { presentCheckpoint } from '../present.js';
import { loadProject } from './projects.js';

export function checkpointRoutes(ctx: ApiContext): RouteGroup {
  const r = new RouteGroup(ctx);

  async function load(id: string): Promise<Checkpoint> {
    const c = await getCheckpoint(ctx.db, id);
    if (!c) throw new NotFoundError(MESSAGES.notFound('checkpoint', id));
    return c;
  }

  r.get('/checkpoints/:id', { permission: 'checkpoints.read', resource: inPath('checkpoint') }, { 200: R.checkpointDetail }, async (req, res) => {
    const checkpoint = await load(param(req, 'id'));
    const project = await loadProject(ctx, checkpoint.projectId);
    const [files, snapshot, row, instanceSnapshot] = await Promise.all([
      listFiles(project.repoPath, checkpoint.commit),
      getSnapshot(ctx.db, checkpoint.id),
      ctx.db('checkpoints').where({ id: checkpoint.id }).first('milestone'),
      getInstanceSnapshot(ctx.db, checkpoint.id),
    ]);
    res.json({
      ...presentCheckpoint(checkpoint),
      projectId: project.id,
      milestone: Boolean(row?.milestone),
      snapshot: snapshot ? presentSnapshot(snapshot) : null,
      instanceSnapshot: instanceSnapshot ? await presentInstanceSnapshot(ctx, instanceSnapshot) : null,
      files,
    });
  });

  // Milestones are kept forever by the snapshot retention grid.
  r.put('/checkpoints/:id/milestone', { permission: 'checkpoints.write', resource: inPath('checkpoint') }, { 200: R.milestone }, async (req, res) => {
    const checkpoint = await load(param(req, 'id'));
    const body = putMilestoneBody.parse(req.body);
    await setMilestone(ctx.db, checkpoint.id, body.milestone);
    await appendAudit(ctx.db, {
      actor: actorOf(req),
      action: body.milestone ? 'checkpoint.milestone_set' : 'checkpoint.milestone_cleared',
      subjectType: 'checkpoint',
      subjectId: checkpoint.id,
      projectId: checkpoint.projectId,
    });
    res.json({ id: checkpoint.id, milestone: body.milestone });
  });

  r.get(
    '/checkpoints/:id/files/*path',
    { permission: 'checkpoints.read', resource: inPath('checkpoint') },
    { 200: R.raw('application/octet-stream') },
    async (req, res) => {
      const checkpoint = await load(param(req, 'id'));
      const project = await loadProject(ctx, checkpoint.projectId);
      const filePath = param(req, 'path');
      // Files git does not keep (ignored build output, …) come from the checkpoint's snapshot.
      const bytes =
        (await readFileAt(project.repoPath, checkpoint.commit, filePath)) ??
        (await readSnapshotFile(ctx.db, ctx.config.snapshotRegions, checkpoint.id, filePath));
      if (!bytes) throw new NotFoundError(`file ${filePath} not found in checkpoint ${checkpoint.id}`);
      res.type('application/octet-stream').send(bytes);
    },
  );

  r.get(
    '/checkpoints/:a/diff/:b',
    { permission: 'checkpoints.read', resource: [inPath('checkpoint', 'a'), inPath('checkpoint', 'b')] },
    { 200: R.diff },
    async (req, res) => {
      const [a, b] = await Promise.all([load(param(req, 'a')), load(param(req, 'b'))]);
      if (a.projectId !== b.projectId) throw new InputError(`checkpoints ${a.id} and ${b.id} belong to different projects`, { field: 'b' });
      const project = await loadProject(ctx, a.projectId);
      res.json({ from: a.id, to: b.id, ...(await diffCommits(project.repoPath, a.commit, b.commit)) });
    },
  );

  return r;
}

/** A checkpoint's snapshot in the chunk store: sizes (full copy vs. newly stored) and where it is. */
function presentSnapshot(s: SnapshotSummary) {
  return {
    status: s.status,
    source: s.source,
    files: s.files,
    chunks: s.chunks,
    bytes: s.bytes,
    storedBytes: s.storedBytes,
    createdAt: s.createdAt,
    prunedAt: s.prunedAt,
    replicas: s.replicas.map((r) => ({ region: r.region, status: r.status, copiedBytes: r.copiedBytes, error: r.error, updatedAt: r.updatedAt })),
  };
}

/**
 * A checkpoint's disk snapshot at its provider (EBS on aws-ec2) and its copies in the replica
 * regions: read live through the provider, else as last recorded (`replicasSource` says which).
 */
async function presentInstanceSnapshot(ctx: ApiContext, s: InstanceSnapshot) {
  let replicas = s.replicas;
  let replicasSource: 'provider' | 'recorded' = 'recorded';
  if (!s.deletedAt && ctx.diskSnapshots) {
    try {
      const live = await ctx.diskSnapshots.replicaStatus(s.provider, s.snapshotRef);
      if (live) {
        replicas = live.map((r) => ({ region: r.region, state: r.state, ...(r.snapshotId ? { snapshotId: r.snapshotId } : {}) }));
        replicasSource = 'provider';
      }
    } catch (err) {
      ctx.log.warn({ checkpointId: s.checkpointId, err: (err as Error).message }, 'disk snapshot replicas could not be read; showing the recorded ones');
    }
  }
  return {
    provider: s.provider,
    snapshotRef: s.snapshotRef,
    region: s.region,
    status: s.deletedAt ? 'deleted' : 'available',
    createdAt: s.createdAt,
    deletedAt: s.deletedAt,
    replicas: replicas.map((r) => ({ region: r.region, state: r.state, snapshotId: r.snapshotId ?? null })),
    replicasSource,
  };
}

import * as R from '../responses.js';
import { RouteGroup, inBody, inPath } from './table.js';
import type { SnapshotSummary } from '../../store/snapshots.js';
import { callerOf, param, type ApiContext } from '../context.js';
import { presentCheckpoint } from '../present.js';
import { acceptMerge, mergeCheckpoints, rejectMerge, requestMergeResolution } from '../../services/merges.js';
import { checkpointDetail, diffCheckpoints, readCheckpointFile, setCheckpointMilestone, type LiveInstanceSnapshot } from '../../services/checkpoints.js';

export function checkpointRoutes(ctx: ApiContext): RouteGroup {
  const r = new RouteGroup(ctx);

  r.get('/checkpoints/:id', { permission: 'checkpoints.read', resource: inPath('checkpoint') }, { 200: R.checkpointDetail }, async (req, res) => {
    const d = await checkpointDetail(ctx, param(req, 'id'));
    res.json({
      ...presentCheckpoint(d.checkpoint),
      projectId: d.project.id,
      milestone: d.milestone,
      snapshot: d.snapshot ? presentSnapshot(d.snapshot) : null,
      instanceSnapshot: d.instanceSnapshot ? presentInstanceSnapshot(d.instanceSnapshot) : null,
      files: d.files,
    });
  });

  // Milestones are kept forever by the snapshot retention grid.
  r.put('/checkpoints/:id/milestone', { permission: 'checkpoints.write', resource: inPath('checkpoint') }, { 200: R.milestone }, async (req, res) => {
    res.json(await setCheckpointMilestone(ctx, callerOf(req), param(req, 'id'), req.body));
  });

  r.get(
    '/checkpoints/:id/files/*path',
    { permission: 'checkpoints.read', resource: inPath('checkpoint') },
    { 200: R.raw('application/octet-stream') },
    async (req, res) => {
      res.type('application/octet-stream').send(await readCheckpointFile(ctx, param(req, 'id'), param(req, 'path')));
    },
  );

  r.get(
    '/checkpoints/:a/diff/:b',
    { permission: 'checkpoints.read', resource: [inPath('checkpoint', 'a'), inPath('checkpoint', 'b')] },
    { 200: R.diff },
    async (req, res) => {
      res.json(await diffCheckpoints(ctx, param(req, 'a'), param(req, 'b')));
    },
  );

  // Merging in the evolution tree: `from` is merged into `:id` (both must be the caller's).
  const mergeSides = [inPath('checkpoint'), inBody('checkpoint', 'from')];
  r.post('/checkpoints/:id/merge', { permission: 'checkpoints.write', resource: mergeSides }, { 201: R.checkpoint }, async (req, res) => {
    res.status(201).json(presentCheckpoint(await mergeCheckpoints(ctx, callerOf(req), param(req, 'id'), req.body)));
  });

  r.post('/checkpoints/:id/merge-resolutions', { permission: 'machines.run', resource: mergeSides }, { 202: R.mergeResolution }, async (req, res) => {
    res.status(202).json(await requestMergeResolution(ctx, callerOf(req), param(req, 'id'), req.body));
  });

  r.post('/checkpoints/:id/accept', { permission: 'checkpoints.write', resource: inPath('checkpoint') }, { 200: R.checkpoint }, async (req, res) => {
    res.json(presentCheckpoint(await acceptMerge(ctx, callerOf(req), param(req, 'id'))));
  });

  r.post('/checkpoints/:id/reject', { permission: 'checkpoints.write', resource: inPath('checkpoint') }, { 200: R.checkpoint }, async (req, res) => {
    res.json(presentCheckpoint(await rejectMerge(ctx, callerOf(req), param(req, 'id'))));
  });

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

/** A checkpoint's disk snapshot at its provider and its copies (services/checkpoints.ts reads them live). */
function presentInstanceSnapshot(s: LiveInstanceSnapshot) {
  return {
    provider: s.provider,
    snapshotRef: s.snapshotRef,
    region: s.region,
    status: s.deletedAt ? 'deleted' : 'available',
    createdAt: s.createdAt,
    deletedAt: s.deletedAt,
    replicas: s.replicas.map((r) => ({ region: r.region, state: r.state, snapshotId: r.snapshotId ?? null })),
    replicasSource: s.replicasSource,
  };
}

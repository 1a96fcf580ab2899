/**
 * Use cases of merging in the evolution tree (README "Merging checkpoints"): merge one checkpoint
 * into another with git's own merge (a `merge` checkpoint with two parents when clean; the
 * conflicting paths and hunks when not), ask a machine to resolve the conflicts (its result becomes
 * a `proposed` merge checkpoint), and accept or reject a proposal. Every step is audited.
 */
import { z } from 'zod';
import { ConflictError, InputError, NotFoundError } from '../domain/errors.js';
import { FINAL_MACHINE_STATUSES, type MachineStatus } from '../domain/machines.js';
import { appendAudit } from '../store/audit.js';
import { getCheckpoint, latestCheckpointOfMachine, recordCheckpoint, setCheckpointStatus, type Checkpoint } from '../store/checkpoints.js';
import { commitMerge, hasConflictMarkers, isAncestor, listFiles, mergeTrees, treeOf, type MergeConflict } from '../store/git.js';
import { idFromIdempotencyKey, idFromName } from '../store/ids.js';
import { getMachine } from '../store/machines.js';
import { finishMergeResolution, insertMergeResolution, mergeResolutionOfMachine, mergeResolutionOfProposal } from '../store/merge-resolutions.js';
import { getProject, type Project } from '../store/projects.js';
import { requireCheckpoint } from './checkpoints.js';
import { actorOfCaller, type Caller, type ServiceContext } from './context.js';
import { requestMachine } from './machines.js';
import { requireProject } from './projects.js';
import { mergeCheckpointBody, mergeResolutionBody } from './schemas.js';
import { repoMirror, withLocalRepo } from '../store/shared-storage.js';

interface MergeSides {
  project: Project;
  ours: Checkpoint;
  theirs: Checkpoint;
  message: string;
}

/** The two checkpoints of a merge, both of one project and both `ready`, and the merge's message. */
async function mergeSides(ctx: ServiceContext, id: string, body: { from: string; message?: string | undefined }): Promise<MergeSides> {
  const ours = await requireCheckpoint(ctx, id);
  const theirs = await getCheckpoint(ctx.db, body.from);
  if (!theirs || theirs.projectId !== ours.projectId) throw new NotFoundError(`from: checkpoint ${body.from} is not a checkpoint of project ${ours.projectId}`);
  if (theirs.id === ours.id) throw new InputError('from: a checkpoint cannot be merged into itself; give another checkpoint of the project', { field: 'from' });
  for (const c of [ours, theirs]) {
    if (c.status !== 'ready')
      throw new ConflictError(`checkpoint ${c.id} is ${c.status}; only ready checkpoints can be merged`, 'checkpoint_not_ready', {
        checkpointId: c.id,
        status: c.status,
      });
  }
  const project = await withLocalRepo(ctx.db, ctx.config, await requireProject(ctx, ours.projectId), [ours.commit, theirs.commit]);
  if (await isAncestor(project.repoPath, theirs.commit, ours.commit))
    throw new ConflictError(`checkpoint ${theirs.id} is already part of ${ours.id}: nothing to merge`, 'nothing_to_merge', { from: theirs.id });
  return { project, ours, theirs, message: body.message ?? `merge ${theirs.id} into ${ours.id}` };
}

/** The 409 of a merge with conflicts: each path with git's conflict kinds and its hunks. */
function conflictError(s: MergeSides, conflicts: MergeConflict[]): ConflictError {
  const paths = conflicts.map((c) => c.path);
  return new ConflictError(
    `merging ${s.theirs.id} into ${s.ours.id} conflicts in ${paths.join(', ')}; resolve by hand and merge again, or ask a machine: POST /v1/checkpoints/${s.ours.id}/merge-resolutions`,
    'merge_conflict',
    { into: s.ours.id, from: s.theirs.id, conflicts },
  );
}

/**
 * Merges checkpoint `from` into `:id` (same project). Clean: a new `merge` checkpoint whose parent
 * is `:id` and whose second parent is `from`. Conflicts: ConflictError `merge_conflict` with the
 * paths and hunks, and nothing recorded.
 */
export async function mergeCheckpoints(ctx: ServiceContext, caller: Caller, id: string, input: z.input<typeof mergeCheckpointBody>): Promise<Checkpoint> {
  const body = mergeCheckpointBody.parse(input);
  const s = await mergeSides(ctx, id, body);
  const outcome = await mergeTrees(s.project.repoPath, s.ours.commit, s.theirs.commit);
  if (!outcome.clean) throw conflictError(s, outcome.conflicts);
  const commit = await commitMerge(s.project.repoPath, outcome.tree, [s.ours.commit, s.theirs.commit], s.message, new Date());
  const checkpointId = idFromIdempotencyKey('checkpoint', caller.principal.apiKeyId, caller.idempotencyKey && `merge:${caller.idempotencyKey}`);
  return recordCheckpoint(
    ctx.db,
    s.project.repoPath,
    { id: checkpointId, projectId: s.project.id, parentId: s.ours.id, mergeParentId: s.theirs.id, machineId: null, commit, kind: 'merge', trigger: s.message },
    {
      actor: actorOfCaller(caller),
      action: 'checkpoint.merged',
      details: { parentId: s.ours.id, mergeParentId: s.theirs.id, commit, kind: 'merge', message: s.message },
    },
    repoMirror(ctx.config),
  );
}

export interface MergeResolutionStarted {
  resolutionId: string;
  status: 'resolving';
  machineId: string;
  conflictCheckpointId: string;
  proposedCheckpointId: string;
  conflicts: MergeConflict[];
}

function defaultPrompt(into: string, from: string, conflicts: MergeConflict[]): string {
  return [
    `This workspace is the merge of checkpoint ${from} into ${into}, and git could not settle these paths:`,
    ...conflicts.map((c) => `- ${c.path} (${c.types.join(', ') || 'conflict'})`),
    'Each text conflict is marked with <<<<<<< (this side), ||||||| (the common base), ======= and >>>>>>> (the other side).',
    'Resolve every conflict so that both sides’ intentions are kept, remove every conflict marker, and leave every other file as it is.',
  ].join('\n');
}

/**
 * Asks a machine to resolve the conflicts of merging `from` into `:id`: the merge is recorded with
 * its conflict markers as a `conflicted` checkpoint, a machine is requested from it through the
 * ordinary machine request (same budget, placement and audit), and when that machine completes its
 * files become the `proposed` merge checkpoint `proposedCheckpointId` (see settleMergeResolution).
 * A merge without conflicts is refused (409 no_conflicts): merge it with POST …/merge.
 */
export async function requestMergeResolution(
  ctx: ServiceContext,
  caller: Caller,
  id: string,
  input: z.input<typeof mergeResolutionBody>,
): Promise<MergeResolutionStarted> {
  const body = mergeResolutionBody.parse(input);
  const s = await mergeSides(ctx, id, body);
  const outcome = await mergeTrees(s.project.repoPath, s.ours.commit, s.theirs.commit);
  if (outcome.clean)
    throw new ConflictError(`merging ${s.theirs.id} into ${s.ours.id} has no conflicts; merge it with POST /v1/checkpoints/${s.ours.id}/merge`, 'no_conflicts');
  const paths = outcome.conflicts.map((c) => c.path);
  const resolutionId = idFromIdempotencyKey('merge-resolution', caller.principal.apiKeyId, caller.idempotencyKey);
  const machineCaller: Caller = { ...caller, idempotencyKey: resolutionId };
  const machineId = idFromIdempotencyKey('machine', caller.principal.apiKeyId, machineCaller.idempotencyKey);
  const conflictCheckpointId = idFromName('checkpoint', `${resolutionId}:conflicted`);
  const proposedCheckpointId = idFromName('checkpoint', `${resolutionId}:proposed`);
  const commit = await commitMerge(
    s.project.repoPath,
    outcome.tree,
    [s.ours.commit, s.theirs.commit],
    `${s.message} (conflicts in ${paths.join(', ')})`,
    new Date(),
  );
  await recordCheckpoint(
    ctx.db,
    s.project.repoPath,
    {
      id: conflictCheckpointId,
      projectId: s.project.id,
      parentId: s.ours.id,
      mergeParentId: s.theirs.id,
      machineId: null,
      commit,
      kind: 'merge',
      trigger: `conflicts for ${machineId}`,
      status: 'conflicted',
    },
    {
      actor: actorOfCaller(caller),
      action: 'checkpoint.merge_resolution_requested',
      details: { parentId: s.ours.id, mergeParentId: s.theirs.id, commit, paths, machineId, resolutionId, proposedCheckpointId, type: body.type },
    },
    repoMirror(ctx.config),
  );
  await insertMergeResolution(ctx.db, {
    id: resolutionId,
    projectId: s.project.id,
    conflictCheckpointId,
    proposedCheckpointId,
    machineId,
    paths,
    message: s.message,
    createdBy: caller.principal.userId,
  });
  try {
    const started = await requestMachine(ctx, machineCaller, {
      projectId: s.project.id,
      type: body.type,
      checkpointId: conflictCheckpointId,
      limits: body.limits,
      cache: false,
      ...(body.command ? { command: body.command } : {}),
      ...(body.type !== 'shell' ? { prompt: body.prompt ?? defaultPrompt(s.ours.id, s.theirs.id, outcome.conflicts) } : {}),
      ...(body.model ? { model: body.model } : {}),
      ...(body.provider ? { provider: body.provider } : {}),
    });
    if (started.id !== machineId) throw new Error(`resolving machine ${started.id} is not the expected ${machineId}`);
  } catch (err) {
    // Refused now (budget, type, placement): the resolution ends with the reason.
    if (!(await getMachine(ctx.db, machineId))) await finishMergeResolution(ctx.db, resolutionId, { status: 'failed', error: (err as Error).message });
    else await settleMergeResolution(ctx, machineId);
    throw err;
  }
  // A machine that already ended before the resolution could be seen by its last status change.
  await settleMergeResolution(ctx, machineId);
  return { resolutionId, status: 'resolving', machineId, conflictCheckpointId, proposedCheckpointId, conflicts: outcome.conflicts };
}

/**
 * When a merge-resolving machine has ended: its final files become the `proposed` merge
 * checkpoint (parents: the two merged checkpoints), or the resolution fails with the machine's
 * end. Called when the machine's final status is recorded (and once by the request, for a machine
 * that ended before its resolution was stored). Nothing for other machines; idempotent.
 */
export async function settleMergeResolution(ctx: Pick<ServiceContext, 'db' | 'log' | 'config'>, machineId: string): Promise<void> {
  const resolution = await mergeResolutionOfMachine(ctx.db, machineId);
  if (!resolution || resolution.status !== 'resolving') return;
  const machine = await getMachine(ctx.db, machineId);
  if (!machine || !FINAL_MACHINE_STATUSES.includes(machine.status as MachineStatus)) return;
  const fail = async (error: string) => {
    await ctx.db.transaction(async (trx) => {
      if (!(await finishMergeResolution(trx, resolution.id, { status: 'failed', error }))) return;
      await appendAudit(trx, {
        actor: 'system',
        action: 'checkpoint.merge_resolution_failed',
        subjectType: 'checkpoint',
        subjectId: resolution.conflictCheckpointId,
        projectId: resolution.projectId,
        details: { machineId, resolutionId: resolution.id, error },
        idempotencyKey: `merge-resolution:${resolution.id}:failed`,
      });
    });
  };
  const finalId = machine.status === 'completed' ? await latestCheckpointOfMachine(ctx.db, machineId) : null;
  if (!finalId) return fail(`machine ${machineId} ended ${machine.status}${machine.error ? `: ${machine.error}` : ''} without a resolution`);
  const [final, conflicted, found] = await Promise.all([
    getCheckpoint(ctx.db, finalId),
    getCheckpoint(ctx.db, resolution.conflictCheckpointId),
    getProject(ctx.db, resolution.projectId),
  ]);
  const [ours, theirs] = await Promise.all([getCheckpoint(ctx.db, conflicted!.parentId!), getCheckpoint(ctx.db, conflicted!.mergeParentId!)]);
  const project = await withLocalRepo(ctx.db, ctx.config, found!, [final!.commit, ours!.commit, theirs!.commit]);
  const tree = await treeOf(project!.repoPath, final!.commit);
  // Dated by the machine's final checkpoint, so a repeat writes the identical commit.
  const commit = await commitMerge(
    project!.repoPath,
    tree,
    [ours!.commit, theirs!.commit],
    `${resolution.message} (resolved by ${machineId})`,
    new Date(final!.createdAt),
  );
  await ctx.db.transaction(async (trx) => {
    await recordCheckpoint(
      trx,
      project!.repoPath,
      {
        id: resolution.proposedCheckpointId,
        projectId: project!.id,
        parentId: ours!.id,
        mergeParentId: theirs!.id,
        machineId,
        commit,
        kind: 'merge',
        trigger: `proposed by ${machineId}`,
        status: 'proposed',
      },
      { action: 'checkpoint.merge_proposed', details: { parentId: ours!.id, mergeParentId: theirs!.id, commit, machineId, resolutionId: resolution.id } },
      repoMirror(ctx.config),
    );
    await finishMergeResolution(trx, resolution.id, { status: 'proposed' });
  });
  ctx.log.info({ machineId, checkpointId: resolution.proposedCheckpointId }, 'merge resolution proposed');
}

/** A proposed merge checkpoint, or ConflictError `not_proposed`. */
async function requireProposal(ctx: ServiceContext, id: string): Promise<Checkpoint> {
  const checkpoint = await requireCheckpoint(ctx, id);
  if (checkpoint.status !== 'proposed')
    throw new ConflictError(`checkpoint ${checkpoint.id} is ${checkpoint.status}; only a proposed merge can be accepted or rejected`, 'not_proposed', {
      status: checkpoint.status,
    });
  return checkpoint;
}

/**
 * Accepts a proposed merge: it becomes an ordinary (`ready`) merge checkpoint with both parents.
 * Refused (409 merge_conflict_markers) while a path that conflicted still has a conflict marker.
 */
export async function acceptMerge(ctx: ServiceContext, caller: Caller, id: string): Promise<Checkpoint> {
  const checkpoint = await requireProposal(ctx, id);
  const project = await withLocalRepo(ctx.db, ctx.config, await requireProject(ctx, checkpoint.projectId), [checkpoint.commit]);
  const resolution = await mergeResolutionOfProposal(ctx.db, checkpoint.id);
  const paths = resolution?.paths ?? (await listFiles(project.repoPath, checkpoint.commit)).map((f) => f.path);
  const marked: string[] = [];
  for (const p of paths) if (await hasConflictMarkers(project.repoPath, checkpoint.commit, p)) marked.push(p);
  if (marked.length)
    throw new ConflictError(
      `checkpoint ${checkpoint.id} still has conflict markers in ${marked.join(', ')}; reject it, or resolve them and merge again`,
      'merge_conflict_markers',
      { paths: marked },
    );
  return decide(ctx, caller, checkpoint, 'ready', 'checkpoint.merge_accepted');
}

/** Rejects a proposed merge: it is kept, marked `rejected`. */
export async function rejectMerge(ctx: ServiceContext, caller: Caller, id: string): Promise<Checkpoint> {
  return decide(ctx, caller, await requireProposal(ctx, id), 'rejected', 'checkpoint.merge_rejected');
}

async function decide(ctx: ServiceContext, caller: Caller, checkpoint: Checkpoint, to: 'ready' | 'rejected', action: string): Promise<Checkpoint> {
  await ctx.db.transaction(async (trx) => {
    if (!(await setCheckpointStatus(trx, checkpoint.id, 'proposed', to)))
      throw new ConflictError(`checkpoint ${checkpoint.id} was decided meanwhile; read it again`, 'not_proposed');
    await appendAudit(trx, {
      actor: actorOfCaller(caller),
      action,
      subjectType: 'checkpoint',
      subjectId: checkpoint.id,
      projectId: checkpoint.projectId,
      details: { parentId: checkpoint.parentId, mergeParentId: checkpoint.mergeParentId, machineId: checkpoint.machineId, commit: checkpoint.commit },
    });
  });
  return (await getCheckpoint(ctx.db, checkpoint.id))!;
}

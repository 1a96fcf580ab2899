import type { Knex } from 'knex';
import type { Db } from './db.js';

/** A machine asked to resolve a merge's conflicts (README "Merging checkpoints"), and what came of it. */
export interface MergeResolution {
  id: string;
  projectId: string;
  /** The merge written with its conflict markers (status `conflicted`): where the machine starts. */
  conflictCheckpointId: string;
  /** The id the machine's result gets as a `proposed` merge checkpoint (it exists once the machine completed). */
  proposedCheckpointId: string;
  machineId: string;
  /** The paths that conflicted: checked for markers when the proposal is accepted. */
  paths: string[];
  message: string;
  status: MergeResolutionStatus;
  error: string | null;
  createdBy: string;
  createdAt: string;
  updatedAt: string;
}

/** `resolving` while the machine runs; `proposed` once its result is a proposed checkpoint; `failed` when it did not complete. */
export type MergeResolutionStatus = 'resolving' | 'proposed' | 'failed';

const toResolution = (r: Record<string, any>): MergeResolution => ({
  id: r.id,
  projectId: r.project_id,
  conflictCheckpointId: r.conflict_checkpoint_id,
  proposedCheckpointId: r.proposed_checkpoint_id,
  machineId: r.machine_id,
  paths: r.paths,
  message: r.message,
  status: r.status,
  error: r.error,
  createdBy: r.created_by,
  createdAt: new Date(r.created_at).toISOString(),
  updatedAt: new Date(r.updated_at).toISOString(),
});

/** Records a resolution once; a repeat with the same id finds the stored one. */
export async function insertMergeResolution(
  db: Db | Knex.Transaction,
  r: Omit<MergeResolution, 'status' | 'error' | 'createdAt' | 'updatedAt'>,
): Promise<MergeResolution> {
  await db('merge_resolutions')
    .insert({
      id: r.id,
      project_id: r.projectId,
      conflict_checkpoint_id: r.conflictCheckpointId,
      proposed_checkpoint_id: r.proposedCheckpointId,
      machine_id: r.machineId,
      paths: JSON.stringify(r.paths),
      message: r.message,
      status: 'resolving',
      created_by: r.createdBy,
    })
    .onConflict('id')
    .ignore();
  return toResolution(await db('merge_resolutions').where({ id: r.id }).first());
}

export async function mergeResolutionOfMachine(db: Db | Knex.Transaction, machineId: string): Promise<MergeResolution | null> {
  const row = await db('merge_resolutions').where({ machine_id: machineId }).first();
  return row ? toResolution(row) : null;
}

export async function mergeResolutionOfProposal(db: Db | Knex.Transaction, checkpointId: string): Promise<MergeResolution | null> {
  const row = await db('merge_resolutions').where({ proposed_checkpoint_id: checkpointId }).first();
  return row ? toResolution(row) : null;
}

/** Ends a `resolving` resolution (once: false when it already ended). */
export async function finishMergeResolution(
  db: Db | Knex.Transaction,
  id: string,
  outcome: { status: 'proposed' } | { status: 'failed'; error: string },
): Promise<boolean> {
  const n = await db('merge_resolutions')
    .where({ id, status: 'resolving' })
    .update({ status: outcome.status, error: outcome.status === 'failed' ? outcome.error : null, updated_at: new Date() });
  return n > 0;
}

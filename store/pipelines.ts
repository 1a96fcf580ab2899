import type { Knex } from 'knex';
import type { MachineInputs } from '../domain/artifacts.js';
import type { Db } from './db.js';
import { appendEvent, inTransaction } from './events.js';
import { keyOfRow, keyset, type CreatedKey, type KeysetPage } from './paging.js';

export const PIPELINE_STATUSES = ['running', 'completed', 'failed', 'cancelled'] as const;
export type PipelineStatus = (typeof PIPELINE_STATUSES)[number];
export type StepStatus = 'waiting' | 'running' | 'completed' | 'failed' | 'skipped' | 'cancelled';

export interface PipelineStep {
  id: string;
  type: string;
  command: string | null;
  prompt: string | null;
  dependsOn: string[];
  limits: { money?: string; minutes?: number; apiCalls?: number };
  /** Given at start (artifact passing); null when none. */
  inputs: MachineInputs | null;
  /** Declared artifacts; null when none. */
  artifacts: string[] | null;
  status: StepStatus;
  machineId: string | null;
  checkpointId: string | null;
  error: string | null;
  startedAt: string | null;
  endedAt: string | null;
}

export interface Pipeline {
  id: string;
  projectId: string;
  status: PipelineStatus;
  baseCheckpointId: string;
  error: string | null;
  createdBy: string;
  createdAt: string;
  endedAt: string | null;
  steps: PipelineStep[];
}

const iso = (v: unknown) => (v ? new Date(v as string).toISOString() : null);
const json = (v: unknown) => (typeof v === 'string' ? JSON.parse(v) : v);

export async function insertPipeline(
  db: Db | Knex.Transaction,
  p: {
    id: string;
    projectId: string;
    baseCheckpointId: string;
    createdBy: string;
    steps: Array<Pick<PipelineStep, 'id' | 'type' | 'command' | 'prompt' | 'dependsOn' | 'limits'> & { inputs?: MachineInputs; artifacts?: string[] }>;
  },
): Promise<void> {
  await inTransaction(db, async (trx) => {
    await insertPipelineRows(trx, p);
    await appendEvent(trx, { kind: 'pipeline.status', projectId: p.projectId, subjectId: p.id, data: { status: 'running', previous: null } });
  });
}

async function insertPipelineRows(db: Knex.Transaction, p: Parameters<typeof insertPipeline>[1]): Promise<void> {
  await db('pipelines').insert({ id: p.id, project_id: p.projectId, status: 'running', base_checkpoint_id: p.baseCheckpointId, created_by: p.createdBy });
  await db('pipeline_steps').insert(
    p.steps.map((s, position) => ({
      pipeline_id: p.id,
      step_id: s.id,
      position,
      type: s.type,
      command: s.command,
      prompt: s.prompt,
      depends_on: JSON.stringify(s.dependsOn),
      limits: JSON.stringify(s.limits),
      inputs: s.inputs ? JSON.stringify(s.inputs) : null,
      artifacts: s.artifacts ? JSON.stringify(s.artifacts) : null,
      status: 'waiting',
    })),
  );
}

export async function getPipeline(db: Db, id: string): Promise<Pipeline | null> {
  const row = await db('pipelines').where({ id }).first();
  if (!row) return null;
  const steps = await db('pipeline_steps').where({ pipeline_id: id }).orderBy('position');
  return toPipeline(row, steps);
}

/** A project's pipelines oldest first, one page (their steps read in one query). */
export async function pagePipelines(db: Db, projectId: string, page: KeysetPage): Promise<Array<{ item: Pipeline; key: CreatedKey }>> {
  const rows = await keyset(db('pipelines').where('pipelines.project_id', projectId), 'pipelines', page);
  if (!rows.length) return [];
  const steps = await db('pipeline_steps')
    .whereIn(
      'pipeline_id',
      rows.map((r: any) => r.id),
    )
    .orderBy([{ column: 'pipeline_id' }, { column: 'position' }]);
  return rows.map((r: any) => ({
    item: toPipeline(
      r,
      steps.filter((s) => s.pipeline_id === r.id),
    ),
    key: keyOfRow(r),
  }));
}

function toPipeline(row: Record<string, any>, steps: Array<Record<string, any>>): Pipeline {
  return {
    id: row.id,
    projectId: row.project_id,
    status: row.status,
    baseCheckpointId: row.base_checkpoint_id,
    error: row.error,
    createdBy: row.created_by,
    createdAt: iso(row.created_at)!,
    endedAt: iso(row.ended_at),
    steps: steps.map((s) => ({
      id: s.step_id,
      type: s.type,
      command: s.command,
      prompt: s.prompt,
      dependsOn: json(s.depends_on),
      limits: json(s.limits),
      inputs: s.inputs ? json(s.inputs) : null,
      artifacts: s.artifacts ? json(s.artifacts) : null,
      status: s.status,
      machineId: s.machine_id,
      checkpointId: s.checkpoint_id,
      error: s.error,
      startedAt: iso(s.started_at),
      endedAt: iso(s.ended_at),
    })),
  };
}

export async function updateStep(
  db: Db,
  pipelineId: string,
  stepId: string,
  u: { status: StepStatus; machineId?: string; checkpointId?: string | null; error?: string | null; started?: boolean; ended?: boolean },
): Promise<void> {
  await inTransaction(db, async (trx) => {
    const before = await trx('pipeline_steps as s')
      .join('pipelines as p', 'p.id', 's.pipeline_id')
      .where({ 's.pipeline_id': pipelineId, 's.step_id': stepId })
      .forUpdate('s')
      .first('s.status', 'p.project_id');
    if (!before) return;
    await updateStepRow(trx, pipelineId, stepId, u);
    if (before.status === u.status) return;
    await appendEvent(trx, {
      kind: 'pipeline.step',
      projectId: before.project_id,
      subjectId: pipelineId,
      data: {
        step: stepId,
        status: u.status,
        previous: before.status,
        ...(u.machineId ? { machineId: u.machineId } : {}),
        ...(u.error ? { error: u.error } : {}),
      },
    });
  });
}

async function updateStepRow(db: Knex.Transaction, pipelineId: string, stepId: string, u: Parameters<typeof updateStep>[3]): Promise<void> {
  await db('pipeline_steps')
    .where({ pipeline_id: pipelineId, step_id: stepId })
    .update({
      status: u.status,
      ...(u.machineId !== undefined ? { machine_id: u.machineId } : {}),
      ...(u.checkpointId !== undefined ? { checkpoint_id: u.checkpointId } : {}),
      ...(u.error !== undefined ? { error: u.error } : {}),
      ...(u.started ? { started_at: db.raw('coalesce(started_at, now())') } : {}),
      ...(u.ended ? { ended_at: db.raw('coalesce(ended_at, now())') } : {}),
    });
}

export async function finishPipeline(db: Db, id: string, status: PipelineStatus, error: string | null): Promise<void> {
  await inTransaction(db, async (trx) => {
    const before = await trx('pipelines').where({ id }).forUpdate().first('status', 'project_id');
    if (!before) return;
    await trx('pipelines')
      .where({ id })
      .update({ status, error, ended_at: trx.raw('coalesce(ended_at, now())') });
    if (before.status === status) return;
    await appendEvent(trx, {
      kind: 'pipeline.status',
      projectId: before.project_id,
      subjectId: id,
      data: { status, previous: before.status, ...(error ? { error } : {}) },
    });
  });
}

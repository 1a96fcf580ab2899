import type { Knex } from 'knex';
import type { Db } from './db.js';
import { appendEvent, inTransaction } from './events.js';
import { keyOfRow, keyset, type CreatedKey, type KeysetPage } from './paging.js';

import type { CompletionCriteria, ObjectiveStatus } from '../domain/objectives.js';

export type { ObjectiveStatus } from '../domain/objectives.js';

export interface Objective {
  id: string;
  projectId: string;
  title: string;
  status: ObjectiveStatus;
  priority: number;
  machineType: string;
  command: string | null;
  prompt: string | null;
  workflowId: string;
  error: string | null;
  dependsOn: string[];
  completion: CompletionCriteria;
  subtasksDone: string[];
  maxMachines: number;
  resources: string[];
  /** Latest measured progress, 0..1. */
  progress: number;
  createdBy: string;
  createdAt: string;
  completedAt: string | null;
}

function toObjective(r: Record<string, any>, dependsOn: string[]): Objective {
  return {
    id: r.id,
    projectId: r.project_id,
    title: r.title,
    status: r.status,
    priority: r.priority,
    machineType: r.machine_type,
    command: r.command,
    prompt: r.prompt,
    workflowId: r.workflow_id,
    error: r.error,
    dependsOn,
    completion: r.completion ?? {},
    subtasksDone: r.subtasks_done ?? [],
    maxMachines: r.max_machines ?? 1,
    resources: r.resources ?? [],
    progress: Number(r.progress ?? 0),
    createdBy: r.created_by,
    createdAt: new Date(r.created_at).toISOString(),
    completedAt: r.completed_at ? new Date(r.completed_at).toISOString() : null,
  };
}

export async function insertObjective(
  db: Db | Knex.Transaction,
  o: Omit<Objective, 'status' | 'error' | 'createdAt' | 'completedAt' | 'subtasksDone' | 'progress' | 'completion' | 'maxMachines' | 'resources'> &
    Partial<Pick<Objective, 'completion' | 'maxMachines' | 'resources'>>,
): Promise<void> {
  await inTransaction(db, async (trx) => {
    await insertObjectiveRows(trx, o);
    await appendEvent(trx, { kind: 'objective.status', projectId: o.projectId, subjectId: o.id, data: { status: 'waiting', previous: null } });
  });
}

async function insertObjectiveRows(db: Knex.Transaction, o: Parameters<typeof insertObjective>[1]): Promise<void> {
  await db('objectives').insert({
    id: o.id,
    project_id: o.projectId,
    title: o.title,
    status: 'waiting',
    priority: o.priority,
    machine_type: o.machineType,
    command: o.command,
    prompt: o.prompt,
    workflow_id: o.workflowId,
    completion: JSON.stringify(o.completion ?? {}),
    max_machines: o.maxMachines ?? 1,
    resources: JSON.stringify(o.resources ?? []),
    created_by: o.createdBy,
  });
  if (o.dependsOn.length) {
    await db('objective_links').insert(o.dependsOn.map((d) => ({ objective_id: o.id, depends_on_id: d })));
  }
}

async function linksOf(db: Db, ids: string[]): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>(ids.map((id) => [id, []]));
  if (!ids.length) return out;
  for (const l of await db('objective_links').whereIn('objective_id', ids).orderBy('depends_on_id')) {
    out.get(l.objective_id)!.push(l.depends_on_id);
  }
  return out;
}

export async function getObjective(db: Db, id: string): Promise<Objective | null> {
  const row = await db('objectives').where({ id }).first();
  if (!row) return null;
  return toObjective(row, (await linksOf(db, [id])).get(id)!);
}

export async function listObjectives(db: Db, projectId: string): Promise<Objective[]> {
  const rows = await db('objectives').where({ project_id: projectId }).orderBy('created_at');
  const links = await linksOf(
    db,
    rows.map((r) => r.id),
  );
  return rows.map((r) => toObjective(r, links.get(r.id)!));
}

/** A project's objectives oldest first, one page. */
export async function pageObjectives(db: Db, projectId: string, page: KeysetPage): Promise<Array<{ item: Objective; key: CreatedKey }>> {
  const rows = await keyset(db('objectives').where('objectives.project_id', projectId), 'objectives', page);
  const links = await linksOf(
    db,
    rows.map((r: any) => r.id),
  );
  return rows.map((r: any) => ({ item: toObjective(r, links.get(r.id)!), key: keyOfRow(r) }));
}

export async function objectiveStatuses(db: Db, ids: string[]): Promise<Record<string, ObjectiveStatus>> {
  const out: Record<string, ObjectiveStatus> = {};
  if (!ids.length) return out;
  for (const r of await db('objectives').whereIn('id', ids).select('id', 'status')) out[r.id] = r.status;
  return out;
}

export async function setObjectiveStatus(db: Db | Knex.Transaction, id: string, status: ObjectiveStatus, error?: string): Promise<void> {
  const done = status === 'completed' || status === 'failed' || status === 'cancelled';
  // The change and its event commit together; the same status again adds no event.
  await inTransaction(db, async (trx) => {
    const before = await trx('objectives').where({ id }).forUpdate().first('status', 'project_id');
    if (!before) return;
    await trx('objectives')
      .where({ id })
      .update({ status, error: error ?? null, ...(done ? { completed_at: trx.fn.now() } : {}) });
    if (before.status === status) return;
    await appendEvent(trx, {
      kind: 'objective.status',
      projectId: before.project_id,
      subjectId: id,
      data: { status, previous: before.status, ...(error ? { error } : {}) },
    });
  });
}

export async function machineIdsOfObjective(db: Db, id: string): Promise<string[]> {
  return (await db('machines').where({ objective_id: id }).orderBy('created_at').select('id')).map((r) => r.id);
}

/** Makes the objective wait on another one too (a link the workflow is about to accept). */
export async function insertObjectiveLink(db: Db | Knex.Transaction, objectiveId: string, dependsOnId: string): Promise<void> {
  await db('objective_links').insert({ objective_id: objectiveId, depends_on_id: dependsOnId });
}

/** The final checkpoint of the objective's last machine, or null when it has none. */
export async function finalCheckpointOfObjective(db: Db, id: string): Promise<string | null> {
  const row = await db('checkpoints as c')
    .join('machines as m', 'm.id', 'c.machine_id')
    .where({ 'm.objective_id': id, 'c.kind': 'final' })
    .orderBy('c.created_at', 'desc')
    .first('c.id');
  return row?.id ?? null;
}

/** Workflow ids of the objectives that wait on this one. */
export async function dependentWorkflowIds(db: Db, id: string): Promise<string[]> {
  const rows = await db('objective_links as l').join('objectives as o', 'o.id', 'l.objective_id').where({ 'l.depends_on_id': id }).select('o.workflow_id');
  return rows.map((r) => r.workflow_id);
}

export interface ObjectiveUpdate {
  title?: string;
  priority?: number;
  subtasks?: string[];
  maxMachines?: number;
}

/** Updates an objective's row; give the transaction that also writes its audit record. */
export async function updateObjective(db: Db | Knex.Transaction, id: string, u: ObjectiveUpdate): Promise<void> {
  // Locked: the completion read here is written back with its sub-tasks replaced.
  const row = await db('objectives').where({ id }).forUpdate().first('completion');
  await db('objectives')
    .where({ id })
    .update({
      ...(u.title !== undefined ? { title: u.title } : {}),
      ...(u.priority !== undefined ? { priority: u.priority } : {}),
      ...(u.maxMachines !== undefined ? { max_machines: u.maxMachines } : {}),
      ...(u.subtasks !== undefined ? { completion: JSON.stringify({ ...(row?.completion ?? {}), subtasks: u.subtasks }) } : {}),
    });
}

/** Ticks sub-tasks off (idempotent); returns the names now done. */
export async function markSubtasksDone(db: Db | Knex.Transaction, id: string, names: string[]): Promise<string[]> {
  const row = await db('objectives').where({ id }).forUpdate().first('subtasks_done');
  const done = [...new Set([...(row?.subtasks_done ?? []), ...names])];
  await db('objectives')
    .where({ id })
    .update({ subtasks_done: JSON.stringify(done) });
  return done;
}

export interface ProgressRecord {
  objectiveId: string;
  progress: number;
  criteria: Record<string, unknown>;
  machineId: string | null;
  checkpointId: string | null;
  note: string | null;
  recordedAt: string;
}

/** Records one measurement (once per idempotency key) and makes it the objective's latest. */
export async function recordProgress(db: Db | Knex.Transaction, key: string, p: Omit<ProgressRecord, 'recordedAt'>): Promise<void> {
  await db.transaction(async (trx) => {
    const inserted = await trx('objective_progress')
      .insert({
        objective_id: p.objectiveId,
        progress: p.progress.toFixed(4),
        criteria: JSON.stringify(p.criteria),
        machine_id: p.machineId,
        checkpoint_id: p.checkpointId,
        note: p.note,
        idempotency_key: key,
      })
      .onConflict('idempotency_key')
      .ignore()
      .returning('id');
    if (inserted.length)
      await trx('objectives')
        .where({ id: p.objectiveId })
        .update({ progress: p.progress.toFixed(4) });
  });
}

export async function progressHistory(db: Db, id: string, page?: { limit: number; afterSeq?: string }): Promise<Array<ProgressRecord & { seq: string }>> {
  const q = db('objective_progress').where({ objective_id: id }).orderBy('id');
  if (page) q.limit(page.limit);
  if (page?.afterSeq) q.where('id', '>', page.afterSeq);
  const rows = await q;
  return rows.map((r) => ({
    seq: String(r.id),
    objectiveId: r.objective_id,
    progress: Number(r.progress),
    criteria: r.criteria,
    machineId: r.machine_id,
    checkpointId: r.checkpoint_id,
    note: r.note,
    recordedAt: new Date(r.recorded_at).toISOString(),
  }));
}

import type { Knex } from 'knex';
import type { Db } from './db.js';

import type { ObjectiveStatus } from '../domain/objectives.js';

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
    createdBy: r.created_by,
    createdAt: new Date(r.created_at).toISOString(),
    completedAt: r.completed_at ? new Date(r.completed_at).toISOString() : null,
  };
}

export async function insertObjective(
  db: Db | Knex.Transaction,
  o: Omit<Objective, 'status' | 'error' | 'createdAt' | 'completedAt'>,
): Promise<void> {
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
  const links = await linksOf(db, rows.map((r) => r.id));
  return rows.map((r) => toObjective(r, links.get(r.id)!));
}

export async function objectiveStatuses(db: Db, ids: string[]): Promise<Record<string, ObjectiveStatus>> {
  const out: Record<string, ObjectiveStatus> = {};
  if (!ids.length) return out;
  for (const r of await db('objectives').whereIn('id', ids).select('id', 'status')) out[r.id] = r.status;
  return out;
}

export async function setObjectiveStatus(db: Db, id: string, status: ObjectiveStatus, error?: string): Promise<void> {
  const done = status === 'completed' || status === 'failed' || status === 'cancelled';
  await db('objectives')
    .where({ id })
    .update({ status, error: error ?? null, ...(done ? { completed_at: db.fn.now() } : {}) });
}

export async function machineIdsOfObjective(db: Db, id: string): Promise<string[]> {
  return (await db('machines').where({ objective_id: id }).orderBy('created_at').select('id')).map((r) => r.id);
}

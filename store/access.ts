import type { Db } from './db.js';

/** The kinds of project-owned resources a route can name, and the table that says whose each is. */
export const OWNED_KINDS = {
  project: { table: 'projects', column: 'id' },
  machine: { table: 'machines', column: 'project_id' },
  checkpoint: { table: 'checkpoints', column: 'project_id' },
  objective: { table: 'objectives', column: 'project_id' },
  pipeline: { table: 'pipelines', column: 'project_id' },
  payment: { table: 'payments', column: 'project_id' },
} as const;
export type OwnedKind = keyof typeof OWNED_KINDS;

/** The project a resource belongs to, or null when there is no such resource. */
export async function projectOf(db: Db, kind: OwnedKind, id: string): Promise<string | null> {
  const { table, column } = OWNED_KINDS[kind];
  const row = await db(table).where({ id }).first(`${column} as project_id`);
  return row ? (row.project_id as string) : null;
}

/** Whether a cost center exists, and whether any of `projectIds` is allocated to it. */
export async function costCenterVisibility(db: Db, id: string, projectIds: readonly string[] | null): Promise<'absent' | 'visible' | 'hidden'> {
  const center = await db('cost_centers').where({ id }).first('id');
  if (!center) return 'absent';
  if (projectIds === null) return 'visible';
  if (!projectIds.length) return 'hidden';
  const allocated = await db('projects').where({ cost_center_id: id }).whereIn('id', projectIds).first('id');
  return allocated ? 'visible' : 'hidden';
}

/** The cost centers a project-bound key can see: those its projects are allocated to. */
export async function costCentersOfProjects(db: Db, projectIds: readonly string[]): Promise<string[]> {
  if (!projectIds.length) return [];
  return (await db('projects').whereIn('id', projectIds).whereNotNull('cost_center_id').distinct('cost_center_id')).map((r) => r.cost_center_id);
}

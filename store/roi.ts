/**
 * The reads behind a project's ROI (README "ROI and feedback"): spend per machine from the ledger,
 * objectives and stand-alone machines with their text and status, and completion-check runs.
 */
import { fromNumeric } from '../domain/money.js';
import type { Db } from './db.js';

/** Spend in the project currency since `since`, per machine (key null: spend not tied to a machine). */
export async function spendByMachine(db: Db, projectId: string, since: Date): Promise<Map<string | null, bigint>> {
  const rows = await db('cost_events')
    .where({ project_id: projectId })
    .andWhere('created_at', '>=', since)
    .groupBy('machine_id')
    .select('machine_id', db.raw('sum(project_amount) as amount'));
  return new Map(rows.map((r: Record<string, any>) => [r.machine_id ?? null, fromNumeric(r.amount)]));
}

/** Objectives of the project completed since `since`. */
export async function objectivesCompletedSince(db: Db, projectId: string, since: Date): Promise<number> {
  const [row] = await db('objectives').where({ project_id: projectId, status: 'completed' }).andWhere('completed_at', '>=', since).count({ n: '*' });
  return Number(row?.n ?? 0);
}

export interface WorkItem {
  kind: 'objective' | 'machine';
  id: string;
  text: string;
  completed: boolean;
  /** The machines whose spend is the item's: an objective's machines, or the machine itself. */
  machineIds: string[];
}

/** Objectives created since `since`, and machines created since then that belong to no objective. */
export async function workItemsSince(db: Db, projectId: string, since: Date): Promise<WorkItem[]> {
  const objectives = await db('objectives')
    .where({ project_id: projectId })
    .andWhere('created_at', '>=', since)
    .orderBy('created_at')
    .select('id', 'title', 'prompt', 'command', 'status');
  const ids = objectives.map((o: Record<string, any>) => o.id as string);
  const owned = ids.length ? await db('machines').whereIn('objective_id', ids).select('id', 'objective_id') : [];
  const machinesOf = new Map<string, string[]>(ids.map((id: string) => [id, []]));
  for (const m of owned) machinesOf.get(m.objective_id)!.push(m.id);
  const standalone = await db('machines')
    .where({ project_id: projectId })
    .whereNull('objective_id')
    .andWhere('created_at', '>=', since)
    .orderBy('created_at')
    .select('id', 'prompt', 'command', 'status');
  return [
    ...objectives.map((o: Record<string, any>) => ({
      kind: 'objective' as const,
      id: o.id,
      text: [o.title, o.prompt ?? o.command ?? ''].join('\n'),
      completed: o.status === 'completed',
      machineIds: machinesOf.get(o.id)!,
    })),
    ...standalone.map((m: Record<string, any>) => ({
      kind: 'machine' as const,
      id: m.id,
      text: m.prompt ?? m.command ?? '',
      completed: m.status === 'completed',
      machineIds: [m.id],
    })),
  ];
}

/** Completion-check runs of the project's objectives recorded since `since`, oldest first. */
export async function checkRunsSince(db: Db, projectId: string, since: Date): Promise<Array<{ objectiveId: string; passed: boolean }>> {
  const rows = await db('objective_progress as p')
    .join('objectives as o', 'o.id', 'p.objective_id')
    .where('o.project_id', projectId)
    .andWhere('p.recorded_at', '>=', since)
    .whereRaw(`jsonb_typeof(p.criteria -> 'check') = 'object'`)
    .orderBy('p.id')
    .select('p.objective_id', db.raw(`(p.criteria -> 'check' ->> 'passed') = 'true' as passed`));
  return rows.map((r: Record<string, any>) => ({ objectiveId: r.objective_id, passed: r.passed === true }));
}

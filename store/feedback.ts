/**
 * User feedback on machines (README "ROI and feedback"): one rating per machine and API key, a
 * repeat replaces it (audited `machine.feedback`).
 */
import { appendAudit } from './audit.js';
import type { Db } from './db.js';

export interface MachineFeedback {
  machineId: string;
  projectId: string;
  apiKeyId: string;
  rating: number;
  comment: string | null;
  createdBy: string;
  createdAt: string;
  updatedAt: string;
}

const iso = (v: unknown) => new Date(v as string).toISOString();

function toFeedback(r: Record<string, any>): MachineFeedback {
  return {
    machineId: r.machine_id,
    projectId: r.project_id,
    apiKeyId: r.api_key_id,
    rating: Number(r.rating),
    comment: r.comment ?? null,
    createdBy: r.created_by,
    createdAt: iso(r.created_at),
    updatedAt: iso(r.updated_at),
  };
}

/** Stores the key's feedback on the machine (replacing an earlier one) with its audit record; `replaced` tells which. */
export async function putMachineFeedback(
  db: Db,
  f: { machineId: string; projectId: string; apiKeyId: string; rating: number; comment: string | null; actor: string },
): Promise<{ feedback: MachineFeedback; replaced: boolean }> {
  return db.transaction(async (trx) => {
    const previous = await trx('machine_feedback').where({ machine_id: f.machineId, api_key_id: f.apiKeyId }).forUpdate().first();
    const [row] = await trx('machine_feedback')
      .insert({
        machine_id: f.machineId,
        api_key_id: f.apiKeyId,
        project_id: f.projectId,
        rating: f.rating,
        comment: f.comment,
        created_by: f.actor,
      })
      .onConflict(['machine_id', 'api_key_id'])
      .merge({ rating: f.rating, comment: f.comment, created_by: f.actor, updated_at: trx.fn.now() })
      .returning('*');
    await appendAudit(trx, {
      actor: f.actor,
      action: 'machine.feedback',
      subjectType: 'machine',
      subjectId: f.machineId,
      projectId: f.projectId,
      details: { rating: f.rating, hasComment: f.comment !== null, replaced: previous ? { rating: Number(previous.rating) } : null },
    });
    return { feedback: toFeedback(row), replaced: Boolean(previous) };
  });
}

/** Every feedback on the machine, oldest first. */
export async function listMachineFeedback(db: Db, machineId: string): Promise<MachineFeedback[]> {
  const rows = await db('machine_feedback')
    .where({ machine_id: machineId })
    .orderBy([{ column: 'created_at' }, { column: 'api_key_id' }]);
  return rows.map(toFeedback);
}

/** Per machine of the project with feedback updated since `since`: its mean rating and how many rated it. */
export async function ratingsOfProject(db: Db, projectId: string, since: Date): Promise<Array<{ machineId: string; sum: number; count: number }>> {
  const rows = await db('machine_feedback')
    .where({ project_id: projectId })
    .andWhere('updated_at', '>=', since)
    .groupBy('machine_id')
    .orderBy('machine_id')
    .select('machine_id', db.raw('sum(rating)::int as sum'), db.raw('count(*)::int as count'));
  return rows.map((r: Record<string, any>) => ({ machineId: r.machine_id, sum: Number(r.sum), count: Number(r.count) }));
}

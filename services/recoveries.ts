import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Knex } from 'knex';
import { z } from 'zod';
import { ConflictError, InputError, NotFoundError } from '../domain/errors.js';
import { appendAudit, listAudit } from '../store/audit.js';
import { copyCheckpointsToNewRepo, retireCheckpointRefs } from '../store/git.js';
import { getProject } from '../store/projects.js';
import {
  deleteDependents,
  deleteImages,
  historyHorizon,
  rowsAt,
  upsertImages,
  WRITE_ORDER,
  type JournaledTable,
  type RowAt,
} from '../store/project-history.js';
import { idFromIdempotencyKey } from '../store/ids.js';
import { listBackups } from './backups.js';
import { actorOfCaller, type Caller, type ServiceContext } from './context.js';

/**
 * Point-in-time recovery of one project (README "Point-in-time recovery of a project"): its rows
 * of the journaled tables as of a moment, from today's rows and the change journal (migration
 * 210), either as a new project (`copy`, the default) or written over the project (`in-place`),
 * in one transaction. Nothing of any other project is read or written. History is never rewritten:
 * the audit log only grows (a copy re-records the project's audit records up to the moment under
 * the new project, both end with `project.recovered`), and an in-place recovery keeps the spend
 * after the moment as adjustment cost events, since that money stays spent at the provider.
 */
export const recoverProjectBody = z.strictObject({
  at: z.string().min(1, 'at: give a moment as an ISO 8601 time, e.g. 2026-12-07T15:30:00Z'),
  mode: z.enum(['copy', 'in-place']).default('copy'),
  dryRun: z.boolean().default(false),
});

export interface TableChanges {
  insert: number;
  update: number;
  delete: number;
}

export interface CostAdjustment {
  category: string;
  currency: string;
  amount: string;
  projectCurrency: string;
  projectAmount: string;
  events: number;
}

export interface RecoveryResult {
  id: string;
  mode: 'copy' | 'in-place';
  at: string;
  dryRun: boolean;
  sourceProjectId: string;
  /** The project holding the recovered state: the new copy (null on a dry run), or the project itself. */
  projectId: string | null;
  projectName: string;
  /** Rows per journaled table that are (or would be) inserted, updated and deleted. */
  tables: Record<string, TableChanges>;
  checkpoints: { kept: number; removed: number };
  /** In-place: the spend after the moment, kept as one cost event per category and currency. */
  adjustments: CostAdjustment[];
  /** Audit records re-recorded under the copy (in-place: 0), plus the recovery's own record. */
  auditRecords: number;
  /** The earliest moment the journal reaches back to. */
  journalSince: string;
}

const ACTIVE_MACHINE = new Set(['pending', 'provisioning', 'running', 'checkpointing', 'paused']);
const ACTIVE_OBJECTIVE = new Set(['waiting', 'paused', 'running']);
const ACTIVE_PIPELINE = new Set(['pending', 'running']);
/** The budgets' running accounting: an in-place recovery keeps it as it is (the money was spent). */
const KEPT_IN_PLACE = new Set<JournaledTable>(['budget_windows', 'reservations']);
/** Tables whose rows carry an `id` the copy gives a new value of the same kind. */
const RENAMED = new Set<JournaledTable>(['projects', 'budgets', 'checkpoints', 'objectives', 'machines', 'pipelines']);

type Field = { id?: string; status?: string; commit?: string; budget_id?: string };
const fields = (image: string): Field => JSON.parse(image) as Field;

/** What is in flight in these rows (jsonb text images), named for a message. */
function inFlight(state: Map<JournaledTable, string[]>): string[] {
  const found: string[] = [];
  for (const img of state.get('machines') ?? []) {
    const m = fields(img);
    if (ACTIVE_MACHINE.has(m.status!)) found.push(`machine ${m.id} (${m.status})`);
  }
  for (const img of state.get('reservations') ?? []) {
    const r = fields(img);
    if (r.status === 'reserved') found.push(`reservation ${r.id} (open)`);
  }
  for (const img of state.get('objectives') ?? []) {
    const o = fields(img);
    if (ACTIVE_OBJECTIVE.has(o.status!)) found.push(`objective ${o.id} (${o.status})`);
  }
  for (const img of state.get('pipelines') ?? []) {
    const p = fields(img);
    if (ACTIVE_PIPELINE.has(p.status!)) found.push(`pipeline ${p.id} (${p.status})`);
  }
  return found;
}

function parseAt(text: string, now: Date): Date {
  const at = new Date(text);
  if (!/^\d{4}-\d\d-\d\dT/.test(text) || Number.isNaN(at.getTime()))
    throw new InputError(`at: "${text}" is not an ISO 8601 time; give one such as ${now.toISOString()}`, { field: 'at' });
  if (at.getTime() > now.getTime())
    throw new InputError(`at: ${at.toISOString()} is in the future (now is ${now.toISOString()}); give a moment up to now`, {
      field: 'at',
      now: now.toISOString(),
    });
  return at;
}

/** Applies `expr` (over the jsonb `x`) to each image, in SQL, so numbers are never parsed by JS. */
async function transformImages(trx: Knex.Transaction, images: readonly string[], expr: string, bindings: readonly string[]): Promise<string[]> {
  if (!images.length) return [];
  const { rows } = await trx.raw(`select (${expr})::text as r from jsonb_array_elements(?::jsonb) with ordinality as e(x, n) order by n`, [
    ...bindings,
    `[${images.join(',')}]`,
  ]);
  return (rows as Array<{ r: string }>).map((r) => r.r);
}

/** Spend removed by an in-place recovery, per category and currency (summed in SQL, exactly). */
async function adjustmentsOf(trx: Knex.Transaction, removedCosts: readonly string[]): Promise<CostAdjustment[]> {
  if (!removedCosts.length) return [];
  const { rows } = await trx.raw(
    `select x->>'category' as category, x->>'currency' as currency, x->>'project_currency' as project_currency,
            sum((x->>'amount')::numeric)::text as amount, sum((x->>'project_amount')::numeric)::text as project_amount, count(*)::int as events
       from jsonb_array_elements(?::jsonb) x group by 1, 2, 3 order by 1, 2, 3`,
    [`[${removedCosts.join(',')}]`],
  );
  return (rows as Array<Record<string, any>>).map((r) => ({
    category: r.category,
    currency: r.currency,
    amount: r.amount,
    projectCurrency: r.project_currency,
    projectAmount: r.project_amount,
    events: Number(r.events),
  }));
}

/** Decimal text of a numeric(38,18) without trailing zeros. */
const plain = (numeric: string) => (numeric.includes('.') ? numeric.replace(/0+$/, '').replace(/\.$/, '') : numeric);

/**
 * Recovers a project to the moment `at`. 422 when the moment is in the future, before the journal
 * reaches back, before the project existed, or when work was in flight at that moment; 409 for an
 * in-place recovery while work is in flight now.
 */
export async function recoverProject(
  ctx: ServiceContext,
  caller: Caller,
  projectId: string,
  input: z.input<typeof recoverProjectBody>,
): Promise<RecoveryResult> {
  const { db, config } = ctx;
  const body = recoverProjectBody.parse(input);
  const now = new Date();
  const at = parseAt(body.at, now);
  const source = await getProject(db, projectId);
  if (!source) throw new NotFoundError(`project ${projectId} not found`);
  const since = await historyHorizon(db);
  if (at < since) {
    const backup = (await listBackups(ctx).catch(() => [])).find((b) => new Date(b.createdAt) <= at) ?? null;
    throw new InputError(
      `at: ${at.toISOString()} is before the change journal reaches back (${since.toISOString()}; AUTOVIBE_PROJECT_HISTORY_DAYS=${config.projectHistoryDays} days are kept): give a moment at or after it${
        backup ? `, or restore the whole deployment from backup ${backup.id} (${backup.createdAt}) with npm run restore` : ''
      }`,
      { field: 'at', journalSince: since.toISOString(), backup: backup?.id ?? null },
      'before_retention',
    );
  }
  const id = idFromIdempotencyKey('recovery', caller.principal.apiKeyId, caller.idempotencyKey);
  let newRepo: string | null = null;
  try {
    const outcome = await db.transaction(async (trx) => {
      // One recovery of a project at a time; its rows are read and written under this lock.
      await trx.raw('select pg_advisory_xact_lock(hashtext(?))', [`recovery:${projectId}`]);
      const rows = new Map<JournaledTable, RowAt[]>();
      for (const table of WRITE_ORDER) rows.set(table, await rowsAt(trx, table, projectId, at));
      const asOf = new Map<JournaledTable, string[]>([...rows].map(([t, list]) => [t, list.flatMap((r) => (r.asOf ? [r.asOf] : []))]));
      const current = new Map<JournaledTable, string[]>([...rows].map(([t, list]) => [t, list.flatMap((r) => (r.now ? [r.now] : []))]));
      if (!asOf.get('projects')!.length)
        throw new InputError(`at: project ${projectId} did not exist yet at ${at.toISOString()} (it was created at ${source.createdAt}); give a later moment`, {
          field: 'at',
          createdAt: source.createdAt,
        });
      if (body.mode === 'in-place') {
        const busyNow = inFlight(current);
        if (busyNow.length)
          throw new ConflictError(
            `project ${projectId} has work in flight (${busyNow.join(', ')}): terminate or wait for it before an in-place recovery, or recover a copy`,
            'project_busy',
            { inFlight: busyNow },
          );
      }
      const busyThen = inFlight(asOf);
      if (busyThen.length)
        throw new InputError(
          `at: work was in flight at ${at.toISOString()} (${busyThen.join(', ')}); a recovered project cannot resume it: give a moment when none was`,
          { field: 'at', inFlight: busyThen },
          'work_in_flight',
        );
      const auditThen = body.mode === 'copy' ? await auditUpTo(trx, projectId, at) : [];
      const result: RecoveryResult = {
        id,
        mode: body.mode,
        at: at.toISOString(),
        dryRun: body.dryRun,
        sourceProjectId: projectId,
        projectId: body.mode === 'in-place' ? projectId : null,
        projectName: body.mode === 'in-place' ? source.name : `${(JSON.parse(asOf.get('projects')![0]!) as { name: string }).name} (as of ${at.toISOString()})`,
        tables: {},
        checkpoints: { kept: asOf.get('checkpoints')!.length, removed: 0 },
        adjustments: [],
        auditRecords: auditThen.length + 1,
        journalSince: since.toISOString(),
      };
      if (body.mode === 'copy') {
        for (const table of WRITE_ORDER) result.tables[table] = { insert: asOf.get(table)!.length, update: 0, delete: 0 };
        if (body.dryRun) return { result, retire: [] as Array<{ id: string; commit: string }> };
        const copied = await writeCopy(trx, id, asOf, result.projectName, config.projectsDir);
        newRepo = copied.repoPath;
        await copyCheckpointsToNewRepo(source.repoPath, copied.repoPath, copied.pins);
        result.projectId = copied.projectId;
        for (const record of auditThen) {
          await appendAudit(trx, {
            actor: record.actor,
            action: record.action,
            subjectType: record.subjectType,
            subjectId: copied.rename(record.subjectId),
            projectId: copied.projectId,
            details: {
              ...(JSON.parse(copied.rename(JSON.stringify(record.details ?? {}))) as Record<string, unknown>),
              recoveredFrom: { recoveryId: id, projectId, seq: record.seq, at: record.at, hash: record.hash },
            },
          });
        }
        await appendAudit(trx, {
          actor: actorOfCaller(caller),
          action: 'project.recovered',
          subjectType: 'project',
          subjectId: copied.projectId,
          projectId: copied.projectId,
          details: {
            recoveryId: id,
            mode: 'copy',
            at: result.at,
            sourceProjectId: projectId,
            auditCopied: auditThen.length,
            sourceAuditThrough: auditThen.length ? { seq: auditThen.at(-1)!.seq, hash: auditThen.at(-1)!.hash } : null,
            tables: result.tables,
          },
        });
        return { result, retire: [] };
      }
      // In place: every journaled table back to the moment, but the budgets' running accounting.
      const plan = new Map<JournaledTable, { upsert: string[]; remove: string[] }>();
      const removedBudgets = new Set((rows.get('budgets') ?? []).filter((r) => r.now && !r.asOf).map((r) => fields(r.now!).id!));
      for (const table of WRITE_ORDER) {
        const list = rows.get(table)!;
        const upsert: string[] = [];
        const remove: string[] = [];
        const counts: TableChanges = { insert: 0, update: 0, delete: 0 };
        for (const r of list) {
          if (KEPT_IN_PLACE.has(table)) {
            // Kept, unless its budget goes: then it goes with it.
            if (r.now && removedBudgets.has(fields(r.now).budget_id!)) {
              remove.push(r.now);
              counts.delete++;
            }
            continue;
          }
          if (r.asOf && r.asOf === r.now) continue;
          if (r.asOf) {
            upsert.push(r.asOf);
            counts[r.now ? 'update' : 'insert']++;
          } else if (r.now) {
            remove.push(r.now);
            counts.delete++;
          }
        }
        plan.set(table, { upsert, remove });
        result.tables[table] = counts;
      }
      const removedCheckpoints = plan.get('checkpoints')!.remove.map((img) => {
        const c = fields(img);
        return { id: c.id!, commit: c.commit! };
      });
      result.checkpoints.removed = removedCheckpoints.length;
      result.adjustments = await adjustmentsOf(trx, plan.get('cost_events')!.remove);
      result.tables.cost_events!.insert += result.adjustments.length;
      if (body.dryRun) return { result, retire: [] };
      for (const table of WRITE_ORDER) await upsertImages(trx, table, plan.get(table)!.upsert);
      await deleteDependents(trx, {
        machines: plan.get('machines')!.remove.map((img) => fields(img).id!),
        checkpoints: removedCheckpoints.map((c) => c.id),
        objectives: plan.get('objectives')!.remove.map((img) => fields(img).id!),
      });
      for (const table of [...WRITE_ORDER].reverse()) await deleteImages(trx, table, plan.get(table)!.remove);
      for (const a of result.adjustments) {
        await trx('cost_events').insert({
          idempotency_key: `${id}:adjustment:${a.category}:${a.currency}:${a.projectCurrency}`,
          project_id: projectId,
          machine_id: null,
          category: a.category,
          amount: a.amount,
          currency: a.currency,
          project_amount: a.projectAmount,
          project_currency: a.projectCurrency,
          details: JSON.stringify({ recoveryId: id, adjustment: true, at: result.at, events: a.events, note: 'spent after the recovered moment; stays spent' }),
        });
      }
      await appendAudit(trx, {
        actor: actorOfCaller(caller),
        action: 'project.recovered',
        subjectType: 'project',
        subjectId: projectId,
        projectId,
        details: {
          recoveryId: id,
          mode: 'in-place',
          at: result.at,
          tables: result.tables,
          adjustments: result.adjustments.map((a) => ({ ...a, amount: plain(a.amount), projectAmount: plain(a.projectAmount) })),
          retiredCheckpointRefs: removedCheckpoints.length ? `refs/recovered/${id}/` : null,
        },
      });
      return { result, retire: removedCheckpoints };
    });
    // After the commit: the tree's removed checkpoints leave refs/checkpoints (their commits stay, under refs/recovered/).
    if (outcome.retire.length) await retireCheckpointRefs(source.repoPath, id, outcome.retire);
    const r = outcome.result;
    r.adjustments = r.adjustments.map((a) => ({ ...a, amount: plain(a.amount), projectAmount: plain(a.projectAmount) }));
    return r;
  } catch (e) {
    if (newRepo) await fs.rm(newRepo, { recursive: true, force: true });
    throw e;
  }
}

interface AuditThen {
  seq: string;
  at: string;
  hash: string;
  actor: string;
  action: string;
  subjectType: string;
  subjectId: string;
  details: Record<string, unknown>;
}

async function auditUpTo(trx: Knex.Transaction, projectId: string, at: Date): Promise<AuditThen[]> {
  const out: AuditThen[] = [];
  let afterSeq: string | undefined;
  for (;;) {
    const page = await listAudit(trx as unknown as ServiceContext['db'], { projectId, limit: 1000, ...(afterSeq ? { afterSeq } : {}) });
    for (const r of page) if (new Date(r.at) <= at) out.push(r);
    if (page.length < 1000) return out;
    afterSeq = page.at(-1)!.seq;
  }
}

/** Inserts the state as a new project: every id of a project, budget, checkpoint, objective, machine and pipeline renewed. */
async function writeCopy(
  trx: Knex.Transaction,
  recoveryId: string,
  asOf: Map<JournaledTable, string[]>,
  name: string,
  projectsDir: string,
): Promise<{ projectId: string; repoPath: string; pins: Array<{ from: string; to: string }>; rename: (text: string) => string }> {
  const ids = new Map<string, string>();
  for (const table of RENAMED) {
    for (const img of asOf.get(table)!) {
      const old = fields(img).id!;
      const dash = old.indexOf('-');
      ids.set(old, `${dash > 0 ? old.slice(0, dash) : table}-${crypto.randomUUID()}`);
    }
  }
  const pattern = new RegExp([...ids.keys()].map((k) => k.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|'), 'g');
  const rename = (text: string) => (ids.size ? text.replace(pattern, (m) => ids.get(m) ?? m) : text);
  const oldProject = fields(asOf.get('projects')![0]!).id!;
  const projectId = ids.get(oldProject)!;
  const repoPath = path.join(projectsDir, `${projectId}.git`);
  for (const table of WRITE_ORDER) {
    let images = asOf.get(table)!.map(rename);
    if (table === 'projects')
      images = await transformImages(trx, images, `x || jsonb_build_object('name', ?::text, 'repo_path', ?::text, 'created_at', now())`, [name, repoPath]);
    if (table === 'cost_events')
      images = await transformImages(trx, images, `x || jsonb_build_object('idempotency_key', ?::text || (x->>'idempotency_key'))`, [`${recoveryId}:`]);
    await upsertImages(trx, table, images, table === 'cost_events' ? ['seq'] : []);
  }
  const pins = asOf.get('checkpoints')!.map((img) => ({ from: fields(img).id!, to: ids.get(fields(img).id!)! }));
  return { projectId, repoPath, pins, rename };
}

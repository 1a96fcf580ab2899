/**
 * Budget reallocation (README "Reallocation"): settings per scope, the figures a run reads, and
 * runs with their moves. A real run's move is marked applied in the transaction that changed the
 * two budgets (`lockPlannedMove` + `markMove`), so it is applied once whoever retries.
 */
import type { Knex } from 'knex';
import type { ReallocationSettings } from '../domain/reallocation.js';
import { fromNumeric, toNumeric, type CurrencyCode } from '../domain/money.js';
import type { Db } from './db.js';

export interface StoredSettings extends ReallocationSettings {
  scopeType: string;
  scopeId: string;
  updatedBy: string;
  updatedAt: Date;
}

function toSettings(r: Record<string, any>): StoredSettings {
  return {
    scopeType: r.scope_type,
    scopeId: r.scope_id,
    enabled: r.enabled,
    dryRun: r.dry_run,
    maxStepPercent: r.max_step_percent,
    lookbackDays: r.lookback_days,
    currency: r.currency,
    minAllocation: fromNumeric(r.min_allocation),
    maxAllocation: r.max_allocation === null ? null : fromNumeric(r.max_allocation),
    updatedBy: r.updated_by,
    updatedAt: new Date(r.updated_at),
  };
}

export async function getReallocationSettings(db: Db, scopeType: string, scopeId: string): Promise<StoredSettings | null> {
  const row = await db('reallocation_settings').where({ scope_type: scopeType, scope_id: scopeId }).first();
  return row ? toSettings(row) : null;
}

export async function putReallocationSettings(
  db: Db | Knex.Transaction,
  scopeType: string,
  scopeId: string,
  s: ReallocationSettings,
  by: string,
): Promise<StoredSettings> {
  const values = {
    enabled: s.enabled,
    dry_run: s.dryRun,
    max_step_percent: s.maxStepPercent,
    lookback_days: s.lookbackDays,
    currency: s.currency,
    min_allocation: toNumeric(s.minAllocation),
    max_allocation: s.maxAllocation === null ? null : toNumeric(s.maxAllocation),
    updated_by: by,
  };
  const [row] = await db('reallocation_settings')
    .insert({ scope_type: scopeType, scope_id: scopeId, ...values })
    .onConflict(['scope_type', 'scope_id'])
    .merge({ ...values, updated_at: db.fn.now() })
    .returning('*');
  return toSettings(row);
}

/** The scopes whose reallocation is enabled, in a stable order. */
export async function enabledReallocationScopes(db: Db): Promise<Array<{ scopeType: string; scopeId: string }>> {
  const rows = await db('reallocation_settings').where({ enabled: true }).orderBy(['scope_type', 'scope_id']).select('scope_type', 'scope_id');
  return rows.map((r: Record<string, any>) => ({ scopeType: r.scope_type, scopeId: r.scope_id }));
}

/** The projects allocated to any of `costCenterIds`, by id, with their own budget (null: none). */
export async function projectsWithBudgets(
  db: Db,
  costCenterIds: readonly string[],
): Promise<Array<{ projectId: string; name: string; budgetId: string | null }>> {
  if (!costCenterIds.length) return [];
  const rows = await db('projects as p')
    .leftJoin('budgets as b', function () {
      this.on('b.scope_id', '=', 'p.id').andOnVal('b.scope_type', '=', 'project');
    })
    .whereIn('p.cost_center_id', costCenterIds)
    .orderBy('p.id')
    .select('p.id', 'p.name', 'b.id as budget_id');
  return rows.map((r: Record<string, any>) => ({ projectId: r.id, name: r.name, budgetId: r.budget_id ?? null }));
}

/** A budget's windows that start at or after `from`: spent and reserved of each. */
export async function budgetWindowsFrom(db: Db, budgetId: string, from: Date): Promise<Array<{ windowStart: Date; spent: bigint; reserved: bigint }>> {
  const rows = await db('budget_windows').where({ budget_id: budgetId }).andWhere('window_start', '>=', from).orderBy('window_start');
  return rows.map((r: Record<string, any>) => ({ windowStart: new Date(r.window_start), spent: fromNumeric(r.spent), reserved: fromNumeric(r.reserved) }));
}

/** A project's spend in its currency since `since` (its cost events). */
export async function projectSpendSince(db: Db, projectId: string, since: Date): Promise<bigint> {
  const [row] = await db('cost_events').where({ project_id: projectId }).andWhere('created_at', '>=', since).sum({ amount: 'project_amount' });
  return fromNumeric(row?.amount ?? null);
}

export type RunStatus = 'planned' | 'applied' | 'previewed' | 'skipped';
export type MoveStatus = 'planned' | 'applied' | 'preview' | 'skipped';

export interface NewRun {
  id: string;
  scopeType: string;
  scopeId: string;
  dryRun: boolean;
  trigger: string;
  workflowId: string | null;
  status: RunStatus;
  reason: string | null;
  currency: CurrencyCode | null;
  period: string | null;
  limit: bigint | null;
  allocatedBefore: bigint | null;
  allocatedAfter: bigint | null;
  settings: Record<string, unknown>;
  projects: Array<Record<string, unknown>>;
  createdBy: string;
}

export interface NewMove {
  seq: number;
  fromProjectId: string;
  toProjectId: string;
  amount: bigint;
  fromBefore: bigint;
  toBefore: bigint;
  explanation: string;
  figures: Record<string, unknown>;
  status: MoveStatus;
}

export interface StoredMove extends NewMove {
  runId: string;
  skipReason: string | null;
  appliedAt: Date | null;
}

export interface StoredRun extends NewRun {
  createdAt: Date;
  finishedAt: Date | null;
  moves: StoredMove[];
}

const num = (v: bigint | null) => (v === null ? null : toNumeric(v));
const big = (v: unknown) => (v === null || v === undefined ? null : fromNumeric(v as string));

/** Stores a run and its moves unless a run with its id exists. Returns whether this call stored it. */
export async function insertRun(db: Db, run: NewRun, moves: NewMove[]): Promise<boolean> {
  return db.transaction(async (trx) => {
    const inserted = await trx('reallocation_runs')
      .insert({
        id: run.id,
        scope_type: run.scopeType,
        scope_id: run.scopeId,
        dry_run: run.dryRun,
        trigger: run.trigger,
        workflow_id: run.workflowId,
        status: run.status,
        reason: run.reason,
        currency: run.currency,
        period: run.period,
        limit_amount: num(run.limit),
        allocated_before: num(run.allocatedBefore),
        allocated_after: num(run.allocatedAfter),
        settings: JSON.stringify(run.settings),
        projects: JSON.stringify(run.projects),
        created_by: run.createdBy,
        finished_at: run.status === 'planned' ? null : trx.fn.now(),
      })
      .onConflict('id')
      .ignore()
      .returning('id');
    if (inserted.length === 0) return false;
    if (moves.length)
      await trx('reallocation_moves').insert(
        moves.map((m) => ({
          run_id: run.id,
          seq: m.seq,
          from_project_id: m.fromProjectId,
          to_project_id: m.toProjectId,
          amount: toNumeric(m.amount),
          from_before: toNumeric(m.fromBefore),
          to_before: toNumeric(m.toBefore),
          explanation: m.explanation,
          figures: JSON.stringify(m.figures),
          status: m.status,
        })),
      );
    return true;
  });
}

function toMove(r: Record<string, any>): StoredMove {
  return {
    runId: r.run_id,
    seq: r.seq,
    fromProjectId: r.from_project_id,
    toProjectId: r.to_project_id,
    amount: fromNumeric(r.amount),
    fromBefore: fromNumeric(r.from_before),
    toBefore: fromNumeric(r.to_before),
    explanation: r.explanation,
    figures: r.figures,
    status: r.status,
    skipReason: r.skip_reason ?? null,
    appliedAt: r.applied_at ? new Date(r.applied_at) : null,
  };
}

function toRun(r: Record<string, any>, moves: StoredMove[]): StoredRun {
  return {
    id: r.id,
    scopeType: r.scope_type,
    scopeId: r.scope_id,
    dryRun: r.dry_run,
    trigger: r.trigger,
    workflowId: r.workflow_id ?? null,
    status: r.status,
    reason: r.reason ?? null,
    currency: r.currency ?? null,
    period: r.period ?? null,
    limit: big(r.limit_amount),
    allocatedBefore: big(r.allocated_before),
    allocatedAfter: big(r.allocated_after),
    settings: r.settings,
    projects: r.projects,
    createdBy: r.created_by,
    createdAt: new Date(r.created_at),
    finishedAt: r.finished_at ? new Date(r.finished_at) : null,
    moves,
  };
}

export async function getRun(db: Db, id: string): Promise<StoredRun | null> {
  const row = await db('reallocation_runs').where({ id }).first();
  if (!row) return null;
  const moves = await db('reallocation_moves').where({ run_id: id }).orderBy('seq');
  return toRun(row, moves.map(toMove));
}

/** A scope's runs, newest first. */
export async function listRuns(db: Db, scopeType: string, scopeId: string, limit: number): Promise<StoredRun[]> {
  const rows = await db('reallocation_runs')
    .where({ scope_type: scopeType, scope_id: scopeId })
    .orderBy([
      { column: 'created_at', order: 'desc' },
      { column: 'id', order: 'desc' },
    ])
    .limit(limit);
  if (!rows.length) return [];
  const moves = await db('reallocation_moves')
    .whereIn(
      'run_id',
      rows.map((r: Record<string, any>) => r.id),
    )
    .orderBy(['run_id', 'seq']);
  return rows.map((r: Record<string, any>) => toRun(r, moves.filter((m: Record<string, any>) => m.run_id === r.id).map(toMove)));
}

/** Locks a move that is still planned (null when another call already applied or skipped it). */
export async function lockPlannedMove(trx: Knex.Transaction, runId: string, seq: number): Promise<StoredMove | null> {
  const row = await trx('reallocation_moves').where({ run_id: runId, seq }).forUpdate().first();
  return row && row.status === 'planned' ? toMove(row) : null;
}

export async function markMove(trx: Knex.Transaction | Db, runId: string, seq: number, status: 'applied' | 'skipped', skipReason: string | null = null) {
  await trx('reallocation_moves')
    .where({ run_id: runId, seq })
    .update({ status, skip_reason: skipReason, ...(status === 'applied' ? { applied_at: trx.fn.now() } : {}) });
}

export async function finishRun(db: Db, id: string, status: RunStatus, allocatedAfter: bigint | null): Promise<void> {
  await db('reallocation_runs')
    .where({ id })
    .update({ status, allocated_after: num(allocatedAfter), finished_at: db.fn.now() });
}

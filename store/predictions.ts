import type { Knex } from 'knex';
import { PREDICTION_WINDOW, type PastRun, type Prediction, type PredictionScope, type Scored } from '../domain/prediction.js';
import { type CurrencyCode, fromNumeric, toNumeric } from '../domain/money.js';
import type { Db } from './db.js';

/** A machine's prediction as stored, with its actuals once it ended. */
export interface StoredPrediction extends Prediction {
  machineId: string;
  projectId: string;
  machineType: string;
  currency: CurrencyCode;
  createdAt: string;
  actual: { cost: bigint; durationSeconds: number; finalStatus: string; settledAt: string } | null;
}

/**
 * Settled runs of a machine type, newest first (at most PREDICTION_WINDOW): of one project, or of
 * every project in `currency` (the deployment). A run counts once it ended after starting; its cost
 * is its ledger total in its project's currency, its duration from start to end, its class the
 * router's when it was routed.
 */
export async function pastRuns(db: Db, f: { machineType: string; currency: CurrencyCode; projectId?: string }): Promise<PastRun[]> {
  const rows = await db('machines as m')
    .join('projects as p', 'p.id', 'm.project_id')
    .leftJoin('routing_decisions as r', 'r.machine_id', 'm.id')
    .where('m.type', f.machineType)
    .where('p.currency', f.currency)
    .whereNotNull('m.started_at')
    .whereNotNull('m.ended_at')
    .modify((q) => {
      if (f.projectId) q.where('m.project_id', f.projectId);
    })
    .select(
      'm.id',
      'r.operation_class',
      db.raw('extract(epoch from (m.ended_at - m.started_at))::float8 as duration'),
      db.raw(`coalesce((select sum(c.project_amount) from cost_events c where c.machine_id = m.id and c.project_currency = p.currency), 0) as cost`),
    )
    .orderBy([
      { column: 'm.ended_at', order: 'desc' },
      { column: 'm.id', order: 'desc' },
    ])
    .limit(PREDICTION_WINDOW);
  return rows.map((r: Record<string, any>) => ({
    cost: fromNumeric(r.cost),
    durationSeconds: Math.max(0, Number(r.duration)),
    operationClass: r.operation_class ?? null,
  }));
}

function toStored(r: Record<string, any>): StoredPrediction {
  const iso = (v: unknown) => new Date(v as string).toISOString();
  return {
    machineId: r.machine_id,
    projectId: r.project_id,
    machineType: r.machine_type,
    operationClass: r.operation_class ?? null,
    scope: r.scope as PredictionScope,
    basis: r.basis,
    currency: r.currency,
    cost: { p10: fromNumeric(r.cost_p10), p50: fromNumeric(r.cost_p50), p90: fromNumeric(r.cost_p90) },
    durationSeconds: { p10: Number(r.duration_p10), p50: Number(r.duration_p50), p90: Number(r.duration_p90) },
    createdAt: iso(r.created_at),
    actual:
      r.settled_at === null || r.settled_at === undefined
        ? null
        : { cost: fromNumeric(r.actual_cost), durationSeconds: Number(r.actual_duration_seconds), finalStatus: r.final_status, settledAt: iso(r.settled_at) },
  };
}

/** Stores a machine's prediction (a repeated request keeps the first). */
export async function recordPrediction(
  db: Db | Knex.Transaction,
  p: Prediction & { machineId: string; projectId: string; machineType: string; currency: CurrencyCode },
): Promise<void> {
  await db('machine_predictions')
    .insert({
      machine_id: p.machineId,
      project_id: p.projectId,
      machine_type: p.machineType,
      operation_class: p.operationClass,
      scope: p.scope,
      basis: p.basis,
      currency: p.currency,
      cost_p10: toNumeric(p.cost.p10),
      cost_p50: toNumeric(p.cost.p50),
      cost_p90: toNumeric(p.cost.p90),
      duration_p10: p.durationSeconds.p10,
      duration_p50: p.durationSeconds.p50,
      duration_p90: p.durationSeconds.p90,
    })
    .onConflict('machine_id')
    .ignore();
}

export async function predictionsOfMachines(db: Db, machineIds: readonly string[]): Promise<Map<string, StoredPrediction>> {
  if (!machineIds.length) return new Map();
  const rows = await db('machine_predictions').whereIn('machine_id', machineIds);
  return new Map(rows.map((r) => [r.machine_id as string, toStored(r)]));
}

/**
 * Writes a machine's actual cost and duration beside its prediction, once: only a prediction not
 * yet settled is updated. Returns whether this call wrote it (false: no prediction, or settled).
 */
export async function settlePrediction(db: Db, machineId: string, a: { cost: bigint; finalStatus: string }): Promise<boolean> {
  const updated = await db('machine_predictions')
    .where({ machine_id: machineId })
    .whereNull('settled_at')
    .update({
      actual_cost: toNumeric(a.cost),
      actual_duration_seconds: db.raw(
        `coalesce((select extract(epoch from (m.ended_at - m.started_at))::float8 from machines m where m.id = ? and m.started_at is not null), 0)`,
        [machineId],
      ),
      final_status: a.finalStatus,
      settled_at: db.fn.now(),
    });
  return updated > 0;
}

/** Settled predictions (of the given projects, when given), as the accuracy report scores them. */
export async function settledPredictions(db: Db, f: { projectId?: string; projectIds?: readonly string[] | null }): Promise<Scored[]> {
  const rows = await db('machine_predictions')
    .whereNotNull('settled_at')
    .modify((q) => {
      if (f.projectId) q.where('project_id', f.projectId);
      if (f.projectIds) q.whereIn('project_id', [...f.projectIds]);
    })
    .orderBy('machine_id');
  return rows.map((r: Record<string, any>) => {
    const s = toStored(r);
    return {
      machineType: s.machineType,
      currency: s.currency,
      predicted: {
        p10: s.cost.p10,
        p50: s.cost.p50,
        p90: s.cost.p90,
        durationP10: s.durationSeconds.p10,
        durationP50: s.durationSeconds.p50,
        durationP90: s.durationSeconds.p90,
      },
      actual: { cost: s.actual!.cost, durationSeconds: s.actual!.durationSeconds },
    };
  });
}

/** Whether the project refuses early by default (null: it never said; requests decide). */
export async function getPredictionSettings(db: Db, projectId: string): Promise<{ refuseIfPredictedOver: boolean } | null> {
  const row = await db('prediction_settings').where({ project_id: projectId }).first();
  return row ? { refuseIfPredictedOver: Boolean(row.refuse_if_predicted_over) } : null;
}

export async function putPredictionSettings(db: Db, projectId: string, s: { refuseIfPredictedOver: boolean }): Promise<void> {
  await db('prediction_settings')
    .insert({ project_id: projectId, refuse_if_predicted_over: s.refuseIfPredictedOver })
    .onConflict('project_id')
    .merge({ refuse_if_predicted_over: s.refuseIfPredictedOver, updated_at: db.fn.now() });
}

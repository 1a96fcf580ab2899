/**
 * Machine selection state (README "Machine selection (type: auto)"): the bandit's arms, the
 * routing decisions with their reasons and outcomes, and each project's knob.
 */
import type { Knex } from 'knex';
import { formatAmount, fromNumeric, type CurrencyCode } from '../domain/money.js';
import type { ArmEvidence, CandidateScore, RoutingSettings } from '../domain/routing/router.js';
import { appendAudit } from './audit.js';
import type { Db } from './db.js';
import { inTransaction } from './events.js';

export interface Arm extends ArmEvidence {
  operationClass: string;
  machineType: string;
  updatedAt: string;
}

export interface StoredRoutingDecision {
  machineId: string;
  projectId: string;
  operationClass: string;
  complexity: string | null;
  classifier: string;
  chosenType: string;
  mode: 'exploit' | 'explore' | 'only';
  reason: string;
  candidates: CandidateScore[];
  quality: number;
  exploration: number;
  createdAt: string;
  outcome: 'success' | 'failure' | null;
  finalStatus: string | null;
  /** Decimal string in `costCurrency`, once settled. */
  cost: string | null;
  costCurrency: string | null;
  settledAt: string | null;
  /** The refinement A/B arm (README "Prompt refinement"); null when there was nothing to refine with. */
  promptArm: 'refined' | 'plain' | null;
  /** The instructions added to the agent's prompt (refined arm only). */
  refinement: string | null;
}

const iso = (v: unknown) => (v ? new Date(v as string).toISOString() : null);
const json = (v: unknown) => (typeof v === 'string' ? JSON.parse(v) : v);

function toDecision(r: Record<string, any>): StoredRoutingDecision {
  return {
    machineId: r.machine_id,
    projectId: r.project_id,
    operationClass: r.operation_class,
    complexity: r.complexity ?? null,
    classifier: r.classifier,
    chosenType: r.chosen_type,
    mode: r.mode,
    reason: r.reason,
    candidates: json(r.candidates),
    quality: Number(r.quality),
    exploration: Number(r.exploration),
    createdAt: iso(r.created_at)!,
    outcome: r.outcome ?? null,
    finalStatus: r.final_status ?? null,
    cost: r.cost === null || r.cost === undefined ? null : formatAmount(fromNumeric(r.cost), r.cost_currency as CurrencyCode),
    costCurrency: r.cost_currency ?? null,
    settledAt: iso(r.settled_at),
    promptArm: r.prompt_arm ?? null,
    refinement: r.refinement ?? null,
  };
}

/** A project's knob, exploration budget and refinement share (null: the deployment's), or null when it never set them. */
export async function getRoutingSettings(db: Db, projectId: string): Promise<(RoutingSettings & { refinement: number | null }) | null> {
  const r = await db('routing_settings').where({ project_id: projectId }).first();
  return r ? { quality: Number(r.quality), exploration: Number(r.exploration), refinement: r.refinement === null ? null : Number(r.refinement) } : null;
}

/** Sets a project's knob and exploration budget, with its audit record, in one transaction. */
export async function putRoutingSettings(db: Db, projectId: string, settings: RoutingSettings & { refinement: number | null }, actor: string): Promise<void> {
  await db.transaction(async (trx) => {
    await trx('routing_settings')
      .insert({
        project_id: projectId,
        quality: settings.quality,
        exploration: settings.exploration,
        refinement: settings.refinement,
        updated_at: trx.fn.now(),
      })
      .onConflict('project_id')
      .merge();
    await appendAudit(trx, { actor, action: 'routing.settings_changed', subjectType: 'project', subjectId: projectId, projectId, details: { ...settings } });
  });
}

/** The arms of one operation class by machine type. */
export async function armEvidence(db: Db, operationClass: string): Promise<Map<string, ArmEvidence>> {
  const rows = await db('routing_arms').where({ operation_class: operationClass });
  return new Map(rows.map((r) => [r.machine_type as string, { successes: Number(r.successes), failures: Number(r.failures) }]));
}

/** Every arm that has evidence. */
export async function listArms(db: Db): Promise<Arm[]> {
  const rows = await db('routing_arms').orderBy(['operation_class', 'machine_type']);
  return rows.map((r) => ({
    operationClass: r.operation_class,
    machineType: r.machine_type,
    successes: Number(r.successes),
    failures: Number(r.failures),
    updatedAt: iso(r.updated_at)!,
  }));
}

export type NewRoutingDecision = Omit<
  StoredRoutingDecision,
  'createdAt' | 'outcome' | 'finalStatus' | 'cost' | 'costCurrency' | 'settledAt' | 'promptArm' | 'refinement'
> & { promptArm?: 'refined' | 'plain' | null; refinement?: string | null };

/**
 * Records a routing decision once per machine, with its audit record (`routing.decided`, the reason
 * in its details); a repeat for the same machine keeps the first.
 */
export async function recordRoutingDecision(db: Db | Knex.Transaction, d: NewRoutingDecision, actor: string): Promise<void> {
  await inTransaction(db, async (trx) => {
    await trx('routing_decisions')
      .insert({
        machine_id: d.machineId,
        project_id: d.projectId,
        operation_class: d.operationClass,
        complexity: d.complexity,
        classifier: d.classifier,
        chosen_type: d.chosenType,
        mode: d.mode,
        reason: d.reason,
        candidates: JSON.stringify(d.candidates),
        quality: d.quality,
        exploration: d.exploration,
        prompt_arm: d.promptArm ?? null,
        refinement: d.refinement ?? null,
      })
      .onConflict('machine_id')
      .ignore();
    await appendAudit(trx, {
      actor,
      action: 'routing.decided',
      subjectType: 'machine',
      subjectId: d.machineId,
      projectId: d.projectId,
      details: {
        operationClass: d.operationClass,
        ...(d.complexity ? { complexity: d.complexity } : {}),
        classifier: d.classifier,
        chosenType: d.chosenType,
        mode: d.mode,
        reason: d.reason,
        candidates: d.candidates.map((c) => ({ type: c.type, mean: c.mean, sample: c.sample, relativeCost: c.relativeCost, utility: c.utility })),
        ...(d.promptArm ? { promptArm: d.promptArm } : {}),
      },
      idempotencyKey: `routing:${d.machineId}:decided`,
    });
  });
}

export async function getRoutingDecision(db: Db, machineId: string): Promise<StoredRoutingDecision | null> {
  const r = await db('routing_decisions').where({ machine_id: machineId }).first();
  return r ? toDecision(r) : null;
}

/** The decisions of these machines (those that were routed), by machine id. */
export async function routingOfMachines(db: Db, machineIds: readonly string[]): Promise<Map<string, StoredRoutingDecision>> {
  if (!machineIds.length) return new Map();
  const rows = await db('routing_decisions').whereIn('machine_id', machineIds);
  return new Map(rows.map((r) => [r.machine_id as string, toDecision(r)]));
}

/** The newest decisions, of one project or of the projects a key sees (null: all). */
export async function recentDecisions(
  db: Db,
  q: { projectId?: string; projectIds: readonly string[] | null; limit: number },
): Promise<StoredRoutingDecision[]> {
  let query = db('routing_decisions').orderBy([
    { column: 'created_at', order: 'desc' },
    { column: 'machine_id', order: 'desc' },
  ]);
  if (q.projectId) query = query.where({ project_id: q.projectId });
  if (q.projectIds) query = query.whereIn('project_id', q.projectIds);
  return (await query.limit(q.limit)).map(toDecision);
}

/**
 * Applies a routed machine's outcome to its arm exactly once: the decision row is marked settled
 * only if it was not yet, and only then the arm counts a success or a failure (`success` null: the
 * run says nothing of the type, e.g. terminated by request; settled without evidence). Returns the
 * outcome applied, or null (not routed, or already settled).
 */
export async function settleRoutingDecision(
  db: Db,
  machineId: string,
  o: { finalStatus: string; success: boolean | null; cost: bigint; currency: CurrencyCode },
): Promise<{ operationClass: string; machineType: string; outcome: 'success' | 'failure' | null } | null> {
  return db.transaction(async (trx) => {
    const outcome = o.success === null ? null : o.success ? 'success' : 'failure';
    const [row] = await trx('routing_decisions')
      .where({ machine_id: machineId })
      .whereNull('settled_at')
      .update({ outcome, final_status: o.finalStatus, cost: formatAmount(o.cost, o.currency), cost_currency: o.currency, settled_at: trx.fn.now() })
      .returning(['operation_class', 'chosen_type', 'project_id']);
    if (!row) return null;
    if (o.success !== null)
      await trx('routing_arms')
        .insert({ operation_class: row.operation_class, machine_type: row.chosen_type, successes: o.success ? 1 : 0, failures: o.success ? 0 : 1 })
        .onConflict(['operation_class', 'machine_type'])
        .merge({
          successes: trx.raw('routing_arms.successes + ?', [o.success ? 1 : 0]),
          failures: trx.raw('routing_arms.failures + ?', [o.success ? 0 : 1]),
          updated_at: trx.fn.now(),
        });
    await appendAudit(trx, {
      actor: 'system',
      action: 'routing.outcome',
      subjectType: 'machine',
      subjectId: machineId,
      projectId: row.project_id,
      details: {
        operationClass: row.operation_class,
        machineType: row.chosen_type,
        outcome,
        finalStatus: o.finalStatus,
        cost: formatAmount(o.cost, o.currency),
        currency: o.currency,
      },
      idempotencyKey: `routing:${machineId}:outcome`,
    });
    return { operationClass: row.operation_class, machineType: row.chosen_type, outcome };
  });
}

/**
 * Prompt refinement state (README "Prompt refinement"): failure patterns per project, operation
 * class and machine type, each failed machine's failure summary, and the A/B report of refined vs
 * plain prompts over the routing decisions.
 */
import type { Knex } from 'knex';
import { formatAmount, fromNumeric, type CurrencyCode } from '../domain/money.js';
import type { FailurePattern, FailureSummary, PatternKind, PromptArm } from '../domain/routing/refine.js';
import type { Db } from './db.js';

export interface StoredFailureSummary extends FailureSummary {
  operationClass: string;
  machineType: string;
  finalStatus: string;
  createdAt: string;
}

const json = (v: unknown) => (typeof v === 'string' ? JSON.parse(v) : v);

/**
 * Adds patterns seen on one machine: a new pattern counts 1, a known one one more, unless this
 * machine was the last to add it (a repeat of the same machine's end counts once).
 */
export async function recordFailurePatterns(
  db: Db | Knex.Transaction,
  k: { projectId: string; operationClass: string; machineType: string; machineId: string },
  patterns: ReadonlyArray<{ kind: PatternKind; detail: string }>,
): Promise<void> {
  const seen = new Set<string>();
  const rows = patterns
    .filter((p) => p.detail && !seen.has(`${p.kind}\0${p.detail}`) && seen.add(`${p.kind}\0${p.detail}`))
    .map((p) => ({
      project_id: k.projectId,
      operation_class: k.operationClass,
      machine_type: k.machineType,
      kind: p.kind,
      detail: p.detail,
      occurrences: 1,
      last_machine_id: k.machineId,
    }));
  if (!rows.length) return;
  await db('failure_patterns')
    .insert(rows)
    .onConflict(['project_id', 'operation_class', 'machine_type', 'kind', 'detail'])
    .merge({
      occurrences: db.raw(
        'CASE WHEN failure_patterns.last_machine_id = excluded.last_machine_id THEN failure_patterns.occurrences ELSE failure_patterns.occurrences + 1 END',
      ),
      last_machine_id: db.raw('excluded.last_machine_id'),
      last_seen_at: db.fn.now(),
    });
}

/** A project's patterns of one operation class (every machine type), the most frequent first. */
export async function patternsOfClass(db: Db, projectId: string, operationClass: string, limit = 50): Promise<FailurePattern[]> {
  const rows = await db('failure_patterns')
    .where({ project_id: projectId, operation_class: operationClass })
    .orderBy([
      { column: 'occurrences', order: 'desc' },
      { column: 'last_seen_at', order: 'desc' },
      { column: 'detail', order: 'asc' },
    ])
    .limit(limit);
  return rows.map((r) => ({ kind: r.kind, detail: r.detail, machineType: r.machine_type, occurrences: Number(r.occurrences) }));
}

/** A project's patterns, the most frequent first (GET /v1/routing?projectId=). */
export async function listFailurePatterns(db: Db, projectId: string, limit: number) {
  const rows = await db('failure_patterns')
    .where({ project_id: projectId })
    .orderBy([
      { column: 'occurrences', order: 'desc' },
      { column: 'last_seen_at', order: 'desc' },
      { column: 'operation_class', order: 'asc' },
      { column: 'detail', order: 'asc' },
    ])
    .limit(limit);
  return rows.map((r) => ({
    operationClass: r.operation_class as string,
    machineType: r.machine_type as string,
    kind: r.kind as PatternKind,
    detail: r.detail as string,
    occurrences: Number(r.occurrences),
    lastMachineId: r.last_machine_id as string,
    lastSeenAt: new Date(r.last_seen_at).toISOString(),
  }));
}

/** Writes a machine's failure summary once; true when this call wrote it. */
export async function saveFailureSummary(
  db: Db,
  s: FailureSummary & { machineId: string; projectId: string; operationClass: string; machineType: string; finalStatus: string },
): Promise<boolean> {
  const rows = await db('machine_failure_summaries')
    .insert({
      machine_id: s.machineId,
      project_id: s.projectId,
      operation_class: s.operationClass,
      machine_type: s.machineType,
      final_status: s.finalStatus,
      summary: s.summary,
      details: JSON.stringify({ stopReason: s.stopReason, error: s.error, errorLines: s.errorLines, files: s.files }),
    })
    .onConflict('machine_id')
    .ignore()
    .returning('machine_id');
  return rows.length > 0;
}

/** The failure summaries of these machines (those that failed), by machine id. */
export async function failureSummariesOf(db: Db, machineIds: readonly string[]): Promise<Map<string, StoredFailureSummary>> {
  if (!machineIds.length) return new Map();
  const rows = await db('machine_failure_summaries').whereIn('machine_id', machineIds);
  return new Map(
    rows.map((r) => {
      const d = json(r.details);
      return [
        r.machine_id as string,
        {
          summary: r.summary,
          stopReason: d.stopReason ?? null,
          error: d.error ?? null,
          errorLines: d.errorLines ?? [],
          files: d.files ?? [],
          operationClass: r.operation_class,
          machineType: r.machine_type,
          finalStatus: r.final_status,
          createdAt: new Date(r.created_at).toISOString(),
        },
      ];
    }),
  );
}

export interface ArmReport {
  arm: PromptArm;
  currency: string | null;
  machines: number;
  settled: number;
  successes: number;
  failures: number;
  /** successes / (successes + failures); null before any outcome. */
  successRate: number | null;
  /** Decimal strings in `currency`: settled cost, total and per settled machine (half-even to the minor unit). */
  totalCost: string | null;
  meanCost: string | null;
}

/**
 * The refinement A/B: per arm (and currency of the settled costs) the routed machines that were in
 * it, how many settled, succeeded and failed, and their cost. Machines without patterns to refine
 * with (no arm) are left out.
 */
export async function refinementReport(db: Db, q: { projectId?: string; projectIds: readonly string[] | null }): Promise<ArmReport[]> {
  let query = db('routing_decisions')
    .whereNotNull('prompt_arm')
    .groupBy('prompt_arm', 'cost_currency')
    .select(
      'prompt_arm',
      'cost_currency',
      db.raw('count(*)::int as machines'),
      db.raw('count(settled_at)::int as settled'),
      db.raw(`count(*) filter (where outcome = 'success')::int as successes`),
      db.raw(`count(*) filter (where outcome = 'failure')::int as failures`),
      db.raw('sum(cost) as total_cost'),
    )
    .orderBy(['prompt_arm', 'cost_currency']);
  if (q.projectId) query = query.where({ project_id: q.projectId });
  if (q.projectIds) query = query.whereIn('project_id', q.projectIds);
  const rows = await query;
  return rows.map((r: Record<string, any>) => {
    const successes = Number(r.successes);
    const failures = Number(r.failures);
    const settled = Number(r.settled);
    const currency = (r.cost_currency ?? null) as CurrencyCode | null;
    const total = currency && r.total_cost !== null ? fromNumeric(r.total_cost) : null;
    return {
      arm: r.prompt_arm as PromptArm,
      currency,
      machines: Number(r.machines),
      settled,
      successes,
      failures,
      successRate: successes + failures ? Math.round((successes / (successes + failures)) * 10_000) / 10_000 : null,
      totalCost: total !== null && currency ? formatAmount(total, currency) : null,
      meanCost: total !== null && currency && settled ? formatAmount(divideHalfEven(total, BigInt(settled)), currency) : null,
    };
  });
}

function divideHalfEven(a: bigint, b: bigint): bigint {
  const q = a / b;
  const r = a % b;
  const twice = 2n * (r < 0n ? -r : r);
  if (twice < b || (twice === b && q % 2n === 0n)) return q;
  return a < 0n ? q - 1n : q + 1n;
}

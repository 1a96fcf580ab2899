import crypto from 'node:crypto';
import type { Knex } from 'knex';
import { fromNumeric, LEDGER_SCALE, toNumeric } from '../domain/money.js';
import type { AlertComparator, AlertMetric } from '../domain/alerts.js';
import { balanceAccountId, PROJECT_SCOPE, windowStart } from '../domain/budget.js';

const SCALE_FACTOR = 10n ** BigInt(LEDGER_SCALE);
import type { Conn, NewEvent } from './events.js';

/**
 * Alerts: conditions someone should look at. Each is a row in `alerts` and an `alert.<kind>`
 * event. An alert is open until its condition clears; then it is resolved (`resolved_at`,
 * `resolution`) with an `alert.resolved` event, delivered like the others. A `dedupeKey` names the
 * condition: at most one alert per key is open (a partial unique index; a concurrent second raise
 * waits for the first to commit and then inserts nothing), and the key is raised again only after
 * its open alert resolved. Conditions a change raises (a spend past a threshold, a machine pausing)
 * are raised in that change's transaction; the rest, and every resolution that is not a change of
 * its own, by the alert evaluator (services/alerts.ts), which a Temporal Schedule runs.
 */
export type AlertSeverity = 'info' | 'warning' | 'critical';
export const ALERT_SEVERITIES = ['info', 'warning', 'critical'] as const;
export const ALERT_KINDS = [
  'budget_threshold',
  'budget_forecast',
  'machine_paused',
  'payment_failed',
  'provider_unavailable',
  'webhook_disabled',
  'time_limit_exceeded',
  'rate_limit_low',
  'resource_exhaustion',
  'alert_rule',
] as const;
/** `budget_forecast`: the spend forecast says a budget runs out before its period ends (once per budget and period). */
export type AlertKind = (typeof ALERT_KINDS)[number];

export interface NewAlert {
  kind: AlertKind;
  severity: AlertSeverity;
  /** The project it concerns; null: the deployment's (only keys not bound to projects see it). */
  projectId: string | null;
  subjectId: string;
  message: string;
  data?: Record<string, unknown>;
  /** The condition: at most one open alert per key. */
  dedupeKey?: string;
}

export interface Alert {
  id: string;
  at: string;
  kind: AlertKind;
  severity: AlertSeverity;
  projectId: string | null;
  subjectId: string;
  message: string;
  data: Record<string, unknown>;
  status: 'open' | 'resolved';
  resolvedAt: string | null;
  resolution: string | null;
}

/** An open alert as the evaluator sees it: with its condition key. */
export interface OpenAlert extends Alert {
  dedupeKey: string | null;
}

/**
 * Records the alerts inside `trx` and returns their events, for the caller to append with its
 * own (appendEvents last in the transaction: it takes the feed's lock). Those whose condition
 * already has an open alert are left out.
 */
export async function recordAlerts(trx: Knex.Transaction, alerts: NewAlert[]): Promise<NewEvent[]> {
  const events: NewEvent[] = [];
  for (const a of alerts) {
    const { rows } = await trx.raw(
      `INSERT INTO alerts (kind, severity, project_id, subject_id, message, data, dedupe_key)
       VALUES (?, ?, ?, ?, ?, ?::jsonb, ?)
       ON CONFLICT (dedupe_key) WHERE resolved_at IS NULL DO NOTHING
       RETURNING id`,
      [a.kind, a.severity, a.projectId, a.subjectId, a.message, JSON.stringify(a.data ?? {}), a.dedupeKey ?? null],
    );
    const row = rows[0];
    if (!row) continue;
    events.push({
      kind: `alert.${a.kind}`,
      projectId: a.projectId,
      subjectId: a.subjectId,
      data: { alertId: String(row.id), severity: a.severity, message: a.message, ...a.data },
    });
  }
  return events;
}

/**
 * Resolves the open alerts picked by `which` (ids, or condition keys) inside `trx` with
 * `resolution` (why the condition cleared) and returns their `alert.resolved` events, for the
 * caller to append. Already resolved ones are left out, so resolving twice tells it once.
 */
export async function resolveAlerts(
  trx: Knex.Transaction,
  which: { ids?: readonly string[]; keys?: readonly string[] },
  resolution: string,
): Promise<NewEvent[]> {
  if (!which.ids?.length && !which.keys?.length) return [];
  const q = trx('alerts').whereNull('resolved_at');
  q.where((w) => {
    if (which.ids?.length) w.orWhereIn('id', [...which.ids]);
    if (which.keys?.length) w.orWhereIn('dedupe_key', [...which.keys]);
  });
  const rows = await q.update({ resolved_at: trx.fn.now(), resolution }).returning('*');
  return rows
    .sort((a, b) => Number(a.id) - Number(b.id))
    .map((r) => {
      const a = toAlert(r);
      return {
        kind: 'alert.resolved',
        projectId: a.projectId,
        subjectId: a.subjectId,
        data: { alertId: a.id, alertKind: a.kind, severity: a.severity, message: `resolved: ${a.message}`, resolution, raisedAt: a.at },
      };
    });
}

const toAlert = (r: Record<string, any>): Alert => ({
  id: String(r.id),
  at: new Date(r.at).toISOString(),
  kind: r.kind,
  severity: r.severity,
  projectId: r.project_id,
  subjectId: r.subject_id,
  message: r.message,
  data: typeof r.data === 'string' ? JSON.parse(r.data) : r.data,
  status: r.resolved_at ? 'resolved' : 'open',
  resolvedAt: r.resolved_at ? new Date(r.resolved_at).toISOString() : null,
  resolution: r.resolution ?? null,
});

/** The open alerts of `kinds`, oldest first, with their condition keys. */
export async function openAlerts(db: Conn, kinds: readonly AlertKind[]): Promise<OpenAlert[]> {
  const rows = await db('alerts')
    .whereNull('resolved_at')
    .whereIn('kind', [...kinds])
    .orderBy('id');
  return rows.map((r) => ({ ...toAlert(r), dedupeKey: r.dedupe_key ?? null }));
}

/** Alerts newest first, one page (`limit` rows after the `before` id); `projectIds` narrows to a key's projects. */
export async function pageAlerts(
  db: Conn,
  f: { limit: number; before?: string; projectId?: string; projectIds: readonly string[] | null; status?: 'open' | 'resolved'; kind?: AlertKind },
): Promise<Alert[]> {
  const q = db('alerts').orderBy('id', 'desc').limit(f.limit);
  if (f.before) q.where('id', '<', f.before);
  if (f.projectId) q.where('project_id', f.projectId);
  if (f.status === 'open') q.whereNull('resolved_at');
  if (f.status === 'resolved') q.whereNotNull('resolved_at');
  if (f.kind) q.where('kind', f.kind);
  // A key bound to projects sees theirs only, never the deployment's (project-less) alerts.
  if (f.projectIds !== null) q.whereIn('project_id', [...f.projectIds]);
  return (await q).map(toAlert);
}

/** A project's own threshold on a metric (POST /v1/projects/:id/alert-rules). */
export interface AlertRule {
  id: string;
  projectId: string;
  name: string;
  metric: AlertMetric;
  comparator: AlertComparator;
  /** 18 decimals, like money: a threshold on a count is a whole number of them. */
  threshold: bigint;
  severity: AlertSeverity;
  createdBy: string;
  createdAt: string;
}

const toRule = (r: Record<string, any>): AlertRule => ({
  id: r.id,
  projectId: r.project_id,
  name: r.name,
  metric: r.metric,
  comparator: r.comparator,
  threshold: fromNumeric(r.threshold),
  severity: r.severity,
  createdBy: r.created_by,
  createdAt: new Date(r.created_at).toISOString(),
});

export async function insertAlertRule(db: Conn, r: Omit<AlertRule, 'id' | 'createdAt'>): Promise<AlertRule> {
  const [row] = await db('alert_rules')
    .insert({
      id: `alert-rule-${crypto.randomUUID()}`,
      project_id: r.projectId,
      name: r.name,
      metric: r.metric,
      comparator: r.comparator,
      threshold: toNumeric(r.threshold),
      severity: r.severity,
      created_by: r.createdBy,
    })
    .returning('*');
  return toRule(row);
}

export async function listAlertRules(db: Conn, f: { projectId?: string } = {}): Promise<AlertRule[]> {
  const q = db('alert_rules').orderBy('created_at').orderBy('id');
  if (f.projectId) q.where('project_id', f.projectId);
  return (await q).map(toRule);
}

export async function countAlertRules(db: Conn, projectId: string): Promise<number> {
  const [row] = await db('alert_rules').where('project_id', projectId).count({ n: '*' });
  return Number(row?.n ?? 0);
}

/** Deletes a rule and resolves its open alert in one transaction; false when the project has no such rule. */
export async function deleteAlertRule(trx: Knex.Transaction, projectId: string, id: string): Promise<{ deleted: boolean; events: NewEvent[] }> {
  const n = await trx('alert_rules').where({ project_id: projectId, id }).del();
  if (!n) return { deleted: false, events: [] };
  return { deleted: true, events: await resolveAlerts(trx, { keys: [ruleAlertKey(id)] }, 'the rule was deleted') };
}

export const ruleAlertKey = (ruleId: string) => `rule:${ruleId}`;

/** The latest rate-limit headers a provider answered a project's machines with. */
export interface RateLimitSample {
  projectId: string;
  provider: string;
  machineId: string | null;
  at: Date;
  requestsRemaining: number | null;
  requestsLimit: number | null;
  tokensRemaining: number | null;
  tokensLimit: number | null;
  resetAt: Date | null;
}

export async function saveRateLimitSample(db: Conn, s: RateLimitSample): Promise<void> {
  await db('rate_limit_samples')
    .insert({
      project_id: s.projectId,
      provider: s.provider,
      machine_id: s.machineId,
      at: s.at,
      requests_remaining: s.requestsRemaining,
      requests_limit: s.requestsLimit,
      tokens_remaining: s.tokensRemaining,
      tokens_limit: s.tokensLimit,
      reset_at: s.resetAt,
    })
    .onConflict(['project_id', 'provider'])
    .merge();
}

const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));

export async function listRateLimitSamples(db: Conn): Promise<RateLimitSample[]> {
  const rows = await db('rate_limit_samples').orderBy(['project_id', 'provider']);
  return rows.map((r) => ({
    projectId: r.project_id,
    provider: r.provider,
    machineId: r.machine_id ?? null,
    at: new Date(r.at),
    requestsRemaining: num(r.requests_remaining),
    requestsLimit: num(r.requests_limit),
    tokensRemaining: num(r.tokens_remaining),
    tokensLimit: num(r.tokens_limit),
    resetAt: r.reset_at ? new Date(r.reset_at) : null,
  }));
}

/** The latest memory and disk use a running machine's sandbox was seen at, beside its limits. */
export interface ResourceSample {
  machineId: string;
  projectId: string;
  at: Date;
  memoryBytes: number | null;
  memoryLimitBytes: number | null;
  diskBytes: number | null;
  diskLimitBytes: number | null;
}

export async function saveResourceSample(db: Conn, s: ResourceSample): Promise<void> {
  await db('resource_samples')
    .insert({
      machine_id: s.machineId,
      project_id: s.projectId,
      at: s.at,
      memory_bytes: s.memoryBytes,
      memory_limit_bytes: s.memoryLimitBytes,
      disk_bytes: s.diskBytes,
      disk_limit_bytes: s.diskLimitBytes,
    })
    .onConflict('machine_id')
    .merge();
}

/** Samples of the machines still running (the others' samples say nothing any more). */
export async function runningResourceSamples(db: Conn): Promise<ResourceSample[]> {
  const rows = await db('resource_samples as s')
    .join('machines as m', 'm.id', 's.machine_id')
    .where('m.status', 'running')
    .select('s.*')
    .orderBy('s.machine_id');
  return rows.map((r) => ({
    machineId: r.machine_id,
    projectId: r.project_id,
    at: new Date(r.at),
    memoryBytes: num(r.memory_bytes),
    memoryLimitBytes: num(r.memory_limit_bytes),
    diskBytes: num(r.disk_bytes),
    diskLimitBytes: num(r.disk_limit_bytes),
  }));
}

/**
 * Running machines with when their current run started and its time limit in minutes. A machine
 * resumed after a pause runs a new segment: it counts from its latest resume, with the minutes of
 * its latest extension when that gave some (the workflow's own clock does the same).
 */
export async function runningMachineLimits(db: Conn): Promise<Array<{ id: string; projectId: string; startedAt: Date | null; minutes: unknown }>> {
  const rows = await db('machines').where('status', 'running').select('id', 'project_id', 'started_at', 'limits').orderBy('id');
  if (!rows.length) return [];
  const ids = rows.map((r) => r.id as string);
  const resumes = await db('events')
    .where('kind', 'machine.status')
    .whereIn('subject_id', ids)
    .whereRaw("data->>'previous' = 'paused'")
    .groupBy('subject_id')
    .select('subject_id', db.raw('max(at) as at'));
  const resumedAt = new Map(resumes.map((r: Record<string, any>) => [r.subject_id as string, new Date(r.at)]));
  const extensions = await db('audit_log')
    .where('action', 'machine.extend_requested')
    .whereIn('subject_id', ids)
    .orderBy('seq')
    .select('subject_id', 'details');
  const extendedMinutes = new Map<string, number>();
  for (const e of extensions) {
    const d = typeof e.details === 'string' ? JSON.parse(e.details) : (e.details ?? {});
    if (typeof d.minutes === 'number') extendedMinutes.set(e.subject_id, d.minutes);
  }
  return rows.map((r) => {
    const limits = typeof r.limits === 'string' ? JSON.parse(r.limits) : (r.limits ?? {});
    const resumed = resumedAt.get(r.id);
    return {
      id: r.id,
      projectId: r.project_id,
      startedAt: resumed ?? (r.started_at ? new Date(r.started_at) : null),
      minutes: resumed ? (extendedMinutes.get(r.id) ?? limits.minutes) : limits.minutes,
    };
  });
}

/**
 * A project's metric now, scaled like money (18 decimals: a count of 3 is 3 × 10^18, 75 % is
 * 75 × 10^18), or null when the project has nothing it could be measured on (no budget, no
 * prepaid balance).
 */
export async function projectMetric(db: Conn, projectId: string, metric: AlertMetric, now: Date): Promise<bigint | null> {
  const count = async (q: Knex.QueryBuilder) => BigInt(Number((await q.count({ n: '*' }))[0]?.n ?? 0)) * SCALE_FACTOR;
  switch (metric) {
    case 'spend_today': {
      const [row] = await db('cost_events')
        .where('project_id', projectId)
        .where('created_at', '>=', windowStart('daily', now))
        .sum({ total: 'project_amount' });
      return fromNumeric(row?.total ?? 0);
    }
    case 'spend_period_percent': {
      const b = await db('budgets').where({ scope_type: PROJECT_SCOPE, scope_id: projectId }).first();
      if (!b) return null;
      const limit = fromNumeric(b.limit_amount);
      if (limit <= 0n) return null;
      const w = await db('budget_windows')
        .where({ budget_id: b.id, window_start: windowStart(b.period, now) })
        .first('spent', 'reserved');
      return ((fromNumeric(w?.spent) + fromNumeric(w?.reserved)) * 100n * SCALE_FACTOR) / limit;
    }
    case 'machines_running':
      return count(db('machines').where({ project_id: projectId, status: 'running' }));
    case 'machines_failed_last_hour':
      return count(
        db('machines')
          .where({ project_id: projectId, status: 'failed' })
          .where('ended_at', '>=', new Date(now.getTime() - 3_600_000)),
      );
    case 'reservations_open':
      return count(db('reservations').where({ project_id: projectId, status: 'reserved' }));
    case 'balance_remaining': {
      const account = await db('budgets')
        .where({ id: balanceAccountId(projectId) })
        .first('limit_amount');
      if (!account) return null;
      const w = await db('budget_windows')
        .where({ budget_id: balanceAccountId(projectId), window_start: new Date(0) })
        .first('spent');
      return fromNumeric(account.limit_amount) - fromNumeric(w?.spent);
    }
  }
}

/** What the evaluator needs to know to resolve a budget's threshold or forecast alert: the budget now, or null when it is gone. */
export async function budgetForAlert(
  db: Conn,
  budgetId: string,
): Promise<{ period: string; limit: bigint; alertPercents: number[]; scopeType: string; scopeId: string } | null> {
  const b = await db('budgets').where({ id: budgetId }).first();
  if (!b) return null;
  return { period: b.period, limit: fromNumeric(b.limit_amount), alertPercents: b.alert_percents ?? [], scopeType: b.scope_type, scopeId: b.scope_id };
}

/** Statuses of the machines, providers, webhook endpoints and payments named (for resolving their alerts); gone ones are absent. */
export async function subjectStatuses(db: Conn, table: 'machines' | 'webhook_endpoints', ids: readonly string[]): Promise<Map<string, string>> {
  if (!ids.length) return new Map();
  const rows = await db(table)
    .whereIn('id', [...ids])
    .select('id', 'status');
  return new Map(rows.map((r) => [r.id as string, r.status as string]));
}

export async function availableProviders(db: Conn): Promise<Set<string>> {
  const rows = await db('compute_providers').where('available', true).select('id');
  return new Set(rows.map((r) => r.id as string));
}

/** Whether a payment of the project succeeded after `since` (a failed payment's alert then resolves). */
export async function paymentSucceededSince(db: Conn, projectId: string | null, since: string): Promise<boolean> {
  if (!projectId) return false;
  const row = await db('payments').where({ project_id: projectId, status: 'succeeded' }).where('created_at', '>', since).first('id');
  return Boolean(row);
}

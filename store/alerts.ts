import type { Knex } from 'knex';
import type { Conn, NewEvent } from './events.js';

/**
 * Alerts: conditions someone should look at. Each is a row in `alerts` and an `alert.<kind>`
 * event, both written in the transaction of the change that raised it, so an alert exists exactly
 * when its change committed. An alert with a `dedupeKey` is raised at most once: the key is unique,
 * and a concurrent second raise waits for the first to commit and then inserts nothing.
 */
export type AlertSeverity = 'info' | 'warning' | 'critical';
export const ALERT_KINDS = ['budget_threshold', 'budget_forecast', 'machine_paused', 'payment_failed', 'provider_unavailable', 'webhook_disabled'] as const;
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
  /** At most one alert per key, ever. */
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
}

/**
 * Records the alerts inside `trx` and returns their events, for the caller to append with its
 * own (appendEvents last in the transaction: it takes the feed's lock). Deduplicated ones are left out.
 */
export async function recordAlerts(trx: Knex.Transaction, alerts: NewAlert[]): Promise<NewEvent[]> {
  const events: NewEvent[] = [];
  for (const a of alerts) {
    const [row] = await trx('alerts')
      .insert({
        kind: a.kind,
        severity: a.severity,
        project_id: a.projectId,
        subject_id: a.subjectId,
        message: a.message,
        data: JSON.stringify(a.data ?? {}),
        dedupe_key: a.dedupeKey ?? null,
      })
      .onConflict('dedupe_key')
      .ignore()
      .returning('id');
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

const toAlert = (r: Record<string, any>): Alert => ({
  id: String(r.id),
  at: new Date(r.at).toISOString(),
  kind: r.kind,
  severity: r.severity,
  projectId: r.project_id,
  subjectId: r.subject_id,
  message: r.message,
  data: typeof r.data === 'string' ? JSON.parse(r.data) : r.data,
});

/** Alerts newest first, one page (`limit` rows after the `before` id); `projectIds` narrows to a key's projects. */
export async function pageAlerts(db: Conn, f: { limit: number; before?: string; projectId?: string; projectIds: readonly string[] | null }): Promise<Alert[]> {
  const q = db('alerts').orderBy('id', 'desc').limit(f.limit);
  if (f.before) q.where('id', '<', f.before);
  if (f.projectId) q.where('project_id', f.projectId);
  // A key bound to projects sees theirs only, never the deployment's (project-less) alerts.
  if (f.projectIds !== null) q.whereIn('project_id', [...f.projectIds]);
  return (await q).map(toAlert);
}

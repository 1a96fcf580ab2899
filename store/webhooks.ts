import crypto from 'node:crypto';
import type { Knex } from 'knex';
import type { WebhookKind } from '../domain/webhooks.js';
import { SECRET_PREFIX } from '../domain/webhooks.js';
import { recordAlerts } from './alerts.js';
import type { Db } from './db.js';
import { appendEvents, eventsAfter, lastEventSeq, type Conn, type EventRecord } from './events.js';
import { openOrNull, openSecret, sealOrNull, sealSecret, webhookBotTokenContext, webhookSigningContext } from './secrets.js';

/**
 * Outgoing webhook endpoints, their deliveries and each delivery's attempts. An endpoint's
 * `cursor` is the last event seq it has handled: the dispatcher delivers what comes after it, in
 * order, and moves the cursor in the transaction that records the delivery's outcome.
 */
export type WebhookStatus = 'active' | 'disabled';
export type DeliveryStatus = 'pending' | 'succeeded' | 'failed';

export interface WebhookEndpoint {
  id: string;
  projectId: string | null;
  kind: WebhookKind;
  url: string;
  /** The Slack channel a `slack-bot` endpoint posts to (null for other kinds). */
  channel: string | null;
  description: string;
  eventKinds: string[];
  status: WebhookStatus;
  disabledReason: string | null;
  disabledAt: string | null;
  cursor: number;
  failingSince: string | null;
  consecutiveFailures: number;
  createdBy: string;
  createdAt: string;
  updatedAt: string;
}

export interface WebhookAttempt {
  attempt: number;
  at: string;
  statusCode: number | null;
  durationMs: number;
  error: string | null;
  responseExcerpt: string | null;
}

export interface WebhookDelivery {
  id: string;
  endpointId: string;
  eventSeq: number;
  messageId: string;
  redeliveryOf: string | null;
  status: DeliveryStatus;
  attempts: number;
  createdAt: string;
  endedAt: string | null;
  /** Oldest first. */
  attemptLog: WebhookAttempt[];
}

const iso = (v: unknown) => (v ? new Date(v as string).toISOString() : null);

const toEndpoint = (r: Record<string, any>): WebhookEndpoint => ({
  id: r.id,
  projectId: r.project_id,
  kind: r.kind,
  url: r.url,
  channel: r.channel ?? null,
  description: r.description,
  eventKinds: r.event_kinds,
  status: r.status,
  disabledReason: r.disabled_reason,
  disabledAt: iso(r.disabled_at),
  cursor: Number(r.cursor),
  failingSince: iso(r.failing_since),
  consecutiveFailures: r.consecutive_failures,
  createdBy: r.created_by,
  createdAt: iso(r.created_at)!,
  updatedAt: iso(r.updated_at)!,
});

/** A new signing secret, `whsec_` and 32 random bytes in base64 (Standard Webhooks). */
export const newWebhookSecret = () => SECRET_PREFIX + crypto.randomBytes(32).toString('base64');

/** Makes an endpoint that receives the events after the current last one; returns it with its secret. */
export async function insertWebhookEndpoint(
  db: Db,
  e: {
    id: string;
    projectId: string | null;
    kind: WebhookKind;
    url: string;
    description: string;
    eventKinds: string[];
    createdBy: string;
    /** `slack-bot` only. */
    slackBot?: { channel: string; token: string };
  },
): Promise<{ endpoint: WebhookEndpoint; secret: string }> {
  const secret = newWebhookSecret();
  const cursor = await lastEventSeq(db);
  const [row] = await db('webhook_endpoints')
    .insert({
      id: e.id,
      project_id: e.projectId,
      kind: e.kind,
      url: e.url,
      description: e.description,
      event_kinds: e.eventKinds,
      secret: sealSecret(secret, webhookSigningContext(e.id)),
      channel: e.slackBot?.channel ?? null,
      bot_token: sealOrNull(e.slackBot?.token, webhookBotTokenContext(e.id)),
      cursor,
      created_by: e.createdBy,
    })
    .onConflict('id')
    .ignore()
    .returning('*');
  // A repeated request (same Idempotency-Key) names the endpoint it made.
  if (!row) {
    const existing = (await db('webhook_endpoints').where({ id: e.id }).first())!;
    return { endpoint: toEndpoint(existing), secret: openSecret(existing.secret, webhookSigningContext(e.id)) };
  }
  return { endpoint: toEndpoint(row), secret };
}

export async function getWebhookEndpoint(db: Conn, id: string): Promise<WebhookEndpoint | null> {
  const row = await db('webhook_endpoints').where({ id }).first();
  return row ? toEndpoint(row) : null;
}

/** The secrets that sign now: the current one, and the previous one during its grace period after a rotation. */
export async function signingSecrets(db: Conn, id: string, now: Date): Promise<string[] | null> {
  const row = await db('webhook_endpoints').where({ id }).first('secret', 'previous_secret', 'previous_secret_until');
  if (!row) return null;
  const previousValid = row.previous_secret && row.previous_secret_until && new Date(row.previous_secret_until) > now;
  const context = webhookSigningContext(id);
  return previousValid ? [openSecret(row.secret, context), openSecret(row.previous_secret, context)] : [openSecret(row.secret, context)];
}

/** The bot token of a `slack-bot` endpoint: read only by the delivery activity. */
export async function slackBotToken(db: Conn, id: string): Promise<string | null> {
  const row = await db('webhook_endpoints').where({ id }).first('bot_token');
  return openOrNull(row?.bot_token, webhookBotTokenContext(id));
}

/** Endpoints by id; `projectIds` narrows to a key's projects (their endpoints, never the deployment's). */
export async function listWebhookEndpoints(
  db: Db,
  f: { limit: number; afterId?: string; projectId?: string; projectIds: readonly string[] | null },
): Promise<WebhookEndpoint[]> {
  const q = db('webhook_endpoints').orderBy('id').limit(f.limit);
  if (f.afterId) q.where('id', '>', f.afterId);
  if (f.projectId) q.where('project_id', f.projectId);
  if (f.projectIds !== null) q.whereIn('project_id', [...f.projectIds]);
  return (await q).map(toEndpoint);
}

export interface WebhookChanges {
  url?: string;
  /** `slack-bot` only. */
  channel?: string;
  /** `slack-bot` only: a new bot token. */
  botToken?: string;
  description?: string;
  eventKinds?: string[];
  /** true: re-enabled (failures forgotten); false: disabled by hand. */
  enabled?: boolean;
}

export async function updateWebhookEndpoint(db: Db, id: string, c: WebhookChanges, now: Date): Promise<WebhookEndpoint | null> {
  const patch: Record<string, unknown> = { updated_at: now };
  if (c.url !== undefined) patch.url = c.url;
  if (c.channel !== undefined) patch.channel = c.channel;
  if (c.botToken !== undefined) patch.bot_token = sealSecret(c.botToken, webhookBotTokenContext(id));
  if (c.description !== undefined) patch.description = c.description;
  if (c.eventKinds !== undefined) patch.event_kinds = c.eventKinds;
  if (c.enabled === true) Object.assign(patch, { status: 'active', disabled_reason: null, disabled_at: null, failing_since: null, consecutive_failures: 0 });
  if (c.enabled === false) Object.assign(patch, { status: 'disabled', disabled_reason: 'disabled by hand', disabled_at: now });
  const [row] = await db('webhook_endpoints').where({ id }).update(patch).returning('*');
  return row ? toEndpoint(row) : null;
}

/** A new secret; the old one keeps signing (a second signature) until `graceUntil`. */
export async function rotateWebhookSecret(db: Db, id: string, graceUntil: Date): Promise<string | null> {
  const secret = newWebhookSecret();
  const updated = await db('webhook_endpoints')
    .where({ id })
    .update({
      previous_secret: db.ref('secret'),
      previous_secret_until: graceUntil,
      secret: sealSecret(secret, webhookSigningContext(id)),
      updated_at: new Date(),
    });
  return updated ? secret : null;
}

export async function deleteWebhookEndpoint(db: Db, id: string): Promise<boolean> {
  return (await db('webhook_endpoints').where({ id }).delete()) > 0;
}

/** The endpoint's next events to deliver (after its cursor, of its project and kinds), oldest first. */
export async function pendingWebhookEvents(db: Db, endpoint: WebhookEndpoint, limit: number): Promise<EventRecord[]> {
  const kinds = endpoint.eventKinds.includes('*') ? [] : endpoint.eventKinds;
  return eventsAfter(db, endpoint.cursor, { projectIds: null, ...(endpoint.projectId ? { projectId: endpoint.projectId } : {}), kinds }, limit);
}

export async function getEvent(db: Conn, seq: number): Promise<EventRecord | null> {
  const [e] = await eventsAfter(db, seq - 1, { projectIds: null }, 1);
  return e && e.seq === seq ? e : null;
}

const toDelivery = (r: Record<string, any>, attempts: WebhookAttempt[]): WebhookDelivery => ({
  id: String(r.id),
  endpointId: r.endpoint_id,
  eventSeq: Number(r.event_seq),
  messageId: r.message_id,
  redeliveryOf: r.redelivery_of === null ? null : String(r.redelivery_of),
  status: r.status,
  attempts: r.attempts,
  createdAt: iso(r.created_at)!,
  endedAt: iso(r.ended_at),
  attemptLog: attempts,
});

const toAttempt = (r: Record<string, any>): WebhookAttempt => ({
  attempt: r.attempt,
  at: iso(r.at)!,
  statusCode: r.status_code,
  durationMs: r.duration_ms,
  error: r.error,
  responseExcerpt: r.response_excerpt,
});

/** The first delivery of an event to an endpoint (made once; a retry finds it). */
export async function firstDelivery(db: Db, endpointId: string, seq: number, messageId: string): Promise<WebhookDelivery> {
  await db('webhook_deliveries')
    .insert({ endpoint_id: endpointId, event_seq: seq, message_id: messageId })
    .onConflict(db.raw('(endpoint_id, event_seq) WHERE redelivery_of IS NULL'))
    .ignore();
  const row = await db('webhook_deliveries').where({ endpoint_id: endpointId, event_seq: seq }).whereNull('redelivery_of').first();
  return toDelivery(row, []);
}

/** A manual redelivery of `deliveryId`'s event: a new delivery with the same message id. */
export async function insertRedelivery(db: Db, endpointId: string, deliveryId: string): Promise<WebhookDelivery | null> {
  const original = await db('webhook_deliveries').where({ id: deliveryId, endpoint_id: endpointId }).first();
  if (!original) return null;
  const [row] = await db('webhook_deliveries')
    .insert({ endpoint_id: endpointId, event_seq: original.event_seq, message_id: original.message_id, redelivery_of: original.id })
    .returning('*');
  return toDelivery(row, []);
}

export async function getDelivery(db: Conn, endpointId: string, deliveryId: string): Promise<WebhookDelivery | null> {
  if (!/^\d{1,18}$/.test(deliveryId)) return null;
  const row = await db('webhook_deliveries').where({ id: deliveryId, endpoint_id: endpointId }).first();
  if (!row) return null;
  const attempts = await db('webhook_attempts').where({ delivery_id: row.id }).orderBy('attempt');
  return toDelivery(row, attempts.map(toAttempt));
}

/** Deliveries newest first, each with its attempts. */
export async function listDeliveries(db: Db, endpointId: string, f: { limit: number; beforeId?: string }): Promise<WebhookDelivery[]> {
  const q = db('webhook_deliveries').where({ endpoint_id: endpointId }).orderBy('id', 'desc').limit(f.limit);
  if (f.beforeId) q.where('id', '<', f.beforeId);
  const rows = await q;
  if (!rows.length) return [];
  const attempts = await db('webhook_attempts')
    .whereIn(
      'delivery_id',
      rows.map((r) => r.id),
    )
    .orderBy('attempt');
  const byDelivery = new Map<string, WebhookAttempt[]>();
  for (const a of attempts) {
    const list = byDelivery.get(String(a.delivery_id)) ?? [];
    list.push(toAttempt(a));
    byDelivery.set(String(a.delivery_id), list);
  }
  return rows.map((r) => toDelivery(r, byDelivery.get(String(r.id)) ?? []));
}

export interface AttemptOutcome {
  ok: boolean;
  statusCode: number | null;
  durationMs: number;
  error: string | null;
  responseExcerpt: string | null;
  at: Date;
}

/**
 * Records one attempt of a delivery. A success ends the delivery; for a first delivery it also
 * moves the endpoint's cursor past the event and forgets its failures, in the same transaction.
 * A failure marks the endpoint failing since now (unless it already was).
 */
export async function recordAttempt(
  db: Db,
  delivery: Pick<WebhookDelivery, 'id' | 'endpointId' | 'eventSeq' | 'redeliveryOf'>,
  o: AttemptOutcome,
): Promise<void> {
  await db.transaction(async (trx) => {
    const row = await trx('webhook_deliveries').where({ id: delivery.id }).forUpdate().first('attempts');
    if (!row) return;
    const attempt = row.attempts + 1;
    await trx('webhook_attempts').insert({
      delivery_id: delivery.id,
      attempt,
      at: o.at,
      status_code: o.statusCode,
      duration_ms: o.durationMs,
      error: o.error,
      response_excerpt: o.responseExcerpt,
    });
    await trx('webhook_deliveries')
      .where({ id: delivery.id })
      .update({ attempts: attempt, ...(o.ok ? { status: 'succeeded', ended_at: o.at } : {}) });
    const endpoint = trx('webhook_endpoints').where({ id: delivery.endpointId });
    if (o.ok && delivery.redeliveryOf === null) {
      await endpoint.update({ cursor: trx.raw('greatest(cursor, ?)', [delivery.eventSeq]), failing_since: null, consecutive_failures: 0 });
    } else if (!o.ok) {
      await endpoint.update({ failing_since: trx.raw('coalesce(failing_since, ?)', [o.at]) });
    }
  });
}

export interface DisablePolicy {
  /** Disable after this many events in a row were given up on. */
  failures: number;
  /** ... or when every attempt has failed for this long. */
  hours: number;
}

/**
 * Gives up on a delivery whose every attempt failed. For a first delivery the cursor moves past
 * the event (it stays in the log for a manual redelivery) and the endpoint counts one more failed
 * event; past the policy it is disabled, with a `webhook.disabled` event and an alert.
 */
export async function giveUpDelivery(
  db: Db,
  delivery: Pick<WebhookDelivery, 'id' | 'endpointId' | 'eventSeq' | 'redeliveryOf'>,
  policy: DisablePolicy,
  now: Date,
): Promise<{ disabled: boolean }> {
  return db.transaction(async (trx: Knex.Transaction) => {
    await trx('webhook_deliveries').where({ id: delivery.id, status: 'pending' }).update({ status: 'failed', ended_at: now });
    if (delivery.redeliveryOf !== null) return { disabled: false };
    const row = await trx('webhook_endpoints').where({ id: delivery.endpointId }).forUpdate().first();
    if (!row) return { disabled: false };
    const failures = row.consecutive_failures + 1;
    const since = new Date(row.failing_since ?? now);
    const failingHours = (now.getTime() - since.getTime()) / 3_600_000;
    const disable = row.status === 'active' && (failures >= policy.failures || failingHours >= policy.hours);
    const reason = disable
      ? failures >= policy.failures
        ? `${failures} events in a row could not be delivered`
        : `every delivery attempt has failed since ${since.toISOString()}`
      : null;
    await trx('webhook_endpoints')
      .where({ id: delivery.endpointId })
      .update({
        cursor: trx.raw('greatest(cursor, ?)', [delivery.eventSeq]),
        consecutive_failures: failures,
        failing_since: since,
        ...(disable ? { status: 'disabled', disabled_reason: reason, disabled_at: now, updated_at: now } : {}),
      });
    if (disable) {
      const data = { endpointId: row.id, url: row.url, reason, consecutiveFailures: failures };
      const alerts = await recordAlerts(trx, [
        {
          kind: 'webhook_disabled',
          severity: 'warning',
          projectId: row.project_id,
          subjectId: row.id,
          message: `webhook ${row.id} disabled: ${reason}`,
          data,
          dedupeKey: `webhook_disabled:${row.id}:${now.toISOString()}`,
        },
      ]);
      await appendEvents(trx, [{ kind: 'webhook.disabled', projectId: row.project_id, subjectId: row.id, data }, ...alerts]);
    }
    return { disabled: disable };
  });
}

/** What a Slack message tells beside the event: the project's name and the machine's state and cost. */
export async function slackFactsOf(db: Db, e: EventRecord): Promise<{ projectName: string | null; machineId: string | null }> {
  const project = e.projectId ? await db('projects').where({ id: e.projectId }).first('name') : null;
  const machineId = e.kind.startsWith('machine.') ? e.subjectId : typeof e.data.machineId === 'string' ? e.data.machineId : null;
  return { projectName: project?.name ?? null, machineId };
}

import type { Knex } from 'knex';
import type { IntegrationKind } from '../domain/integrations.js';
import type { Db } from './db.js';
import { lastEventSeq, type Conn } from './events.js';
import { integrationContext, openOrNull, sealOrNull } from './secrets.js';

/**
 * A project's integrations with outside trackers, the items of those trackers linked to objectives
 * and checkpoints, the incoming hooks accepted and the comments posted. `token` and
 * `webhookSecret` leave the store only for the calls that need them (the tracker's API, the
 * signature check); no API answer, audit record or log carries them.
 */
export interface Integration {
  id: string;
  projectId: string;
  kind: IntegrationKind;
  config: Record<string, unknown>;
  token: string | null;
  webhookSecret: string | null;
  cursor: number;
  updatedBy: string;
  createdAt: string;
  updatedAt: string;
}

export type LinkKind = 'issue' | 'pull_request' | 'ticket';

export interface IntegrationLink {
  id: string;
  integrationId: string;
  objectiveId: string | null;
  checkpointId: string | null;
  kind: LinkKind;
  /** The tracker's own id of the item (a GitHub issue or pull request number, a Jira key). */
  externalId: string;
  number: number | null;
  url: string;
  /** The branch a pull request was opened from. */
  branch: string | null;
  createdAt: string;
}

const iso = (v: unknown) => new Date(v as string).toISOString();

const toIntegration = (r: Record<string, any>): Integration => ({
  id: r.id,
  projectId: r.project_id,
  kind: r.kind,
  config: typeof r.config === 'string' ? JSON.parse(r.config) : r.config,
  token: openOrNull(r.token, integrationContext(r.project_id, r.kind, 'token')),
  webhookSecret: openOrNull(r.webhook_secret, integrationContext(r.project_id, r.kind, 'webhook_secret')),
  cursor: Number(r.cursor),
  updatedBy: r.updated_by,
  createdAt: iso(r.created_at),
  updatedAt: iso(r.updated_at),
});

const toLink = (r: Record<string, any>): IntegrationLink => ({
  id: String(r.id),
  integrationId: r.integration_id,
  objectiveId: r.objective_id,
  checkpointId: r.checkpoint_id,
  kind: r.kind,
  externalId: r.external_id,
  number: r.number,
  url: r.url,
  branch: r.branch,
  createdAt: iso(r.created_at),
});

/**
 * Sets (or replaces) the project's integration of a kind. `token` and `webhookSecret` left
 * undefined keep the stored ones; null clears them. A new integration's cursor starts at the
 * feed's last event (it comments on what happens from now on).
 */
export async function putIntegration(
  db: Db | Knex.Transaction,
  i: {
    id: string;
    projectId: string;
    kind: IntegrationKind;
    config: Record<string, unknown>;
    token?: string | null;
    webhookSecret?: string | null;
    updatedBy: string;
  },
): Promise<{ integration: Integration; created: boolean }> {
  const cursor = await lastEventSeq(db);
  const row = {
    id: i.id,
    project_id: i.projectId,
    kind: i.kind,
    config: JSON.stringify(i.config),
    token: sealOrNull(i.token, integrationContext(i.projectId, i.kind, 'token')),
    webhook_secret: sealOrNull(i.webhookSecret, integrationContext(i.projectId, i.kind, 'webhook_secret')),
    cursor,
    updated_by: i.updatedBy,
    updated_at: new Date(),
  };
  const merge = [
    'config',
    'updated_by',
    'updated_at',
    ...(i.token !== undefined ? ['token'] : []),
    ...(i.webhookSecret !== undefined ? ['webhook_secret'] : []),
  ];
  const existed = await db('project_integrations').where({ project_id: i.projectId, kind: i.kind }).first('id');
  const [stored] = await db('project_integrations').insert(row).onConflict(['project_id', 'kind']).merge(merge).returning('*');
  return { integration: toIntegration(stored), created: !existed };
}

export async function getIntegration(db: Conn, id: string): Promise<Integration | null> {
  const row = await db('project_integrations').where({ id }).first();
  return row ? toIntegration(row) : null;
}

export async function projectIntegration(db: Conn, projectId: string, kind: IntegrationKind): Promise<Integration | null> {
  const row = await db('project_integrations').where({ project_id: projectId, kind }).first();
  return row ? toIntegration(row) : null;
}

/** Removes the integration with its links, deliveries and comments; false when there was none. */
export async function deleteIntegration(db: Db | Knex.Transaction, id: string): Promise<boolean> {
  return (await db('project_integrations').where({ id }).delete()) > 0;
}

/** Moves the integration's event cursor forward (never back). */
export async function advanceIntegrationCursor(db: Conn, id: string, seq: number): Promise<void> {
  await db('project_integrations')
    .where({ id })
    .update({ cursor: db.raw('greatest(cursor, ?)', [seq]) });
}

/** Links a tracker item once; a second link of the same item finds the first (`created` false). */
export async function insertLink(
  db: Conn,
  l: Omit<IntegrationLink, 'id' | 'createdAt' | 'branch'> & { branch?: string | null },
): Promise<{ link: IntegrationLink; created: boolean }> {
  const inserted = await db('integration_links')
    .insert({
      integration_id: l.integrationId,
      objective_id: l.objectiveId,
      checkpoint_id: l.checkpointId,
      kind: l.kind,
      external_id: l.externalId,
      number: l.number,
      url: l.url,
      branch: l.branch ?? null,
    })
    .onConflict(['integration_id', 'kind', 'external_id'])
    .ignore()
    .returning('*');
  if (inserted.length) return { link: toLink(inserted[0]), created: true };
  const row = await db('integration_links').where({ integration_id: l.integrationId, kind: l.kind, external_id: l.externalId }).first();
  return { link: toLink(row), created: false };
}

/** Ties an existing link to an objective (a pull request opened for an objective's checkpoint). */
export async function setLinkObjective(db: Conn, linkId: string, objectiveId: string): Promise<void> {
  await db('integration_links').where({ id: linkId }).whereNull('objective_id').update({ objective_id: objectiveId });
}

export async function linkOfItem(db: Conn, integrationId: string, kind: LinkKind, externalId: string): Promise<IntegrationLink | null> {
  const row = await db('integration_links').where({ integration_id: integrationId, kind, external_id: externalId }).first();
  return row ? toLink(row) : null;
}

/** The pull request opened from a checkpoint through this integration, if any. */
export async function pullRequestOfCheckpoint(db: Conn, integrationId: string, checkpointId: string): Promise<IntegrationLink | null> {
  const row = await db('integration_links').where({ integration_id: integrationId, checkpoint_id: checkpointId, kind: 'pull_request' }).first();
  return row ? toLink(row) : null;
}

/** The items of the integration linked to an objective, oldest first. */
export async function linksOfObjective(db: Conn, integrationId: string, objectiveId: string): Promise<IntegrationLink[]> {
  return (await db('integration_links').where({ integration_id: integrationId, objective_id: objectiveId }).orderBy('id')).map(toLink);
}

/** Every link of the integration, oldest first (one page). */
export async function listLinks(db: Conn, integrationId: string, f: { limit: number; afterId?: string }): Promise<IntegrationLink[]> {
  const q = db('integration_links').where({ integration_id: integrationId }).orderBy('id').limit(f.limit);
  if (f.afterId) q.where('id', '>', f.afterId);
  return (await q).map(toLink);
}

/**
 * Records an incoming hook's delivery id before it is acted on; false when it was already
 * recorded (a redelivery, or the same delivery sent twice). `forgetDelivery` removes it again
 * when acting failed, so GitHub's redelivery is acted on.
 */
export async function recordDelivery(db: Conn, integrationId: string, deliveryId: string, event: string): Promise<boolean> {
  const rows = await db('integration_deliveries')
    .insert({ integration_id: integrationId, delivery_id: deliveryId, event, outcome: 'received' })
    .onConflict(['integration_id', 'delivery_id'])
    .ignore()
    .returning('delivery_id');
  return rows.length > 0;
}

export async function setDeliveryOutcome(db: Conn, integrationId: string, deliveryId: string, outcome: string): Promise<void> {
  await db('integration_deliveries').where({ integration_id: integrationId, delivery_id: deliveryId }).update({ outcome });
}

export async function forgetDelivery(db: Conn, integrationId: string, deliveryId: string): Promise<void> {
  await db('integration_deliveries').where({ integration_id: integrationId, delivery_id: deliveryId }).delete();
}

/** The comment posted on a link for an event, if it was. */
export async function commentOf(db: Conn, linkId: string, seq: number): Promise<{ externalId: string; url: string | null } | null> {
  const row = await db('integration_comments').where({ link_id: linkId, event_seq: seq }).first();
  return row ? { externalId: row.external_id, url: row.url } : null;
}

export async function recordComment(db: Conn, linkId: string, seq: number, externalId: string, url: string | null): Promise<void> {
  await db('integration_comments').insert({ link_id: linkId, event_seq: seq, external_id: externalId, url }).onConflict(['link_id', 'event_seq']).ignore();
}

/** The project's integrations, every kind. */
export async function projectIntegrations(db: Conn, projectId: string): Promise<Integration[]> {
  return (await db('project_integrations').where({ project_id: projectId }).orderBy('kind')).map(toIntegration);
}

/** Records that an objective asked for tickets (committed with the objective). */
export async function requestTicket(db: Conn, objectiveId: string, requestedBy: string): Promise<void> {
  await db('objective_ticket_requests').insert({ objective_id: objectiveId, requested_by: requestedBy }).onConflict('objective_id').ignore();
}

export async function ticketRequested(db: Conn, objectiveId: string): Promise<boolean> {
  return Boolean(await db('objective_ticket_requests').where({ objective_id: objectiveId }).first('objective_id'));
}

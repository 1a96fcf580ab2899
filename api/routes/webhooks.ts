import { z } from 'zod';
import type { WebhookDelivery, WebhookEndpoint } from '../../store/webhooks.js';
import {
  createWebhook,
  deleteWebhook,
  listWebhookDeliveries,
  listWebhooks,
  redeliverWebhook,
  requireWebhook,
  rotateWebhook,
  updateWebhook,
} from '../../services/webhooks.js';
import type { ApiContext } from '../context.js';
import { callerOf, param } from '../context.js';
import { decodeCursor, pageOf, pageQuery, seqKey } from '../pagination.js';
import * as R from '../responses.js';
import { inBody, inQuery, RouteGroup } from './table.js';

export const listWebhooksQuery = pageQuery.extend({ projectId: z.string().min(1).max(200).optional() });

/** An endpoint as its managers see it: never the secret. */
export const presentWebhook = (e: WebhookEndpoint) => ({
  id: e.id,
  projectId: e.projectId,
  kind: e.kind,
  url: e.url,
  channel: e.channel,
  description: e.description,
  events: e.eventKinds,
  status: e.status,
  disabledReason: e.disabledReason,
  disabledAt: e.disabledAt,
  failingSince: e.failingSince,
  consecutiveFailures: e.consecutiveFailures,
  cursor: e.cursor,
  createdBy: e.createdBy,
  createdAt: e.createdAt,
  updatedAt: e.updatedAt,
});

const presentDelivery = (d: WebhookDelivery) => ({ ...d });

/**
 * Outgoing webhooks: endpoints of a project (or the deployment's, for admins) with the events they
 * subscribe to; the delivery log, redelivery, secret rotation. Scoping by project is the service's
 * (an endpoint of another project reads as a missing one).
 */
export function webhookRoutes(ctx: ApiContext): RouteGroup {
  const r = new RouteGroup(ctx);
  const manage = { permission: 'webhooks.manage', resource: 'none' } as const;
  const read = { permission: 'webhooks.read', resource: 'none' } as const;

  r.post('/webhooks', { permission: 'webhooks.manage', resource: inBody('project', 'projectId') }, { 201: R.webhookWithSecret }, async (req, res) => {
    const { endpoint, secret } = await createWebhook(ctx, callerOf(req), req.body);
    res.status(201).json({ ...presentWebhook(endpoint), secret });
  });

  r.get('/webhooks', { permission: 'webhooks.read', resource: inQuery('project', 'projectId') }, { 200: R.page(R.webhook) }, async (req, res) => {
    const q = listWebhooksQuery.parse(req.query);
    const after = decodeCursor(q.cursor, z.string().max(200));
    const rows = await listWebhooks(ctx, callerOf(req), { limit: q.limit + 1, afterId: after, projectId: q.projectId });
    const page = pageOf(rows, q.limit, (e) => e.id);
    res.json({ items: page.items.map(presentWebhook), nextCursor: page.nextCursor });
  });

  r.get('/webhooks/:id', read, { 200: R.webhook }, async (req, res) => {
    res.json(presentWebhook(await requireWebhook(ctx, callerOf(req), param(req, 'id'))));
  });

  r.patch('/webhooks/:id', manage, { 200: R.webhook }, async (req, res) => {
    res.json(presentWebhook(await updateWebhook(ctx, callerOf(req), param(req, 'id'), req.body)));
  });

  r.delete('/webhooks/:id', manage, { 204: R.noContent }, async (req, res) => {
    await deleteWebhook(ctx, callerOf(req), param(req, 'id'));
    res.status(204).end();
  });

  r.post('/webhooks/:id/rotate-secret', manage, { 201: R.webhookWithSecret }, async (req, res) => {
    const { endpoint, secret } = await rotateWebhook(ctx, callerOf(req), param(req, 'id'));
    res.status(201).json({ ...presentWebhook(endpoint), secret });
  });

  r.get('/webhooks/:id/deliveries', read, { 200: R.page(R.webhookDelivery) }, async (req, res) => {
    const q = pageQuery.parse(req.query);
    const before = decodeCursor(q.cursor, seqKey);
    const rows = await listWebhookDeliveries(ctx, callerOf(req), param(req, 'id'), { limit: q.limit + 1, beforeId: before });
    const page = pageOf(rows, q.limit, (d) => d.id);
    res.json({ items: page.items.map(presentDelivery), nextCursor: page.nextCursor });
  });

  r.post('/webhooks/:id/deliveries/:deliveryId/redeliver', manage, { 202: R.webhookDelivery }, async (req, res) => {
    res.status(202).json(presentDelivery(await redeliverWebhook(ctx, callerOf(req), param(req, 'id'), param(req, 'deliveryId'))));
  });

  return r;
}

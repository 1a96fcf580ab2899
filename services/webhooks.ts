/**
 * Use cases of outgoing webhooks: endpoints of a project (or, for admins, of the deployment) that
 * receive the events they subscribe to, each delivered by the endpoint's dispatcher workflow;
 * the delivery log, manual redelivery, secret rotation, disable and re-enable.
 */
import { z } from 'zod';
import { ForbiddenError, NotFoundError } from '../domain/errors.js';
import { canSeeProject } from '../domain/permissions.js';
import { runVisibility } from '../domain/search-attributes.js';
import { SLACK_WEB_API, webhookUrlProblem } from '../domain/webhooks.js';
import { appendAudit } from '../store/audit.js';
import { idFromIdempotencyKey } from '../store/ids.js';
import {
  deleteWebhookEndpoint,
  getDelivery,
  getWebhookEndpoint,
  insertRedelivery,
  insertWebhookEndpoint,
  listDeliveries,
  listWebhookEndpoints,
  rotateWebhookSecret,
  updateWebhookEndpoint,
  type WebhookDelivery,
  type WebhookEndpoint,
} from '../store/webhooks.js';
import { redeliverWebhookSignal, wakeWebhookSignal, webhookDispatcher, type WebhookDispatcherInput } from '../workflows/index.js';
import { actorOfCaller, type Caller, type ServiceContext } from './context.js';
import { notFoundMessage } from './inputs.js';
import { requireProjectField } from './projects.js';
import { createWebhookBody, patchWebhookBody } from './schemas.js';

/** After a rotation the old secret still signs (a second signature) this long, so receivers can switch over. */
export const SECRET_GRACE_HOURS = 24;

/** The URL must be one webhooks may go to (400 naming the problem, as a schema violation). */
function checkUrl(ctx: ServiceContext, url: string): void {
  const problem = webhookUrlProblem(url, ctx.config.webhooks.allowPrivate);
  if (problem) throw new z.ZodError([{ code: 'custom', path: ['url'], message: problem, input: url }]);
}

const auditWebhook = (ctx: ServiceContext, caller: Caller, action: string, e: WebhookEndpoint, details: Record<string, unknown> = {}) =>
  appendAudit(ctx.db, {
    actor: actorOfCaller(caller),
    action,
    subjectType: 'webhook',
    subjectId: e.id,
    projectId: e.projectId,
    details: { kind: e.kind, url: e.url, ...(e.channel ? { channel: e.channel } : {}), events: e.eventKinds, ...details },
  });

/** The endpoint if the caller's key may see it (a deployment endpoint: keys not bound to projects); else NotFoundError. */
export async function requireWebhook(ctx: ServiceContext, caller: Caller, id: string): Promise<WebhookEndpoint> {
  const e = await getWebhookEndpoint(ctx.db, id);
  const p = caller.principal;
  const visible = e && (e.projectId === null ? p.projectIds === null : canSeeProject(p, e.projectId));
  if (!e || !visible) throw new NotFoundError(notFoundMessage('webhook', id));
  return e;
}

/** As requireWebhook, for a change: a deployment endpoint is changed by admins only. */
async function requireManagedWebhook(ctx: ServiceContext, caller: Caller, id: string): Promise<WebhookEndpoint> {
  const e = await requireWebhook(ctx, caller, id);
  if (e.projectId === null && caller.principal.role !== 'admin') throw new ForbiddenError('only an admin may change a deployment-wide webhook');
  return e;
}

function dispatcherInput(ctx: ServiceContext, e: WebhookEndpoint): WebhookDispatcherInput {
  const w = ctx.config.webhooks;
  return {
    endpointId: e.id,
    projectId: e.projectId,
    retry: { maxAttempts: w.maxAttempts, initialMs: w.retryInitialMs, maxSeconds: w.retryMaxSeconds },
    attemptTimeoutSeconds: w.timeoutSeconds,
    waitSeconds: 60,
  };
}

function startOptions(ctx: ServiceContext, e: WebhookEndpoint) {
  return {
    workflowId: e.id,
    taskQueue: ctx.config.taskQueue,
    args: [dispatcherInput(ctx, e)] as [WebhookDispatcherInput],
    ...runVisibility(
      'webhook',
      { project: e.projectId ?? 'deployment', status: e.status },
      { searchAttributes: ctx.config.searchAttributes, details: { webhook: e.id, kind: e.kind, url: e.url } },
    ),
  };
}

/** Tells the endpoint's dispatcher to look again (starting it if it is not running). */
async function wake(ctx: ServiceContext, e: WebhookEndpoint): Promise<void> {
  await ctx.temporal.workflow.signalWithStart(webhookDispatcher, { ...startOptions(ctx, e), signal: wakeWebhookSignal, signalArgs: [] });
}

/** Creates an endpoint and starts its dispatcher; the signing secret is returned here only. */
export async function createWebhook(
  ctx: ServiceContext,
  caller: Caller,
  input: z.input<typeof createWebhookBody>,
): Promise<{ endpoint: WebhookEndpoint; secret: string }> {
  const body = createWebhookBody.parse(input);
  const url = body.url ?? SLACK_WEB_API;
  checkUrl(ctx, url);
  if (!body.events.length)
    throw new z.ZodError([{ code: 'custom', path: ['events'], message: 'give at least one event kind, e.g. ["machine.*"]', input: body.events }]);
  const p = caller.principal;
  let projectId: string | null = null;
  if (body.projectId) projectId = (await requireProjectField(ctx, body.projectId)).id;
  else if (p.role !== 'admin') throw new ForbiddenError('give projectId: only an admin may create a deployment-wide webhook');
  const id = idFromIdempotencyKey('webhook', p.apiKeyId, caller.idempotencyKey);
  const made = await insertWebhookEndpoint(ctx.db, {
    id,
    projectId,
    kind: body.kind,
    url,
    description: body.description,
    eventKinds: [...new Set(body.events)],
    createdBy: actorOfCaller(caller),
    ...(body.kind === 'slack-bot' ? { slackBot: { channel: body.channel!, token: body.token! } } : {}),
  });
  await auditWebhook(ctx, caller, 'webhook.created', made.endpoint);
  await ctx.temporal.workflow.start(webhookDispatcher, { ...startOptions(ctx, made.endpoint), workflowIdConflictPolicy: 'USE_EXISTING' });
  return made;
}

/** The endpoints the caller may see, by id. */
export async function listWebhooks(
  ctx: ServiceContext,
  caller: Caller,
  page: { limit: number; afterId?: string | undefined; projectId?: string | undefined },
): Promise<WebhookEndpoint[]> {
  return listWebhookEndpoints(ctx.db, {
    limit: page.limit,
    projectIds: caller.principal.projectIds,
    ...(page.afterId ? { afterId: page.afterId } : {}),
    ...(page.projectId ? { projectId: page.projectId } : {}),
  });
}

/** Changes the URL, events or description; `enabled: true` re-enables a disabled endpoint (its failures forgotten). */
export async function updateWebhook(ctx: ServiceContext, caller: Caller, id: string, input: z.input<typeof patchWebhookBody>): Promise<WebhookEndpoint> {
  const e = await requireManagedWebhook(ctx, caller, id);
  const body = patchWebhookBody.parse(input);
  if (body.url !== undefined) checkUrl(ctx, body.url);
  if (e.kind !== 'slack-bot' && (body.channel !== undefined || body.token !== undefined)) {
    const field = body.channel !== undefined ? 'channel' : 'token';
    throw new z.ZodError([
      { code: 'custom', path: [field], message: `only a slack-bot endpoint has a ${field === 'token' ? 'bot token' : 'channel'}`, input: body[field] },
    ]);
  }
  if (body.events !== undefined && !body.events.length) {
    throw new z.ZodError([{ code: 'custom', path: ['events'], message: 'give at least one event kind, e.g. ["machine.*"]', input: body.events }]);
  }
  const updated = (await updateWebhookEndpoint(
    ctx.db,
    e.id,
    {
      ...(body.url !== undefined ? { url: body.url } : {}),
      ...(body.channel !== undefined ? { channel: body.channel } : {}),
      ...(body.token !== undefined ? { botToken: body.token } : {}),
      ...(body.description !== undefined ? { description: body.description } : {}),
      ...(body.events !== undefined ? { eventKinds: [...new Set(body.events)] } : {}),
      ...(body.enabled !== undefined ? { enabled: body.enabled } : {}),
    },
    new Date(),
  ))!;
  await auditWebhook(ctx, caller, 'webhook.updated', updated, { status: updated.status, ...(body.token !== undefined ? { tokenReplaced: true } : {}) });
  if (body.enabled === true && e.status === 'disabled') await wake(ctx, updated);
  return updated;
}

/** A new signing secret (shown once); the old one signs too for SECRET_GRACE_HOURS. */
export async function rotateWebhook(ctx: ServiceContext, caller: Caller, id: string): Promise<{ endpoint: WebhookEndpoint; secret: string }> {
  const e = await requireManagedWebhook(ctx, caller, id);
  const secret = (await rotateWebhookSecret(ctx.db, e.id, new Date(Date.now() + SECRET_GRACE_HOURS * 3_600_000)))!;
  await auditWebhook(ctx, caller, 'webhook.secret_rotated', e);
  return { endpoint: e, secret };
}

/** Deletes the endpoint and its log; its dispatcher ends. */
export async function deleteWebhook(ctx: ServiceContext, caller: Caller, id: string): Promise<void> {
  const e = await requireManagedWebhook(ctx, caller, id);
  await deleteWebhookEndpoint(ctx.db, e.id);
  await auditWebhook(ctx, caller, 'webhook.deleted', e);
  try {
    await ctx.temporal.workflow.getHandle(e.id).signal(wakeWebhookSignal);
  } catch {
    // Not running: nothing to stop.
  }
}

/** The endpoint's deliveries, newest first, each with its attempts. */
export async function listWebhookDeliveries(
  ctx: ServiceContext,
  caller: Caller,
  id: string,
  page: { limit: number; beforeId?: string | undefined },
): Promise<WebhookDelivery[]> {
  const e = await requireWebhook(ctx, caller, id);
  return listDeliveries(ctx.db, e.id, { limit: page.limit, ...(page.beforeId ? { beforeId: page.beforeId } : {}) });
}

/** Sends a delivery's event again (same webhook-id), as a new delivery in the log, whatever the endpoint's state. */
export async function redeliverWebhook(ctx: ServiceContext, caller: Caller, id: string, deliveryId: string): Promise<WebhookDelivery> {
  const e = await requireManagedWebhook(ctx, caller, id);
  if (!(await getDelivery(ctx.db, e.id, deliveryId))) throw new NotFoundError(notFoundMessage('delivery', deliveryId));
  const redelivery = (await insertRedelivery(ctx.db, e.id, deliveryId))!;
  await appendAudit(ctx.db, {
    actor: actorOfCaller(caller),
    action: 'webhook.redelivery_requested',
    subjectType: 'webhook',
    subjectId: e.id,
    projectId: e.projectId,
    details: { deliveryId, redeliveryId: redelivery.id, eventSeq: redelivery.eventSeq },
  });
  await ctx.temporal.workflow.signalWithStart(webhookDispatcher, { ...startOptions(ctx, e), signal: redeliverWebhookSignal, signalArgs: [redelivery.id] });
  return redelivery;
}

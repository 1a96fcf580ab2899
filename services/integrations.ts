/**
 * Use cases of a project's integrations with outside trackers (README "GitHub"): set, read and
 * remove one (its token and webhook secret are kept, never shown back); open a pull request from a
 * checkpoint; receive the tracker's signed hooks (an issue or a label starts an objective); and,
 * from the integration's dispatcher workflow, comment progress on linked items and open the pull
 * request of an objective started from an issue when it completes. Jira and Linear (README "Jira
 * and Linear") share the record, the hook endpoint and the dispatcher: their config schemas, inbound
 * adapters (TICKET_INBOUND) and event handling are in services/tickets.ts.
 */
import { z } from 'zod';
import { AuthenticationError, InputError, IntegrationError, NotFoundError } from '../domain/errors.js';
import {
  checkpointLink,
  githubSignatureMatches,
  issueTrigger,
  objectivesLink,
  progressComment,
  pullRequestBody,
  SUPPORTED_INTEGRATION_KINDS,
  type GithubConfig,
  type IntegrationKind,
  type IssuesPayload,
  type PullRequestFacts,
  type SupportedIntegrationKind,
} from '../domain/integrations.js';
import { runVisibility } from '../domain/search-attributes.js';
import { appendAudit } from '../store/audit.js';
import { getCheckpoint, type Checkpoint } from '../store/checkpoints.js';
import { diffCommits } from '../store/git.js';
import { createIssueComment, createPullRequest, GithubApiError, pullRequestsFrom, type GithubAccess, type GithubPullRequest } from '../store/github.js';
import { idFromName } from '../store/ids.js';
import {
  advanceIntegrationCursor,
  commentOf,
  deleteIntegration,
  getIntegration,
  insertLink,
  linkOfItem,
  linksOfObjective,
  projectIntegration,
  pullRequestOfCheckpoint,
  putIntegration,
  recordComment,
  recordDelivery,
  forgetDelivery,
  setDeliveryOutcome,
  setLinkObjective,
  type Integration,
  type IntegrationLink,
} from '../store/integrations.js';
import { lastLogText } from '../store/machine-logs.js';
import { getMachine } from '../store/machines.js';
import { finalCheckpointOfObjective, getObjective, machineIdsOfObjective } from '../store/objectives.js';
import type { Project } from '../store/projects.js';
import { getEvent } from '../store/webhooks.js';
import { eventsAfter } from '../store/events.js';
import { integrationDispatcher, wakeIntegrationSignal, type IntegrationDispatcherInput } from '../workflows/index.js';
import { requireCheckpoint } from './checkpoints.js';
import { actorOfCaller, type Caller, type ServiceContext } from './context.js';
import { pushCheckpoint } from './git-remotes.js';
import { requireProject } from './projects.js';
import { costOf, header, integrationCaller, objectiveFromItem, publicUrlOf, type InboundAdapter } from './integration-common.js';
import { githubConfigBody, jiraConfigBody, linearConfigBody, openPullRequestBody, putIntegrationBody } from './schemas.js';
import { handleTicketEvent, TICKET_INBOUND } from './tickets.js';
import { withLocalRepo } from '../store/shared-storage.js';

/** An integration as callers see it: its config and whether secrets are kept, never the secrets. */
export interface IntegrationView {
  id: string;
  projectId: string;
  kind: IntegrationKind;
  config: Record<string, unknown>;
  hasToken: boolean;
  hasWebhookSecret: boolean;
  /** Where the tracker sends its hooks (give it the webhook secret too). */
  hookUrl: string;
  updatedBy: string;
  createdAt: string;
  updatedAt: string;
}

export { publicUrlOf };

const view = (ctx: ServiceContext, i: Integration): IntegrationView => ({
  id: i.id,
  projectId: i.projectId,
  kind: i.kind,
  config: i.config,
  hasToken: i.token !== null,
  hasWebhookSecret: i.webhookSecret !== null,
  hookUrl: `${publicUrlOf(ctx).replace(/\/+$/, '')}/hooks/${i.kind}/${encodeURIComponent(i.id)}`,
  updatedBy: i.updatedBy,
  createdAt: i.createdAt,
  updatedAt: i.updatedAt,
});

/** The kind named in a path, or a 400 naming the ones there are. */
function kindOf(kind: string): SupportedIntegrationKind {
  if ((SUPPORTED_INTEGRATION_KINDS as readonly string[]).includes(kind)) return kind as SupportedIntegrationKind;
  throw new z.ZodError([
    {
      code: 'custom',
      path: ['kind'],
      message: `"${kind.slice(0, 40)}" is not an integration kind here; supported: ${SUPPORTED_INTEGRATION_KINDS.join(', ')}`,
      input: kind,
    },
  ]);
}

const githubConfig = (i: Integration): GithubConfig => githubConfigBody.parse(i.config);

/** The config of a kind, validated (400 naming the field under `config.`). */
function parseConfig(kind: SupportedIntegrationKind, config: Record<string, unknown>): Record<string, unknown> {
  const schema = { github: githubConfigBody, jira: jiraConfigBody, linear: linearConfigBody }[kind];
  const parsed = schema.safeParse(config);
  if (parsed.success) return parsed.data;
  throw new z.ZodError(parsed.error.issues.map((i) => ({ ...i, path: ['config', ...i.path] })) as z.core.$ZodIssue[]);
}

async function requireIntegration(ctx: ServiceContext, project: Project, kind: SupportedIntegrationKind): Promise<Integration> {
  const i = await projectIntegration(ctx.db, project.id, kind);
  if (!i) throw new NotFoundError(`project ${project.id} has no ${kind} integration; set one with PUT /v1/projects/${project.id}/integrations/${kind}`);
  return i;
}

const githubAccess = (ctx: ServiceContext, i: Integration): GithubAccess => ({
  apiBase: githubConfig(i).apiBase,
  token: i.token,
  allowPrivate: ctx.config.webhooks.allowPrivate,
  timeoutMs: ctx.config.webhooks.timeoutSeconds * 1000,
});

// ---------------------------------------------------------------------------------------------
// The integration record

function dispatcherInput(ctx: ServiceContext, i: Integration): IntegrationDispatcherInput {
  const w = ctx.config.webhooks;
  return {
    integrationId: i.id,
    projectId: i.projectId,
    retry: { maxAttempts: w.maxAttempts, initialMs: w.retryInitialMs, maxSeconds: w.retryMaxSeconds },
    attemptTimeoutSeconds: w.timeoutSeconds * 3,
    waitSeconds: 60,
  };
}

/** Starts the integration's dispatcher, or tells the running one to look again. */
async function wakeDispatcher(ctx: ServiceContext, i: Integration): Promise<void> {
  await ctx.temporal.workflow.signalWithStart(integrationDispatcher, {
    workflowId: `integration-dispatcher-${i.id}`,
    taskQueue: ctx.config.taskQueue,
    args: [dispatcherInput(ctx, i)],
    signal: wakeIntegrationSignal,
    signalArgs: [],
    ...runVisibility(
      'integration',
      { project: i.projectId, status: 'active' },
      { searchAttributes: ctx.config.searchAttributes, details: { integration: i.id, kind: i.kind } },
    ),
  });
}

/** Sets the project's integration of a kind; `token`/`webhookSecret` left out keep the stored ones. */
export async function setProjectIntegration(
  ctx: ServiceContext,
  caller: Caller,
  projectId: string,
  kindName: string,
  input: unknown,
): Promise<IntegrationView> {
  const project = await requireProject(ctx, projectId);
  const kind = kindOf(kindName);
  const body = putIntegrationBody.parse(input);
  const config = parseConfig(kind, body.config);
  const { integration } = await ctx.db.transaction(async (trx) => {
    const stored = await putIntegration(trx, {
      id: idFromName('integration', `${project.id}\0${kind}`),
      projectId: project.id,
      kind,
      config,
      ...(body.token !== undefined ? { token: body.token } : {}),
      ...(body.webhookSecret !== undefined ? { webhookSecret: body.webhookSecret } : {}),
      updatedBy: caller.principal.userId,
    });
    await appendAudit(trx, {
      actor: actorOfCaller(caller),
      action: stored.created ? 'integration.created' : 'integration.updated',
      subjectType: 'integration',
      subjectId: stored.integration.id,
      projectId: project.id,
      details: { kind, config, hasToken: stored.integration.token !== null, hasWebhookSecret: stored.integration.webhookSecret !== null },
    });
    return stored;
  });
  // Started with the integration; told to look again on a change.
  await wakeDispatcher(ctx, integration);
  return view(ctx, integration);
}

export async function getProjectIntegration(ctx: ServiceContext, projectId: string, kindName: string): Promise<IntegrationView> {
  const project = await requireProject(ctx, projectId);
  return view(ctx, await requireIntegration(ctx, project, kindOf(kindName)));
}

/** Removes the integration with its links; its dispatcher ends; its hooks answer 404 from then on. */
export async function removeProjectIntegration(ctx: ServiceContext, caller: Caller, projectId: string, kindName: string): Promise<void> {
  const project = await requireProject(ctx, projectId);
  const i = await requireIntegration(ctx, project, kindOf(kindName));
  await ctx.db.transaction(async (trx) => {
    await deleteIntegration(trx, i.id);
    await appendAudit(trx, {
      actor: actorOfCaller(caller),
      action: 'integration.deleted',
      subjectType: 'integration',
      subjectId: i.id,
      projectId: project.id,
      details: { kind: i.kind },
    });
  });
  try {
    await ctx.temporal.workflow.getHandle(`integration-dispatcher-${i.id}`).signal(wakeIntegrationSignal);
  } catch {
    // Not running: nothing to stop.
  }
}

// ---------------------------------------------------------------------------------------------
// Pull requests

export interface PullRequestView {
  checkpointId: string;
  projectId: string;
  integrationId: string;
  number: number;
  url: string;
  branch: string;
  objectiveId: string | null;
  /** false: the pull request opened before for this checkpoint. */
  created: boolean;
  createdAt: string;
}

const prView = (projectId: string, l: IntegrationLink, created: boolean): PullRequestView => ({
  checkpointId: l.checkpointId!,
  projectId,
  integrationId: l.integrationId,
  number: l.number!,
  url: l.url,
  branch: l.branch ?? '',
  objectiveId: l.objectiveId,
  created,
  createdAt: l.createdAt,
});

/** What the pull request tells: the machine that made the checkpoint (what it was asked, how it ended, what it said last), its changes and cost. */
async function pullRequestFacts(
  ctx: ServiceContext,
  project: Project,
  checkpoint: Checkpoint,
  extra: { closes: number | null; objectiveId: string | null },
): Promise<PullRequestFacts> {
  const machine = checkpoint.machineId ? await getMachine(ctx.db, checkpoint.machineId) : null;
  const objective = extra.objectiveId ? await getObjective(ctx.db, extra.objectiveId) : null;
  const fromId = machine?.parentCheckpointId ?? checkpoint.parentId;
  const from = fromId ? await getCheckpoint(ctx.db, fromId) : null;
  const files = from
    ? await withLocalRepo(ctx.db, ctx.config, project, [from.commit, checkpoint.commit])
        .then((here) => diffCommits(here.repoPath, from.commit, checkpoint.commit))
        .catch(() => null)
    : null;
  const costMachines = objective ? await machineIdsOfObjective(ctx.db, objective.id) : machine ? [machine.id] : [];
  const lastOutput = machine ? ((await lastLogText(ctx.db, machine.id, ['agent'], 4000)) ?? (await lastLogText(ctx.db, machine.id, ['stdout'], 2000))) : null;
  return {
    checkpointId: checkpoint.id,
    commit: checkpoint.commit,
    link: checkpointLink(publicUrlOf(ctx), project.id, checkpoint.id),
    machine: machine
      ? { id: machine.id, type: machine.type, status: machine.status, asked: machine.prompt ?? machine.command, stopReason: machine.stopReason, lastOutput }
      : null,
    cost: costMachines.length ? await costOf(ctx, project, costMachines) : null,
    files: files ? { added: files.added, modified: files.modified, deleted: files.deleted } : null,
    closes: extra.closes,
    objective: objective ? { id: objective.id, title: objective.title } : null,
  };
}

/**
 * Pushes the checkpoint as a branch (the project's git remote, services/git-remotes.ts) and opens
 * a pull request on GitHub from it. Once per checkpoint: a second call answers the pull request
 * of the first; a pull request GitHub already has for the branch is taken as this one.
 */
async function openPullRequestFor(
  ctx: ServiceContext,
  caller: Caller,
  integration: Integration,
  project: Project,
  checkpoint: Checkpoint,
  o: {
    title?: string | undefined;
    body?: string | undefined;
    base?: string | undefined;
    branch?: string | undefined;
    closes: number | null;
    objectiveId: string | null;
  },
): Promise<PullRequestView> {
  const existing = await pullRequestOfCheckpoint(ctx.db, integration.id, checkpoint.id);
  if (existing) return prView(project.id, existing, false);
  const cfg = githubConfig(integration);
  const branch = o.branch ?? `${cfg.branchPrefix}${checkpoint.id}`;
  const base = o.base ?? cfg.baseBranch;
  const push = await pushCheckpoint(ctx, caller, checkpoint.id, { branch, force: false });
  const machine = checkpoint.machineId ? await getMachine(ctx.db, checkpoint.machineId) : null;
  const objectiveId = o.objectiveId ?? machine?.objectiveId ?? null;
  const facts = await pullRequestFacts(ctx, project, checkpoint, { closes: o.closes, objectiveId });
  const generated = pullRequestBody(facts);
  const title = o.title ?? (facts.objective ? facts.objective.title : `AutoVibe: checkpoint ${checkpoint.id}`).slice(0, 256);
  const access = githubAccess(ctx, integration);
  let pr: GithubPullRequest;
  try {
    pr = await createPullRequest(access, cfg.owner, cfg.repo, { title, head: branch, base, body: o.body ? `${o.body}\n\n${generated}` : generated });
  } catch (e) {
    if (!(e instanceof GithubApiError)) throw e;
    // "A pull request already exists for owner:branch": the one opened by an earlier try.
    const found = e.status === 422 ? (await pullRequestsFrom(access, cfg.owner, cfg.repo, branch).catch(() => []))[0] : undefined;
    if (!found) throw new IntegrationError(`${cfg.owner}/${cfg.repo}: ${e.message}`);
    pr = found;
  }
  const { link, created } = await insertLink(ctx.db, {
    integrationId: integration.id,
    objectiveId,
    checkpointId: checkpoint.id,
    kind: 'pull_request',
    externalId: String(pr.number),
    number: pr.number,
    url: pr.html_url,
    branch,
  });
  if (created) {
    await appendAudit(ctx.db, {
      actor: actorOfCaller(caller),
      action: 'checkpoint.pull_request_opened',
      subjectType: 'checkpoint',
      subjectId: checkpoint.id,
      projectId: project.id,
      details: { integrationId: integration.id, repo: `${cfg.owner}/${cfg.repo}`, number: pr.number, url: pr.html_url, branch, base, commit: push.commit },
    });
  }
  return prView(project.id, link, created);
}

/** POST /v1/checkpoints/:id/pull-request */
export async function openPullRequest(ctx: ServiceContext, caller: Caller, checkpointId: string, input: unknown): Promise<PullRequestView> {
  const checkpoint = await requireCheckpoint(ctx, checkpointId);
  const body = openPullRequestBody.parse(input ?? {});
  const project = await requireProject(ctx, checkpoint.projectId);
  const integration = await requireIntegration(ctx, project, 'github');
  return openPullRequestFor(ctx, caller, integration, project, checkpoint, { ...body, closes: null, objectiveId: null });
}

// ---------------------------------------------------------------------------------------------
// Incoming hooks

export interface HookAnswer {
  status: number;
  body: Record<string, unknown>;
}

/** An issue starts an objective (linked to it), once: a second trigger of the same issue finds it. */
async function githubHook(ctx: ServiceContext, integration: Integration, event: string, payload: unknown): Promise<{ outcome: string; objectiveId?: string }> {
  if (event === 'ping') return { outcome: 'pong' };
  const cfg = githubConfig(integration);
  const decision = issueTrigger(cfg, event, (payload ?? {}) as IssuesPayload);
  if ('ignored' in decision) return { outcome: `ignored: ${decision.ignored}` };
  const issue = decision.issue;
  return objectiveFromItem(ctx, integration, {
    linkKind: 'issue',
    externalId: String(issue.number),
    number: issue.number,
    url: issue.url,
    title: `#${issue.number} ${issue.title}`,
    work: cfg.work === 'command' ? issue.body : `${issue.title}\n\n${issue.body}`,
    machineType: cfg.machineType,
    as: cfg.work,
  });
}

const INBOUND: Partial<Record<IntegrationKind, InboundAdapter>> = {
  github: {
    verify: (secret, raw, h) => githubSignatureMatches(secret, raw, h['x-hub-signature-256']),
    deliveryId: (h) => header(h, 'x-github-delivery'),
    event: (h) => header(h, 'x-github-event') ?? 'unknown',
    handle: githubHook,
  },
  ...TICKET_INBOUND,
};

/**
 * An incoming hook of an integration (POST /hooks/:kind/:integrationId, no API key): the
 * signature over the raw body is checked before anything is parsed (401 when missing or wrong),
 * a delivery id seen before is answered without acting again, and each accepted delivery is
 * audited with what it did.
 */
export async function receiveHook(
  ctx: ServiceContext,
  kindName: string,
  integrationId: string,
  headers: Record<string, string | undefined>,
  raw: Buffer,
): Promise<HookAnswer> {
  const adapter = INBOUND[kindName as IntegrationKind];
  const integration = adapter ? await getIntegration(ctx.db, integrationId) : null;
  if (!adapter || !integration || integration.kind !== kindName)
    throw new NotFoundError(`no ${kindName.slice(0, 40)} integration ${integrationId.slice(0, 100)}`);
  if (!integration.webhookSecret) throw new AuthenticationError('this integration has no webhook secret: set webhookSecret on it to accept hooks');
  if (!adapter.verify(integration.webhookSecret, raw, headers)) throw new AuthenticationError('the signature is missing or does not match the body');
  let payload: unknown;
  try {
    payload = JSON.parse(raw.toString('utf8'));
  } catch {
    throw new InputError('the body is not JSON (send the hook with content type application/json)');
  }
  const stale = adapter.staleness?.(payload, Date.now());
  if (stale) throw new AuthenticationError(`refused: ${stale}`);
  const event = adapter.event(headers, payload);
  const deliveryId = adapter.deliveryId(headers);
  if (!deliveryId) throw new InputError('the delivery id header is missing');
  if (!(await recordDelivery(ctx.db, integration.id, deliveryId, event))) return { status: 200, body: { status: 'duplicate', deliveryId } };
  let result: { outcome: string; objectiveId?: string };
  try {
    result = await adapter.handle(ctx, integration, event, payload);
  } catch (e) {
    // Not acted on: GitHub's redelivery of it is tried again.
    await forgetDelivery(ctx.db, integration.id, deliveryId);
    throw e;
  }
  await setDeliveryOutcome(ctx.db, integration.id, deliveryId, result.outcome);
  const action = typeof (payload as { action?: unknown })?.action === 'string' ? String((payload as { action: string }).action).slice(0, 100) : null;
  await appendAudit(ctx.db, {
    actor: `integration:${integration.id}`,
    action: 'integration.hook_received',
    subjectType: 'integration',
    subjectId: integration.id,
    projectId: integration.projectId,
    details: { kind: integration.kind, event, action, deliveryId, outcome: result.outcome, objectiveId: result.objectiveId ?? null },
    idempotencyKey: `integration.hook:${integration.id}:${deliveryId}`,
  });
  return { status: 200, body: { status: 'accepted', deliveryId, outcome: result.outcome, objectiveId: result.objectiveId ?? null } };
}

// ---------------------------------------------------------------------------------------------
// The dispatcher's work (called by activities/notify/integrations.ts)

/** Event kinds the dispatcher acts on. */
export const INTEGRATION_EVENT_KINDS = ['objective.status'] as const;

export type DispatcherWork = { status: 'active' | 'deleted'; seqs: number[] };

/** The integration's next events after its cursor, of its project and of the kinds it acts on. */
export async function pendingIntegrationEvents(ctx: ServiceContext, integrationId: string, limit: number): Promise<DispatcherWork> {
  const i = await getIntegration(ctx.db, integrationId);
  if (!i) return { status: 'deleted', seqs: [] };
  const events = await eventsAfter(ctx.db, i.cursor, { projectIds: null, projectId: i.projectId, kinds: INTEGRATION_EVENT_KINDS }, limit);
  return { status: 'active', seqs: events.map((e) => e.seq) };
}

/** The event was handled, or given up on: the cursor moves past it. */
export async function integrationEventDone(ctx: ServiceContext, integrationId: string, seq: number): Promise<void> {
  await advanceIntegrationCursor(ctx.db, integrationId, seq);
}

/**
 * Acts on one event for an integration: when an objective linked to its items changes status, it
 * opens the objective's pull request if it completed from an issue (autoPullRequest), then
 * comments the status, progress, cost and links on each item linked before the event (once per
 * item and event). Throws when the tracker fails (the dispatcher retries).
 */
export async function handleIntegrationEvent(
  ctx: ServiceContext,
  integrationId: string,
  seq: number,
): Promise<{ comments: number; pullRequest: number | null }> {
  const integration = await getIntegration(ctx.db, integrationId);
  if (!integration) throw new NotFoundError(`integration ${integrationId} not found`);
  if (integration.kind !== 'github') return { comments: (await handleTicketEvent(ctx, integration, seq)).comments, pullRequest: null };
  const event = await getEvent(ctx.db, seq);
  if (!event || event.kind !== 'objective.status' || event.projectId !== integration.projectId) return { comments: 0, pullRequest: null };
  const links = await linksOfObjective(ctx.db, integration.id, event.subjectId);
  if (!links.length) return { comments: 0, pullRequest: null };
  const cfg = githubConfig(integration);
  const project = await requireProject(ctx, integration.projectId);
  const objective = (await getObjective(ctx.db, event.subjectId))!;
  const status = String(event.data.status ?? objective.status);

  const final = await finalCheckpointOfObjective(ctx.db, objective.id);
  let pr = links.find((l) => l.kind === 'pull_request') ?? null;
  const issue = links.find((l) => l.kind === 'issue') ?? null;
  let opened: number | null = null;
  const checkpoint = status === 'completed' && cfg.autoPullRequest && issue && !pr && final ? await getCheckpoint(ctx.db, final) : null;
  if (checkpoint) {
    const made = await openPullRequestFor(ctx, integrationCaller(integration), integration, project, checkpoint, {
      title: objective.title,
      closes: issue!.number,
      objectiveId: objective.id,
    });
    const link = await linkOfItem(ctx.db, integration.id, 'pull_request', String(made.number));
    if (link) {
      await setLinkObjective(ctx.db, link.id, objective.id);
      pr = link;
    }
    opened = made.number;
  }
  if (!cfg.progressComments) return { comments: 0, pullRequest: opened };
  const text = progressComment({
    objective: {
      id: objective.id,
      title: objective.title,
      status,
      previous: typeof event.data.previous === 'string' ? event.data.previous : null,
      progress: status === 'completed' ? 1 : objective.progress,
      error: typeof event.data.error === 'string' ? event.data.error : null,
    },
    link: objectivesLink(publicUrlOf(ctx), project.id),
    cost: await costOf(ctx, project, await machineIdsOfObjective(ctx.db, objective.id)),
    checkpoint: final ? { id: final, link: checkpointLink(publicUrlOf(ctx), project.id, final) } : null,
    pullRequest: pr && pr.number !== null ? { number: pr.number, url: pr.url } : null,
  });
  const access = githubAccess(ctx, integration);
  let comments = 0;
  for (const link of links) {
    // Items linked after the event (an issue's own objective creation, the pull request just opened) are not told of it.
    if (link.number === null || new Date(link.createdAt) > new Date(event.at)) continue;
    if (await commentOf(ctx.db, link.id, seq)) continue;
    try {
      const c = await createIssueComment(access, cfg.owner, cfg.repo, link.number, text);
      await recordComment(ctx.db, link.id, seq, String(c.id), c.html_url ?? null);
      comments++;
    } catch (e) {
      if (e instanceof GithubApiError) throw new IntegrationError(`${cfg.owner}/${cfg.repo}#${link.number}: ${e.message}`);
      throw e;
    }
  }
  return { comments, pullRequest: opened };
}

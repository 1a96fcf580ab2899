/**
 * Jira and Linear integrations (README "Jira", "Linear"): objectives and tickets kept in step
 * both ways. From the platform (the integration's dispatcher, services/integrations.ts
 * handleIntegrationEvent): an objective created with `ticket: true` (or every new one, with
 * createTickets) gets a ticket, its status changes move the ticket (a Jira transition, a Linear
 * workflow state) and are commented with progress, exact cost and the latest checkpoint's link.
 * From the tracker (signed hooks, services/integrations.ts receiveHook): a ticket with the trigger
 * label starts a linked objective; a ticket moved to the cancelled status cancels it.
 */
import { ConflictError, IntegrationError, NotFoundError } from '../domain/errors.js';
import { checkpointLink, objectivesLink, progressComment } from '../domain/integrations.js';
import type { ObjectiveStatus } from '../domain/objectives.js';
import {
  jiraDecision,
  jiraObjectiveLabel,
  jiraProgressComment,
  jiraSignatureMatches,
  jiraTicketDescription,
  linearDecision,
  linearIssueId,
  linearSignatureMatches,
  linearTicketDescription,
  linearTimestampProblem,
  ticketTitle,
  UUID,
  type JiraConfig,
  type JiraWebhookPayload,
  type LinearConfig,
  type LinearWebhookPayload,
  type TicketDecision,
  type TicketFacts,
  type TicketProgressFacts,
} from '../domain/tickets.js';
import { appendAudit } from '../store/audit.js';
import {
  commentOf,
  insertLink,
  linkOfItem,
  linksOfObjective,
  recordComment,
  ticketRequested,
  type Integration,
  type IntegrationLink,
} from '../store/integrations.js';
import { createJiraComment, createJiraIssue, jiraTransitions, jqlString, searchJiraIssues, transitionJiraIssue, type JiraAccess } from '../store/jira.js';
import { createLinearComment, createLinearIssue, linearIssue, linearTeamStates, setLinearIssueState, type LinearAccess } from '../store/linear.js';
import { finalCheckpointOfObjective, getObjective, machineIdsOfObjective, type Objective } from '../store/objectives.js';
import { TrackerApiError } from '../store/tracker-http.js';
import { getEvent } from '../store/webhooks.js';
import type { ServiceContext } from './context.js';
import { costOf, header, integrationCaller, objectiveFromItem, publicUrlOf, type HookResult, type InboundAdapter } from './integration-common.js';
import { cancelObjective } from './objectives.js';
import { requireProject } from './projects.js';
import { jiraConfigBody, linearConfigBody } from './schemas.js';

export const jiraConfig = (i: Integration): JiraConfig => jiraConfigBody.parse(i.config);
export const linearConfig = (i: Integration): LinearConfig => linearConfigBody.parse(i.config);

const limits = (ctx: ServiceContext) => ({ allowPrivate: ctx.config.webhooks.allowPrivate, timeoutMs: ctx.config.webhooks.timeoutSeconds * 1000 });
const jiraAccess = (ctx: ServiceContext, i: Integration, cfg: JiraConfig): JiraAccess => ({
  ...limits(ctx),
  baseUrl: cfg.baseUrl,
  email: cfg.email,
  token: i.token,
});
const linearAccess = (ctx: ServiceContext, i: Integration, cfg: LinearConfig): LinearAccess => ({
  ...limits(ctx),
  apiUrl: cfg.apiUrl,
  token: i.token,
  tokenType: cfg.tokenType,
});

/** A ticket tracker as the dispatcher uses it. */
interface Tracker {
  /** Makes the objective's ticket; answers its link fields. */
  create(facts: TicketFacts, objective: Objective): Promise<{ externalId: string; number: number | null; url: string; key: string }>;
  /** Moves the ticket to `target`; false when the tracker offers no such move now (it is already there, or the workflow lacks it). */
  move(link: IntegrationLink, target: string): Promise<boolean>;
  comment(link: IntegrationLink, facts: TicketProgressFacts): Promise<{ id: string; url: string | null }>;
  statusMap: Record<ObjectiveStatus, string | null>;
  createTickets: boolean;
  progressComments: boolean;
  name: string;
}

const keyNumber = (key: string) => {
  const m = /-(\d+)$/.exec(key);
  return m ? Number(m[1]) : null;
};

function jiraTracker(ctx: ServiceContext, i: Integration): Tracker {
  const cfg = jiraConfig(i);
  const a = jiraAccess(ctx, i, cfg);
  const browse = (key: string) => `${cfg.baseUrl.replace(/\/+$/, '')}/browse/${encodeURIComponent(key)}`;
  return {
    name: `Jira ${cfg.projectKey}`,
    statusMap: cfg.statusMap,
    createTickets: cfg.createTickets,
    progressComments: cfg.progressComments,
    async create(facts, objective) {
      // Jira takes no idempotency key: the issue carries a label naming the objective, and a retry
      // after a lost answer finds the issue the first try made by it.
      const marker = jiraObjectiveLabel(objective.id);
      const [found] = await searchJiraIssues(a, `project = ${jqlString(cfg.projectKey)} AND labels = ${jqlString(marker)}`, 1);
      const made =
        found ??
        (await createJiraIssue(a, {
          projectKey: cfg.projectKey,
          summary: ticketTitle(facts),
          issueType: cfg.issueType,
          description: jiraTicketDescription(facts),
          labels: [marker],
        }));
      return { externalId: made.key, number: keyNumber(made.key), url: browse(made.key), key: made.key };
    },
    async move(link, target) {
      const t = (await jiraTransitions(a, link.externalId)).find(
        (x) => x.name.toLowerCase() === target.toLowerCase() || x.to?.name?.toLowerCase() === target.toLowerCase(),
      );
      if (!t) return false;
      await transitionJiraIssue(a, link.externalId, t.id);
      return true;
    },
    async comment(link, facts) {
      const c = await createJiraComment(a, link.externalId, jiraProgressComment(facts));
      return { id: String(c.id), url: `${browse(link.externalId)}?focusedCommentId=${encodeURIComponent(String(c.id))}` };
    },
  };
}

function linearTracker(ctx: ServiceContext, i: Integration): Tracker {
  const cfg = linearConfig(i);
  const a = linearAccess(ctx, i, cfg);
  return {
    name: `Linear team ${cfg.teamId}`,
    statusMap: cfg.stateMap,
    createTickets: cfg.createTickets,
    progressComments: cfg.progressComments,
    async create(facts, objective) {
      // A client-chosen id: a retry after a lost answer finds the issue the first try made.
      const id = linearIssueId(i.id, objective.id);
      let issue;
      try {
        issue = await createLinearIssue(a, { id, teamId: cfg.teamId, title: ticketTitle(facts), description: linearTicketDescription(facts) });
      } catch (e) {
        issue = e instanceof TrackerApiError && e.status !== null ? await linearIssue(a, id).catch(() => null) : null;
        if (!issue) throw e;
      }
      return { externalId: issue.id, number: keyNumber(issue.identifier), url: issue.url, key: issue.identifier };
    },
    async move(link, target) {
      let stateId: string | null = UUID.test(target) ? target : null;
      if (!stateId) stateId = (await linearTeamStates(a, cfg.teamId)).find((s) => s.name.toLowerCase() === target.toLowerCase())?.id ?? null;
      if (!stateId) return false;
      await setLinearIssueState(a, link.externalId, stateId);
      return true;
    },
    async comment(link, facts) {
      const f = { ...facts, pullRequest: null };
      const c = await createLinearComment(a, link.externalId, progressComment(f));
      return { id: c.id, url: c.url };
    },
  };
}

const trackerOf = (ctx: ServiceContext, i: Integration): Tracker => (i.kind === 'jira' ? jiraTracker(ctx, i) : linearTracker(ctx, i));

const failed = (t: Tracker, what: string, e: unknown) => (e instanceof TrackerApiError ? new IntegrationError(`${t.name}: ${what}: ${e.message}`) : e);

/**
 * Acts on one event for a Jira or Linear integration: when an objective changes status, it makes
 * the objective's ticket if the objective asked for one (or the integration makes one for every
 * new objective) and has none yet, moves the ticket to the status mapped from the objective's,
 * and comments status, progress, exact cost and the latest checkpoint's link on tickets linked
 * before the event (once per ticket and event). Throws when the tracker fails (the dispatcher
 * retries).
 */
export async function handleTicketEvent(ctx: ServiceContext, integration: Integration, seq: number): Promise<{ comments: number; ticket: string | null }> {
  const event = await getEvent(ctx.db, seq);
  if (!event || event.kind !== 'objective.status' || event.projectId !== integration.projectId) return { comments: 0, ticket: null };
  const objective = await getObjective(ctx.db, event.subjectId);
  if (!objective) return { comments: 0, ticket: null };
  const tracker = trackerOf(ctx, integration);
  let ticket = (await linksOfObjective(ctx.db, integration.id, objective.id)).find((l) => l.kind === 'ticket') ?? null;
  // An objective neither linked nor asking for a ticket is none of this integration's business.
  const wanted = () => (tracker.createTickets && new Date(objective.createdAt) >= new Date(integration.createdAt)) || ticketRequested(ctx.db, objective.id);
  if (!ticket && !(await wanted())) return { comments: 0, ticket: null };
  const project = await requireProject(ctx, integration.projectId);
  const status = String(event.data.status ?? objective.status) as ObjectiveStatus;
  const link = publicUrlOf(ctx);
  let made: string | null = null;
  if (!ticket) {
    const facts: TicketFacts = {
      objective: { id: objective.id, title: objective.title, machineType: objective.machineType, work: objective.prompt ?? objective.command },
      link: objectivesLink(link, project.id),
    };
    const created = await tracker.create(facts, objective).catch((e) => {
      throw failed(tracker, 'creating the ticket', e);
    });
    const stored = await insertLink(ctx.db, {
      integrationId: integration.id,
      objectiveId: objective.id,
      checkpointId: null,
      kind: 'ticket',
      externalId: created.externalId,
      number: created.number,
      url: created.url,
    });
    ticket = stored.link;
    made = created.key;
    if (stored.created) {
      await appendAudit(ctx.db, {
        actor: `integration:${integration.id}`,
        action: 'objective.ticket_created',
        subjectType: 'objective',
        subjectId: objective.id,
        projectId: project.id,
        details: { integrationId: integration.id, kind: integration.kind, ticket: created.key, url: created.url },
      });
    }
  }
  const target = tracker.statusMap[status] ?? null;
  if (target) {
    const moved = await tracker.move(ticket, target).catch((e) => {
      throw failed(tracker, `moving ${ticket!.externalId} to ${target}`, e);
    });
    if (!moved) ctx.log.info({ integrationId: integration.id, ticket: ticket.externalId, target }, 'the ticket offers no move to the mapped status now');
  }
  // A ticket made for this event says what it is; one linked after the event is not told of it.
  if (!tracker.progressComments || made || new Date(ticket.createdAt) > new Date(event.at)) return { comments: 0, ticket: made };
  if (await commentOf(ctx.db, ticket.id, seq)) return { comments: 0, ticket: made };
  const final = await finalCheckpointOfObjective(ctx.db, objective.id);
  const facts: TicketProgressFacts = {
    objective: {
      id: objective.id,
      title: objective.title,
      status,
      previous: typeof event.data.previous === 'string' ? event.data.previous : null,
      progress: status === 'completed' ? 1 : objective.progress,
      error: typeof event.data.error === 'string' ? event.data.error : null,
    },
    link: objectivesLink(link, project.id),
    cost: await costOf(ctx, project, await machineIdsOfObjective(ctx.db, objective.id)),
    checkpoint: final ? { id: final, link: checkpointLink(link, project.id, final) } : null,
  };
  const c = await tracker.comment(ticket, facts).catch((e) => {
    throw failed(tracker, `commenting on ${ticket!.externalId}`, e);
  });
  await recordComment(ctx.db, ticket.id, seq, c.id, c.url);
  return { comments: 1, ticket: made };
}

// ---------------------------------------------------------------------------------------------
// Incoming hooks

/** Acts on what a ticket event asks: start a linked objective, or cancel the linked one. */
async function actOn(
  ctx: ServiceContext,
  integration: Integration,
  decision: TicketDecision,
  cfg: { machineType: string; work: 'prompt' | 'command' },
): Promise<HookResult> {
  if ('ignored' in decision) return { outcome: `ignored: ${decision.ignored}` };
  if ('start' in decision) {
    const t = decision.start;
    return objectiveFromItem(ctx, integration, {
      linkKind: 'ticket',
      externalId: t.externalId,
      number: t.number,
      url: t.url,
      title: `${t.key} ${t.title}`,
      work: cfg.work === 'command' ? t.body : `${t.title}\n\n${t.body}`,
      machineType: cfg.machineType,
      as: cfg.work,
    });
  }
  const link = await linkOfItem(ctx.db, integration.id, 'ticket', decision.cancel.externalId);
  if (!link?.objectiveId) return { outcome: 'ignored: the ticket has no objective' };
  try {
    await cancelObjective(ctx, integrationCaller(integration), link.objectiveId);
  } catch (e) {
    if (e instanceof ConflictError || e instanceof NotFoundError) return { outcome: `ignored: ${e.message}`, objectiveId: link.objectiveId };
    throw e;
  }
  return { outcome: `objective cancelled (ticket moved to ${decision.cancel.status})`, objectiveId: link.objectiveId };
}

export const TICKET_INBOUND: { jira: InboundAdapter; linear: InboundAdapter } = {
  jira: {
    verify: (secret, raw, h) => jiraSignatureMatches(secret, raw, h['x-hub-signature']),
    deliveryId: (h) => header(h, 'x-atlassian-webhook-identifier'),
    event: (_h, p) => String((p as JiraWebhookPayload | null)?.webhookEvent ?? 'unknown').slice(0, 100),
    handle: async (ctx, integration, _event, payload) => {
      const cfg = jiraConfig(integration);
      return actOn(ctx, integration, jiraDecision(cfg, (payload ?? {}) as JiraWebhookPayload), cfg);
    },
  },
  linear: {
    verify: (secret, raw, h) => linearSignatureMatches(secret, raw, h['linear-signature']),
    staleness: (payload, now) => linearTimestampProblem(payload, now),
    deliveryId: (h) => header(h, 'linear-delivery'),
    event: (_h, p) => {
      const x = (p ?? {}) as LinearWebhookPayload;
      return `${String(x.type ?? 'unknown')}.${String(x.action ?? 'unknown')}`.slice(0, 100);
    },
    handle: async (ctx, integration, _event, payload) => {
      const cfg = linearConfig(integration);
      return actOn(ctx, integration, linearDecision(cfg, (payload ?? {}) as LinearWebhookPayload), cfg);
    },
  },
};

/**
 * Ticket trackers (README "Jira" and "Linear"), the pure parts: their configs, their webhook
 * signatures, what an incoming ticket event asks for (start an objective, cancel one, nothing),
 * and the texts written to tickets (Atlassian Document Format for Jira, markdown for Linear).
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { ObjectiveStatus } from './objectives.js';

/** Objective statuses a ticket may follow (a transition in Jira, a workflow state in Linear). */
export type StatusMap = Record<ObjectiveStatus, string | null>;

export interface JiraConfig {
  /** The site, https://<your-domain>.atlassian.net. */
  baseUrl: string;
  projectKey: string;
  /** With an API token: sent as HTTP Basic auth (email:token); null: the token is an OAuth bearer token. */
  email: string | null;
  issueType: string;
  /** Objective status → the transition (or target status) name its ticket takes; null: none. */
  statusMap: StatusMap;
  /** An issue created with (or given) this label starts an objective (null: none do). */
  triggerLabel: string | null;
  /** Every objective of the project gets a ticket, not only those created with `ticket: true`. */
  createTickets: boolean;
  machineType: string;
  work: 'prompt' | 'command';
  progressComments: boolean;
}

export interface LinearConfig {
  /** https://api.linear.app/graphql */
  apiUrl: string;
  teamId: string;
  /** `apiKey`: the token is a personal API key, sent as is; `oauth`: an OAuth token, sent as Bearer. */
  tokenType: 'apiKey' | 'oauth';
  /** Objective status → the workflow state (its id, or its name in the team); null: none. */
  stateMap: StatusMap;
  triggerLabel: string | null;
  createTickets: boolean;
  machineType: string;
  work: 'prompt' | 'command';
  progressComments: boolean;
}

export const JIRA_STATUS_DEFAULTS: StatusMap = { waiting: null, paused: null, running: 'In Progress', completed: 'Done', failed: null, cancelled: null };
export const LINEAR_STATE_DEFAULTS: StatusMap = { waiting: null, paused: null, running: 'In Progress', completed: 'Done', failed: null, cancelled: 'Canceled' };

// ---------------------------------------------------------------------------------------------
// Signatures

const hmacHex = (secret: string, raw: Buffer | string) => createHmac('sha256', secret).update(raw).digest('hex');
const sameText = (a: string, b: string) => {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
};

/** Jira Cloud's webhook secret: `X-Hub-Signature: sha256=<hex HMAC-SHA256 of the raw body>` (the WebSub form). */
export function jiraSignature(secret: string, raw: Buffer | string): string {
  return `sha256=${hmacHex(secret, raw)}`;
}

export function jiraSignatureMatches(secret: string, raw: Buffer, header: string | undefined): boolean {
  if (!header || !header.startsWith('sha256=')) return false;
  return sameText(header.toLowerCase(), jiraSignature(secret, raw));
}

/** Linear's `Linear-Signature`: the hex HMAC-SHA256 of the raw body with the webhook's signing secret. */
export function linearSignature(secret: string, raw: Buffer | string): string {
  return hmacHex(secret, raw);
}

export function linearSignatureMatches(secret: string, raw: Buffer, header: string | undefined): boolean {
  if (!header || !/^[0-9a-fA-F]{64}$/.test(header)) return false;
  return sameText(header.toLowerCase(), linearSignature(secret, raw));
}

/** How far Linear's `webhookTimestamp` (ms since the epoch, inside the signed body) may be from now. */
export const LINEAR_TIMESTAMP_TOLERANCE_MS = 60_000;

/** Why a Linear delivery is stale or has no timestamp (a replay is refused), or null. */
export function linearTimestampProblem(payload: unknown, nowMs: number): string | null {
  const ts = (payload as { webhookTimestamp?: unknown } | null)?.webhookTimestamp;
  if (typeof ts !== 'number' || !Number.isFinite(ts)) return 'the body has no webhookTimestamp';
  if (Math.abs(nowMs - ts) > LINEAR_TIMESTAMP_TOLERANCE_MS)
    return `webhookTimestamp is more than ${LINEAR_TIMESTAMP_TOLERANCE_MS / 1000} s from now (a replay?)`;
  return null;
}

// ---------------------------------------------------------------------------------------------
// Incoming ticket events

/** A ticket whose text becomes an objective's work. */
export interface TicketWork {
  /** The tracker's own id (a Jira key, a Linear issue id). */
  externalId: string;
  /** The number in the ticket's key (AV-7 → 7), if any. */
  number: number | null;
  /** What people call it (AV-7, ENG-123). */
  key: string;
  title: string;
  body: string;
  url: string;
}

export type TicketDecision = { start: TicketWork } | { cancel: { externalId: string; status: string } } | { ignored: string };

const numberOfKey = (key: string) => {
  const m = /-(\d+)$/.exec(key);
  return m ? Number(m[1]) : null;
};
const ieq = (a: string | null | undefined, b: string | null | undefined) => a != null && b != null && a.toLowerCase() === b.toLowerCase();

/** The plain text of an Atlassian Document Format node (or of a wiki-markup string, as it is). */
export function adfText(node: unknown): string {
  if (typeof node === 'string') return node;
  if (!node || typeof node !== 'object') return '';
  const n = node as { type?: string; text?: string; content?: unknown[] };
  if (n.type === 'text') return n.text ?? '';
  if (n.type === 'hardBreak') return '\n';
  const inner = (n.content ?? []).map(adfText);
  const block = ['doc', 'bulletList', 'orderedList', 'listItem', 'table', 'tableRow'].includes(n.type ?? '');
  return block ? inner.filter((s) => s !== '').join('\n') : inner.join('');
}

/** The fields of a Jira webhook the platform reads (https://developer.atlassian.com/cloud/jira/platform/webhooks/). */
export interface JiraWebhookPayload {
  webhookEvent?: string;
  timestamp?: number;
  issue?: {
    id?: string;
    key?: string;
    self?: string;
    fields?: {
      summary?: string;
      description?: unknown;
      labels?: string[];
      status?: { name?: string; statusCategory?: { key?: string } };
      project?: { key?: string };
    };
  };
  changelog?: { items?: Array<{ field?: string; fieldId?: string; fromString?: string | null; toString?: string | null }> };
}

/**
 * What a Jira webhook asks: `jira:issue_created` with the trigger label, or `jira:issue_updated`
 * adding it, starts an objective; `jira:issue_updated` moving the issue to a status of the done
 * category (closed, resolved, done) or to the status mapped from `cancelled` cancels its objective
 * (one already ended is left as it is); anything else (comments too) is only recorded. Issues of
 * other projects are ignored.
 */
export function jiraDecision(cfg: JiraConfig, p: JiraWebhookPayload): TicketDecision {
  const event = p.webhookEvent ?? '(none)';
  const issue = p.issue;
  if (!issue?.key) return { ignored: `${event} carries no issue` };
  const project = issue.fields?.project?.key ?? issue.key.replace(/-\d+$/, '');
  if (project !== cfg.projectKey) return { ignored: `issue ${issue.key} is not of project ${cfg.projectKey}` };
  const items = p.changelog?.items ?? [];
  const work = (): TicketWork => ({
    externalId: issue.key!,
    number: numberOfKey(issue.key!),
    key: issue.key!,
    title: issue.fields?.summary ?? issue.key!,
    body: adfText(issue.fields?.description).trim(),
    url: `${cfg.baseUrl.replace(/\/+$/, '')}/browse/${encodeURIComponent(issue.key!)}`,
  });
  const labelled = cfg.triggerLabel !== null && (issue.fields?.labels ?? []).some((l) => ieq(l, cfg.triggerLabel));
  if (event === 'jira:issue_created') return labelled ? { start: work() } : { ignored: 'the issue does not carry the trigger label' };
  if (event === 'jira:issue_updated') {
    const status = items.find((i) => i.field === 'status' || i.fieldId === 'status');
    const cancelled = cfg.statusMap.cancelled;
    const closed = issue.fields?.status?.statusCategory?.key === 'done';
    if (status && (closed || (cancelled && ieq(status.toString, cancelled))))
      return { cancel: { externalId: issue.key, status: status.toString ?? issue.fields?.status?.name ?? 'done' } };
    const labels = items.find((i) => i.field === 'labels' || i.fieldId === 'labels');
    const words = (s: string | null | undefined) => (s ?? '').split(/\s+/).filter(Boolean);
    if (
      labels &&
      cfg.triggerLabel &&
      words(labels.toString).some((l) => ieq(l, cfg.triggerLabel)) &&
      !words(labels.fromString).some((l) => ieq(l, cfg.triggerLabel))
    )
      return { start: work() };
    return { ignored: 'the update neither adds the trigger label nor closes the issue' };
  }
  return { ignored: `${event} is recorded, not acted on` };
}

/** The fields of a Linear webhook the platform reads (https://linear.app/developers/webhooks). */
export interface LinearWebhookPayload {
  action?: string;
  type?: string;
  webhookTimestamp?: number;
  url?: string;
  data?: {
    id?: string;
    identifier?: string;
    title?: string;
    description?: string | null;
    url?: string;
    teamId?: string;
    stateId?: string;
    state?: { id?: string; name?: string; type?: string };
    labels?: Array<{ id?: string; name?: string }>;
    labelIds?: string[];
  };
  updatedFrom?: { stateId?: string; labelIds?: string[] };
}

/**
 * What a Linear webhook asks: an Issue `create` with the trigger label, or an `update` adding
 * it, starts an objective; an `update` moving the issue to a canceled or completed state (its
 * type, or the state mapped from `cancelled`) cancels its objective (one already ended is left as
 * it is). Other teams' issues are ignored.
 */
export function linearDecision(cfg: LinearConfig, p: LinearWebhookPayload): TicketDecision {
  const what = `${p.type ?? '(none)'} ${p.action ?? '(none)'}`;
  if (p.type !== 'Issue') return { ignored: `${what} is recorded, not acted on` };
  const d = p.data;
  if (!d?.id) return { ignored: `${what} carries no issue` };
  if (d.teamId !== cfg.teamId) return { ignored: `issue ${d.identifier ?? d.id} is not of team ${cfg.teamId}` };
  const key = d.identifier ?? d.id;
  const work = (): TicketWork => ({
    externalId: d.id!,
    number: numberOfKey(key),
    key,
    title: d.title ?? key,
    body: (d.description ?? '').trim(),
    url: d.url ?? p.url ?? '',
  });
  const label = cfg.triggerLabel;
  const labelIdsNow = new Set(d.labelIds ?? []);
  const trigger = (d.labels ?? []).find((l) => ieq(l.name, label));
  if (p.action === 'create') return trigger ? { start: work() } : { ignored: 'the issue does not carry the trigger label' };
  if (p.action === 'update') {
    const from = p.updatedFrom ?? {};
    if (from.stateId !== undefined) {
      const mapped = cfg.stateMap.cancelled;
      const state = d.state ?? {};
      if (state.type === 'canceled' || state.type === 'completed' || (mapped && (state.id === mapped || ieq(state.name, mapped))))
        return { cancel: { externalId: d.id, status: state.name ?? state.type ?? 'canceled' } };
    }
    if (from.labelIds !== undefined && trigger?.id && (labelIdsNow.size === 0 || labelIdsNow.has(trigger.id)) && !from.labelIds.includes(trigger.id))
      return { start: work() };
    return { ignored: 'the update neither adds the trigger label nor closes the issue' };
  }
  return { ignored: `${what} is recorded, not acted on` };
}

// ---------------------------------------------------------------------------------------------
// What the platform writes

/** A node of Atlassian Document Format (https://developer.atlassian.com/cloud/jira/platform/apis/document/structure/). */
export type AdfNode = {
  type: string;
  text?: string;
  attrs?: Record<string, unknown>;
  marks?: Array<{ type: string; attrs?: Record<string, unknown> }>;
  content?: AdfNode[];
};
export interface AdfDoc {
  version: 1;
  type: 'doc';
  content: AdfNode[];
}

/** Inline pieces of a paragraph: plain text, **strong** text, or a link. */
export type Inline = string | { strong: string } | { link: string; href: string } | { code: string };

const inline = (parts: Inline[]): AdfNode[] =>
  parts
    .map((p): AdfNode | null => {
      if (typeof p === 'string') return p ? { type: 'text', text: p } : null;
      if ('strong' in p) return p.strong ? { type: 'text', text: p.strong, marks: [{ type: 'strong' }] } : null;
      if ('code' in p) return p.code ? { type: 'text', text: p.code, marks: [{ type: 'code' }] } : null;
      return p.link ? { type: 'text', text: p.link, marks: [{ type: 'link', attrs: { href: p.href } }] } : null;
    })
    .filter((n): n is AdfNode => n !== null);

export const adf = {
  doc: (...content: AdfNode[]): AdfDoc => ({ version: 1, type: 'doc', content }),
  paragraph: (...parts: Inline[]): AdfNode => ({ type: 'paragraph', content: inline(parts) }),
  bullets: (...items: Inline[][]): AdfNode => ({
    type: 'bulletList',
    content: items.map((parts) => ({ type: 'listItem', content: [{ type: 'paragraph', content: inline(parts) }] })),
  }),
  code: (text: string): AdfNode => ({ type: 'codeBlock', attrs: {}, content: text ? [{ type: 'text', text }] : [] }),
};

const clip = (s: string, n: number) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);

/** What a new ticket tells about the objective it follows. */
export interface TicketFacts {
  objective: { id: string; title: string; machineType: string; work: string | null };
  link: string;
}

export const ticketTitle = (f: TicketFacts) => clip(f.objective.title, 250);

/** The description of a Jira issue made for an objective. */
export function jiraTicketDescription(f: TicketFacts): AdfDoc {
  const o = f.objective;
  return adf.doc(
    adf.paragraph('AutoVibe objective ', { link: clip(o.title, 200), href: f.link }, ' (', { code: o.id }, `), run by ${o.machineType} machines.`),
    ...(o.work ? [adf.paragraph('Its work:'), adf.code(clip(o.work, 8000))] : []),
    adf.paragraph('Status, cost and checkpoints are commented here as it goes.'),
  );
}

/** The markdown description of a Linear issue made for an objective. */
export function linearTicketDescription(f: TicketFacts): string {
  const o = f.objective;
  const lines = [`AutoVibe objective [${clip(o.title, 200)}](${f.link}) (\`${o.id}\`), run by ${o.machineType} machines.`];
  if (o.work) lines.push('', 'Its work:', '', `\`\`\`\`text\n${clip(o.work, 8000).replace(/````/g, '` ` ` `')}\n\`\`\`\``);
  lines.push('', 'Status, cost and checkpoints are commented here as it goes.');
  return lines.join('\n');
}

/** What a progress comment on a ticket tells. */
export interface TicketProgressFacts {
  objective: { id: string; title: string; status: string; previous: string | null; progress: number; error: string | null };
  link: string;
  cost: { amount: string; currency: string };
  checkpoint: { id: string; link: string } | null;
}

/** A Jira comment (ADF) when the objective changes status: status, progress, exact cost, the latest checkpoint's link. */
export function jiraProgressComment(f: TicketProgressFacts): AdfDoc {
  const o = f.objective;
  const items: Inline[][] = [[`Progress: ${Math.round(o.progress * 100)}%`], ['Cost so far: ', { strong: `${f.cost.amount} ${f.cost.currency}` }]];
  if (f.checkpoint) items.push(['Latest checkpoint: ', { link: f.checkpoint.id, href: f.checkpoint.link }]);
  return adf.doc(
    adf.paragraph(
      'AutoVibe: objective ',
      { link: clip(o.title, 200), href: f.link },
      ' is now ',
      { strong: o.status },
      o.previous ? ` (was ${o.previous}).` : '.',
    ),
    adf.bullets(...items),
    ...(o.error ? [adf.code(clip(o.error, 2000))] : []),
  );
}

/**
 * The id a Linear issue made for an objective is created with (Linear's issueCreate takes a
 * client-chosen UUID): the same for a retry, so a second try finds the first issue.
 */
export function linearIssueId(integrationId: string, objectiveId: string): string {
  const h = createHash('sha256').update(`${integrationId}\0${objectiveId}`).digest();
  h[6] = (h[6]! & 0x0f) | 0x40;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20, 32)}`;
}

/** The label a Jira issue made for an objective carries (how a retry finds it; Jira labels have no spaces). */
export const jiraObjectiveLabel = (objectiveId: string) => `autovibe-${objectiveId}`.replace(/\s+/g, '_').slice(0, 255);

export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

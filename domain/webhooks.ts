/**
 * Outgoing webhooks, the pure parts: which event kinds an endpoint may subscribe to, which
 * addresses it may never reach, the Standard Webhooks signature, and the bodies sent (the raw
 * event for a webhook, a Block Kit message for Slack). Not imported by workflow code.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { BlockList, isIP } from 'node:net';
import type { PlatformEvent } from './events.js';

export const WEBHOOK_KINDS = ['webhook', 'slack', 'slack-bot'] as const;
/** Where a `slack-bot` endpoint posts when no url is given: the Slack Web API. */
export const SLACK_WEB_API = 'https://slack.com/api';

/**
 * Slack Web API errors that retrying cannot fix (a revoked token, a channel the bot is not in):
 * the delivery fails at once instead of after every backoff step.
 * https://api.slack.com/methods/chat.postMessage#errors
 */
const SLACK_PERMANENT_ERRORS = new Set([
  'not_authed',
  'invalid_auth',
  'account_inactive',
  'token_revoked',
  'token_expired',
  'no_permission',
  'missing_scope',
  'channel_not_found',
  'not_in_channel',
  'is_archived',
  'msg_too_long',
  'invalid_blocks',
  'invalid_arguments',
]);

/**
 * What a `chat.postMessage` answer says: Slack answers HTTP 200 with `{"ok": false, "error": …}`
 * for most failures, so the status alone does not tell a delivery succeeded.
 */
export function slackApiOutcome(statusCode: number, body: string): { ok: true } | { ok: false; error: string; permanent: boolean } {
  if (statusCode === 429) return { ok: false, error: 'slack: rate limited (HTTP 429)', permanent: false };
  let parsed: { ok?: unknown; error?: unknown } | null = null;
  try {
    parsed = JSON.parse(body) as { ok?: unknown; error?: unknown };
  } catch {
    // Not JSON: judged by the status below.
  }
  if (statusCode >= 200 && statusCode < 300 && parsed?.ok === true) return { ok: true };
  const error = typeof parsed?.error === 'string' ? parsed.error : `HTTP ${statusCode}`;
  return { ok: false, error: `slack: ${error}`, permanent: SLACK_PERMANENT_ERRORS.has(error) };
}
export type WebhookKind = (typeof WEBHOOK_KINDS)[number];

/** The event families an endpoint may subscribe to (a family, or one exact kind of it). */
export const WEBHOOK_EVENT_FAMILIES = ['machine', 'checkpoint', 'objective', 'pipeline', 'payment', 'budget', 'alert', 'webhook'] as const;

const KIND_PATTERN = /^([a-z]+)\.([a-z_]+|\*)$/;

/** Why `kinds` is not a list of subscribable kinds (`machine.*`, `alert.budget_threshold`, `*`), or null. */
export function eventKindsProblem(kinds: readonly string[]): string | null {
  if (!kinds.length) return 'give at least one event kind, e.g. ["machine.*", "alert.*"]';
  for (const k of kinds) {
    if (k === '*') continue;
    const m = KIND_PATTERN.exec(k);
    if (!m || !(WEBHOOK_EVENT_FAMILIES as readonly string[]).includes(m[1]!)) {
      return `"${k.slice(0, 60)}" is not an event kind: use a family (${WEBHOOK_EVENT_FAMILIES.map((f) => `${f}.*`).join(', ')}), one kind of it (machine.status), or "*"`;
    }
  }
  return null;
}

/** Whether an event kind is one an endpoint subscribed to. */
export function kindSubscribed(kind: string, kinds: readonly string[]): boolean {
  return kinds.some((k) => k === '*' || k === kind || (k.endsWith('.*') && kind.startsWith(k.slice(0, -1))));
}

// ---------------------------------------------------------------------------------------------
// Where a webhook may go

/** Cloud metadata services: never reachable, whatever the settings. */
const METADATA = new BlockList();
for (const a of ['169.254.169.254', '169.254.170.2', '169.254.170.23', '100.100.100.200']) METADATA.addAddress(a, 'ipv4');
METADATA.addAddress('fd00:ec2::254', 'ipv6');
const METADATA_HOSTS = new Set(['metadata', 'metadata.google.internal', 'metadata.azure.internal', 'instance-data', 'instance-data.ec2.internal']);

/** Loopback, link-local, private, shared, unspecified, multicast and reserved ranges. */
const PRIVATE = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const)
  PRIVATE.addSubnet(net, prefix, 'ipv4');
for (const [net, prefix] of [
  ['::', 128],
  ['::1', 128],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
  ['64:ff9b::', 96],
] as const)
  PRIVATE.addSubnet(net, prefix, 'ipv6');

/** An IPv4-mapped IPv6 address (`::ffff:7f00:1`, `::ffff:127.0.0.1`) as its IPv4 address. */
function unmapped(ip: string): { ip: string; family: 'ipv4' | 'ipv6' } {
  const lower = ip.toLowerCase();
  const dotted = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(lower);
  if (dotted) return { ip: dotted[1]!, family: 'ipv4' };
  const hex = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(lower);
  if (hex) {
    const hi = parseInt(hex[1]!, 16);
    const lo = parseInt(hex[2]!, 16);
    return { ip: `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`, family: 'ipv4' };
  }
  return { ip, family: isIP(ip) === 4 ? 'ipv4' : 'ipv6' };
}

/**
 * Why a webhook may not be sent to this IP address, or null when it may. Metadata services are
 * refused always; loopback, link-local and private ranges unless `allowPrivate`.
 */
export function addressProblem(address: string, allowPrivate: boolean): string | null {
  if (!isIP(address)) return `${address} is not an IP address`;
  const { ip, family } = unmapped(address);
  if (METADATA.check(ip, family)) return `${address} is a cloud metadata address`;
  if (!allowPrivate && PRIVATE.check(ip, family)) return `${address} is a loopback, link-local or private address`;
  return null;
}

/**
 * Why `raw` may not be a webhook URL, or null: http(s) only, no credentials in it, and a host that
 * is not (by name or literal address) loopback, link-local, private or a metadata service. Names
 * are resolved again at each delivery and the address checked before connecting.
 */
export function webhookUrlProblem(raw: string, allowPrivate: boolean): string | null {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return 'is not a URL; give an absolute http(s) URL such as https://example.com/hooks/autovibe';
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return `scheme "${url.protocol.slice(0, -1)}" is not allowed; use https (or http)`;
  if (url.username || url.password) return 'must not carry credentials (user:password@); put a token in the path or rely on the signature';
  const host = url.hostname
    .replace(/^\[|\]$/g, '')
    .replace(/\.$/, '')
    .toLowerCase();
  if (!host) return 'has no host';
  if (METADATA_HOSTS.has(host)) return `${host} is a cloud metadata service`;
  if (isIP(host)) {
    const problem = addressProblem(host, allowPrivate);
    return problem ? `${problem}: webhooks are not sent there` : null;
  }
  if (!allowPrivate && (host === 'localhost' || host.endsWith('.localhost') || host.endsWith('.internal') || host.endsWith('.local'))) {
    return `${host} is a local name: webhooks are not sent there`;
  }
  return null;
}

// ---------------------------------------------------------------------------------------------
// Standard Webhooks signatures (https://www.standardwebhooks.com/)

export const SECRET_PREFIX = 'whsec_';

/** The signing key of a `whsec_<base64>` secret. */
export function secretKey(secret: string): Buffer {
  return Buffer.from(secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret, 'base64');
}

/** `v1,<base64 HMAC-SHA256 of "id.timestamp.body">` with the secret's key. */
export function signature(secret: string, id: string, timestampSeconds: number, body: string): string {
  const mac = createHmac('sha256', secretKey(secret)).update(`${id}.${timestampSeconds}.${body}`).digest('base64');
  return `v1,${mac}`;
}

/** The three headers of a signed message; several secrets (during a rotation) give space-separated signatures. */
export function signedHeaders(secrets: readonly string[], id: string, timestampSeconds: number, body: string): Record<string, string> {
  return {
    'webhook-id': id,
    'webhook-timestamp': String(timestampSeconds),
    'webhook-signature': secrets.map((s) => signature(s, id, timestampSeconds, body)).join(' '),
  };
}

/** Whether any signature of the header matches (constant-time compare). */
export function signatureMatches(secret: string, id: string, timestampSeconds: number, body: string, header: string): boolean {
  const expected = Buffer.from(signature(secret, id, timestampSeconds, body));
  return header.split(' ').some((s) => {
    const got = Buffer.from(s);
    return got.length === expected.length && timingSafeEqual(got, expected);
  });
}

// ---------------------------------------------------------------------------------------------
// What is sent

export type WebhookEvent = PlatformEvent;

/** The message id of an event: the same for every attempt and every redelivery of it. */
export const messageIdOf = (seq: number) => `evt_${seq}`;

/** The body of a webhook: `{ type, timestamp, data }` as Standard Webhooks recommends, plus the feed's fields. */
export function webhookBody(e: WebhookEvent): string {
  return JSON.stringify({ type: e.kind, timestamp: e.at, seq: e.seq, projectId: e.projectId, subjectId: e.subjectId, data: e.data });
}

/** What a Slack message says about an event besides the event itself (read at delivery). */
export interface SlackFacts {
  projectName: string | null;
  machine: { id: string; type: string; status: string; cost: { amount: string; currency: string } } | null;
  /** The dashboard's base URL (AUTOVIBE_PUBLIC_URL, else the api's). */
  publicUrl: string;
}

/** Slack mrkdwn text: &, < and > are the only characters it wants escaped. */
const mrkdwn = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const clip = (s: string, n: number) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);

function headline(e: WebhookEvent, f: SlackFacts): string {
  const status = typeof e.data.status === 'string' ? e.data.status : null;
  const message = typeof e.data.message === 'string' ? e.data.message : null;
  if (e.kind === 'machine.status' && f.machine) return `Machine ${status ?? f.machine.status}: ${f.machine.type}`;
  // A resolution's message is "resolved: <the alert's message>".
  if (e.kind === 'alert.resolved') return `Resolved: ${message?.replace(/^resolved: /, '') ?? 'an alert'}`;
  if (e.kind.startsWith('alert.')) return `Alert: ${message ?? e.kind.slice(6).replace(/_/g, ' ')}`;
  if (status) return `${e.kind.split('.')[0]} ${status}`;
  return e.kind;
}

/**
 * A Slack Block Kit message (incoming webhook body) for an event: a header, a section of fields
 * (project, machine, status, cost, ...), a context line, and a button to the dashboard page.
 */
export function slackMessage(e: WebhookEvent, f: SlackFacts): Record<string, unknown> {
  const base = f.publicUrl.replace(/\/+$/, '');
  const link = f.machine ? `${base}/#/machines/${encodeURIComponent(f.machine.id)}` : `${base}/#/`;
  const fields: Array<[string, string]> = [];
  if (e.projectId) fields.push(['Project', f.projectName ? `${f.projectName} (${e.projectId})` : e.projectId]);
  if (f.machine) {
    fields.push(['Machine', f.machine.id]);
    fields.push(['Status', typeof e.data.status === 'string' ? e.data.status : f.machine.status]);
    fields.push(['Cost', `${f.machine.cost.amount} ${f.machine.cost.currency}`]);
  } else {
    fields.push(['Subject', e.subjectId]);
    if (typeof e.data.status === 'string') fields.push(['Status', e.data.status]);
    if (typeof e.data.severity === 'string') fields.push(['Severity', e.data.severity]);
  }
  for (const key of ['stopReason', 'error', 'message'] as const) {
    if (typeof e.data[key] === 'string' && fields.length < 10)
      fields.push([key === 'stopReason' ? 'Stop reason' : key[0]!.toUpperCase() + key.slice(1), e.data[key] as string]);
  }
  const title = clip(headline(e, f), 150);
  return {
    text: clip(`${title}${e.projectId ? ` · ${e.projectId}` : ''}`, 3000),
    blocks: [
      { type: 'header', text: { type: 'plain_text', text: title, emoji: true } },
      { type: 'section', fields: fields.slice(0, 10).map(([name, value]) => ({ type: 'mrkdwn', text: clip(`*${name}*\n${mrkdwn(value)}`, 2000) })) },
      { type: 'context', elements: [{ type: 'mrkdwn', text: mrkdwn(`${e.kind} · event ${e.seq} · ${e.at}`) }] },
      {
        type: 'actions',
        elements: [{ type: 'button', text: { type: 'plain_text', text: f.machine ? 'Open machine' : 'Open dashboard' }, url: clip(link, 3000) }],
      },
    ],
  };
}

import http from 'node:http';
import https from 'node:https';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { NotFoundError } from '../../domain/errors.js';
import { formatAmount } from '../../domain/money.js';
import { messageIdOf, signedHeaders, slackApiOutcome, slackMessage, webhookBody, webhookUrlProblem, type SlackFacts } from '../../domain/webhooks.js';
import { costTotals } from '../../store/costs.js';
import { guardedLookup } from '../../store/outbound-http.js';
import { eventFeedOf } from '../../store/event-feed.js';
import { getMachine } from '../../store/machines.js';
import { getProject } from '../../store/projects.js';
import {
  firstDelivery,
  getDelivery,
  getEvent,
  getWebhookEndpoint,
  giveUpDelivery,
  pendingWebhookEvents,
  recordAttempt,
  signingSecrets,
  slackBotToken,
  slackFactsOf,
  type WebhookDelivery,
  type WebhookEndpoint,
} from '../../store/webhooks.js';
import type { EventRecord } from '../../store/events.js';
import type { ActivityDeps } from '../deps.js';

/** Events handed to the dispatcher per round. */
const BATCH = 100;
const EXCERPT_BYTES = 512;
/** Slack's Web API answers 200 with `ok: false` on failure: its answer is read whole (up to this) to tell. */
const SLACK_ANSWER_BYTES = 64 * 1024;

export interface WebhookWork {
  status: 'active' | 'disabled' | 'deleted';
  /** Seqs of the events to deliver next, in order. */
  seqs: number[];
}

/** What one attempt answered: a status (or none, when the request failed) and the start of the body. */
interface HttpOutcome {
  statusCode: number | null;
  error: string | null;
  excerpt: string | null;
  /** The answer's first `readBytes` bytes. */
  body: string;
}

export { guardedLookup };

/** POSTs `body` to `url`; never follows redirects; reads at most `readBytes` of the answer. */
export function postWebhook(
  url: string,
  headers: Record<string, string>,
  body: string,
  timeoutMs: number,
  allowPrivate: boolean,
  readBytes = EXCERPT_BYTES,
): Promise<HttpOutcome> {
  const problem = webhookUrlProblem(url, allowPrivate);
  if (problem) return Promise.resolve({ statusCode: null, error: `url ${problem}`, excerpt: null, body: '' });
  const target = new URL(url);
  const lib = target.protocol === 'https:' ? https : http;
  return new Promise((resolve) => {
    const req = lib.request(
      target,
      {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'user-agent': 'AutoVibe-Webhooks/1', 'content-length': Buffer.byteLength(body), ...headers },
        lookup: guardedLookup(allowPrivate),
        timeout: timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          if (size < readBytes) chunks.push(c);
          size += c.length;
        });
        const done = () => {
          const text = Buffer.concat(chunks).toString('utf8').slice(0, readBytes);
          resolve({ statusCode: res.statusCode ?? null, error: null, excerpt: text.slice(0, EXCERPT_BYTES) || null, body: text });
        };
        res.on('end', done);
        res.on('error', done);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (e) => resolve({ statusCode: null, error: e.message, excerpt: null, body: '' }));
    req.end(body);
  });
}

export function createWebhookActivities(deps: ActivityDeps) {
  const { db, config } = deps;
  const settings = config.webhooks;

  async function slackFacts(e: EventRecord): Promise<SlackFacts> {
    const { projectName, machineId } = await slackFactsOf(db, e);
    const publicUrl = settings.publicUrl ?? `http://${config.host}:${config.port}`;
    const m = machineId ? await getMachine(db, machineId) : null;
    if (!m) return { projectName, machine: null, publicUrl };
    const project = await getProject(db, m.projectId);
    const cost = Object.values(await costTotals(db, { machineId: m.id })).reduce((a, b) => a + b, 0n);
    const currency = project?.currency ?? 'USD';
    return { projectName, machine: { id: m.id, type: m.type, status: m.status, cost: { amount: formatAmount(cost, currency), currency } }, publicUrl };
  }

  /** One attempt of one delivery: recorded in the log; a failure is thrown for Temporal to retry. */
  async function attempt(endpoint: WebhookEndpoint, delivery: WebhookDelivery): Promise<{ statusCode: number }> {
    const event = await getEvent(db, delivery.eventSeq);
    if (!event) throw new NotFoundError(`event ${delivery.eventSeq} not found`);
    const now = new Date();
    let url = endpoint.url;
    let body: string;
    let headers: Record<string, string> = {};
    if (endpoint.kind === 'slack') body = JSON.stringify(slackMessage(event, await slackFacts(event)));
    else if (endpoint.kind === 'slack-bot') {
      // https://api.slack.com/methods/chat.postMessage: the bot token as bearer, the channel in the body.
      url = `${endpoint.url.replace(/\/+$/, '')}/chat.postMessage`;
      body = JSON.stringify({ channel: endpoint.channel, ...slackMessage(event, await slackFacts(event)) });
      headers = { authorization: `Bearer ${(await slackBotToken(db, endpoint.id)) ?? ''}`, 'content-type': 'application/json; charset=utf-8' };
    } else {
      body = webhookBody(event);
      const secrets = (await signingSecrets(db, endpoint.id, now)) ?? [];
      headers = signedHeaders(secrets, delivery.messageId, Math.floor(now.getTime() / 1000), body);
    }
    const started = performance.now();
    const readBytes = endpoint.kind === 'slack-bot' ? SLACK_ANSWER_BYTES : EXCERPT_BYTES;
    const out = await postWebhook(url, headers, body, settings.timeoutSeconds * 1000, settings.allowPrivate, readBytes);
    const durationMs = Math.round(performance.now() - started);
    let ok = out.statusCode !== null && out.statusCode >= 200 && out.statusCode < 300;
    let error = ok ? null : (out.error ?? `HTTP ${out.statusCode}`);
    let permanent = false;
    if (endpoint.kind === 'slack-bot' && out.statusCode !== null) {
      const slack = slackApiOutcome(out.statusCode, out.body);
      ok = slack.ok;
      if (!slack.ok) ({ error, permanent } = slack);
    }
    await recordAttempt(db, delivery, { ok, statusCode: out.statusCode, durationMs, error, responseExcerpt: out.excerpt, at: now });
    if (!ok && permanent) throw ApplicationFailure.nonRetryable(`${url}: ${error}`, 'WebhookDeliveryRefused');
    if (!ok) throw ApplicationFailure.retryable(`${url}: ${error}`, 'WebhookDeliveryFailed');
    return { statusCode: out.statusCode! };
  }

  async function requireEndpoint(id: string): Promise<WebhookEndpoint> {
    const endpoint = await getWebhookEndpoint(db, id);
    if (!endpoint) throw new NotFoundError(`webhook ${id} not found`);
    return endpoint;
  }

  return {
    /**
     * The endpoint's next events after its cursor; when there are none, waits (heartbeating) for
     * the event feed to bring one, up to `waitSeconds`, and answers with what there is then.
     */
    async waitForWebhookWork(input: { endpointId: string; waitSeconds: number }): Promise<WebhookWork> {
      const feed = eventFeedOf(db);
      await feed.ready();
      const until = Date.now() + input.waitSeconds * 1000;
      for (;;) {
        const endpoint = await getWebhookEndpoint(db, input.endpointId);
        if (!endpoint) return { status: 'deleted', seqs: [] };
        if (endpoint.status === 'disabled') return { status: 'disabled', seqs: [] };
        const events = await pendingWebhookEvents(db, endpoint, BATCH);
        if (events.length || Date.now() >= until) return { status: 'active', seqs: events.map((e) => e.seq) };
        // Woken by the feed (new events committed) or after a few seconds (a PATCH, a missed wake-up).
        const ctx = Context.current();
        await new Promise<void>((resolve) => {
          const timer = setTimeout(done, Math.min(5_000, Math.max(0, until - Date.now())));
          const unsubscribe = feed.subscribe(done);
          const onCancel = () => done();
          void ctx.cancelled.catch(onCancel);
          function done() {
            clearTimeout(timer);
            unsubscribe();
            resolve();
          }
        });
        ctx.heartbeat();
        if (ctx.cancellationSignal.aborted) return { status: 'active', seqs: [] };
      }
    },

    /** One attempt to deliver an event (`seq`: its first delivery) or a redelivery (`deliveryId`). */
    async deliverWebhook(input: { endpointId: string; seq?: number; deliveryId?: string }): Promise<{ deliveryId: string; statusCode: number }> {
      const endpoint = await requireEndpoint(input.endpointId);
      const delivery =
        input.deliveryId !== undefined
          ? await getDelivery(db, endpoint.id, input.deliveryId)
          : await firstDelivery(db, endpoint.id, input.seq!, messageIdOf(input.seq!));
      if (!delivery) throw new NotFoundError(`delivery ${input.deliveryId} of webhook ${endpoint.id} not found`);
      if (delivery.status === 'succeeded') return { deliveryId: delivery.id, statusCode: 200 };
      const { statusCode } = await attempt(endpoint, delivery);
      return { deliveryId: delivery.id, statusCode };
    },

    /** Every attempt failed: the delivery is failed; a first delivery counts toward disabling the endpoint. */
    async giveUpWebhookDelivery(input: { endpointId: string; seq?: number; deliveryId?: string }): Promise<{ disabled: boolean }> {
      const endpoint = await getWebhookEndpoint(db, input.endpointId);
      if (!endpoint) return { disabled: false };
      const delivery =
        input.deliveryId !== undefined
          ? await getDelivery(db, endpoint.id, input.deliveryId)
          : await firstDelivery(db, endpoint.id, input.seq!, messageIdOf(input.seq!));
      if (!delivery) return { disabled: false };
      return giveUpDelivery(db, delivery, { failures: settings.disableAfterFailures, hours: settings.disableAfterHours }, new Date());
    },
  };
}

import type { Request } from 'express';
import { z } from 'zod';
import type { ApiContext } from '../context.js';
import { ApiError } from '../errors.js';
import { inject, injectedRequests, type InjectedResponse, type RequestListener } from '../inject.js';
import * as R from '../responses.js';
import { RouteGroup } from './table.js';

/** Where a batch sends its operations: the app it is mounted in (set once the app exists). */
export interface BatchTarget {
  app?: RequestListener;
}

/** A long-poll inside a batch holds every later operation: it must say how long, and briefly. */
export const BATCH_MAX_WAIT_SECONDS = 5;

export const BATCH_METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'] as const;

export const batchOperation = z.strictObject({
  id: z.string().min(1).max(200).optional(),
  method: z.enum(BATCH_METHODS, { error: `must be one of: ${BATCH_METHODS.join(', ')}` }),
  path: z
    .string()
    .max(4000)
    .regex(/^\/v1\//, 'must start with /v1/')
    .regex(/^[\x21-\x7e]+$/, 'must be a URL path: percent-encode spaces and characters outside ASCII'),
  body: z.unknown().optional(),
  idempotencyKey: z.string().min(1).max(200).optional(),
});
export type BatchOperation = z.infer<typeof batchOperation>;

/** The envelope; each operation is checked on its own, so a malformed one fails only its slot. */
export const batchBody = z.strictObject({ operations: z.array(z.unknown()).min(1, 'give at least one operation') });
/** The request as documented (OpenAPI). */
export const batchRequest = z.strictObject({ operations: z.array(batchOperation).min(1) });

/** The response headers a batch passes on per operation (the rest are transport). */
const KEPT_HEADERS = ['content-type', 'location', 'retry-after', 'idempotent-replayed', 'x-log-seq', 'x-wait-timed-out', 'upgrade', 'x-request-id'];

type Result = { id: string | null; status: number; headers: Record<string, string>; body: unknown; encoding?: 'base64' };

/** An operation refused before it was sent, in the api's error form. */
function refusal(id: string | null, requestId: string, code: string, message: string, details: Record<string, unknown> = {}): Result {
  return { id, status: 422, headers: {}, body: { error: { code, message, details }, requestId } };
}

/** Why this operation may not run inside a batch (it streams, or holds the batch too long), or null. */
function streamingProblem(op: BatchOperation): string | null {
  const query = new URLSearchParams(op.path.split('?').slice(1).join('?'));
  if (query.getAll('follow').includes('true')) return 'follow=true streams: follow a log with its own GET, not in a batch';
  if (query.has('waitFor')) {
    const timeouts = query.getAll('timeout');
    const seconds = timeouts.length === 1 && /^\d{1,3}$/.test(timeouts[0]!) ? Number(timeouts[0]) : NaN;
    if (!(seconds <= BATCH_MAX_WAIT_SECONDS)) {
      return `waitFor in a batch needs timeout of at most ${BATCH_MAX_WAIT_SECONDS} seconds (it holds the operations after it); long-poll with its own GET`;
    }
  }
  return null;
}

/** An operation's answer as a batch result: JSON parsed, text as text, other bytes in base64. */
function resultOf(id: string | null, answer: InjectedResponse): Result {
  const headers: Record<string, string> = {};
  for (const name of KEPT_HEADERS) if (answer.headers[name] !== undefined) headers[name] = answer.headers[name];
  const type = answer.headers['content-type'] ?? '';
  if (type.startsWith('text/')) return { id, status: answer.status, headers, body: answer.payload.toString('utf8') };
  if (answer.payload.length === 0) return { id, status: answer.status, headers, body: null };
  if (/[/+]json\b/.test(type)) {
    try {
      return { id, status: answer.status, headers, body: JSON.parse(answer.payload.toString('utf8')) as unknown };
    } catch {
      // Not JSON after all: passed on as bytes below.
    }
  }
  return { id, status: answer.status, headers, body: answer.payload.toString('base64'), encoding: 'base64' };
}

/**
 * POST /v1/batch: several operations in one request, run one after another in order, each
 * answered in its own slot. Each operation goes through this same app in-process, as a request
 * of its own with the caller's key — authentication, rate limit, Idempotency-Key, the route's
 * authorization, validation, audit and error mapping all apply to it exactly as to the same call
 * sent alone — so one failing (or forbidden) operation changes nothing for the others.
 */
export function batchRoutes(ctx: ApiContext, target: BatchTarget): RouteGroup {
  const r = new RouteGroup(ctx);

  r.post('/batch', { permission: 'batch.send', resource: 'none' }, { 200: R.batchResults }, async (req, res) => {
    // An operation of a batch that reaches this route (however its path was spelled) is refused in its slot.
    if (injectedRequests.has(req)) throw new ApiError(422, 'batch_nested', 'a batch cannot contain POST /v1/batch; send the operations themselves');
    const app = target.app;
    if (!app) throw new Error('batch route used outside createApp');
    const { operations } = batchBody.parse(req.body);
    const max = ctx.config.batchMaxOperations;
    if (operations.length > max) {
      throw new ApiError(413, 'batch_too_large', `operations: at most ${max} in one batch (got ${operations.length}); split them over several batches`, {
        max,
        got: operations.length,
      });
    }

    let current: { abort(): void } | null = null;
    let gone = false;
    // The caller hung up: the running operation is ended as a dropped request would be, and no other starts.
    res.on('close', () => {
      if (res.writableFinished) return;
      gone = true;
      current?.abort();
    });

    const results: Result[] = [];
    for (const [index, raw] of operations.entries()) {
      const rawId = (raw as { id?: unknown } | null)?.id;
      const label = typeof rawId === 'string' ? rawId.slice(0, 200) : null;
      const requestId = `${req.requestId.slice(0, 90)}.${index}`;
      if (gone) return;
      const parsed = batchOperation.safeParse(raw);
      if (!parsed.success) {
        const issues = parsed.error.issues.map((i) => ({ field: `operations.${index}${i.path.length ? '.' + i.path.join('.') : ''}`, message: i.message }));
        results.push(refusal(label, requestId, 'invalid_operation', issues.map((i) => `${i.field}: ${i.message}`).join('; '), { issues }));
        continue;
      }
      const op = parsed.data;
      const problem = streamingProblem(op);
      if (problem) {
        results.push(refusal(label, requestId, 'not_in_batch', `operations.${index}: ${problem}`));
        continue;
      }
      try {
        results.push(await dispatch(app, req, op, requestId, (run) => (current = run)));
      } catch (e) {
        // Aborted because the caller hung up: nobody is left to answer.
        if (gone) return;
        throw e;
      }
      current = null;
    }
    if (!gone) res.json({ results });
  });

  return r;
}

/** Sends one operation through the app as the caller, and waits for its answer. */
async function dispatch(app: RequestListener, outer: Request, op: BatchOperation, requestId: string, running: (run: { abort(): void }) => void) {
  const headers: Record<string, string> = {
    host: outer.get('host') ?? 'localhost',
    authorization: outer.get('authorization') ?? '',
    // Always JSON: the event feed then answers one page, never a stream.
    accept: 'application/json',
    'x-request-id': requestId,
  };
  const agent = outer.get('user-agent');
  if (agent) headers['user-agent'] = agent;
  if (op.idempotencyKey !== undefined) headers['idempotency-key'] = op.idempotencyKey;
  const run = inject(app, {
    method: op.method,
    url: op.path,
    headers,
    ...(op.body !== undefined ? { body: op.body } : {}),
    remoteAddress: outer.socket.remoteAddress ?? '127.0.0.1',
  });
  running(run);
  return resultOf(op.id ?? null, await run.response);
}

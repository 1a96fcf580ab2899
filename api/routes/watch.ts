import type { Response } from 'express';
import * as R from '../responses.js';
import { z } from 'zod';
import { InputError, NotFoundError } from '../../domain/errors.js';
import { FINAL_MACHINE_STATUSES } from '../../domain/machines.js';
import { eventFeedOf } from '../../store/event-feed.js';
import type { EventRecord } from '../../store/events.js';
import { LOG_STREAMS, readLogChunks, type LogStream } from '../../store/machine-logs.js';
import { getMachine } from '../../store/machines.js';
import { param, principalOf, type ApiContext } from '../context.js';
import { MESSAGES } from '../errors.js';
import { EventCursor, eventFilterOf, resumePoint, type EventBatch } from '../event-stream.js';
import { MAX_PAGE } from '../pagination.js';
import { RouteGroup, inPath, inQuery } from './table.js';

/** A follower re-reads the log this often while its machine runs. */
const FOLLOW_POLL_MS = 500;
/** SSE comment lines this often keep proxies from closing an idle stream. */
const HEARTBEAT_MS = 15_000;

const logsQuery = z.object({
  stream: z.string().max(100).optional(),
  after: z
    .string()
    .regex(/^\d{1,15}$/, 'must be the seq of a chunk (X-Log-Seq of an earlier answer)')
    .optional(),
  follow: z.enum(['true', 'false'], { error: 'must be true or false' }).optional(),
});

function parseStreams(raw: string | undefined): LogStream[] {
  if (!raw) return [];
  const streams = raw.split(',').map((s) => s.trim());
  for (const s of streams) {
    if (!LOG_STREAMS.includes(s as LogStream)) throw new InputError(`stream: must be one or more of ${LOG_STREAMS.join(', ')}`, { field: 'stream' });
  }
  return streams as LogStream[];
}

/** Resolves when a response's socket drained (or closed). */
function drained(res: Response): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

/** Writes and waits for the socket to drain when the client reads slowly. */
async function send(res: Response, text: string): Promise<void> {
  if (!res.write(text)) await drained(res);
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done);
  });

/**
 * Watching work: a machine's log (whole, or followed live), the event feed as a JSON page or a
 * Server-Sent Events stream, and the WebSocket endpoint's plain-HTTP face (api/events-socket.ts
 * takes the upgrade).
 */
export function watchRoutes(ctx: ApiContext): RouteGroup {
  const r = new RouteGroup(ctx);
  const { db } = ctx;

  r.get('/machines/:id/logs', { permission: 'machines.read', resource: inPath('machine') }, { 200: R.raw('text/plain') }, async (req, res) => {
    const q = logsQuery.safeParse(req.query);
    if (!q.success) {
      const issue = q.error.issues[0]!;
      throw new InputError(`${issue.path.join('.')}: ${issue.message}`, { field: String(issue.path[0]) });
    }
    const id = param(req, 'id');
    const machine = await getMachine(db, id);
    if (!machine) throw new NotFoundError(MESSAGES.notFound('machine', id));
    const streams = parseStreams(q.data.stream);
    let after = Number(q.data.after ?? 0);
    res.type('text/plain; charset=utf-8').set('X-Content-Type-Options', 'nosniff');

    if (q.data.follow !== 'true') {
      let text = '';
      for (;;) {
        const chunks = await readLogChunks(db, { machineId: id, after, streams, limit: MAX_PAGE });
        for (const c of chunks) text += c.text;
        after = chunks.at(-1)?.seq ?? after;
        if (chunks.length < MAX_PAGE) break;
      }
      // Where a later `?after=` resumes.
      res.set('X-Log-Seq', String(after)).send(text);
      return;
    }

    // Follow: stream what is there, then what comes, until the machine has ended and all is sent.
    const gone = new AbortController();
    res.on('close', () => gone.abort());
    res.set('Cache-Control', 'no-cache').set('X-Accel-Buffering', 'no');
    res.flushHeaders();
    while (!gone.signal.aborted) {
      // Read the status first: output written before the machine ended is in the reads that follow.
      const ended = FINAL_MACHINE_STATUSES.includes((await getMachine(db, id))?.status ?? 'failed');
      for (;;) {
        const chunks = await readLogChunks(db, { machineId: id, after, streams, limit: MAX_PAGE });
        for (const c of chunks) await send(res, c.text);
        after = chunks.at(-1)?.seq ?? after;
        if (chunks.length < MAX_PAGE) break;
      }
      if (ended) break;
      await sleep(FOLLOW_POLL_MS, gone.signal);
    }
    res.end();
  });

  r.get('/events', { permission: 'projects.read', resource: inQuery('project', 'projectId') }, { 200: R.page(R.event) }, async (req, res) => {
    const filter = eventFilterOf(principalOf(req), req.query);
    const lastEventId = req.get('last-event-id');
    const from = resumePoint(lastEventId, req.query.cursor);
    const feed = eventFeedOf(db);
    await feed.ready();

    if (!(req.get('accept') ?? '').includes('text/event-stream')) {
      // A plain GET: one page of events after the cursor (0 when none), for clients that poll.
      // The feed first reads what committed before this request (a notification may still be on
      // its way), so a client sees its own changes.
      await feed.pull();
      const limitRaw = req.query.limit ?? '100';
      const limit = typeof limitRaw === 'string' && /^\d{1,3}$/.test(limitRaw) ? Number(limitRaw) : NaN;
      if (!(limit >= 1 && limit <= MAX_PAGE)) throw new InputError(`limit: must be 1 to ${MAX_PAGE}`, { field: 'limit' });
      const cursor = new EventCursor(db, feed, filter, from ?? 0);
      const items: EventRecord[] = [];
      const none = new AbortController().signal;
      while (items.length < limit) {
        const batch = await cursor.next(none, 0);
        if (!batch.length) break;
        items.push(...batch);
      }
      const page = items.slice(0, limit);
      res.json({ items: page, nextCursor: String(page.at(-1)?.seq ?? cursor.position) });
      return;
    }

    const gone = new AbortController();
    res.on('close', () => gone.abort());
    res.status(200).set({
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-cache',
      Connection: 'keep-alive',
      'X-Accel-Buffering': 'no',
    });
    res.flushHeaders();
    await send(res, 'retry: 1000\n\n');
    const cursor = new EventCursor(db, feed, filter, from ?? feed.last);
    // Without a cursor the stream starts now; its first comment says where, for a later `?cursor=`.
    if (from === null) await send(res, `: from ${cursor.position}\n\n`);
    // Each batch is one write of bytes shared with every subscriber of the same filter; a full
    // socket makes the cursor wait for its drain and catch up from where it was.
    let wrote = false;
    const take = (batch: EventBatch): true | Promise<void> => {
      wrote = true;
      return res.write(batch.sseBytes()) || drained(res);
    };
    const heartbeat = setInterval(() => {
      if (!wrote && res.writable) res.write(': heartbeat\n\n');
      wrote = false;
    }, HEARTBEAT_MS / 2);
    try {
      await cursor.follow(gone.signal, take);
    } finally {
      clearInterval(heartbeat);
    }
    res.end();
  });

  r.get('/events/ws', { permission: 'projects.read', resource: inQuery('project', 'projectId') }, { 200: R.raw('application/json') }, (req, res) => {
    // The upgrade is taken before express (api/events-socket.ts); a plain GET learns how to connect.
    res
      .status(426)
      .set('Upgrade', 'websocket')
      .json({
        error: {
          code: 'upgrade_required',
          message: 'connect with a WebSocket client (Upgrade: websocket); the same filters and keys as GET /v1/events',
          details: {},
        },
        requestId: req.requestId,
      });
  });

  return r;
}

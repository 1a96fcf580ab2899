import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { WebSocketServer, type WebSocket } from 'ws';
import { InputError } from '../domain/errors.js';
import { canSeeProject, roleAllows, type Principal } from '../domain/permissions.js';
import { projectOf } from '../store/access.js';
import { findPrincipal } from '../store/auth.js';
import type { Db } from '../store/db.js';
import { eventFeedOf, stopEventFeed } from '../store/event-feed.js';
import { EventCursor, eventBytes, eventFilterOf, resumePoint } from './event-stream.js';
import { MESSAGES } from './errors.js';
import type { UpgradeRoute } from './graphql/socket.js';

export const EVENTS_WS_PATH = '/v1/events/ws';
const PING_MS = 15_000;
/** A client this far behind is closed (1013, try again later) and resumes from its last id. */
const MAX_BUFFERED_BYTES = 8 * 1024 * 1024;

function refuse(socket: Duplex, status: number, code: string, message: string) {
  const body = JSON.stringify({ error: { code, message, details: {} } });
  socket.end(`HTTP/1.1 ${status} ${code}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
}

/**
 * The event feed over WebSocket at `/v1/events/ws`, on the api's HTTP server: the same filters
 * (`?projectId=&kinds=`), resume point (`?cursor=` or `Last-Event-ID`) and scoping as
 * `GET /v1/events`. The key comes in the `Authorization: Bearer` header or, for browsers (which
 * cannot set headers on a WebSocket), `?access_token=`. Each event is one JSON text message with
 * its `seq`; the server pings every 15 s. `close()` ends the sockets and the process's event feed:
 * call it before `server.close()` (upgraded sockets would keep the server open).
 */
export function attachEventSocket(server: Server, deps: { db: Db; log: Pick<Logger, 'warn'>; routes?: readonly UpgradeRoute[] }): { close(): Promise<void> } {
  const { db } = deps;
  const wss = new WebSocketServer({ noServer: true, maxPayload: 4096 });

  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://localhost');
      // Other WebSocket endpoints of the api (GraphQL subscriptions) take their own upgrades.
      const other = deps.routes?.find((r) => r.path === url.pathname);
      if (other) return other.handleUpgrade(req, socket, head);
      if (url.pathname !== EVENTS_WS_PATH) return refuse(socket, 404, 'not_found', MESSAGES.routeNotFound('GET', url.pathname));
      const query = Object.fromEntries(url.searchParams);
      const header = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1];
      const key = header ?? query.access_token;
      if (!key) return refuse(socket, 401, 'unauthenticated', MESSAGES.missingKey);
      const principal: Principal | null = await findPrincipal(db, key);
      if (!principal) return refuse(socket, 401, 'unauthenticated', MESSAGES.unknownKey);
      if (query.projectId) {
        const project = await projectOf(db, 'project', query.projectId);
        if (!project || !canSeeProject(principal, project)) return refuse(socket, 404, 'not_found', MESSAGES.notFound('project', query.projectId));
      }
      if (!roleAllows(principal.role, 'projects.read')) return refuse(socket, 403, 'forbidden', MESSAGES.forbidden(principal.role, 'projects.read'));
      let filter, from;
      try {
        filter = eventFilterOf(principal, query);
        const lastEventId = req.headers['last-event-id'];
        from = resumePoint(typeof lastEventId === 'string' ? lastEventId : undefined, query.cursor);
      } catch (e) {
        if (e instanceof InputError) return refuse(socket, 422, 'invalid_request', e.message);
        throw e;
      }
      const feed = eventFeedOf(db);
      await feed.ready();
      wss.handleUpgrade(req, socket, head, (ws) => void stream(ws, new EventCursor(db, feed, filter, from ?? feed.last)));
    })().catch((err: Error) => {
      deps.log.warn({ err: err.message }, 'event socket upgrade failed');
      refuse(socket, 500, 'internal', 'the event stream could not start');
    });
  });

  async function stream(ws: WebSocket, cursor: EventCursor) {
    const gone = new AbortController();
    ws.on('close', () => gone.abort());
    ws.on('error', () => gone.abort());
    const ping = setInterval(() => ws.ping(), PING_MS);
    try {
      // Each event is one text message of bytes shared with every other subscriber. A client too
      // far behind is closed rather than buffered without end (it resumes from its last seq).
      await cursor.follow(gone.signal, (batch) => {
        if (ws.readyState !== ws.OPEN) return true;
        for (const e of batch.events) ws.send(eventBytes(e), { binary: false });
        if (ws.bufferedAmount > MAX_BUFFERED_BYTES) {
          ws.close(1013, 'too far behind: reconnect with the last seq received');
          gone.abort();
        }
        return true;
      });
    } catch (err) {
      deps.log.warn({ err: (err as Error).message }, 'event socket failed');
      ws.close(1011, 'event stream failed: reconnect with the last seq received');
    } finally {
      clearInterval(ping);
    }
  }

  return {
    async close() {
      for (const ws of wss.clients) ws.terminate();
      wss.close();
      await Promise.all((deps.routes ?? []).map((r) => r.close()));
      await stopEventFeed(db);
    },
  };
}

import { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { Duplex } from 'node:stream';

/** What answers an HTTP request: the express app (`app(req, res)` runs its whole stack). */
export type RequestListener = (req: IncomingMessage, res: ServerResponse) => void;

export interface InjectedRequest {
  method: string;
  /** Path and query, e.g. `/v1/projects?limit=5`. */
  url: string;
  /** Lower-case header names. */
  headers: Record<string, string>;
  /** Sent as JSON when present. */
  body?: unknown;
  /** What `req.ip` reads (the caller of the request that carried this one). */
  remoteAddress?: string;
}

export interface InjectedResponse {
  status: number;
  headers: Record<string, string>;
  payload: Buffer;
}

/**
 * Stands in for the connection: takes the response's bytes and drops them (the body is taken
 * from the response's write/end below), and tells `on-finished` the request is still open.
 */
class LoopSocket extends Duplex {
  constructor(readonly remoteAddress: string) {
    super();
  }
  override _read(): void {}
  override _write(_chunk: unknown, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    callback();
  }
}

/**
 * Requests written by `inject`: a route may tell them from requests that came over the network
 * (POST /v1/batch refuses to be nested this way, whatever spelling of its path reached it).
 */
export const injectedRequests = new WeakSet<object>();

export interface Injection {
  response: Promise<InjectedResponse>;
  /** Ends the request as a dropped connection would ('close' on the response): waits stop. */
  abort(): void;
}

/**
 * Runs one request through `listener` in this process, as if it had come over HTTP: a real
 * IncomingMessage (its JSON body read by the app's own body parser) and ServerResponse, so every
 * middleware, route and error handler runs exactly as for a network request.
 */
export function inject(listener: RequestListener, request: InjectedRequest): Injection {
  const socket = new LoopSocket(request.remoteAddress ?? '127.0.0.1');
  const req = new IncomingMessage(socket as unknown as Socket);
  const payload = request.body === undefined ? null : Buffer.from(JSON.stringify(request.body), 'utf8');
  const headers: Record<string, string> = { ...request.headers };
  if (payload) {
    headers['content-type'] = 'application/json';
    headers['content-length'] = String(payload.length);
  }
  req.method = request.method;
  req.url = request.url;
  req.httpVersionMajor = 1;
  req.httpVersionMinor = 1;
  req.httpVersion = '1.1';
  req.headers = headers;
  req.rawHeaders = Object.entries(headers).flat();
  if (payload) req.push(payload);
  req.push(null);
  req.complete = true;
  injectedRequests.add(req);

  const res = new ServerResponse(req);
  res.assignSocket(socket as unknown as Socket);
  const chunks: Buffer[] = [];
  const take = (chunk: unknown, encoding: unknown) => {
    if (chunk === undefined || chunk === null || typeof chunk === 'function') return;
    if (typeof chunk === 'string') chunks.push(Buffer.from(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8'));
    else chunks.push(Buffer.from(chunk as Uint8Array));
  };
  const write = res.write;
  const end = res.end;
  // Own properties: express's response prototype (set per request) keeps calling these.
  res.write = function (this: ServerResponse, ...args: unknown[]) {
    take(args[0], args[1]);
    return Reflect.apply(write, this, args) as boolean;
  } as ServerResponse['write'];
  res.end = function (this: ServerResponse, ...args: unknown[]) {
    take(args[0], args[1]);
    return Reflect.apply(end, this, args) as ServerResponse;
  } as ServerResponse['end'];

  const response = new Promise<InjectedResponse>((resolve, reject) => {
    res.once('finish', () => {
      const out: Record<string, string> = {};
      for (const [name, value] of Object.entries(res.getHeaders())) {
        if (value !== undefined) out[name] = Array.isArray(value) ? value.join(', ') : String(value);
      }
      resolve({ status: res.statusCode, headers: out, payload: Buffer.concat(chunks) });
      // As after a real response: 'close' on the response, which middleware listens for.
      socket.destroy();
    });
    res.once('close', () => reject(new Error('the request was aborted before it was answered')));
  });
  // Settled by 'finish' first when it ran; this only keeps an abandoned rejection quiet.
  response.catch(() => undefined);
  try {
    listener(req, res);
  } catch (e) {
    socket.destroy();
    return { response: Promise.reject(e as Error), abort: () => undefined };
  }
  return { response, abort: () => socket.destroy() };
}

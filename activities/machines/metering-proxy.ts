import fs from 'node:fs';
import http from 'node:http';
import nodePath from 'node:path';
import zlib from 'node:zlib';
import type { ApiDialect } from '../../domain/machine-types.js';
import { allowedEndpoint, requestModel, requestedMaxOutput, usageFromResponse, type CallUsage } from './usage.js';

/**
 * The only way out of an agent's sandbox: an HTTP proxy on a unix socket bound into that one
 * sandbox (the socket 0600 in a 0700 directory of the machine's own), forwarding to exactly one
 * upstream (the type's model API or the configured endpoint). Only the model endpoints of the
 * type's dialect pass (usage.ts `allowedEndpoint`); everything else is refused with a 403 and
 * reported. It holds the real credentials (the sandbox never sees them), asks before every model
 * call whether its worst case still fits the machine's limits, and reports each call's usage.
 */
export interface ModelCall {
  seq: number;
  model: string;
  path: string;
  /** Size of the decoded request body: an upper bound of its input tokens. */
  bodyBytes: number;
  /** The output cap the request names, or null. */
  requestedMaxOutput: number | null;
}

export interface CompletedCall extends ModelCall {
  status: number;
  /** Whether the upstream answered at all (false: the request may or may not have reached it). */
  answered: boolean;
  usage: CallUsage | null;
  /** The upstream's response headers (lower-case names; empty when it did not answer): its rate-limit state among them. */
  responseHeaders: Record<string, string>;
  requestBody: unknown;
  responseText: string;
  startedAt: string;
  endedAt: string;
}

export type RefusalCode =
  'endpoint_not_allowed' | 'body_too_large' | 'bad_encoding' | 'model_not_priced' | 'output_over_limit' | 'money_limit' | 'api_call_limit';

export interface Refusal {
  method: string;
  path: string;
  code: RefusalCode;
  reason: string;
  model?: string;
}

export type Admission = { ok: true } | { ok: false; code: RefusalCode; reason: string };

export interface MeteringProxyOptions {
  socketPath: string;
  /** Who may connect: the host uid/gid the sandbox's processes act as (default: this process's). */
  socketOwner?: { uid: number; gid: number };
  upstream: string;
  dialect: ApiDialect;
  /** Credentials and other headers set on every upstream request (replacing the sandbox's). */
  headers: Record<string, string>;
  admit(call: ModelCall): Admission;
  completed(call: CompletedCall): Promise<void>;
  /** Every request refused, before or instead of reaching the upstream (nothing is charged for it). */
  refused(refusal: Refusal): Promise<void>;
  /** Platform routes served on the same socket (files of other checkpoints, …): null means not one of them. */
  local?(method: string, url: string): Promise<LocalResponse | null>;
}

export interface LocalResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer | string;
}

export interface MeteringProxy {
  close(): Promise<void>;
  /** Model calls still in flight. */
  inFlight(): number;
}

/** Largest request body accepted (decoded), far above any model's context in bytes. */
const MAX_BODY_BYTES = 64 * 1024 * 1024;

const HOP_HEADERS = new Set([
  'host',
  'connection',
  'content-length',
  'transfer-encoding',
  'accept-encoding',
  'authorization',
  'x-api-key',
  'x-goog-api-key',
  'api-key',
  'keep-alive',
  'proxy-authorization',
]);

/** A request body as sent (possibly compressed) → its bytes, or null for an encoding not understood. */
function decodeBody(raw: Buffer, encoding: string | undefined): Buffer | null {
  const opts = { maxOutputLength: MAX_BODY_BYTES + 1 };
  try {
    switch ((encoding ?? 'identity').trim().toLowerCase()) {
      case 'identity':
      case '':
        return raw;
      case 'gzip':
        return zlib.gunzipSync(raw, opts);
      case 'deflate':
        return zlib.inflateSync(raw, opts);
      case 'br':
        return zlib.brotliDecompressSync(raw, opts);
      default:
        return null;
    }
  } catch {
    return null;
  }
}

function refusalBody(dialect: ApiDialect, message: string): string {
  switch (dialect) {
    case 'anthropic':
      return JSON.stringify({ type: 'error', error: { type: 'permission_error', message } });
    case 'gemini':
      return JSON.stringify({ error: { code: 403, message, status: 'PERMISSION_DENIED' } });
    case 'openai':
      return JSON.stringify({ error: { message, type: 'insufficient_quota', code: 'autovibe_limit' } });
  }
}

export async function startMeteringProxy(opts: MeteringProxyOptions): Promise<MeteringProxy> {
  // The socket's directory is the machine's alone: nobody else may list it or reach the socket.
  fs.mkdirSync(nodePath.dirname(opts.socketPath), { recursive: true, mode: 0o700 });
  fs.chmodSync(nodePath.dirname(opts.socketPath), 0o700);
  fs.rmSync(opts.socketPath, { force: true });
  let seq = 0;
  let inFlight = 0;
  const upstream = opts.upstream.replace(/\/+$/, '');

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= MAX_BODY_BYTES) chunks.push(c);
    });
    req.on('end', () => {
      void handle(req, res, Buffer.concat(chunks), size).catch((err: Error) => {
        if (!res.headersSent) res.writeHead(502, { 'content-type': 'application/json' });
        res.end(refusalBody(opts.dialect, `upstream error: ${err.message}`));
      });
    });
  });

  async function refuse(res: http.ServerResponse, refusal: Refusal): Promise<void> {
    res.writeHead(403, { 'content-type': 'application/json' });
    res.end(refusalBody(opts.dialect, `AutoVibe: ${refusal.reason}`));
    await opts.refused(refusal);
  }

  async function handle(req: http.IncomingMessage, res: http.ServerResponse, raw: Buffer, size: number) {
    const method = req.method ?? 'GET';
    const path = req.url ?? '/';
    if (opts.local) {
      const local = await opts.local(method, path);
      if (local) {
        res.writeHead(local.status, local.headers);
        res.end(local.body);
        return;
      }
    }
    const kind = allowedEndpoint(opts.dialect, method, path);
    if (!kind) {
      return refuse(res, {
        method,
        path,
        code: 'endpoint_not_allowed',
        reason: `${method} ${path.split('?')[0]} is not a model endpoint this machine may call`,
      });
    }
    if (size > MAX_BODY_BYTES) return refuse(res, { method, path, code: 'body_too_large', reason: `request body over ${MAX_BODY_BYTES} bytes` });
    const body = decodeBody(raw, req.headers['content-encoding']);
    if (!body || body.length > MAX_BODY_BYTES) {
      return refuse(res, {
        method,
        path,
        code: 'bad_encoding',
        reason: `request body encoding ${req.headers['content-encoding']} not accepted or body too large`,
      });
    }
    let json: Record<string, any> | null = null;
    if (body.length) {
      try {
        json = JSON.parse(body.toString('utf8'));
      } catch {
        json = null;
      }
    }
    let call: ModelCall | null = null;
    if (kind === 'model') {
      call = {
        seq: seq + 1,
        model: requestModel(opts.dialect, path, json),
        path,
        bodyBytes: body.length,
        requestedMaxOutput: requestedMaxOutput(opts.dialect, json),
      };
      const verdict = opts.admit(call);
      if (!verdict.ok) return refuse(res, { method, path, code: verdict.code, reason: verdict.reason, model: call.model });
      seq += 1;
      inFlight += 1;
    }
    const startedAt = new Date().toISOString();
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) {
      if (!HOP_HEADERS.has(k.toLowerCase()) && typeof v === 'string') headers[k] = v;
    }
    Object.assign(headers, opts.headers);
    let responseText = '';
    let status = 502;
    let answered = false;
    const responseHeaders: Record<string, string> = {};
    try {
      const upstreamRes = await fetch(`${upstream}${path}`, {
        method,
        headers,
        ...(raw.length ? { body: raw } : {}),
      });
      status = upstreamRes.status;
      answered = true;
      const outHeaders: Record<string, string> = {};
      upstreamRes.headers.forEach((v, k) => {
        responseHeaders[k] = v;
        if (!['content-length', 'content-encoding', 'transfer-encoding', 'connection'].includes(k)) outHeaders[k] = v;
      });
      res.writeHead(status, outHeaders);
      if (upstreamRes.body) {
        const decoder = new TextDecoder();
        for await (const chunk of upstreamRes.body as unknown as AsyncIterable<Uint8Array>) {
          res.write(chunk);
          if (call) responseText += decoder.decode(chunk, { stream: true });
        }
      }
      res.end();
    } finally {
      if (call) {
        inFlight -= 1;
        await opts.completed({
          ...call,
          status,
          answered,
          usage: usageFromResponse(opts.dialect, responseText, call.model),
          responseHeaders,
          requestBody: json,
          responseText,
          startedAt,
          endedAt: new Date().toISOString(),
        });
      }
    }
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.socketPath, () => resolve());
  });
  // Connecting needs write permission on the socket: only its owner has it.
  fs.chmodSync(opts.socketPath, 0o600);
  if (opts.socketOwner) {
    fs.chownSync(nodePath.dirname(opts.socketPath), opts.socketOwner.uid, opts.socketOwner.gid);
    fs.chownSync(opts.socketPath, opts.socketOwner.uid, opts.socketOwner.gid);
  }
  return {
    inFlight: () => inFlight,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
        fs.rmSync(opts.socketPath, { force: true });
      }),
  };
}

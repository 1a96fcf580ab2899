import fs from 'node:fs';
import http from 'node:http';
import type { ApiDialect } from '../../domain/machine-types.js';
import { isModelCall, maxOutputTokens, requestModel, usageFromResponse, type CallUsage } from './usage.js';

/**
 * The only way out of an agent's sandbox: an HTTP proxy on a unix socket bound into the sandbox,
 * forwarding to exactly one upstream (the type's model API or the configured endpoint). It holds
 * the real credentials (the sandbox never sees them), asks before every model call whether its
 * worst-case cost still fits the machine's limits, and reports the usage the API returned.
 */
export interface ModelCall {
  seq: number;
  model: string;
  path: string;
  /** Upper bound of input tokens: one token per request byte. */
  maxInputTokens: number;
  maxOutputTokens: number;
}

export interface CompletedCall extends ModelCall {
  status: number;
  usage: CallUsage | null;
  requestBody: unknown;
  responseText: string;
  startedAt: string;
  endedAt: string;
}

export interface MeteringProxyOptions {
  socketPath: string;
  upstream: string;
  dialect: ApiDialect;
  /** Credentials and other headers set on every upstream request (replacing the sandbox's). */
  headers: Record<string, string>;
  defaultMaxOutputTokens: number;
  admit(call: ModelCall): { ok: true } | { ok: false; reason: string };
  completed(call: CompletedCall): Promise<void>;
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
  fs.rmSync(opts.socketPath, { force: true });
  let seq = 0;
  let inFlight = 0;
  const upstream = opts.upstream.replace(/\/+$/, '');

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void handle(req, res, Buffer.concat(chunks)).catch((err: Error) => {
        if (!res.headersSent) res.writeHead(502, { 'content-type': 'application/json' });
        res.end(refusalBody(opts.dialect, `upstream error: ${err.message}`));
      });
    });
  });

  async function handle(req: http.IncomingMessage, res: http.ServerResponse, body: Buffer) {
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
    const modelCall = isModelCall(opts.dialect, method, path);
    let json: Record<string, any> | null = null;
    if (body.length) {
      try {
        json = JSON.parse(body.toString('utf8'));
      } catch {
        json = null;
      }
    }
    let call: ModelCall | null = null;
    if (modelCall) {
      call = {
        seq: ++seq,
        model: requestModel(opts.dialect, path, json),
        path,
        maxInputTokens: body.length,
        maxOutputTokens: maxOutputTokens(opts.dialect, json, opts.defaultMaxOutputTokens),
      };
      const verdict = opts.admit(call);
      if (!verdict.ok) {
        res.writeHead(403, { 'content-type': 'application/json' });
        res.end(refusalBody(opts.dialect, `AutoVibe: ${verdict.reason}`));
        return;
      }
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
    try {
      const upstreamRes = await fetch(`${upstream}${path}`, {
        method,
        headers,
        ...(body.length && method !== 'GET' && method !== 'HEAD' ? { body } : {}),
      });
      status = upstreamRes.status;
      const outHeaders: Record<string, string> = {};
      upstreamRes.headers.forEach((v, k) => {
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
          usage: usageFromResponse(opts.dialect, responseText, call.model),
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
  fs.chmodSync(opts.socketPath, 0o777);
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

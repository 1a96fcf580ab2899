import http from 'node:http';
import https from 'node:https';
import { webhookUrlProblem } from '../domain/webhooks.js';
import { guardedLookup } from './outbound-http.js';

/**
 * One JSON call to a ticket tracker's API (Jira's REST, Linear's GraphQL): the address is checked
 * as webhook addresses are (no metadata service; no private address unless the deployment allows
 * it), the answer is read up to 1 MiB. Credentials go in `headers`, never into an error message.
 */
export interface TrackerAccess {
  allowPrivate: boolean;
  timeoutMs: number;
}

/** The tracker could not be reached (status null) or answered with an error status. */
export class TrackerApiError extends Error {
  override name = 'TrackerApiError';
  constructor(
    message: string,
    readonly status: number | null,
    readonly body: unknown,
  ) {
    super(message);
  }
}

const MAX_ANSWER = 1024 * 1024;

export function trackerRequest(
  a: TrackerAccess,
  what: string,
  method: 'GET' | 'POST' | 'PUT' | 'PATCH',
  url: string,
  headers: Record<string, string>,
  body?: unknown,
): Promise<{ status: number; body: any }> {
  const problem = webhookUrlProblem(url, a.allowPrivate);
  if (problem) return Promise.reject(new TrackerApiError(`${what} address ${url} ${problem}`, null, null));
  const target = new URL(url);
  const lib = target.protocol === 'https:' ? https : http;
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = lib.request(
      target,
      {
        method,
        headers: {
          accept: 'application/json',
          'user-agent': 'AutoVibe',
          ...headers,
          ...(payload !== undefined ? { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(payload)) } : {}),
        },
        lookup: guardedLookup(a.allowPrivate),
        timeout: a.timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size <= MAX_ANSWER) chunks.push(c);
        });
        res.on('error', (e) => reject(new TrackerApiError(`${what} ${method} ${target.pathname}: ${e.message}`, null, null)));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown = null;
          try {
            parsed = text ? JSON.parse(text) : null;
          } catch {
            parsed = text.slice(0, 500);
          }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${a.timeoutMs} ms`)));
    req.on('error', (e) => reject(new TrackerApiError(`${what} ${method} ${target.pathname}: ${e.message}`, null, null)));
    req.end(payload);
  });
}

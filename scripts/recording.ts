import type { Platform } from './platform.js';

/**
 * The REST calls the history recorders (record-histories.ts, record-payment-histories.ts) drive a
 * platform with. A 4xx/5xx throws unless its status is in `tolerate` (a scenario that expects
 * a refusal, e.g. 409 budget_exceeded).
 */
export async function call(p: Platform, method: string, url: string, body?: unknown, opts: { tolerate?: number[] } = {}): Promise<any> {
  const res = await fetch(`${p.apiUrl}${url}`, {
    method,
    headers: { authorization: `Bearer ${p.adminKey}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  const json = await res.json();
  if (res.status >= 400 && !opts.tolerate?.includes(res.status)) throw new Error(`${method} ${url}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

/** Polls GET `url` every 200 ms until `done` holds (at most two minutes). */
export async function until(p: Platform, url: string, done: (b: any) => boolean, opts: { tolerate?: number[] } = {}): Promise<any> {
  for (let i = 0; i < 600; i++) {
    const b = await call(p, 'GET', url, undefined, opts);
    if (done(b)) return b;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out on ${url}`);
}

import createClient from 'openapi-fetch';
import type { paths } from '../../cli/api-types.js';

/** The dashboard talks to the public REST API only, through the client typed from its OpenAPI document. */
export type Api = ReturnType<typeof createClient<paths>>;
export type { paths };

/** The JSON a GET of `P` answers with on 200. */
export type Read<P extends keyof paths> = paths[P] extends { get: { responses: { 200: { content: { 'application/json': infer B } } } } } ? B : never;
/** One item of a paged read. */
export type ItemOf<P extends keyof paths> = Read<P> extends { items: Array<infer I> } ? I : never;

export type Whoami = Read<'/whoami'>;
export type Machine = Read<'/machines/{id}'>;
export type Project = Read<'/projects/{id}'>;

/** The shape every API error answers with. */
interface ApiErrorBody {
  error?: { code?: string; message?: string; details?: unknown };
}

/** An API answer that was not 2xx: its status and the API's own message (which says what to fix). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const KEY_STORAGE = 'autovibe.apiKey';

/** The API key of this browser tab (sessionStorage), or of this browser when the user asked to stay logged in. */
export const session = {
  key(): string | null {
    return sessionStorage.getItem(KEY_STORAGE) ?? localStorage.getItem(KEY_STORAGE);
  },
  save(key: string, remember: boolean) {
    sessionStorage.setItem(KEY_STORAGE, key);
    if (remember) localStorage.setItem(KEY_STORAGE, key);
  },
  clear() {
    sessionStorage.removeItem(KEY_STORAGE);
    localStorage.removeItem(KEY_STORAGE);
  },
};

export function apiClient(key: string): Api {
  return createClient<paths>({ baseUrl: `${location.origin}/v1`, headers: { authorization: `Bearer ${key}` } });
}

/** The data of a 2xx answer, or an ApiError with the API's message. */
export async function ok<T>(call: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  const { data, error, response } = await call;
  if (!response.ok) {
    const body = (error ?? {}) as ApiErrorBody;
    throw new ApiError(response.status, body.error?.code ?? String(response.status), body.error?.message ?? `${response.status} ${response.statusText}`);
  }
  return data as T;
}

/** A fresh idempotency key for a button press: a double click or a retried request acts once. */
export const idempotencyKey = () => `web-${crypto.randomUUID()}`;

/**
 * Follows a machine's log (`GET /v1/machines/:id/logs?follow=true`, a chunked text stream) and
 * hands each piece of text to `onText` until the machine ends or `signal` aborts.
 */
export async function followLog(key: string, machineId: string, onText: (text: string) => void, signal: AbortSignal): Promise<void> {
  const res = await fetch(`/v1/machines/${encodeURIComponent(machineId)}/logs?follow=true`, {
    headers: { authorization: `Bearer ${key}` },
    signal,
  });
  if (!res.ok || !res.body) {
    const body = (await res.json().catch(() => ({}))) as ApiErrorBody;
    throw new ApiError(res.status, body.error?.code ?? String(res.status), body.error?.message ?? res.statusText);
  }
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    onText(value);
  }
}

/** One event of the feed (`GET /v1/events`, `/v1/events/ws`). */
export interface PlatformEvent {
  seq: number;
  at: string;
  kind: string;
  projectId: string | null;
  subjectId: string;
  data: Record<string, unknown>;
}

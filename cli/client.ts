import createClient from 'openapi-fetch';
import type { paths } from './api-types.js';
import type { Connection } from './config.js';
import { ApiError, CliError, EXIT, type ApiErrorBody } from './errors.js';

export type Api = ReturnType<typeof createClient<paths>>;
export type { paths };

/** The JSON body a path and method take. */
export type BodyOf<P extends keyof paths, M extends 'post' | 'put' | 'patch'> = paths[P][M] extends {
  requestBody?: { content: { 'application/json': infer B } };
}
  ? B
  : never;

/** The typed REST client (openapi-fetch over the generated paths), with the key of the connection. */
export function apiClient(conn: Connection): Api {
  return createClient<paths>({
    baseUrl: `${conn.apiUrl}/v1`,
    headers: conn.apiKey ? { authorization: `Bearer ${conn.apiKey}` } : {},
    fetch: reaching(conn.apiUrl),
  });
}

/** fetch that turns a connection failure into one clear line (exit 6) instead of "fetch failed". */
export function reaching(apiUrl: string): (req: Request) => Promise<Response> {
  return async (req) => {
    try {
      return await fetch(req);
    } catch (e) {
      if ((e as Error).name === 'AbortError') throw e;
      const cause = (e as { cause?: { code?: string; message?: string } }).cause;
      throw new CliError(`cannot reach the api at ${apiUrl}: ${cause?.code ?? cause?.message ?? (e as Error).message}`, EXIT.unavailable);
    }
  };
}

/** The data of a successful answer; the api's error (its message, an exit code by status) otherwise. */
export async function ok<T>(call: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  const { data, error, response } = await call;
  if (!response.ok) throw new ApiError(response.status, error as ApiErrorBody | string | undefined);
  return data as T;
}

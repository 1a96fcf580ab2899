import type { ErrorRequestHandler } from 'express';
import { z } from 'zod';
import type { Logger } from 'pino';

/**
 * The one place where errors become HTTP responses. Route handlers just throw domain errors
 * (InputError, NotFoundError, ConflictError, AuthenticationError) or zod errors.
 */
export class ApiError extends Error {
  override name = 'ApiError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

/** Messages of the errors the api itself raises, kept together so they read consistently. */
export const MESSAGES = {
  missingKey: 'missing API key: send "Authorization: Bearer <api key>"',
  unknownKey: 'unknown, expired or revoked API key',
  forbidden: (role: string, permission: string) => `role "${role}" lacks the permission "${permission}"; ask an owner or admin for a key that has it`,
  deploymentWide: (permission: string) =>
    `"${permission}" here is deployment-wide: this key is bound to projects; use a key not bound to projects (an admin can make one)`,
  rateLimited: (limit: number, seconds: number) =>
    `too many requests: at most ${limit} per ${seconds} s per API key; retry after the Retry-After header's seconds`,
  hookRateLimited: (limit: number, seconds: number) =>
    `too many hooks: at most ${limit} per ${seconds} s per integration; retry after the Retry-After header's seconds`,
  idempotencyMismatch: 'this Idempotency-Key was already used with a different request; use a new key',
  idempotencyInProgress: 'a request with this Idempotency-Key is still running; retry after the Retry-After seconds to get its response',
  notFound: (what: string, id: string) => `${what} ${id} not found`,
  routeNotFound: (method: string, path: string) => `no route ${method} ${path}; see GET /v1/openapi.json`,
  badJson: 'request body is not valid JSON',
  tooLarge: (limit: string) => `request body is larger than the limit of ${limit}; send less`,
  unsupportedBody: (detail: string) => `request body cannot be read: ${detail}; send UTF-8 JSON`,
} as const;

function fromZod(err: z.ZodError): ApiError {
  const issues = err.issues.map((i) => ({ field: i.path.join('.') || '(body)', message: i.message }));
  const message = issues.map((i) => `${i.field}: ${i.message}`).join('; ');
  return new ApiError(400, 'invalid_request', message, { issues });
}

const STATUS_BY_NAME: Record<string, [number, string]> = {
  InputError: [422, 'invalid_request'],
  MoneyError: [400, 'invalid_amount'],
  NotFoundError: [404, 'not_found'],
  ConflictError: [409, 'conflict'],
  ForbiddenError: [403, 'forbidden'],
  AuthenticationError: [401, 'unauthenticated'],
  FxUnavailableError: [503, 'fx_unavailable'],
  GitRemoteError: [502, 'git_remote_error'],
  IntegrationError: [502, 'integration_error'],
};

export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof z.ZodError) return fromZod(err);
  const e = err as { name?: string; message?: string; code?: string; details?: Record<string, unknown>; type?: string; status?: number };
  if (e?.type === 'entity.parse.failed') return new ApiError(400, 'invalid_json', MESSAGES.badJson);
  const client = clientHttpError(err);
  if (client) return client;
  const mapped = e?.name ? STATUS_BY_NAME[e.name] : undefined;
  if (mapped) {
    const code = (e.name === 'ConflictError' || e.name === 'InputError') && e.code ? e.code : mapped[1];
    return new ApiError(mapped[0], code, e.message ?? 'error', e.details ?? {});
  }
  return new ApiError(500, 'internal', 'internal error; see the server log with this requestId');
}

/** The request body limit of express.json (api/app.ts), for the 413 message. */
export const BODY_LIMIT = '1mb';

/**
 * Errors body-parser and express raise for a request they cannot take (http-errors with a 4xx
 * status and `expose`): a body over the limit (413), an unknown charset or encoding (415), a bad
 * path encoding (400). Anything else stays a 500.
 */
function clientHttpError(err: unknown): ApiError | null {
  const e = err as { status?: unknown; expose?: unknown; type?: unknown; message?: unknown };
  // The router marks a path param it cannot decode as a URIError with status 400 (no `expose`).
  if (typeof e?.status !== 'number' || e.status < 400 || e.status > 499 || (e.expose !== true && !(err instanceof URIError))) return null;
  if (e.type === 'entity.too.large') return new ApiError(413, 'body_too_large', MESSAGES.tooLarge(BODY_LIMIT));
  if (e.type === 'charset.unsupported' || e.type === 'encoding.unsupported') {
    return new ApiError(415, 'unsupported_body', MESSAGES.unsupportedBody(String(e.message)));
  }
  return new ApiError(e.status, 'bad_request', typeof e.message === 'string' ? e.message : 'bad request');
}

export function errorMiddleware(log: Logger): ErrorRequestHandler {
  return (err, req, res, _next) => {
    const apiError = toApiError(err);
    if (apiError.status >= 500) log.error({ err, requestId: req.requestId }, 'request failed');
    res.status(apiError.status).json({
      error: { code: apiError.code, message: apiError.message, details: apiError.details },
      requestId: req.requestId,
    });
  };
}

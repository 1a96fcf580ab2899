import { GraphQLError, type ExecutionResult } from 'graphql';
import type { Logger } from 'pino';
import { toApiError } from '../errors.js';

/** GraphQL error codes by the HTTP status the same failure has in REST. */
const CODE_BY_STATUS: Record<number, string> = {
  400: 'BAD_USER_INPUT',
  401: 'UNAUTHENTICATED',
  403: 'FORBIDDEN',
  404: 'NOT_FOUND',
  409: 'CONFLICT',
  413: 'BAD_USER_INPUT',
  415: 'BAD_USER_INPUT',
  422: 'BAD_USER_INPUT',
  429: 'RATE_LIMITED',
  503: 'SERVICE_UNAVAILABLE',
};

/**
 * A resolver's error as clients see it: the REST mapping of domain errors (api/errors.ts), so the
 * same failure has the same status, reason and field in both apis, in `extensions`
 * { code, status, reason, field?, permission?, details }. Unknown errors are internal and logged;
 * their message stays in the log.
 */
export function toGraphqlError(err: GraphQLError, log: Pick<Logger, 'error'>, requestId?: string): GraphQLError {
  // Errors of the request itself (syntax, validation, limits) already say what to fix.
  if (!err.originalError || err.originalError instanceof GraphQLError) return err;
  const api = toApiError(err.originalError);
  if (api.status >= 500) log.error({ err: err.originalError, path: err.path, requestId }, 'graphql resolver failed');
  const details = api.details as { field?: unknown; permission?: unknown };
  return new GraphQLError(api.message, {
    nodes: err.nodes,
    ...(err.source ? { source: err.source } : {}),
    ...(err.positions ? { positions: err.positions } : {}),
    ...(err.path ? { path: err.path } : {}),
    extensions: {
      code: CODE_BY_STATUS[api.status] ?? 'INTERNAL_SERVER_ERROR',
      status: api.status,
      reason: api.code,
      ...(typeof details.field === 'string' ? { field: details.field } : {}),
      ...(typeof details.permission === 'string' ? { permission: details.permission } : {}),
      ...(Object.keys(api.details).length ? { details: api.details } : {}),
    },
  });
}

export function mapResultErrors<T extends ExecutionResult>(result: T, log: Pick<Logger, 'error'>, requestId?: string): T {
  if (!result.errors?.length) return result;
  return { ...result, errors: result.errors.map((e) => toGraphqlError(e, log, requestId)) };
}

/** An error of the request itself (not of one field): validation, limits, a bad body. */
export function requestError(message: string, code: string, extensions: Record<string, unknown> = {}): GraphQLError {
  return new GraphQLError(message, { extensions: { code, status: 400, ...extensions } });
}

/**
 * Errors that carry their meaning by name. The api maps each name to an HTTP status in one place;
 * activities turn them into non-retryable Temporal failures of the same type.
 */
export class InputError extends Error {
  override name = 'InputError';
  constructor(
    message: string,
    readonly details: Record<string, unknown> = {},
    /** The reason clients see: `invalid_request` unless a more exact one helps them. */
    readonly code = 'invalid_request',
  ) {
    super(message);
  }
}

/** The caller may not do this, whatever the input (beyond what its role or key may grant). */
export class ForbiddenError extends Error {
  override name = 'ForbiddenError';
}

export class NotFoundError extends Error {
  override name = 'NotFoundError';
}

export class ConflictError extends Error {
  override name = 'ConflictError';
  constructor(
    message: string,
    readonly code = 'conflict',
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

export class AuthenticationError extends Error {
  override name = 'AuthenticationError';
}

/**
 * Failure types no retry can fix: the thing is gone, the input is wrong, or a merge conflicts.
 * Activities throw them (or ApplicationFailure.nonRetryable with the name); every workflow's retry
 * policy (workflows/activity-options.ts) stops on them.
 */
export const NOT_FOUND = 'NotFoundError';
export const INPUT_ERROR = 'InputError';
export const MERGE_CONFLICT = 'MergeConflict';

/** A git remote refused or failed a push or fetch (wrong credentials, unreachable, its hooks): 502 naming its answer. */
export class GitRemoteError extends Error {
  override name = 'GitRemoteError';
}

/** An outside tracker's API (GitHub, ...) refused or failed a call: 502 naming its answer. */
export class IntegrationError extends Error {
  override name = 'IntegrationError';
}

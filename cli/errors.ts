/**
 * Exit codes: a script tells error kinds apart without parsing messages. Documented in README "CLI"
 * and in `autovibe --help`.
 */
export const EXIT = {
  ok: 0,
  /** Anything else (an unexpected failure). */
  generic: 1,
  /** Bad usage or input: a missing or malformed argument, or the api's 400/413/415/422. */
  usage: 2,
  /** Not authenticated: no key, or a bad, revoked or expired one (401). */
  auth: 3,
  /** The resource does not exist, or is not visible to this key (404). */
  notFound: 4,
  /** A conflict: budget exceeded or not set, wrong state, idempotency in progress (409). */
  conflict: 5,
  /** The api failed (5xx), is rate limiting (429) or cannot be reached. */
  unavailable: 6,
  /** A followed machine (or pipeline) ended other than completed. */
  machineFailed: 7,
  /** Forbidden: the key is valid but its role or projects do not allow it (403). */
  forbidden: 8,
} as const;

export const EXIT_HELP = `Exit codes:
  0  ok
  1  unexpected error
  2  usage or invalid input (HTTP 400, 413, 415, 422)
  3  not authenticated: no, bad, revoked or expired key (HTTP 401)
  4  not found (HTTP 404)
  5  conflict, e.g. budget exceeded or not set (HTTP 409)
  6  api unavailable: 5xx, 429 or unreachable
  7  the followed machine or pipeline ended other than completed
  8  forbidden: the key's role or projects do not allow it (HTTP 403)`;

/** An error the CLI reports as one line (no stack) and exits with `code`. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly code: number,
    readonly details?: unknown,
  ) {
    super(message);
  }
}

export class UsageError extends CliError {
  constructor(message: string) {
    super(message, EXIT.usage);
  }
}

/** The exit code for an HTTP status the api answered with. */
export function exitCodeOfStatus(status: number): number {
  if (status < 400) return EXIT.ok;
  if (status === 401) return EXIT.auth;
  if (status === 403) return EXIT.forbidden;
  if (status === 404) return EXIT.notFound;
  if (status === 409) return EXIT.conflict;
  if (status === 429 || status >= 500) return EXIT.unavailable;
  return EXIT.usage;
}

/** The api's error body: `{ error: { code, message, details }, requestId }`. */
export interface ApiErrorBody {
  error?: { code?: string; message?: string; details?: unknown };
  requestId?: string;
}

export class ApiError extends CliError {
  constructor(
    readonly status: number,
    readonly body: ApiErrorBody | string | undefined,
  ) {
    const err = typeof body === 'object' ? body?.error : undefined;
    const message = err?.message ?? (typeof body === 'string' && body ? body.slice(0, 500) : `HTTP ${status}`);
    super(err?.code ? `${message} (${status} ${err.code})` : `${message} (${status})`, exitCodeOfStatus(status), err?.details);
  }
}

import { InputError } from '../domain/errors.js';
import { MAX_INPUT_UNITS, parseAmount } from '../domain/money.js';
import { checkRepoUrl, type RepoUrlScheme } from '../domain/repo-url.js';

/** Parses a money field of a request (at most MAX_INPUT_UNITS), naming the field in the error. */
export function parseAmountField(field: string, value: string, currency: Parameters<typeof parseAmount>[1]): bigint {
  try {
    return parseAmount(value, currency, { max: MAX_INPUT_UNITS });
  } catch (e) {
    throw new InputError(`${field}: ${(e as Error).message}`, { field });
  }
}

/** Refuses a repoUrl that is not a remote URL of an allowed scheme, or that carries credentials (422). */
export function checkRepoUrlField(url: string, schemes: readonly RepoUrlScheme[]): void {
  const check = checkRepoUrl(url, schemes);
  // The URL itself is not quoted back: it may hold a secret.
  if (!check.ok) throw new InputError(`repoUrl: ${check.reason}`, { field: 'repoUrl' });
}

/** The "not found" message every entry point gives for a missing (or another project's) thing. */
export const notFoundMessage = (what: string, id: string) => `${what} ${id} not found`;

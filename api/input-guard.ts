import type { RequestHandler } from 'express';
import { ApiError } from './errors.js';

/**
 * Refuses text Postgres cannot store before any route sees it: NUL characters (text and jsonb
 * reject U+0000) and lone UTF-16 surrogates (not Unicode; jsonb rejects their escapes, text would
 * silently turn them into U+FFFD). Checks every string and object key of the JSON body, the query
 * and the decoded path, so no route has to remember to. Also bounds nesting, so later recursive
 * code (JSON.stringify, zod) never overflows the stack on a hostile body.
 */
export const MAX_JSON_DEPTH = 32;

// A high surrogate not followed by a low one, or a low one not preceded by a high one.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Why `text` cannot be stored, or null when it can. */
export function unstorableText(text: string): string | null {
  if (text.includes('\u0000')) return 'contains a NUL character (\\u0000), which cannot be stored';
  if (LONE_SURROGATE.test(text)) return 'contains a lone UTF-16 surrogate (not valid Unicode), which cannot be stored';
  return null;
}

/** The first problem in a JSON-like value (iteratively: no recursion on input), as [field, message]. */
export function findUnstorable(root: unknown, rootName: string): [string, string] | null {
  const stack: Array<[unknown, string, number]> = [[root, rootName, 0]];
  while (stack.length) {
    const [value, where, depth] = stack.pop()!;
    if (typeof value === 'string') {
      const problem = unstorableText(value);
      if (problem) return [where, problem];
      continue;
    }
    if (value === null || typeof value !== 'object') continue;
    if (depth >= MAX_JSON_DEPTH) return [where, `is nested more than ${MAX_JSON_DEPTH} levels deep`];
    if (Array.isArray(value)) {
      value.forEach((v, i) => stack.push([v, `${where}.${i}`, depth + 1]));
      continue;
    }
    for (const [k, v] of Object.entries(value)) {
      const problem = unstorableText(k);
      if (problem) return [where, `has a key that ${problem}`];
      stack.push([v, `${where}.${k}`, depth + 1]);
    }
  }
  return null;
}

/** Field names as the zod errors name them: `limits.money`, `query.projectId`, `path`. */
const fieldName = (where: string) => where.replace(/^body\.?/, '') || '(body)';

export function inputGuard(): RequestHandler {
  return (req, _res, next) => {
    let path: string;
    try {
      // Express decodes path params with decodeURIComponent; check the same decoding up front.
      path = req.path.split('/').map(decodeURIComponent).join('/');
    } catch {
      return next(new ApiError(400, 'invalid_request', 'path: is not valid percent-encoded UTF-8'));
    }
    const problem = findUnstorable(path, 'path') ?? findUnstorable(req.query, 'query') ?? findUnstorable(req.body, 'body');
    if (!problem) return next();
    const [where, message] = problem;
    const field = fieldName(where);
    next(new ApiError(422, 'unstorable_text', `${field}: ${message}`, { field }));
  };
}

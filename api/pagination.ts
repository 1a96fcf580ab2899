import { z } from 'zod';
import { InputError } from '../domain/errors.js';

export const MAX_PAGE = 500;
export const DEFAULT_PAGE = 100;

/** `?limit=` (1..500, default 100) and `?cursor=` (a `nextCursor` this api gave). */
export const pageQuery = z.object({
  limit: z.coerce.number().int().min(1).max(MAX_PAGE, `must be at most ${MAX_PAGE}`).default(DEFAULT_PAGE),
  cursor: z.string().max(1000).optional(),
});
export type PageQuery = z.infer<typeof pageQuery>;

/** Cursors are opaque to clients: the last item's sort key, base64url JSON. */
export function encodeCursor(key: unknown): string {
  return Buffer.from(JSON.stringify(key)).toString('base64url');
}

export function decodeCursor<T>(cursor: string | undefined, schema: z.ZodType<T>): T | undefined {
  if (cursor === undefined || cursor === '') return undefined;
  try {
    return schema.parse(JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')));
  } catch {
    throw new InputError('cursor: not a cursor of this list; pass the nextCursor of the previous page as it was given', { field: 'cursor' });
  }
}

/**
 * One page from rows fetched with `limit + 1` (the extra row only says there is a next page).
 */
export function pageOf<T, K>(rows: T[], limit: number, keyOf: (row: T) => K): { items: T[]; nextCursor: string | null } {
  const items = rows.slice(0, limit);
  return { items, nextCursor: rows.length > limit ? encodeCursor(keyOf(items.at(-1)!)) : null };
}

/** Pages a short list held in memory (catalogs, a machine's artifacts), keyed by a unique string. */
export function pageInMemory<T>(all: T[], q: PageQuery, keyOf: (row: T) => string): { items: T[]; nextCursor: string | null } {
  const after = decodeCursor(q.cursor, z.string());
  const start = after === undefined ? 0 : all.findIndex((r) => keyOf(r) === after) + 1;
  if (after !== undefined && start === 0) {
    throw new InputError('cursor: the item it points at is gone; start again without a cursor', { field: 'cursor' });
  }
  return pageOf(all.slice(start, start + q.limit + 1), q.limit, keyOf);
}

/** The sort key of lists ordered by creation: (created_at, id). */
// The timestamp is Postgres text (`2026-12-06 20:52:34.123456+00`): checked here so a forged
// cursor is a 422, never a failed cast in the database.
export const createdKey = z.tuple([z.string().regex(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d{1,6})?[+-]\d{2}(:\d{2})?$/), z.string().max(200)]);

/** The sort key of append-only logs (cost events, audit records): their sequence number. */
export const seqKey = z.string().regex(/^\d{1,18}$/);

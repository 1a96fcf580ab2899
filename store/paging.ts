import type { Knex } from 'knex';

/** A position in a list ordered by (created_at, id): the created_at in Postgres' full precision. */
export type CreatedKey = [createdAt: string, id: string];

export interface KeysetPage {
  limit: number;
  after?: CreatedKey | undefined;
  /** Newest first. */
  desc?: boolean;
}

/**
 * Orders `q` by (created_at, id) and starts it after `page.after`. The key's timestamp is kept as
 * Postgres text (microseconds), not a JS Date (milliseconds), so no row repeats or goes missing
 * between pages. Rows carry `created_key` for the next cursor.
 */
export function keyset(q: Knex.QueryBuilder, table: string, page: KeysetPage): Knex.QueryBuilder {
  const dir = page.desc ? 'desc' : 'asc';
  q.select(`${table}.*`, q.client.raw(`${table}.created_at::text as created_key`))
    .orderBy([
      { column: `${table}.created_at`, order: dir },
      { column: `${table}.id`, order: dir },
    ])
    .limit(page.limit);
  if (page.after) {
    q.whereRaw(`(${table}.created_at, ${table}.id) ${page.desc ? '<' : '>'} (?::timestamptz, ?)`, page.after);
  }
  return q;
}

export const keyOfRow = (r: { created_key: string; id: string }): CreatedKey => [r.created_key, r.id];

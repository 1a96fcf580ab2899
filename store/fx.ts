import type { Quote } from '../domain/fx.js';
import type { Db } from './db.js';

/** Every fetched quote is kept (fx_rates), so any converted amount can be traced to what a source said. */
export async function saveQuotes(db: Db, quotes: Quote[]): Promise<void> {
  if (quotes.length === 0) return;
  await db('fx_rates').insert(quotes.map((q) => ({ source: q.source, base: q.base, quote: q.quote, rate: q.rate, as_of: q.asOf, fetched_at: q.fetchedAt })));
}

/** The quotes of `source`'s latest fetch, or [] when it was never fetched. */
export async function latestQuotes(db: Db, source: string): Promise<Quote[]> {
  const latest = await db('fx_rates').where({ source }).max({ at: 'fetched_at' }).first();
  if (!latest?.at) return [];
  const rows = await db('fx_rates').where({ source, fetched_at: latest.at }).orderBy('seq');
  return rows.map((r) => ({
    source: r.source,
    base: r.base,
    quote: r.quote,
    rate: r.rate,
    asOf: new Date(r.as_of).toISOString(),
    fetchedAt: new Date(r.fetched_at).toISOString(),
  }));
}

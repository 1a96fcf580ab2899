/**
 * The rate service used by activities and the api: providers behind one cache with a TTL,
 * stale-while-revalidate, and a maximum staleness past which conversion refuses with a clear
 * error instead of guessing. Fetched quotes are kept in fx_rates, so processes share them and
 * every rate used can be traced.
 */
import type { Logger } from 'pino';
import type { Config } from '../config/index.js';
import {
  type Conversion,
  convertWith,
  findRate,
  freshness,
  FxUnavailableError,
  identityRate,
  type Quote,
  type Rate,
  type StalenessPolicy,
} from '../domain/fx.js';
import { CURRENCY_CODES, type CurrencyCode, type Rounding } from '../domain/money.js';
import type { Db } from '../store/db.js';
import { latestQuotes, saveQuotes } from '../store/fx.js';
import { coinbaseProvider, ecbProvider, fixedProvider, type RateProvider } from './providers.js';

interface Entry {
  quotes: Quote[];
  fetchedAt: Date;
}

export interface FxServiceOptions {
  providers: RateProvider[];
  policy: StalenessPolicy;
  /** After a failed fetch, the source is not asked again for this long (the failure is answered instead). */
  retryAfterMs?: number;
  db?: Db;
  log?: Pick<Logger, 'warn'>;
  /** The clock (tests move it). */
  now?: () => Date;
}

export class FxService {
  private readonly entries = new Map<string, Entry>();
  private readonly refreshing = new Map<string, Promise<Entry>>();
  private readonly failures = new Map<string, { at: number; message: string }>();
  private readonly now: () => Date;

  constructor(private readonly opts: FxServiceOptions) {
    this.now = opts.now ?? (() => new Date());
  }

  get providers(): readonly RateProvider[] {
    return this.opts.providers;
  }

  /** The rate from `from` to `to`; throws FxUnavailableError naming every source's problem. */
  async rate(from: CurrencyCode, to: CurrencyCode): Promise<Rate> {
    const now = this.now();
    if (from === to) return identityRate(from, now);
    const problems: string[] = [];
    const quotes: Quote[] = [];
    for (const p of this.opts.providers) {
      try {
        quotes.push(...(await this.quotesOf(p, now)));
      } catch (e) {
        problems.push(`${p.name}: ${(e as Error).message}`);
      }
    }
    const rate = findRate(quotes, from, to);
    if (rate) return rate;
    const why = problems.length ? problems.join('; ') : `no configured source quotes ${from} or ${to}`;
    throw new FxUnavailableError(
      `no ${from}→${to} exchange rate: ${why}. Conversion refuses rather than guess; set AUTOVIBE_FX_FIXED_RATES or reachable AUTOVIBE_FX_ECB_URL / AUTOVIBE_FX_CRYPTO_URL`,
    );
  }

  /** Converts with the current rate, keeping the rate's provenance. */
  async convert(units: bigint, from: CurrencyCode, to: CurrencyCode, mode: Rounding, scale: 'minor' | 'ledger' = 'minor'): Promise<Conversion> {
    return convertWith(units, await this.rate(from, to), mode, scale);
  }

  /** Rates from `base` to every other supported currency; the ones that cannot be had say why. */
  async rates(base: CurrencyCode): Promise<{ items: Rate[]; unavailable: Array<{ currency: CurrencyCode; reason: string }> }> {
    const items: Rate[] = [];
    const unavailable: Array<{ currency: CurrencyCode; reason: string }> = [];
    for (const c of CURRENCY_CODES) {
      if (c === base) continue;
      try {
        items.push(await this.rate(base, c));
      } catch (e) {
        if (!(e instanceof FxUnavailableError)) throw e;
        unavailable.push({ currency: c, reason: e.message });
      }
    }
    return { items, unavailable };
  }

  private async quotesOf(p: RateProvider, now: Date): Promise<Quote[]> {
    if (p.fixed) return p.fetchQuotes(now);
    let entry = this.entries.get(p.name);
    if (!entry && this.opts.db) {
      // Another process may have fetched recently.
      const stored = await latestQuotes(this.opts.db, p.name);
      if (stored.length) {
        entry = { quotes: stored, fetchedAt: new Date(stored[0]!.fetchedAt) };
        this.entries.set(p.name, entry);
      }
    }
    const state = entry ? freshness(entry.fetchedAt, now, this.opts.policy) : 'expired';
    if (entry && state === 'fresh') return entry.quotes;
    if (entry && state === 'stale') {
      // Stale-while-revalidate: answer now, refresh in the background.
      this.refresh(p, now).catch((e: Error) => this.opts.log?.warn({ source: p.name, err: e.message }, 'fx rate refresh failed; serving stale rates'));
      return entry.quotes;
    }
    try {
      return (await this.refresh(p, now)).quotes;
    } catch (e) {
      const last = entry
        ? `its rates were last fetched at ${entry.fetchedAt.toISOString()}, beyond the maximum staleness of ${this.opts.policy.maxStaleMs / 1000} s, and `
        : '';
      throw new Error(`${last}fetching failed: ${(e as Error).message}`);
    }
  }

  /** One fetch per provider at a time. */
  private refresh(p: RateProvider, now: Date): Promise<Entry> {
    const running = this.refreshing.get(p.name);
    if (running) return running;
    const failed = this.failures.get(p.name);
    if (failed && now.getTime() - failed.at < (this.opts.retryAfterMs ?? 0)) {
      return Promise.reject(new Error(`${failed.message} (at ${new Date(failed.at).toISOString()}; not retried before ${this.opts.retryAfterMs! / 1000} s)`));
    }
    const job = (async () => {
      let quotes: Quote[];
      try {
        quotes = await p.fetchQuotes(now);
      } catch (e) {
        this.failures.set(p.name, { at: now.getTime(), message: (e as Error).message });
        throw e;
      }
      this.failures.delete(p.name);
      if (this.opts.db) await saveQuotes(this.opts.db, quotes);
      const entry = { quotes, fetchedAt: now };
      this.entries.set(p.name, entry);
      return entry;
    })();
    const tracked = job.finally(() => this.refreshing.delete(p.name));
    tracked.catch(() => undefined);
    this.refreshing.set(p.name, tracked);
    return tracked;
  }
}

/** The service as configured: fixed rates first (they win), then the ECB, then the crypto ticker. */
export function createFxService(deps: { config: Config; db?: Db; log?: Pick<Logger, 'warn'>; now?: () => Date }): FxService {
  const { fx } = deps.config;
  const providers: RateProvider[] = [];
  if (fx.fixedRates) providers.push(fixedProvider(fx.fixedRates, new Date()));
  if (fx.ecbUrl) providers.push(ecbProvider(fx.ecbUrl));
  if (fx.cryptoUrl) providers.push(coinbaseProvider(fx.cryptoUrl));
  return new FxService({
    providers,
    policy: { ttlMs: fx.ttlSeconds * 1000, maxStaleMs: fx.maxStaleSeconds * 1000 },
    retryAfterMs: fx.retrySeconds * 1000,
    ...(deps.db ? { db: deps.db } : {}),
    ...(deps.log ? { log: deps.log } : {}),
    ...(deps.now ? { now: deps.now } : {}),
  });
}

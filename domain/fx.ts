/**
 * Currency conversion math: exact rational rates, chains of quotes, and when a rate is too old to
 * use. Pure: the clock and the quotes are passed in. Rounding rules are written in domain/money.ts.
 */
import { type CurrencyCode, divRound, minorUnit, MoneyError, type Rounding } from './money.js';

/** A positive exact ratio num/den. */
export interface Ratio {
  num: bigint;
  den: bigint;
}

/** One published quote: 1 `base` = `rate` `quote` (a decimal string, as the source gave it). */
export interface Quote {
  base: CurrencyCode;
  quote: CurrencyCode;
  rate: string;
  source: string;
  /** When the source says the rate applies (ECB: the reference day). ISO 8601. */
  asOf: string;
  /** When this platform fetched it. ISO 8601. */
  fetchedAt: string;
}

/** A usable rate from `from` to `to`, possibly derived from several quotes (legs). */
export interface Rate {
  from: CurrencyCode;
  to: CurrencyCode;
  ratio: Ratio;
  /** The ratio as a decimal with 18 places (half-even), for display and records. */
  rate: string;
  /** Sources of the legs, joined with "+" ("ecb", "ecb+coinbase", "fixed", "identity"). */
  source: string;
  /** The oldest asOf / fetchedAt of the legs: a rate is only as fresh as its oldest part. */
  asOf: string;
  fetchedAt: string;
  legs: Quote[];
}

export class FxUnavailableError extends Error {
  override name = 'FxUnavailableError';
}

const DECIMAL = /^(\d+)(?:\.(\d+))?$/;

function gcd(a: bigint, b: bigint): bigint {
  while (b !== 0n) [a, b] = [b, a % b];
  return a;
}

function reduce(r: Ratio): Ratio {
  const g = gcd(r.num, r.den);
  return { num: r.num / g, den: r.den / g };
}

/**
 * A positive decimal rate string → an exact ratio.
 * @example parseRate('1.0856') → { num: 1357n, den: 1250n }
 */
export function parseRate(text: string): Ratio {
  const m = DECIMAL.exec(text.trim());
  if (!m) throw new MoneyError(`"${text}" is not a decimal rate`);
  const frac = m[2] ?? '';
  const r = reduce({ num: BigInt(m[1]! + frac), den: 10n ** BigInt(frac.length) });
  if (r.num === 0n) throw new MoneyError(`rate "${text}" is zero`);
  return r;
}

export const multiply = (a: Ratio, b: Ratio): Ratio => reduce({ num: a.num * b.num, den: a.den * b.den });
export const invert = (a: Ratio): Ratio => ({ num: a.den, den: a.num });

/** The ratio as a decimal string with `places` decimals, rounded half-even. */
export function ratioToDecimal(r: Ratio, places = 18): string {
  const scaled = divRound(r.num * 10n ** BigInt(places), r.den, 'half-even');
  const s = scaled.toString().padStart(places + 1, '0');
  return `${s.slice(0, -places)}.${s.slice(-places)}`;
}

/**
 * Converts ledger units with a ratio, rounding once: to the target's minor unit (`minor`) or to
 * the ledger unit (`ledger`). See domain/money.ts for which rule applies where.
 * @example convert(parseAmount('10.00', 'EUR'), parseRate('1.0856'), 'USD', 'up') === parseAmount('10.86', 'USD')
 */
export function convert(units: bigint, ratio: Ratio, to: CurrencyCode, mode: Rounding, scale: 'minor' | 'ledger' = 'minor'): bigint {
  if (scale === 'ledger') return divRound(units * ratio.num, ratio.den, mode);
  const step = minorUnit(to);
  return divRound(units * ratio.num, ratio.den * step, mode) * step;
}

/** The identity rate of a currency to itself. */
export function identityRate(currency: CurrencyCode, now: Date): Rate {
  const at = now.toISOString();
  return { from: currency, to: currency, ratio: { num: 1n, den: 1n }, rate: '1', source: 'identity', asOf: at, fetchedAt: at, legs: [] };
}

/**
 * The rate from `from` to `to` through the fewest quotes (at most `maxLegs`), or null. Quotes
 * earlier in the list win ties, so callers list their preferred sources first.
 */
export function findRate(quotes: readonly Quote[], from: CurrencyCode, to: CurrencyCode, maxLegs = 3): Rate | null {
  interface Edge {
    to: CurrencyCode;
    ratio: Ratio;
    quote: Quote;
  }
  const edges = new Map<CurrencyCode, Edge[]>();
  const add = (a: CurrencyCode, e: Edge) => edges.set(a, [...(edges.get(a) ?? []), e]);
  for (const q of quotes) {
    if (q.base === q.quote) continue;
    const ratio = parseRate(q.rate);
    add(q.base, { to: q.quote, ratio, quote: q });
    add(q.quote, { to: q.base, ratio: invert(ratio), quote: q });
  }
  // Breadth-first: the first path found has the fewest legs.
  let frontier: Array<{ at: CurrencyCode; ratio: Ratio; legs: Quote[] }> = [{ at: from, ratio: { num: 1n, den: 1n }, legs: [] }];
  const seen = new Set<CurrencyCode>([from]);
  for (let depth = 0; depth < maxLegs && frontier.length > 0; depth++) {
    const next: typeof frontier = [];
    for (const node of frontier) {
      for (const e of edges.get(node.at) ?? []) {
        if (seen.has(e.to)) continue;
        const step = { at: e.to, ratio: multiply(node.ratio, e.ratio), legs: [...node.legs, e.quote] };
        if (e.to === to) return toRate(from, to, step.ratio, step.legs);
        seen.add(e.to);
        next.push(step);
      }
    }
    frontier = next;
  }
  return null;
}

function toRate(from: CurrencyCode, to: CurrencyCode, ratio: Ratio, legs: Quote[]): Rate {
  const oldest = (k: 'asOf' | 'fetchedAt') => legs.map((l) => l[k]).sort()[0]!;
  return {
    from,
    to,
    ratio,
    rate: ratioToDecimal(ratio),
    source: [...new Set(legs.map((l) => l.source))].join('+'),
    asOf: oldest('asOf'),
    fetchedAt: oldest('fetchedAt'),
    legs,
  };
}

/** How long fetched quotes may be used: fresh until `ttlMs`, then stale (used while a refresh runs) until `maxStaleMs`. */
export interface StalenessPolicy {
  ttlMs: number;
  maxStaleMs: number;
}

export type Freshness = 'fresh' | 'stale' | 'expired';

/** Where quotes fetched at `fetchedAt` stand at `now`. */
export function freshness(fetchedAt: Date, now: Date, policy: StalenessPolicy): Freshness {
  const age = now.getTime() - fetchedAt.getTime();
  if (age <= policy.ttlMs) return 'fresh';
  if (age <= policy.maxStaleMs) return 'stale';
  return 'expired';
}

/** A converted amount with what it was converted with, as records keep it. */
export interface Conversion {
  amount: bigint;
  currency: CurrencyCode;
  rate: string;
  source: string;
  asOf: string;
  fetchedAt: string;
}

/** Converts and keeps the rate's provenance beside the result. */
export function convertWith(units: bigint, rate: Rate, mode: Rounding, scale: 'minor' | 'ledger' = 'minor'): Conversion {
  return {
    amount: rate.from === rate.to ? units : convert(units, rate.ratio, rate.to, mode, scale),
    currency: rate.to,
    rate: rate.rate,
    source: rate.source,
    asOf: rate.asOf,
    fetchedAt: rate.fetchedAt,
  };
}

/**
 * Rate sources behind one interface. Each adapter speaks its source's real response format and
 * keeps the source's real URL as its default (config/index.ts); tests point them at a local server.
 */
import type { Quote } from '../domain/fx.js';
import { CRYPTO_CURRENCIES, type CurrencyCode, isCurrencyCode } from '../domain/money.js';

export interface RateProvider {
  /** Recorded as the source of every rate it gives ("ecb", "coinbase", "fixed"). */
  readonly name: string;
  /** Fixed sources never go stale and are not cached. */
  readonly fixed?: boolean;
  fetchQuotes(now: Date): Promise<Quote[]>;
}

const FETCH_TIMEOUT_MS = 5_000;

async function get(url: string, accept: string): Promise<string> {
  let res: Response;
  try {
    res = await fetch(url, { headers: { accept }, signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) });
  } catch (e) {
    const cause = (e as { cause?: { code?: string; message?: string } }).cause;
    throw new Error(`GET ${url} failed: ${cause?.code ?? cause?.message ?? (e as Error).message}`);
  }
  const text = await res.text();
  if (!res.ok) throw new Error(`GET ${url} answered ${res.status}: ${text.slice(0, 200)}`);
  return text;
}

/**
 * The ECB's daily euro reference rates (eurofxref-daily.xml): `<Cube time='YYYY-MM-DD'>` holding
 * `<Cube currency='USD' rate='1.0856'/>` rows, each "1 EUR = rate currency".
 */
export function ecbProvider(url: string): RateProvider {
  return {
    name: 'ecb',
    async fetchQuotes(now) {
      return parseEcbXml(await get(url, 'application/xml'), now);
    },
  };
}

export function parseEcbXml(xml: string, now: Date): Quote[] {
  const day = /<Cube\s+time=['"](\d{4}-\d{2}-\d{2})['"]/.exec(xml)?.[1];
  if (!day) throw new Error('ECB response has no <Cube time="..."> element');
  // The reference rates are published around 16:00 CET for the day named.
  const asOf = new Date(`${day}T15:00:00Z`).toISOString();
  const quotes: Quote[] = [];
  for (const m of xml.matchAll(/<Cube\s+currency=['"]([A-Z]{3})['"]\s+rate=['"]([0-9.]+)['"]\s*\/>/g)) {
    const code = m[1]!;
    if (code !== 'EUR' && isCurrencyCode(code)) {
      quotes.push({ base: 'EUR', quote: code, rate: m[2]!, source: 'ecb', asOf, fetchedAt: now.toISOString() });
    }
  }
  if (quotes.length === 0) throw new Error('ECB response holds no rate of a supported currency');
  return quotes;
}

/**
 * Coinbase's public exchange rates (`GET /v2/exchange-rates?currency=USD`):
 * `{ "data": { "currency": "USD", "rates": { "BTC": "0.0000105", ... } } }`, each "1 USD = rate X".
 */
export function coinbaseProvider(url: string): RateProvider {
  return {
    name: 'coinbase',
    async fetchQuotes(now) {
      return parseCoinbaseJson(await get(url, 'application/json'), now);
    },
  };
}

export function parseCoinbaseJson(text: string, now: Date): Quote[] {
  const body = JSON.parse(text) as { data?: { currency?: string; rates?: Record<string, string> } };
  const base = body.data?.currency;
  const rates = body.data?.rates;
  if (!base || !isCurrencyCode(base) || !rates) throw new Error('exchange-rates response lacks data.currency (a supported currency) or data.rates');
  const at = now.toISOString();
  const quotes: Quote[] = [];
  // Crypto currencies only: fiat comes from the ECB.
  for (const code of CRYPTO_CURRENCIES) {
    const rate = rates[code];
    if (code !== base && typeof rate === 'string' && /^\d+(\.\d+)?$/.test(rate) && Number(rate) > 0) {
      quotes.push({ base, quote: code, rate, source: 'coinbase', asOf: at, fetchedAt: at });
    }
  }
  if (quotes.length === 0) throw new Error('exchange-rates response holds no rate of BTC, ETH or TON');
  return quotes;
}

/**
 * Rates given by configuration, e.g. "EUR/USD=1.08,USD/CAD=1.37" (1 EUR = 1.08 USD). They win over
 * fetched rates, so an offline installation converts only with rates someone chose.
 */
export function fixedProvider(spec: string, configuredAt: Date): RateProvider {
  const quotes = parseFixedRates(spec, configuredAt);
  return {
    name: 'fixed',
    fixed: true,
    async fetchQuotes(now) {
      return quotes.map((q) => ({ ...q, fetchedAt: now.toISOString() }));
    },
  };
}

export function parseFixedRates(spec: string, at: Date): Quote[] {
  const quotes: Quote[] = [];
  for (const part of spec
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)) {
    const m = /^([A-Z]{3})\/([A-Z]{3})=(\d+(?:\.\d+)?)$/.exec(part);
    if (!m || !isCurrencyCode(m[1]!) || !isCurrencyCode(m[2]!) || !(Number(m[3]) > 0)) {
      throw new Error(`AUTOVIBE_FX_FIXED_RATES: "${part}" is not BASE/QUOTE=rate with supported currencies and a positive rate`);
    }
    quotes.push({ base: m[1] as CurrencyCode, quote: m[2] as CurrencyCode, rate: m[3]!, source: 'fixed', asOf: at.toISOString(), fetchedAt: at.toISOString() });
  }
  return quotes;
}

/**
 * Currency conversion throughput: exact conversions per second through a two-leg cross rate
 * (CAD→BTC via the ECB and an exchange's quotes), and rate look-ups per second from the warm
 * cache of the rate service. No services: the quotes are given, the cache is in memory.
 */
import { performance } from 'node:perf_hooks';
import { convert, findRate, type Quote } from '../../domain/fx.js';
import { formatAmount, parseAmount } from '../../domain/money.js';
import { FxService } from '../../fx/service.js';
import type { RateProvider } from '../../fx/providers.js';
import type { BenchOptions, BenchOutput } from './common.js';

const at = new Date().toISOString();
const QUOTES: Quote[] = [
  { base: 'EUR', quote: 'USD', rate: '1.0856', source: 'ecb', asOf: at, fetchedAt: at },
  { base: 'EUR', quote: 'CAD', rate: '1.4773', source: 'ecb', asOf: at, fetchedAt: at },
  { base: 'USD', quote: 'BTC', rate: '0.0000105897', source: 'coinbase', asOf: at, fetchedAt: at },
];

export async function fx(opts: BenchOptions): Promise<BenchOutput> {
  const n = opts.quick ? 100_000 : 2_000_000;
  const rate = findRate(QUOTES, 'CAD', 'BTC')!;
  const amount = parseAmount('1234.56', 'CAD');
  let sink = 0n;
  let t0 = performance.now();
  for (let i = 0; i < n; i++) sink += convert(amount + BigInt(i), rate.ratio, 'BTC', 'half-even');
  const convertSeconds = (performance.now() - t0) / 1000;

  const provider: RateProvider = { name: 'given', fetchQuotes: async () => QUOTES };
  const service = new FxService({ providers: [provider], policy: { ttlMs: 3_600_000, maxStaleMs: 7_200_000 } });
  await service.rate('CAD', 'BTC'); // warm the cache
  const lookups = opts.quick ? 10_000 : 200_000;
  t0 = performance.now();
  for (let i = 0; i < lookups; i++) await service.rate(i % 2 ? 'CAD' : 'EUR', 'BTC');
  const lookupSeconds = (performance.now() - t0) / 1000;
  opts.log(`sum of the conversions: ${formatAmount(sink, 'BTC')} BTC`);
  return {
    rows: [
      { label: 'exact conversions (CAD→BTC, 3-leg cross rate, half-even)', unit: '/s', value: n / convertSeconds, decimals: 0 },
      { label: 'rate look-ups from the warm cache (path search included)', unit: '/s', value: lookups / lookupSeconds, decimals: 0 },
    ],
    details: { conversions: n, lookups },
  };
}

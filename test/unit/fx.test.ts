import assert from 'node:assert/strict';
import { convert, convertWith, findRate, freshness, invert, parseRate, ratioToDecimal, type Quote } from '../../domain/fx.js';
import {
  CURRENCIES,
  CURRENCY_CODES,
  type CurrencyCode,
  divRound,
  formatAmount,
  minorUnit,
  parseAmount,
  roundToMinor,
  type Rounding,
} from '../../domain/money.js';
import { prng } from '../support/prng.js';

const at = '2026-11-26T15:00:00.000Z';
const q = (base: CurrencyCode, quote: CurrencyCode, rate: string, source = 'ecb'): Quote => ({ base, quote, rate, source, asOf: at, fetchedAt: at });

// Rates shaped like the real sources: the ECB quotes fiat per EUR, the exchange crypto per USD.
const QUOTES: Quote[] = [
  q('EUR', 'USD', '1.0856'),
  q('EUR', 'CAD', '1.4773'),
  q('USD', 'BTC', '0.0000105897', 'coinbase'),
  q('USD', 'ETH', '0.000289412', 'coinbase'),
  q('USD', 'TON', '0.18340571', 'coinbase'),
];

describe('money: rounding rules', () => {
  it('divides with each rounding mode, ties to even, and signs handled', () => {
    const cases: Array<[bigint, bigint, Rounding, bigint]> = [
      [7n, 2n, 'down', 3n],
      [7n, 2n, 'up', 4n],
      [7n, 2n, 'half-even', 4n], // 3.5 → 4 (even)
      [5n, 2n, 'half-even', 2n], // 2.5 → 2 (even)
      [11n, 4n, 'half-even', 3n], // 2.75 → 3
      [9n, 4n, 'half-even', 2n], // 2.25 → 2
      [8n, 4n, 'up', 2n], // exact stays exact
      [-7n, 2n, 'down', -4n], // toward −∞
      [-7n, 2n, 'up', -3n], // toward +∞
      [-5n, 2n, 'half-even', -2n],
      [-7n, 2n, 'half-even', -4n],
      [7n, -2n, 'down', -4n],
    ];
    for (const [n, d, mode, want] of cases) assert.equal(divRound(n, d, mode), want, `${n}/${d} ${mode}`);
    assert.throws(() => divRound(1n, 0n, 'up'), /division by zero/);
  });

  it('rounds ledger units to each currency’s minor unit', () => {
    assert.equal(minorUnit('USD'), 10n ** 16n);
    assert.equal(minorUnit('BTC'), 10n ** 10n);
    assert.equal(minorUnit('ETH'), 1n);
    const x = parseAmount('1.234567891234567891', 'ETH');
    assert.equal(formatAmount(roundToMinor(x, 'USD', 'up'), 'USD'), '1.24');
    assert.equal(formatAmount(roundToMinor(x, 'USD', 'down'), 'USD'), '1.23');
    assert.equal(formatAmount(roundToMinor(x, 'USD', 'half-even'), 'USD'), '1.23');
    assert.equal(formatAmount(roundToMinor(x, 'TON', 'half-even'), 'TON'), '1.234567891');
    assert.equal(formatAmount(roundToMinor(x, 'BTC', 'up'), 'BTC'), '1.23456790');
    assert.equal(roundToMinor(x, 'ETH', 'up'), x);
  });
});

describe('fx: conversion math', () => {
  it('parses rates exactly and prints them back', () => {
    assert.deepEqual(parseRate('1.0856'), { num: 1357n, den: 1250n });
    assert.deepEqual(parseRate('2'), { num: 2n, den: 1n });
    assert.equal(ratioToDecimal(parseRate('1.0856')), '1.085600000000000000');
    assert.equal(ratioToDecimal(invert(parseRate('3'))), '0.333333333333333333');
    assert.throws(() => parseRate('-1'), /not a decimal rate/);
    assert.throws(() => parseRate('0.000'), /zero/);
  });

  it('converts with the documented rounding: reservations up to the minor unit, costs half-even', () => {
    const rate = parseRate('1.0856');
    const tenEur = parseAmount('10.00', 'EUR'); // 10.856 USD exactly
    assert.equal(formatAmount(convert(tenEur, rate, 'USD', 'up'), 'USD'), '10.86');
    assert.equal(formatAmount(convert(tenEur, rate, 'USD', 'down'), 'USD'), '10.85');
    assert.equal(formatAmount(convert(tenEur, rate, 'USD', 'half-even'), 'USD'), '10.86');
    assert.equal(formatAmount(convert(tenEur, rate, 'USD', 'half-even', 'ledger'), 'USD'), '10.856');
    // Ties go to the even cent.
    const r15 = parseRate('1.5');
    assert.equal(formatAmount(convert(parseAmount('0.05', 'EUR'), r15, 'USD', 'half-even'), 'USD'), '0.08'); // 0.075
    assert.equal(formatAmount(convert(parseAmount('0.15', 'EUR'), r15, 'USD', 'half-even'), 'USD'), '0.22'); // 0.225
    // A tiny cost is kept at the ledger unit instead of vanishing to 0.00.
    const tiny = parseAmount('0.000011111111111112', 'ETH');
    assert.equal(formatAmount(convert(tiny, invert(rate), 'EUR', 'half-even', 'ledger'), 'EUR'), '0.000010234995496603');
  });

  it('finds direct, inverse and chained rates, preferring fewer legs and earlier sources', () => {
    const eurUsd = findRate(QUOTES, 'EUR', 'USD')!;
    assert.equal(eurUsd.rate, '1.085600000000000000');
    assert.equal(eurUsd.source, 'ecb');
    const usdEur = findRate(QUOTES, 'USD', 'EUR')!;
    assert.deepEqual(usdEur.ratio, { num: 1250n, den: 1357n });
    const cadBtc = findRate(QUOTES, 'CAD', 'BTC')!;
    assert.equal(cadBtc.legs.length, 3); // CAD→EUR→USD→BTC
    assert.equal(cadBtc.source, 'ecb+coinbase');
    // 1 CAD = (1/1.4773) × 1.0856 × 0.0000105897 BTC
    assert.equal(cadBtc.ratio.num * 14773n * 10n ** 14n, cadBtc.ratio.den * 10856n * 105897n * 10n ** 4n);
    const fixedFirst = findRate([q('EUR', 'USD', '1.10', 'fixed'), ...QUOTES], 'EUR', 'USD')!;
    assert.equal(fixedFirst.source, 'fixed');
    assert.equal(findRate(QUOTES.slice(0, 2), 'EUR', 'BTC'), null);
    // The rate is as old as its oldest leg.
    const older = findRate([q('EUR', 'USD', '1.08'), { ...q('USD', 'ETH', '0.0003', 'coinbase'), fetchedAt: '2026-11-20T00:00:00.000Z' }], 'EUR', 'ETH')!;
    assert.equal(older.fetchedAt, '2026-11-20T00:00:00.000Z');
  });

  it('converting to the same currency is exact and says so', () => {
    const c = convertWith(123n, { ...findRate(QUOTES, 'EUR', 'USD')!, to: 'EUR' }, 'up');
    assert.equal(c.amount, 123n);
  });

  it('tells fresh, stale and expired apart at the policy’s edges', () => {
    const fetched = new Date('2026-11-27T00:00:00Z');
    const policy = { ttlMs: 60_000, maxStaleMs: 3_600_000 };
    const after = (ms: number) => new Date(fetched.getTime() + ms);
    assert.equal(freshness(fetched, after(60_000), policy), 'fresh');
    assert.equal(freshness(fetched, after(60_001), policy), 'stale');
    assert.equal(freshness(fetched, after(3_600_000), policy), 'stale');
    assert.equal(freshness(fetched, after(3_600_001), policy), 'expired');
  });
});

/**
 * An independent exact computation: amounts as decimal strings, rates as decimal strings, the
 * chain multiplied as fractions of integers built from the digits, and results in minor units.
 */
function digitsFraction(decimal: string): [bigint, bigint] {
  const [whole, frac = ''] = decimal.split('.');
  return [BigInt(whole! + frac), 10n ** BigInt(frac.length)];
}

function independentRate(from: CurrencyCode, to: CurrencyCode): [bigint, bigint] {
  // Everything in EUR: value of 1 unit of c in EUR.
  const usdPerEur = digitsFraction('1.0856');
  const inEur: Record<CurrencyCode, [bigint, bigint]> = {
    EUR: [1n, 1n],
    USD: [usdPerEur[1], usdPerEur[0]],
    CAD: ((r) => [r[1], r[0]])(digitsFraction('1.4773')) as [bigint, bigint],
    BTC: [usdPerEur[1] * digitsFraction('0.0000105897')[1], usdPerEur[0] * digitsFraction('0.0000105897')[0]],
    ETH: [usdPerEur[1] * digitsFraction('0.000289412')[1], usdPerEur[0] * digitsFraction('0.000289412')[0]],
    TON: [usdPerEur[1] * digitsFraction('0.18340571')[1], usdPerEur[0] * digitsFraction('0.18340571')[0]],
  };
  const a = inEur[from];
  const b = inEur[to];
  return [a[0] * b[1], a[1] * b[0]]; // from→EUR→to
}

function independentConvertMinor(amount: string, from: CurrencyCode, to: CurrencyCode, mode: Rounding): bigint {
  const [n, d] = digitsFraction(amount);
  const [rn, rd] = independentRate(from, to);
  const num = n * rn * 10n ** BigInt(CURRENCIES[to].precision);
  const den = d * rd;
  const floor = num / den;
  const rem = num - floor * den;
  if (rem === 0n || mode === 'down') return floor;
  if (mode === 'up') return floor + 1n;
  if (rem * 2n > den) return floor + 1n;
  if (rem * 2n < den) return floor;
  return floor % 2n === 0n ? floor : floor + 1n;
}

function minorToDecimal(minor: bigint, c: CurrencyCode): string {
  const p = CURRENCIES[c].precision;
  const s = minor.toString().padStart(p + 1, '0');
  return `${s.slice(0, -p)}.${s.slice(-p)}`;
}

describe('fx: 1,000,000 random conversions and sums', function () {
  this.timeout(120_000);

  it('match an independent exact computation to the last minor unit', () => {
    const rand = prng(20261127);
    const rates = new Map<string, ReturnType<typeof findRate>>();
    for (const a of CURRENCY_CODES) for (const b of CURRENCY_CODES) if (a !== b) rates.set(`${a}>${b}`, findRate(QUOTES, a, b));
    const modes: Rounding[] = ['up', 'down', 'half-even'];
    const sums = new Map<string, bigint>();
    const expected = new Map<string, bigint>();
    const sourceSums = new Map<CurrencyCode, bigint>();
    const sourceExpected = new Map<CurrencyCode, bigint>();
    for (let i = 0; i < 1_000_000; i++) {
      const from = CURRENCY_CODES[Math.floor(rand() * CURRENCY_CODES.length)]!;
      let to = CURRENCY_CODES[Math.floor(rand() * CURRENCY_CODES.length)]!;
      if (to === from) to = from === 'USD' ? 'EUR' : 'USD';
      const mode = modes[Math.floor(rand() * modes.length)]!;
      const precision = CURRENCIES[from].precision;
      const whole = Math.floor(rand() * 10 ** Math.floor(rand() * 7));
      let frac = '';
      for (let k = 0; k < precision; k++) frac += Math.floor(rand() * 10);
      const text = precision ? `${whole}.${frac}` : `${whole}`;

      const units = parseAmount(text, from);
      const converted = convert(units, rates.get(`${from}>${to}`)!.ratio, to, mode);
      const key = `${to}:${mode}`;
      sums.set(key, (sums.get(key) ?? 0n) + converted);
      const minor = independentConvertMinor(text, from, to, mode);
      expected.set(key, (expected.get(key) ?? 0n) + minor);
      if (converted % minorUnit(to) !== 0n) assert.fail(`${text} ${from}→${to} is not a whole ${to} minor unit`);
      sourceSums.set(from, (sourceSums.get(from) ?? 0n) + units);
      sourceExpected.set(from, (sourceExpected.get(from) ?? 0n) + digitsFraction(text)[0] * 10n ** BigInt(precision - (text.split('.')[1]?.length ?? 0)));
      if (i < 1000 && converted !== minor * minorUnit(to)) assert.fail(`${text} ${from}→${to} ${mode}: ${converted} vs ${minor}`);
    }
    assert.ok(sums.size >= 18, `every target currency and mode was hit: ${[...sums.keys()]}`);
    for (const [key, total] of sums) {
      const to = key.split(':')[0] as CurrencyCode;
      assert.equal(formatAmount(total, to), minorToDecimal(expected.get(key)!, to), key);
    }
    for (const [c, total] of sourceSums) assert.equal(formatAmount(total, c), minorToDecimal(sourceExpected.get(c)!, c), `sum of ${c} amounts`);
  });
});

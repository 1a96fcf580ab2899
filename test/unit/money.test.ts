import assert from 'node:assert/strict';
import {
  CURRENCIES,
  CURRENCY_CODES,
  LEDGER_SCALE,
  MoneyError,
  MAX_INPUT_UNITS,
  affordableMs,
  formatAmount,
  fromNumeric,
  parseAmount,
  runtimeCost,
  toNumeric,
} from '../../domain/money.js';
import { prng } from '../support/prng.js';

const SEED = 20261127;
const ONE = 10n ** 18n; // one main unit, in ledger units (independent of LEDGER_SCALE on purpose)
const MS_PER_HOUR = 3_600_000n;

function digits(rand: () => number, n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += String(Math.floor(rand() * 10));
  return s;
}

function int(rand: () => number, lo: number, hi: number): number {
  return lo + Math.floor(rand() * (hi - lo + 1));
}

/** A random bigint with 1..maxDigits decimal digits. */
function randomBigint(rand: () => number, maxDigits: number): bigint {
  return BigInt(digits(rand, int(rand, 1, maxDigits)));
}

/** Ledger units of a decimal "whole.frac", computed without the code under test. */
function expectedUnits(whole: string, frac: string): bigint {
  return BigInt(whole) * ONE + (frac ? BigInt(frac) * 10n ** BigInt(18 - frac.length) : 0n);
}

/** The canonical text of "whole.frac": no leading zeros, exactly enough decimals. */
function normalised(whole: string, frac: string, precision: number): string {
  const w = whole.replace(/^0+(?=\d)/, '');
  const f = frac.replace(/0+$/, '').padEnd(precision, '0');
  return f ? `${w}.${f}` : w;
}

function ceilDiv(n: bigint, d: bigint): bigint {
  const q = n / d;
  return n % d === 0n ? q : q + 1n;
}

describe('domain/money', function () {
  it('declares the expected currencies and precisions', function () {
    assert.equal(LEDGER_SCALE, 18);
    assert.deepEqual(Object.fromEntries(CURRENCY_CODES.map((c) => [c, CURRENCIES[c].precision])), { USD: 2, EUR: 2, CAD: 2, TON: 9, BTC: 8, ETH: 18 });
  });

  describe('parseAmount', function () {
    it('parses known values exactly', function () {
      assert.equal(parseAmount('10.50', 'USD'), 10_500_000_000_000_000_000n);
      assert.equal(parseAmount('10.5', 'EUR'), 10_500_000_000_000_000_000n);
      assert.equal(parseAmount('0.01', 'CAD'), 10_000_000_000_000_000n);
      assert.equal(parseAmount('0', 'USD'), 0n);
      assert.equal(parseAmount('007', 'USD'), 7_000_000_000_000_000_000n);
      assert.equal(parseAmount('0.000000001', 'TON'), 1_000_000_000n);
      assert.equal(parseAmount('0.00000001', 'BTC'), 10_000_000_000n);
      assert.equal(parseAmount('0.000000000000000001', 'ETH'), 1n);
      assert.equal(parseAmount('21000000', 'BTC'), 21_000_000_000_000_000_000_000_000n);
    });

    for (const currency of CURRENCY_CODES) {
      const precision = CURRENCIES[currency].precision;

      it(`${currency}: accepts up to ${precision} decimals and refuses ${precision + 1}`, function () {
        const smallest = `0.${'0'.repeat(precision - 1)}1`;
        assert.equal(parseAmount(smallest, currency), 10n ** BigInt(18 - precision));
        const full = `12.${'9'.repeat(precision)}`;
        assert.equal(parseAmount(full, currency), expectedUnits('12', '9'.repeat(precision)));
        for (const tooMany of [`0.${'0'.repeat(precision)}1`, `1.${'0'.repeat(precision + 1)}`, `5.${'1'.repeat(precision + 3)}`]) {
          assert.throws(
            () => parseAmount(tooMany, currency),
            (e: unknown) => e instanceof MoneyError && e.message.includes(currency) && e.message.includes(String(precision)),
            `${tooMany} must be refused for ${currency}`,
          );
        }
      });

      it(`${currency}: refuses negatives unless allowed`, function () {
        for (const text of ['-1', '-0.01', '-0']) {
          assert.throws(() => parseAmount(text, currency), MoneyError, `${text} must be refused`);
        }
        assert.equal(parseAmount('-1.5', currency, { allowNegative: true }), -(ONE + ONE / 2n));
        assert.equal(parseAmount('-0.01', currency, { allowNegative: true }), -(ONE / 100n));
      });

      it(`${currency}: refuses amounts beyond the ledger's range (numeric(38,18)) and above a given maximum`, function () {
        const largest = `${'9'.repeat(20)}${precision ? `.${'9'.repeat(precision)}` : ''}`;
        assert.equal(formatAmount(parseAmount(largest, currency), currency), largest);
        for (const text of [`1${'0'.repeat(20)}`, '9'.repeat(60), `${'0'.repeat(30)}1${'0'.repeat(20)}`]) {
          assert.throws(
            () => parseAmount(text, currency),
            (e: unknown) => e instanceof MoneyError && /beyond the ledger's range/.test(e.message),
            text,
          );
        }
        assert.equal(parseAmount('1000000000000', currency, { max: MAX_INPUT_UNITS }), MAX_INPUT_UNITS);
        assert.throws(
          () => parseAmount(`1000000000000.${'0'.repeat(Math.max(precision - 1, 0))}1`.replace(/\.$/, ''), currency, { max: MAX_INPUT_UNITS }),
          MoneyError,
        );
        assert.throws(() => parseAmount('1000000000001', currency, { max: MAX_INPUT_UNITS }), /at most 1000000000000/);
      });

      it(`${currency}: refuses junk`, function () {
        for (const junk of ['1e5', '', '1.', '.5', 'abc', ' ', '1,00', '+1', '1.2.3', '0x10', 'NaN', 'Infinity', '1 000', '--1', '1-', '١']) {
          assert.throws(() => parseAmount(junk, currency), MoneyError, `${JSON.stringify(junk)} must be refused`);
        }
      });

      it(`${currency}: parses and formats random amounts exactly (round trip)`, function () {
        const rand = prng(SEED + precision);
        for (let i = 0; i < 500; i++) {
          const whole = digits(rand, int(rand, 1, 20));
          const frac = digits(rand, int(rand, 0, precision));
          const text = frac ? `${whole}.${frac}` : whole;
          const units = parseAmount(text, currency);
          assert.equal(units, expectedUnits(whole, frac), `parse ${text}`);
          assert.equal(formatAmount(units, currency), normalised(whole, frac, precision), `format(parse(${text}))`);
          // The canonical form is a fixed point.
          const canonical = formatAmount(units, currency);
          assert.equal(parseAmount(canonical, currency), units);
          assert.equal(formatAmount(parseAmount(canonical, currency), currency), canonical);
        }
      });
    }
  });

  describe('formatAmount', function () {
    it('pads to the currency precision and drops zeros beyond it', function () {
      assert.equal(formatAmount(ONE, 'USD'), '1.00');
      assert.equal(formatAmount(10n * ONE, 'EUR'), '10.00');
      assert.equal(formatAmount(ONE, 'TON'), '1.000000000');
      assert.equal(formatAmount(ONE, 'BTC'), '1.00000000');
      assert.equal(formatAmount(ONE, 'ETH'), '1.000000000000000000');
      assert.equal(formatAmount(0n, 'CAD'), '0.00');
      assert.equal(formatAmount(ONE / 2n, 'USD'), '0.50');
      assert.equal(formatAmount(-(ONE + ONE / 2n), 'USD'), '-1.50');
    });

    it('shows computed amounts exactly, beyond the currency precision when needed', function () {
      assert.equal(formatAmount(1n, 'USD'), '0.000000000000000001');
      assert.equal(formatAmount(333_340_000_000_000n, 'USD'), '0.00033334');
      assert.equal(formatAmount(ONE + 10n ** 15n, 'USD'), '1.001');
      assert.equal(formatAmount(123_456_789_012_345_678_901n, 'ETH'), '123.456789012345678901');
    });
  });

  describe('toNumeric / fromNumeric', function () {
    it('writes exactly 18 decimals', function () {
      assert.equal(toNumeric(0n), '0.000000000000000000');
      assert.equal(toNumeric(1n), '0.000000000000000001');
      assert.equal(toNumeric(ONE), '1.000000000000000000');
      assert.equal(toNumeric(-(ONE / 4n)), '-0.250000000000000000');
      assert.equal(toNumeric(10n ** 38n - 1n), `${'9'.repeat(20)}.${'9'.repeat(18)}`);
    });

    it('reads what the driver returns', function () {
      assert.equal(fromNumeric('1.5'), ONE + ONE / 2n);
      assert.equal(fromNumeric('0.000000000000000001'), 1n);
      assert.equal(fromNumeric('-2'), -2n * ONE);
      assert.equal(fromNumeric(3), 3n * ONE);
      assert.equal(fromNumeric(null), 0n);
      assert.equal(fromNumeric(undefined), 0n);
      assert.throws(() => fromNumeric('0.0000000000000000001'), MoneyError);
      assert.throws(() => fromNumeric('1e5'), MoneyError);
      assert.throws(() => fromNumeric('NaN'), MoneyError);
    });

    it('round-trips random values up to 20 integer digits and 18 decimals, both signs', function () {
      const rand = prng(SEED);
      for (let i = 0; i < 2000; i++) {
        const magnitude = randomBigint(rand, 38);
        const units = rand() < 0.2 ? -magnitude : magnitude;
        const text = toNumeric(units);
        assert.match(text, /^-?\d{1,20}\.\d{18}$/);
        assert.equal(fromNumeric(text), units, text);
      }
    });

    it('round-trips 18-decimal ETH amounts through parse → numeric → parse', function () {
      const rand = prng(SEED + 1);
      for (let i = 0; i < 500; i++) {
        const whole = digits(rand, int(rand, 1, 20));
        const frac = digits(rand, 18);
        const units = parseAmount(`${whole}.${frac}`, 'ETH');
        assert.equal(fromNumeric(toNumeric(units)), units);
        assert.equal(toNumeric(units), `${whole.replace(/^0+(?=\d)/, '')}.${frac}`);
      }
    });
  });

  describe('runtimeCost', function () {
    it('is exact when the division is exact', function () {
      const price = parseAmount('0.36', 'USD'); // 0.0001 USD per second
      assert.equal(runtimeCost(3_600_000, price), price);
      assert.equal(runtimeCost(0, price), 0n);
      assert.equal(runtimeCost(10_000, price), parseAmount('0.001', 'ETH'));
      assert.equal(runtimeCost(7_200_000, parseAmount('1.25', 'USD')), parseAmount('2.50', 'USD'));
    });

    it('rounds up when the division is not exact', function () {
      // 60 s at 0.02 USD/h = 0.000333…3 USD → rounded up at the 18th decimal.
      assert.equal(runtimeCost(60_000, parseAmount('0.02', 'USD')), 333_333_333_333_334n);
      assert.equal(runtimeCost(1, 1n), 1n); // 1/3_600_000 of a unit still costs a unit
      assert.equal(runtimeCost(1, 3_600_001n), 2n);
    });

    it('matches an independent ceiling division on random inputs', function () {
      const rand = prng(SEED + 2);
      let exact = 0;
      let inexact = 0;
      for (let i = 0; i < 3000; i++) {
        const ms = rand() < 0.1 ? int(rand, 0, 10) * 3_600_000 : int(rand, 0, 2 ** 40);
        const price = rand() < 0.1 ? BigInt(int(rand, 0, 1000)) * MS_PER_HOUR : randomBigint(rand, 24);
        const numerator = BigInt(ms) * price;
        const cost = runtimeCost(ms, price);
        assert.equal(cost, ceilDiv(numerator, MS_PER_HOUR), `runtimeCost(${ms}, ${price})`);
        // Never under-counts, and never over-counts by a whole unit.
        assert.ok(cost * MS_PER_HOUR >= numerator);
        assert.ok((cost - 1n) * MS_PER_HOUR < numerator || cost === 0n);
        if (numerator % MS_PER_HOUR === 0n) exact++;
        else inexact++;
      }
      assert.ok(exact > 50 && inexact > 50, `both cases exercised (exact ${exact}, inexact ${inexact})`);
    });

    it('refuses fractional or negative durations', function () {
      for (const ms of [1.5, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
        assert.throws(() => runtimeCost(ms, ONE), MoneyError, String(ms));
      }
    });
  });

  describe('affordableMs', function () {
    it('never buys more than the budget, and one more ms would exceed it', function () {
      const rand = prng(SEED + 3);
      for (let i = 0; i < 5000; i++) {
        const budget = rand() < 0.05 ? 0n : randomBigint(rand, 22); // up to ~10^4 main units
        const price = randomBigint(rand, 22) + 1n; // > 0
        const ms = affordableMs(budget, price);
        assert.ok(Number.isSafeInteger(ms) && ms >= 0, `affordableMs(${budget}, ${price}) = ${ms}`);
        if (ms === Number.MAX_SAFE_INTEGER) continue; // capped: nothing more to say
        assert.ok(runtimeCost(ms, price) <= budget, `cost of ${ms} ms at ${price} exceeds ${budget}`);
        assert.ok(runtimeCost(ms + 1, price) > budget, `${ms + 1} ms at ${price} would still fit in ${budget}`);
      }
    });

    it('buys whole hours exactly and caps free compute', function () {
      const price = parseAmount('2.00', 'USD');
      assert.equal(affordableMs(parseAmount('10.00', 'USD'), price), 5 * 3_600_000);
      assert.equal(affordableMs(parseAmount('10.00', 'USD') - 1n, price), 5 * 3_600_000 - 1);
      assert.equal(affordableMs(0n, price), 0);
      assert.equal(affordableMs(ONE, 0n), Number.MAX_SAFE_INTEGER);
      assert.equal(affordableMs(10n ** 30n, 1n), Number.MAX_SAFE_INTEGER);
    });
  });
});

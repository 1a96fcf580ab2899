/**
 * Exact money. Amounts are bigint "ledger units" of 10^-18 of a currency's main unit, whatever
 * the currency, so sums and comparisons never round. Rounding happens only where written here:
 *
 * - Input (budgets, limits, top-ups) may not carry more decimals than the currency's precision
 *   (USD/EUR/CAD 2, TON 9, BTC 8, ETH 18); an amount with more is refused, never rounded.
 * - Costs computed from a rate (runtime × hourly price) round UP to the next ledger unit, so the
 *   platform never under-counts a spend.
 * - Output is the exact decimal, with at least the currency's precision and no trailing zeros
 *   beyond it ("10.00", "0.00033334").
 * - Conversion between currencies (domain/fx.ts) multiplies by an exact rational rate, then rounds
 *   once, with the rule of its purpose:
 *   - a reservation (the worst case a spend may reach) rounds UP to the target currency's minor
 *     unit, so a budget in another currency never holds less than the spend can cost;
 *   - a settled or recorded cost rounds HALF-EVEN to the ledger unit (10^-18): unbiased, at most
 *     half a ledger unit off, and never more than the reservation (which was rounded up, and the
 *     ledger caps every settlement at its reservation anyway);
 *   - an amount shown in another currency (rates, roll-ups) rounds HALF-EVEN to the minor unit.
 */
export const LEDGER_SCALE = 18;
const SCALE_FACTOR = 10n ** BigInt(LEDGER_SCALE);

export const CURRENCIES = {
  USD: { precision: 2 },
  EUR: { precision: 2 },
  CAD: { precision: 2 },
  TON: { precision: 9 },
  BTC: { precision: 8 },
  ETH: { precision: 18 },
} as const;

export type CurrencyCode = keyof typeof CURRENCIES;
export const CURRENCY_CODES = Object.keys(CURRENCIES) as CurrencyCode[];
export const FIAT_CURRENCIES: readonly CurrencyCode[] = ['USD', 'EUR', 'CAD'];
export const CRYPTO_CURRENCIES: readonly CurrencyCode[] = ['BTC', 'ETH', 'TON'];

export interface Money {
  /** Ledger units: 10^-18 of the currency's main unit. */
  units: bigint;
  currency: CurrencyCode;
}

export class MoneyError extends Error {
  override name = 'MoneyError';
}

export function isCurrencyCode(code: string): code is CurrencyCode {
  return Object.hasOwn(CURRENCIES, code);
}

const DECIMAL = /^(-)?(\d+)(?:\.(\d+))?$/;

/**
 * The ledger's range: Postgres numeric(38,18) holds 20 whole digits, so |units| < 10^38.
 * parseAmount refuses anything beyond it, never clamps it.
 */
export const LEDGER_MAX_UNITS = 10n ** 38n - 1n;
/**
 * The largest amount the api takes (budgets, limits, top-ups, credits): 10^12 of a currency's
 * main unit. The headroom below the ledger's range keeps an amount converted at any plausible
 * rate, or summed over many rows, inside the numeric(38,18) columns.
 */
export const MAX_INPUT_UNITS = 10n ** 12n * SCALE_FACTOR;

/**
 * Parses a decimal string into ledger units.
 * @example parseAmount('10.50', 'USD') === 10_500_000_000_000_000_000n
 */
export function parseAmount(text: string, currency: CurrencyCode, opts: { allowNegative?: boolean; max?: bigint } = {}): bigint {
  const m = DECIMAL.exec(text.trim());
  if (!m) throw new MoneyError(`"${text}" is not a decimal amount (use digits with an optional "." e.g. "10.00")`);
  const [, sign, whole, frac = ''] = m;
  const precision = CURRENCIES[currency].precision;
  if (frac.length > precision) {
    throw new MoneyError(`"${text}" has ${frac.length} decimals; ${currency} allows at most ${precision}`);
  }
  if (sign && !opts.allowNegative) throw new MoneyError(`"${text}" is negative; the amount must be zero or more`);
  const max = opts.max ?? LEDGER_MAX_UNITS;
  const digits = whole!.replace(/^0+(?=\d)/, '');
  // Checked on the text first: a huge digit string never becomes a huge bigint.
  const tooLarge = () =>
    new MoneyError(`"${text.length > 40 ? `${text.slice(0, 40)}…` : text}" is beyond the ledger's range; at most ${formatAmount(max, currency)} ${currency}`);
  if (digits.length > max.toString().length - LEDGER_SCALE + 1) throw tooLarge();
  const units = BigInt(digits) * SCALE_FACTOR + BigInt(frac.padEnd(LEDGER_SCALE, '0'));
  if (units > max) throw tooLarge();
  return sign ? -units : units;
}

/** Formats ledger units as an exact decimal string with at least the currency's precision. */
export function formatAmount(units: bigint, currency: CurrencyCode): string {
  const negative = units < 0n;
  const abs = negative ? -units : units;
  const whole = abs / SCALE_FACTOR;
  let frac = (abs % SCALE_FACTOR).toString().padStart(LEDGER_SCALE, '0').replace(/0+$/, '');
  const precision = CURRENCIES[currency].precision;
  if (frac.length < precision) frac = frac.padEnd(precision, '0');
  return `${negative ? '-' : ''}${whole}${frac ? `.${frac}` : ''}`;
}

/** Ledger units → the exact value for a Postgres numeric(38,18) column. */
export function toNumeric(units: bigint): string {
  const negative = units < 0n;
  const abs = negative ? -units : units;
  return `${negative ? '-' : ''}${abs / SCALE_FACTOR}.${(abs % SCALE_FACTOR).toString().padStart(LEDGER_SCALE, '0')}`;
}

/** A Postgres numeric (as the driver returns it: a string) → ledger units. Exact for scale ≤ 18. */
export function fromNumeric(value: string | number | null | undefined): bigint {
  if (value === null || value === undefined) return 0n;
  const text = String(value);
  const m = DECIMAL.exec(text);
  if (!m) throw new MoneyError(`database returned a non-decimal amount: ${text}`);
  const [, sign, whole, frac = ''] = m;
  if (frac.length > LEDGER_SCALE) throw new MoneyError(`amount ${text} exceeds the ledger scale`);
  const units = BigInt(whole!) * SCALE_FACTOR + BigInt(frac.padEnd(LEDGER_SCALE, '0'));
  return sign ? -units : units;
}

/** Division of non-negative bigints, rounded up. */
export function divCeil(numerator: bigint, denominator: bigint): bigint {
  if (denominator <= 0n || numerator < 0n) throw new MoneyError('divCeil needs a non-negative numerator and a positive divisor');
  return (numerator + denominator - 1n) / denominator;
}

const MS_PER_HOUR = 3_600_000n;

/**
 * Cost of holding compute for `elapsedMs` at `hourlyPrice` ledger units per hour, rounded up.
 * @example runtimeCost(60_000, parseAmount('0.02', 'USD')) === parseAmount('0.000333333333333334', 'ETH') // same scale
 */
export function runtimeCost(elapsedMs: number, hourlyPrice: bigint): bigint {
  if (!Number.isInteger(elapsedMs) || elapsedMs < 0) throw new MoneyError(`elapsed time must be a whole number of ms, got ${elapsedMs}`);
  return divCeil(BigInt(elapsedMs) * hourlyPrice, MS_PER_HOUR);
}

/** How many whole milliseconds of compute `budget` buys at `hourlyPrice` (rounded down: never past the budget). */
export function affordableMs(budget: bigint, hourlyPrice: bigint): number {
  if (hourlyPrice <= 0n) return Number.MAX_SAFE_INTEGER;
  const ms = (budget * MS_PER_HOUR) / hourlyPrice;
  return ms > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(ms);
}

export function minUnits(a: bigint, b: bigint): bigint {
  return a < b ? a : b;
}

/** How a division that does not come out even is rounded. */
export type Rounding = 'up' | 'down' | 'half-even';
export const ROUNDINGS: readonly Rounding[] = ['up', 'down', 'half-even'];

/**
 * numerator / denominator as a bigint, rounded as asked. `up` and `down` are toward +∞ and −∞;
 * `half-even` rounds to the nearest, ties to the even neighbour.
 * @example divRound(5n, 2n, 'half-even') === 2n && divRound(7n, 2n, 'half-even') === 4n
 */
export function divRound(numerator: bigint, denominator: bigint, mode: Rounding): bigint {
  if (denominator === 0n) throw new MoneyError('division by zero');
  if (denominator < 0n) return divRound(-numerator, -denominator, mode);
  let q = numerator / denominator; // truncates toward zero
  const r = numerator % denominator; // same sign as numerator
  if (r === 0n) return q;
  if (r < 0n) q -= 1n; // now q = floor
  const rem = r < 0n ? r + denominator : r; // 0 < rem < denominator
  switch (mode) {
    case 'down':
      return q;
    case 'up':
      return q + 1n;
    case 'half-even': {
      const twice = rem * 2n;
      if (twice < denominator) return q;
      if (twice > denominator) return q + 1n;
      return q % 2n === 0n ? q : q + 1n;
    }
  }
}

/** Ledger units in one minor unit of the currency (10^(18 - precision)). */
export function minorUnit(currency: CurrencyCode): bigint {
  return 10n ** BigInt(LEDGER_SCALE - CURRENCIES[currency].precision);
}

/** Rounds ledger units to a whole number of the currency's minor units. */
export function roundToMinor(units: bigint, currency: CurrencyCode, mode: Rounding): bigint {
  const step = minorUnit(currency);
  return divRound(units, step, mode) * step;
}

/** True when the amount is a whole number of the currency's minor units. */
export function isWholeMinor(units: bigint, currency: CurrencyCode): boolean {
  return units % minorUnit(currency) === 0n;
}

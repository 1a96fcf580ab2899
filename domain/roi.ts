/** Pure arithmetic of the ROI view (README "ROI and feedback"). */
import { divRound } from './money.js';

const LEDGER_UNIT = 10n ** 18n;

/** Pearson's r of paired samples, rounded to 4 decimals; null with fewer than `min` pairs or when either side has no variance. */
export function pearson(xs: readonly number[], ys: readonly number[], min = 3): number | null {
  const n = xs.length;
  if (n !== ys.length || n < min) return null;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    const dx = xs[i]! - mx;
    const dy = ys[i]! - my;
    sxy += dx * dy;
    sxx += dx * dx;
    syy += dy * dy;
  }
  if (sxx === 0 || syy === 0) return null;
  return round4(Math.max(-1, Math.min(1, sxy / Math.sqrt(sxx * syy))));
}

export const round4 = (x: number): number => Math.round(x * 10_000) / 10_000;

/** part / whole rounded to 4 decimals; null when whole is 0. */
export const shareOf = (part: number, whole: number): number | null => (whole === 0 ? null : round4(part / whole));

/** How many per one unit of currency, for `count` things bought with `spend` ledger units: a decimal string with 6 places, half-even; null without spend. */
export function perUnit(count: number, spend: bigint): string | null {
  if (spend <= 0n) return null;
  const millionths = divRound(BigInt(count) * LEDGER_UNIT * 1_000_000n, spend, 'half-even');
  return `${millionths / 1_000_000n}.${(millionths % 1_000_000n).toString().padStart(6, '0')}`;
}

/** Ledger units → a float of currency units (for statistics only, never for money). */
export const unitsToNumber = (units: bigint): number => Number(units) / 1e18;

/**
 * Choosing where a spot VM runs: the cheapest allowed (instance type, availability zone) whose
 * current spot price is at or under the maximum the profile allows. Pure: the caller fetches the
 * price history (EC2 DescribeSpotPriceHistory) and passes it in.
 *
 * Prices are compared exactly: decimal strings become bigint units of 10^-18 USD, never floats.
 */
import { LEDGER_SCALE } from './money.js';
import { PROFILES, type ProfileId } from './machines.js';

/** vCPUs and memory of the instance types a profile may use (from EC2 DescribeInstanceTypes). */
export const INSTANCE_TYPE_SIZES: Readonly<Record<string, { vcpus: number; memoryMiB: number }>> = {
  't2.small': { vcpus: 1, memoryMiB: 2048 },
  't3.small': { vcpus: 2, memoryMiB: 2048 },
  't3a.small': { vcpus: 2, memoryMiB: 2048 },
  't2.medium': { vcpus: 2, memoryMiB: 4096 },
  't3.medium': { vcpus: 2, memoryMiB: 4096 },
  't3a.medium': { vcpus: 2, memoryMiB: 4096 },
  't3.xlarge': { vcpus: 4, memoryMiB: 16384 },
  't3a.xlarge': { vcpus: 4, memoryMiB: 16384 },
  'm5.xlarge': { vcpus: 4, memoryMiB: 16384 },
};

/**
 * Instance types each profile may run on, in order of preference when prices tie. Every one has
 * at least the profile's vCPUs and memory (the lightweight profile is 1 vCPU / 2 GiB). A profile
 * not listed here may use every known type of at least its size and at most twice its memory.
 */
export const SPOT_INSTANCE_TYPES: Readonly<Partial<Record<ProfileId, readonly string[]>>> = {
  lightweight: ['t3a.small', 't3.small', 't2.small'],
  standard: ['t3a.medium', 't3.medium', 't2.medium'],
  large: ['t3a.xlarge', 't3.xlarge', 'm5.xlarge'],
};

export interface SpotPricePoint {
  instanceType: string;
  availabilityZone: string;
  /** Decimal USD per hour as EC2 reports it, e.g. "0.006500". */
  spotPrice: string;
  /** When this price took effect. */
  timestamp: Date;
}

export interface SpotChoice {
  instanceType: string;
  availabilityZone: string;
  /** The price the choice was made on, as EC2 reported it. */
  spotPrice: string;
  /** The same price in units of 10^-18 USD. */
  priceUnits: bigint;
}

export class NoSpotCapacityError extends Error {
  override name = 'NoSpotCapacityError';
}

const DECIMAL = /^(\d+)(?:\.(\d+))?$/;

/**
 * Parses a non-negative decimal price ("0.0065") into units of 10^-18.
 * @example priceUnits('0.02') === 20_000_000_000_000_000n
 */
export function priceUnits(text: string): bigint {
  const m = DECIMAL.exec(text.trim());
  if (!m) throw new RangeError(`"${text}" is not a decimal price`);
  const [, whole, frac = ''] = m;
  if (frac.length > LEDGER_SCALE) throw new RangeError(`"${text}" has more than ${LEDGER_SCALE} decimals`);
  return BigInt(whole!) * 10n ** BigInt(LEDGER_SCALE) + BigInt(frac.padEnd(LEDGER_SCALE, '0'));
}

/** The most recent price of each (instance type, zone): the history holds older ones too. */
export function latestSpotPrices(history: readonly SpotPricePoint[]): SpotPricePoint[] {
  const latest = new Map<string, SpotPricePoint>();
  for (const point of history) {
    const key = `${point.instanceType}\u0000${point.availabilityZone}`;
    const seen = latest.get(key);
    if (!seen || point.timestamp.getTime() > seen.timestamp.getTime()) latest.set(key, point);
  }
  return [...latest.values()];
}

/**
 * The cheapest (type, zone) among `allowedTypes` × `allowedZones` priced at or under `maxPrice`.
 * Ties go to the earlier type in `allowedTypes`, then to the zone that sorts first, so the same
 * history always gives the same answer. Throws NoSpotCapacityError, saying why, when none fits.
 *
 * @example chooseSpotPlacement({ history, allowedTypes: ['t3.small'], allowedZones: ['us-east-1a'], maxPrice: '0.02' })
 */
export function chooseSpotPlacement(input: {
  history: readonly SpotPricePoint[];
  allowedTypes: readonly string[];
  allowedZones: readonly string[];
  maxPrice: string;
}): SpotChoice {
  const max = priceUnits(input.maxPrice);
  const typeRank = new Map(input.allowedTypes.map((t, i) => [t, i]));
  const zones = new Set(input.allowedZones);
  const candidates = latestSpotPrices(input.history)
    .filter((p) => typeRank.has(p.instanceType) && zones.has(p.availabilityZone))
    .map((p) => ({ ...p, units: priceUnits(p.spotPrice) }));
  if (candidates.length === 0) {
    throw new NoSpotCapacityError(`no spot price for instance types [${input.allowedTypes.join(', ')}] in zones [${input.allowedZones.join(', ')}]`);
  }
  const affordable = candidates.filter((c) => c.units <= max);
  if (affordable.length === 0) {
    const cheapest = candidates.reduce((a, b) => (b.units < a.units ? b : a));
    throw new NoSpotCapacityError(
      `every allowed spot price is above the maximum ${input.maxPrice} USD/h ` +
        `(cheapest: ${cheapest.instanceType} in ${cheapest.availabilityZone} at ${cheapest.spotPrice})`,
    );
  }
  affordable.sort(
    (a, b) =>
      (a.units < b.units ? -1 : a.units > b.units ? 1 : 0) ||
      typeRank.get(a.instanceType)! - typeRank.get(b.instanceType)! ||
      (a.availabilityZone < b.availabilityZone ? -1 : a.availabilityZone > b.availabilityZone ? 1 : 0),
  );
  const best = affordable[0]!;
  return {
    instanceType: best.instanceType,
    availabilityZone: best.availabilityZone,
    spotPrice: best.spotPrice,
    priceUnits: best.units,
  };
}

/** The instance types a profile may use and the most it may cost per hour (its hourly price). */
export function spotPolicy(profile: string): { instanceTypes: readonly string[]; maxPrice: string } {
  if (!Object.hasOwn(PROFILES, profile)) throw new RangeError(`unknown compute profile "${profile}"`);
  const id = profile as ProfileId;
  const size: { cpus: number; memoryMiB: number } = PROFILES[id];
  const instanceTypes =
    SPOT_INSTANCE_TYPES[id] ??
    Object.entries(INSTANCE_TYPE_SIZES)
      .filter(([, t]) => t.vcpus >= size.cpus && t.memoryMiB >= size.memoryMiB && t.memoryMiB <= 2 * size.memoryMiB)
      .map(([name]) => name);
  return { instanceTypes, maxPrice: PROFILES[id].hourlyPrice };
}

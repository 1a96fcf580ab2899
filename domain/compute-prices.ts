/**
 * Compute prices: what an hour of a machine costs, by the provider it ran on, the provider's
 * region, its profile and its market (on-demand or spot). The defaults are config/compute-prices.json;
 * a deployment overrides them (config/index.ts). A machine whose price is in no list is refused,
 * never charged a guess. Pure: no I/O here.
 */
import { z } from 'zod';
import { fromNumeric } from './money.js';
import { PROFILES, type ProfileId } from './machines.js';

export const MARKETS = ['on-demand', 'spot'] as const;
export type Market = (typeof MARKETS)[number];

/** Where a machine's price came from. */
export const PRICE_SOURCES = ['default', 'price-list', 'instance-spot-price'] as const;
export type PriceSource = (typeof PRICE_SOURCES)[number];

/**
 * How a spot machine is charged: `instance` (the spot price its instance got, where the provider
 * reports one: aws-ec2) or `list` (the price list's spot entry).
 */
export type SpotCharging = 'instance' | 'list';

export interface ComputePriceEntry {
  /** A provider id, or `*` for any. */
  provider: string;
  /** A region (e.g. `us-east-1`), or `*` for any. */
  region: string;
  profile: ProfileId;
  market: Market;
  /** Decimal price per hour in the list's currency. */
  hourly: string;
}

export interface ComputePriceList {
  currency: 'USD';
  /** Each entry with where it came from: the repository's defaults or the deployment's override. */
  entries: (ComputePriceEntry & { origin: 'default' | 'override' })[];
}

/** The price a machine is charged at, with where it came from: kept on the machine and its cost event. */
export interface ComputePrice {
  provider: string;
  /** The provider's region; null for providers without one (local, container, kubernetes). */
  region: string | null;
  profile: string;
  market: Market;
  /** Decimal price per hour in `currency`: what the machine is charged. */
  hourly: string;
  /** Decimal price per hour its reservation holds (the worst case: a spot price may rise to it). */
  maxHourly: string;
  currency: 'USD';
  /** `default`: the repository's list; `price-list`: the deployment's; `instance-spot-price`: what the instance got. */
  source: PriceSource;
  /** The list entry used (`provider/region/profile/market`). */
  entry: string;
  /** With `instance-spot-price`: the list price it replaced. */
  listHourly?: string;
}

const decimal = z.string().regex(/^\d{1,12}(\.\d{1,18})?$/, 'must be a decimal price per hour, e.g. "0.05"');
const entrySchema = z.strictObject({
  provider: z.string().min(1),
  region: z.string().min(1),
  profile: z.enum(Object.keys(PROFILES) as [ProfileId, ...ProfileId[]], { error: `must be one of: ${Object.keys(PROFILES).join(', ')}` }),
  market: z.enum(MARKETS, { error: `must be one of: ${MARKETS.join(', ')}` }),
  hourly: decimal,
});
const listSchema = z.object({
  $comment: z.string().optional(),
  currency: z.literal('USD', { error: 'compute prices are in USD' }).default('USD'),
  entries: z.array(entrySchema),
});

export const entryKey = (e: Pick<ComputePriceEntry, 'provider' | 'region' | 'profile' | 'market'>) => `${e.provider}/${e.region}/${e.profile}/${e.market}`;

/** A price-list document (config/compute-prices.json's shape), or the problems with it. */
export function parsePriceList(doc: unknown, origin: 'default' | 'override'): { ok: true; list: ComputePriceList } | { ok: false; problems: string[] } {
  const r = listSchema.safeParse(doc);
  if (!r.success) return { ok: false, problems: r.error.issues.map((i) => `${i.path.join('.') || '(document)'}: ${i.message}`) };
  return { ok: true, list: { currency: 'USD', entries: r.data.entries.map((e) => ({ ...e, origin })) } };
}

/**
 * `provider/region/profile/market=price` pairs, comma-separated (AUTOVIBE_COMPUTE_PRICES), e.g.
 * `aws-ec2/us-east-1/large/spot=0.05,*\/*\/standard/on-demand=0.04`.
 */
export function parseInlinePrices(text: string): { ok: true; entries: ComputePriceEntry[] } | { ok: false; problems: string[] } {
  const entries: ComputePriceEntry[] = [];
  const problems: string[] = [];
  for (const part of text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const m = /^([^/=\s]+)\/([^/=\s]+)\/([^/=\s]+)\/([^/=\s]+)=(.+)$/.exec(part);
    if (!m) {
      problems.push(`"${part}": expected provider/region/profile/market=price (use * for any provider or region)`);
      continue;
    }
    const r = entrySchema.safeParse({ provider: m[1], region: m[2], profile: m[3], market: m[4], hourly: m[5] });
    if (r.success) entries.push(r.data);
    else problems.push(...r.error.issues.map((i) => `"${part}": ${i.path.join('.')} ${i.message}`));
  }
  return problems.length ? { ok: false, problems } : { ok: true, entries };
}

/** `base` with `over`'s entries on top (an entry with the same provider/region/profile/market replaces the base's). */
export function mergePrices(base: ComputePriceList, over: ComputePriceEntry[]): ComputePriceList {
  const byKey = new Map(base.entries.map((e) => [entryKey(e), e]));
  for (const e of over) byKey.set(entryKey(e), { ...e, origin: 'override' });
  return { currency: base.currency, entries: [...byKey.values()] };
}

export interface PriceQuery {
  provider: string;
  region: string | null;
  profile: string;
  spot: boolean;
}

/** The best entry of `market`: an exact provider before `*`, then an exact region before `*`. */
function bestEntry(list: ComputePriceList, q: PriceQuery, market: Market): ComputePriceList['entries'][number] | null {
  let best: ComputePriceList['entries'][number] | null = null;
  let bestScore = -1;
  for (const e of list.entries) {
    if (e.profile !== q.profile || e.market !== market) continue;
    if (e.provider !== '*' && e.provider !== q.provider) continue;
    if (e.region !== '*' && e.region !== q.region) continue;
    const score = (e.provider === q.provider ? 2 : 0) + (q.region !== null && e.region === q.region ? 1 : 0);
    if (score > bestScore) [best, bestScore] = [e, score];
  }
  return best;
}

/** A list price (a decimal of up to 18 places: cloud prices have more than a cent's) in exact ledger units. */
export const hourlyUnits = (hourly: string): bigint => fromNumeric(hourly);
const units = hourlyUnits;

/**
 * The machine's list price, or null when no entry covers it. A spot machine pays its spot entry
 * (the on-demand one when there is none). Its reservation holds `maxHourly`: the list price, or for
 * a spot machine whose instance reports the price it got, the highest of its spot entry, its
 * on-demand entry and the spot bid (a spot price may rise to any of them).
 */
export function lookupComputePrice(list: ComputePriceList, q: PriceQuery, opts: { instanceReportsSpotPrice?: boolean } = {}): ComputePrice | null {
  const onDemand = bestEntry(list, q, 'on-demand');
  const e = q.spot ? (bestEntry(list, q, 'spot') ?? onDemand) : onDemand;
  if (!e) return null;
  let maxHourly = e.hourly;
  if (q.spot && opts.instanceReportsSpotPrice) {
    // The instance may get any spot price up to its bid (domain/spot.ts: the profile's own price).
    const bid = Object.hasOwn(PROFILES, q.profile) ? PROFILES[q.profile as ProfileId].hourlyPrice : null;
    for (const h of [onDemand?.hourly, bid]) if (h !== undefined && h !== null && units(h) > units(maxHourly)) maxHourly = h;
  }
  return {
    provider: q.provider,
    region: q.region,
    profile: q.profile,
    market: q.spot ? 'spot' : 'on-demand',
    hourly: e.hourly,
    maxHourly,
    currency: 'USD',
    source: e.origin === 'default' ? 'default' : 'price-list',
    entry: entryKey(e),
  };
}

/** What a refused machine's requester reads: which price is missing and how to add it. */
export function missingPriceMessage(q: PriceQuery): string {
  const market = q.spot ? 'spot' : 'on-demand';
  const region = q.region ?? '*';
  return (
    `no compute price for provider ${q.provider}${q.region ? ` in region ${q.region}` : ''}, profile ${q.profile}, ${market}: ` +
    `the platform's operator adds one with AUTOVIBE_COMPUTE_PRICES=${q.provider}/${region}/${q.profile}/${market}=<USD per hour> ` +
    `or an entry in the AUTOVIBE_COMPUTE_PRICES_FILE list; or choose another profile or provider`
  );
}

/**
 * The price once the provider reported the spot price the instance got (a decimal USD/h). A
 * malformed report throws rather than being charged.
 */
export function withInstanceSpotPrice(price: ComputePrice, reported: string): ComputePrice {
  if (!decimal.safeParse(reported).success) throw new RangeError(`the provider reported a spot price that is not a decimal: "${reported}"`);
  units(reported);
  return { ...price, market: 'spot', hourly: reported, source: 'instance-spot-price', listHourly: price.listHourly ?? price.hourly };
}

/** The region a provider's prices are looked up in: AWS's configured region; none for the others. */
export function providerRegion(provider: string, env: Record<string, string | undefined>): string | null {
  return provider === 'aws-ec2' || provider === 'aws-ecs' ? (env.AWS_REGION ?? 'us-east-1') : null;
}

/** Providers that report the spot price an instance got (activities/compute/aws-ec2.ts `details.spotPrice`). */
export const REPORTS_SPOT_PRICE: ReadonlySet<string> = new Set(['aws-ec2']);

/**
 * The price a machine is charged at, from the deployment's list and spot charging, or the refusal
 * naming what to configure.
 */
export function machineComputePrice(
  cfg: { computePrices: ComputePriceList; spotCharging: SpotCharging; env: Record<string, string | undefined> },
  m: { provider: string; profile: string; spot: boolean },
): { ok: true; price: ComputePrice } | { ok: false; message: string } {
  const q: PriceQuery = { provider: m.provider, region: providerRegion(m.provider, cfg.env), profile: m.profile, spot: m.spot };
  const price = lookupComputePrice(cfg.computePrices, q, { instanceReportsSpotPrice: cfg.spotCharging === 'instance' && REPORTS_SPOT_PRICE.has(m.provider) });
  return price ? { ok: true, price } : { ok: false, message: missingPriceMessage(q) };
}

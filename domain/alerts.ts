/**
 * The alert engine's pure parts (README "Alerts"): the metrics a project's own alert rules may
 * watch, how a rule compares, when a time limit, a provider's rate limit or a sandbox's resources
 * count as a condition, and reading a provider's rate-limit headers.
 */

export const ALERT_METRICS = [
  'spend_today',
  'spend_period_percent',
  'machines_running',
  'machines_failed_last_hour',
  'reservations_open',
  'balance_remaining',
] as const;
export type AlertMetric = (typeof ALERT_METRICS)[number];

/** What each metric is and its unit (a money metric is in the project's currency). */
export const ALERT_METRIC_INFO: Record<AlertMetric, { unit: 'money' | 'percent' | 'count'; description: string }> = {
  spend_today: { unit: 'money', description: 'what the project spent today (UTC), in its currency' },
  spend_period_percent: { unit: 'percent', description: "spent and reserved in the project budget's current period, in percent of its limit" },
  machines_running: { unit: 'count', description: 'machines of the project running now' },
  machines_failed_last_hour: { unit: 'count', description: 'machines of the project that failed in the last hour' },
  reservations_open: { unit: 'count', description: 'budget reservations of the project still held (running work)' },
  balance_remaining: { unit: 'money', description: "the project's prepaid balance (top-ups credited less spend), in its currency" },
};

export const ALERT_COMPARATORS = ['>', '>=', '<', '<='] as const;
export type AlertComparator = (typeof ALERT_COMPARATORS)[number];

/** Whether `value` against `threshold` meets the rule (both scaled alike). */
export function compareMetric(value: bigint, comparator: AlertComparator, threshold: bigint): boolean {
  switch (comparator) {
    case '>':
      return value > threshold;
    case '>=':
      return value >= threshold;
    case '<':
      return value < threshold;
    case '<=':
      return value <= threshold;
  }
}

/** Most rules a project may have. */
export const MAX_ALERT_RULES = 50;

/** A running machine counts as over its time limit this long after the limit (its own stop takes a moment). */
export const TIME_LIMIT_GRACE_MS = 60_000;

/** When a machine that started at `startedAt` with `minutes` of time is over its limit, or null without one. */
export function timeLimitEnd(startedAt: Date | null, minutes: unknown): Date | null {
  if (!startedAt || typeof minutes !== 'number' || !Number.isFinite(minutes) || minutes <= 0) return null;
  return new Date(startedAt.getTime() + minutes * 60_000 + TIME_LIMIT_GRACE_MS);
}

/** A provider's rate limit is low under this share remaining (percent). */
export const RATE_LIMIT_LOW_PERCENT = 10;
/** A rate-limit sample older than this says nothing any more (the window it counted has passed). */
export const RATE_LIMIT_SAMPLE_TTL_MS = 15 * 60_000;

/** A sandbox's memory or disk is near its limit from this share on (percent). */
export const RESOURCE_NEAR_PERCENT = 90;
/** A resource sample older than this is not trusted (the watch stopped sampling). */
export const RESOURCE_SAMPLE_TTL_MS = 5 * 60_000;

/** Percent of `limit` that `remaining` is (rounded down), or null without both. */
export function remainingPercent(remaining: number | null, limit: number | null): number | null {
  if (remaining === null || limit === null || limit <= 0) return null;
  return Math.floor((Math.max(0, remaining) * 100) / limit);
}

/** Which provider a model API is, for its rate limits: the upstream's host (`api.anthropic.com`). */
export function rateLimitProvider(upstreamUrl: string): string {
  try {
    return new URL(upstreamUrl).host || upstreamUrl;
  } catch {
    return upstreamUrl;
  }
}

export interface RateLimitHeaders {
  requestsRemaining: number | null;
  requestsLimit: number | null;
  tokensRemaining: number | null;
  tokensLimit: number | null;
  resetAt: Date | null;
}

const intHeader = (h: Record<string, string>, ...names: string[]) => {
  for (const n of names) {
    const v = h[n];
    if (v !== undefined && /^\d+$/.test(v.trim())) return Number(v.trim());
  }
  return null;
};

/** `6m0s`, `1s`, `250ms` (OpenAI's reset durations) → milliseconds, or null. */
function durationMs(text: string): number | null {
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(ms|h|m|s)/g)];
  if (!parts.length || parts.map((p) => p[0]).join('') !== text.trim()) return null;
  return parts.reduce((ms, [, n, u]) => ms + Number(n) * (u === 'h' ? 3_600_000 : u === 'm' ? 60_000 : u === 's' ? 1000 : 1), 0);
}

/**
 * The rate-limit state in a model provider's response headers (lower-cased names), or null when
 * it sent none: Anthropic's `anthropic-ratelimit-{requests,tokens}-{remaining,limit,reset}` and
 * OpenAI's (and compatible servers') `x-ratelimit-{remaining,limit}-{requests,tokens}`, `x-ratelimit-reset-*`.
 */
export function parseRateLimitHeaders(h: Record<string, string>, now: Date): RateLimitHeaders | null {
  const out: RateLimitHeaders = {
    requestsRemaining: intHeader(h, 'anthropic-ratelimit-requests-remaining', 'x-ratelimit-remaining-requests'),
    requestsLimit: intHeader(h, 'anthropic-ratelimit-requests-limit', 'x-ratelimit-limit-requests'),
    tokensRemaining: intHeader(h, 'anthropic-ratelimit-tokens-remaining', 'anthropic-ratelimit-input-tokens-remaining', 'x-ratelimit-remaining-tokens'),
    tokensLimit: intHeader(h, 'anthropic-ratelimit-tokens-limit', 'anthropic-ratelimit-input-tokens-limit', 'x-ratelimit-limit-tokens'),
    resetAt: null,
  };
  if (out.requestsRemaining === null && out.tokensRemaining === null) return null;
  const anthropicReset = h['anthropic-ratelimit-requests-reset'] ?? h['anthropic-ratelimit-tokens-reset'];
  if (anthropicReset && !Number.isNaN(Date.parse(anthropicReset))) out.resetAt = new Date(Date.parse(anthropicReset));
  const openaiReset = h['x-ratelimit-reset-requests'] ?? h['x-ratelimit-reset-tokens'];
  const ms = openaiReset ? durationMs(openaiReset) : null;
  if (!out.resetAt && ms !== null) out.resetAt = new Date(now.getTime() + ms);
  return out;
}

export interface AlertEvaluationResult {
  /** Alerts raised by this run (conditions that had no open alert). */
  raised: number;
  /** Alerts resolved by this run (conditions that cleared). */
  resolved: number;
  /** Alerts open after it. */
  open: number;
}

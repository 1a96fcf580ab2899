/**
 * Spend forecasting: additive Holt-Winters (exponential smoothing with a weekly season, plain or
 * damped trend) and a seasonal-naive baseline, chosen per series by rolling-origin backtests,
 * with prediction intervals from the empirical quantiles of the backtests' h-step errors.
 *
 * Pure and deterministic (no clock, no randomness): the same series gives the same forecast.
 * Floats are used on the model side only; callers present the figures rounded to the currency's
 * minor unit and never feed them into the ledger.
 */

export const FORECAST_METHODS = ['seasonal-naive', 'holt-winters', 'holt-winters-damped'] as const;
export type ForecastMethod = (typeof FORECAST_METHODS)[number] | 'mean';

/** One forecast step: the point forecast and its 80 % and 95 % prediction intervals. */
export interface ForecastPoint {
  mean: number;
  lo80: number;
  hi80: number;
  lo95: number;
  hi95: number;
}

export interface HwParams {
  alpha: number;
  beta: number;
  gamma: number;
  phi: number;
}

interface HwState {
  level: number;
  trend: number;
  /** The last `period` seasonal terms, oldest first (index i belongs to step t − period + 1 + i). */
  season: number[];
  sse: number;
}

/** Runs the additive (damped) Holt-Winters recursions over `y`; returns the final state and the one-step squared errors. */
export function hwRun(y: readonly number[], period: number, p: HwParams): HwState {
  const m = period;
  const seasonal = m > 1 && y.length >= 2 * m;
  let level: number;
  let trend: number;
  let season: number[];
  let start: number;
  if (seasonal) {
    const mean1 = avg(y.slice(0, m));
    const mean2 = avg(y.slice(m, 2 * m));
    level = mean1;
    trend = (mean2 - mean1) / m;
    season = y.slice(0, m).map((v) => v - mean1);
    start = m;
  } else {
    level = y[0] ?? 0;
    trend = y.length > 1 ? y[1]! - y[0]! : 0;
    season = [0];
    start = 1;
  }
  const len = season.length;
  let sse = 0;
  for (let t = start; t < y.length; t++) {
    const s = season[(t - start) % len]!;
    const fitted = level + p.phi * trend + (seasonal ? s : 0);
    const e = y[t]! - fitted;
    sse += e * e;
    const prevLevel = level;
    const prevTrend = trend;
    level = p.alpha * (y[t]! - (seasonal ? s : 0)) + (1 - p.alpha) * (prevLevel + p.phi * prevTrend);
    trend = p.beta * (level - prevLevel) + (1 - p.beta) * p.phi * prevTrend;
    if (seasonal) season[(t - start) % len] = p.gamma * (y[t]! - prevLevel - p.phi * prevTrend) + (1 - p.gamma) * s;
  }
  // Rotate so index 0 is the season of the step after the last observation.
  const shift = seasonal ? (y.length - start) % len : 0;
  return { level, trend, season: seasonal ? [...season.slice(shift), ...season.slice(0, shift)] : [0], sse };
}

/** Point forecasts for steps 1..h after the state's last observation. */
export function hwForecast(state: HwState, p: HwParams, h: number): number[] {
  const out: number[] = [];
  let damp = 0;
  for (let k = 1; k <= h; k++) {
    damp += p.phi ** k;
    out.push(state.level + damp * state.trend + state.season[(k - 1) % state.season.length]!);
  }
  return out;
}

const ALPHAS = [0.05, 0.1, 0.2, 0.35, 0.5, 0.7];
const BETAS = [0.01, 0.05, 0.15];
const GAMMAS = [0.05, 0.15, 0.3];

/** The smoothing parameters with the least one-step squared error on `y` (a fixed grid: deterministic and cheap). */
export function fitHoltWinters(y: readonly number[], period: number, phi: number): HwParams {
  let best: HwParams = { alpha: 0.2, beta: 0.05, gamma: 0.15, phi };
  let bestSse = Infinity;
  for (const alpha of ALPHAS)
    for (const beta of BETAS)
      for (const gamma of GAMMAS) {
        const p = { alpha, beta, gamma, phi };
        const { sse } = hwRun(y, period, p);
        if (sse < bestSse - 1e-12) {
          bestSse = sse;
          best = p;
        }
      }
  return best;
}

/** Point forecasts of `method` for steps 1..h after the end of `y`. */
export function pointForecast(method: ForecastMethod, y: readonly number[], period: number, h: number): number[] {
  if (y.length === 0) return Array.from({ length: h }, () => 0);
  switch (method) {
    case 'mean': {
      const m = avg(y.slice(-period));
      return Array.from({ length: h }, () => m);
    }
    case 'seasonal-naive': {
      const m = Math.min(period, y.length);
      return Array.from({ length: h }, (_, k) => y[y.length - m + (k % m)]!);
    }
    case 'holt-winters':
    case 'holt-winters-damped': {
      const phi = method === 'holt-winters' ? 1 : 0.9;
      const p = fitHoltWinters(y, period, phi);
      return hwForecast(hwRun(y, period, p), p, h);
    }
  }
}

/** Empirical quantile (linear interpolation) of sorted values. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return 0;
  const pos = Math.min(Math.max(q, 0), 1) * (sorted.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

/**
 * Interval offsets from a sample of errors (actual − forecast) at one horizon, with the
 * split-conformal correction for a finite sample: the lower bound at rank ⌊(n+1)·a⌋ and the
 * upper at ⌈(n+1)·(1−a)⌉ (clamped to the sample), so small samples widen rather than under-cover.
 */
export function errorBands(errors: readonly number[]): { lo80: number; hi80: number; lo95: number; hi95: number } {
  const s = [...errors].sort((a, b) => a - b);
  const n = s.length;
  const rank = (r: number) => s[Math.min(Math.max(r, 1), n) - 1] ?? 0;
  const lower = (a: number) => rank(Math.floor((n + 1) * a));
  const upper = (a: number) => rank(Math.ceil((n + 1) * (1 - a)));
  return { lo80: lower(0.1), hi80: upper(0.1), lo95: lower(0.025), hi95: upper(0.025) };
}

export interface BacktestOptions {
  period: number;
  horizon: number;
  /** The first origin: at least this many observations before a backtest forecast. */
  minTrain: number;
  /** At most this many origins, the latest ones. */
  maxOrigins?: number;
  /** Errors needed at a horizon before an interval is scored (coverage) at it. */
  minErrors?: number;
}

export interface BacktestResult {
  method: ForecastMethod;
  /** Errors (actual − forecast) relative to the level at their origin (levelScale), per horizon 1..H (index h−1). */
  errors: number[][];
  /** Errors of the cumulative sums over steps 1..h, per h. */
  cumErrors: number[][];
  /** Mean absolute percentage error over (origin, h) with a non-zero actual; null when every actual is zero. */
  mape: number | null;
  /** Symmetric MAPE (0..2 scale as a fraction: |a−f| / ((|a|+|f|)/2)), both zero counting as 0. */
  smape: number;
  /** Share of held-out points inside the 80 % / 95 % intervals built from earlier origins' errors only. */
  coverage80: number | null;
  coverage95: number | null;
  /** Scored (origin, h) pairs for coverage. */
  scored: number;
  origins: number;
}

/**
 * Rolling-origin evaluation: for each origin o (minTrain ≤ o < n), fit on y[0..o) and forecast
 * steps 1..H; errors are kept per horizon. Coverage is scored honestly: the interval of origin o
 * at horizon h uses only errors whose actuals were known at o (earlier origins o′ with o′ + h ≤ o).
 */
export function backtest(y: readonly number[], method: ForecastMethod, opts: BacktestOptions): BacktestResult {
  const H = opts.horizon;
  const minErrors = opts.minErrors ?? 10;
  const n = y.length;
  let first = Math.max(opts.minTrain, 1);
  if (opts.maxOrigins !== undefined) first = Math.max(first, n - opts.maxOrigins);
  const errors: number[][] = Array.from({ length: H }, () => []);
  const cumErrors: number[][] = Array.from({ length: H }, () => []);
  // Errors with the origin they came from, for honest coverage.
  const dated: Array<Array<{ origin: number; e: number }>> = Array.from({ length: H }, () => []);
  let apeSum = 0;
  let apeN = 0;
  let sapeSum = 0;
  let sapeN = 0;
  let in80 = 0;
  let in95 = 0;
  let scored = 0;
  let origins = 0;
  for (let o = first; o < n; o++) {
    const train = y.slice(0, o);
    const f = pointForecast(method, train, opts.period, H);
    const scales = errorScales(train, opts.period, H);
    origins++;
    let cumA = 0;
    let cumF = 0;
    for (let h = 1; h <= H && o + h - 1 < n; h++) {
      const a = y[o + h - 1]!;
      const fc = f[h - 1]!;
      const scale = scales[h - 1]!;
      cumA += a;
      cumF += fc;
      const known = dated[h - 1]!.filter((d) => d.origin + h <= o).map((d) => d.e);
      if (known.length >= minErrors) {
        const b = errorBands(known);
        const lo80 = Math.max(0, fc + scale * b.lo80);
        const lo95 = Math.max(0, fc + scale * b.lo95);
        if (a >= lo80 && a <= fc + scale * b.hi80) in80++;
        if (a >= lo95 && a <= fc + scale * b.hi95) in95++;
        scored++;
      }
      const e = a - fc;
      errors[h - 1]!.push(e / scale);
      cumErrors[h - 1]!.push((cumA - cumF) / scales[0]!);
      dated[h - 1]!.push({ origin: o, e: e / scale });
      if (a !== 0) {
        apeSum += Math.abs(e) / Math.abs(a);
        apeN++;
      }
      const denom = (Math.abs(a) + Math.abs(fc)) / 2;
      sapeSum += denom === 0 ? 0 : Math.abs(e) / denom;
      sapeN++;
    }
  }
  return {
    method,
    errors,
    cumErrors,
    mape: apeN ? apeSum / apeN : null,
    smape: sapeN ? sapeSum / sapeN : 0,
    coverage80: scored ? in80 / scored : null,
    coverage95: scored ? in95 / scored : null,
    scored,
    origins,
  };
}

/**
 * The series' recent level (mean of the last `period` values, floored at a small share of the
 * history's mean): errors are kept relative to it, so intervals follow a series that grows or shrinks.
 */
export function levelScale(y: readonly number[], period: number): number {
  const floor = Math.max(avg(y) * 0.1, 1e-9);
  return Math.max(avg(y.slice(-period)), floor);
}

/**
 * What each step's error is measured against: the same day of the last season (a weekend's errors
 * are small when its spend is), floored at a quarter of the recent level so empty days do not blow
 * relative errors up. Cumulative errors use the level (index 0 of the caller's `levelScale`).
 */
export function errorScales(y: readonly number[], period: number, h: number): number[] {
  const level = levelScale(y, period);
  const naive = pointForecast('seasonal-naive', y, period, h);
  return naive.map((v) => Math.max(v, 0.25 * level));
}

/** 80 % intervals whose backtest coverage falls in this range are acceptable; among them the lowest sMAPE wins. */
export const ACCEPTABLE_COVERAGE80: readonly [number, number] = [0.7, 0.9];

/** The method to use: the lowest sMAPE among acceptable coverage; else the coverage nearest 80 %. */
export function chooseMethod(results: readonly BacktestResult[]): BacktestResult {
  const [lo, hi] = ACCEPTABLE_COVERAGE80;
  const ok = results.filter((r) => r.coverage80 !== null && r.coverage80 >= lo && r.coverage80 <= hi);
  const bySmape = (a: BacktestResult, b: BacktestResult) => a.smape - b.smape;
  if (ok.length) return [...ok].sort(bySmape)[0]!;
  const scoredOnes = results.filter((r) => r.coverage80 !== null);
  if (scoredOnes.length) return [...scoredOnes].sort((a, b) => Math.abs(a.coverage80! - 0.8) - Math.abs(b.coverage80! - 0.8) || bySmape(a, b))[0]!;
  return [...results].sort(bySmape)[0]!;
}

export interface SeriesForecast {
  method: ForecastMethod;
  /** Steps 1..horizon after the last observation. */
  points: ForecastPoint[];
  /** Cumulative spend over steps 1..h, per h, with its intervals. */
  cumulative: ForecastPoint[];
  /** The backtest of every candidate (the chosen one included), for reporting. */
  candidates: Array<Pick<BacktestResult, 'method' | 'mape' | 'smape' | 'coverage80' | 'coverage95' | 'scored' | 'origins'>>;
  /** False when the history is too short for a backtest (intervals are then a rough spread of the history). */
  backtested: boolean;
}

export interface ForecastOptions {
  period?: number;
  horizon?: number;
  maxOrigins?: number;
}

/**
 * Forecasts a non-negative series (daily spend) `horizon` steps ahead with the method the
 * rolling-origin backtest prefers; intervals are the model's forecast plus the empirical quantiles
 * of that method's h-step backtest errors (relative to the level), clamped at zero (spend is never
 * negative); the point is the model's forecast plus the median error.
 */
export function forecastSeries(y: readonly number[], opts: ForecastOptions = {}): SeriesForecast {
  const period = opts.period ?? 7;
  const H = opts.horizon ?? 28;
  const minTrain = Math.max(period, Math.min(4 * period, Math.floor(y.length / 2)));
  // Enough origins for ten errors at horizon 1 plus the scored ones.
  if (y.length < minTrain + 12) return roughForecast(y, period, H);
  const candidates = FORECAST_METHODS.filter((m) => m === 'seasonal-naive' || y.length >= 2 * period + 2).map((m) =>
    backtest(y, m, { period, horizon: H, minTrain, maxOrigins: opts.maxOrigins ?? 90 }),
  );
  const chosen = chooseMethod(candidates);
  const f = pointForecast(chosen.method, y, period, H);
  const scales = errorScales(y, period, H);
  const level = scales[0]!;
  const points: ForecastPoint[] = [];
  const cumulative: ForecastPoint[] = [];
  let cum = 0;
  for (let h = 1; h <= H; h++) {
    const mean = Math.max(0, f[h - 1]!);
    cum += mean;
    points.push(band(mean, errorsAt(chosen.errors, h), scales[h - 1]!));
    cumulative.push(band(cum, errorsAt(chosen.cumErrors, h), level));
  }
  return {
    method: chosen.method,
    points,
    cumulative,
    candidates: candidates.map(({ method, mape, smape, coverage80, coverage95, scored, origins }) => ({
      method,
      mape,
      smape,
      coverage80,
      coverage95,
      scored,
      origins,
    })),
    backtested: true,
  };
}

/** The errors at horizon h, or at the nearest shorter horizon with enough of them. */
function errorsAt(byH: readonly number[][], h: number): number[] {
  for (let k = h; k >= 1; k--) if (byH[k - 1]!.length >= 10) return byH[k - 1]!;
  return byH[0] ?? [];
}

/**
 * The point forecast and its intervals at one horizon. The point is corrected by the median
 * backtest error there (a method that lags a trend is biased; the interval already says by how
 * much), so it always lies inside its intervals.
 */
function band(model: number, errors: readonly number[], scale: number): ForecastPoint {
  const b = errorBands(errors);
  const at = (q: number) => Math.max(0, model + scale * q);
  const median = quantile(
    [...errors].sort((x, y) => x - y),
    0.5,
  );
  const mean = Math.min(Math.max(at(median), at(b.lo80)), at(b.hi80));
  return { mean, lo80: at(b.lo80), hi80: at(b.hi80), lo95: at(b.lo95), hi95: at(b.hi95) };
}

/** Too little history to backtest: the recent mean, with the history's spread (±1.28σ / ±1.96σ per step, √h cumulated). */
function roughForecast(y: readonly number[], period: number, H: number): SeriesForecast {
  const recent = y.slice(-period);
  const mean = avg(recent);
  const sd = y.length > 1 ? Math.sqrt(y.reduce((s, v) => s + (v - avg(y)) ** 2, 0) / (y.length - 1)) : mean;
  const pt = (m: number, s: number): ForecastPoint => ({
    mean: m,
    lo80: Math.max(0, m - 1.2816 * s),
    hi80: m + 1.2816 * s,
    lo95: Math.max(0, m - 1.96 * s),
    hi95: m + 1.96 * s,
  });
  return {
    method: 'mean',
    points: Array.from({ length: H }, () => pt(mean, sd)),
    cumulative: Array.from({ length: H }, (_, i) => pt(mean * (i + 1), sd * Math.sqrt(i + 1))),
    candidates: [],
    backtested: false,
  };
}

function avg(xs: readonly number[]): number {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0;
}

/** The first step h (1-based) whose cumulative value reaches `threshold`, or null within the horizon. */
export function firstReaching(cumulative: readonly number[], threshold: number, limitSteps = cumulative.length): number | null {
  for (let h = 1; h <= Math.min(limitSteps, cumulative.length); h++) if (cumulative[h - 1]! >= threshold) return h;
  return null;
}

/** A float rounded to `decimals` places as a decimal string (at most 9 places computed, the rest zeros); `up` rounds towards +∞. */
export function floatToDecimal(x: number, decimals: number, mode: 'nearest' | 'up' = 'nearest'): string {
  const d = Math.min(decimals, 9);
  const f = 10 ** d;
  const scaled = mode === 'up' ? Math.ceil(x * f - 1e-6) : Math.round(x * f);
  const v = Math.max(0, scaled);
  const whole = Math.floor(v / f);
  const frac = String(v - whole * f).padStart(d, '0');
  const digits = d ? `${frac}${'0'.repeat(decimals - d)}` : '0'.repeat(decimals);
  return decimals ? `${whole}.${digits}` : String(whole);
}

const DAY_MS = 86_400_000;
const WEEKDAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
/** `Friday 2026-12-11` */
export const dayLabel = (d: Date) => `${WEEKDAYS[d.getUTCDay()]} ${d.toISOString().slice(0, 10)}`;
const isoDay = (d: Date) => d.toISOString().slice(0, 10);

/** A budget's current window, in floats of its currency's main unit. */
export interface OutlookBudget {
  period: 'daily' | 'weekly' | 'monthly' | 'total';
  limit: number;
  /** Spent plus reserved in the current window. */
  used: number;
  windowStart: Date;
  /** null for `total`. */
  windowEnd: Date | null;
}

export interface DateInterval {
  /** The expected day (ISO date), or null when not within the window (or horizon). */
  expected: string | null;
  /** The 80 % and 95 % interval's first and last day; a null end means "not before the window (or horizon) ends". */
  earliest80: string | null;
  latest80: string | null;
  earliest95: string | null;
  latest95: string | null;
}

export interface Recommendation {
  kind: 'runs_out' | 'raise_limit' | 'reduce_spend' | 'on_track';
  message: string;
  /** The figure the message names (a limit, a daily spend, what is left), rounded to the currency's minor unit. */
  amount: string | null;
  /** The day the figure lasts until (ISO date), when it names one. */
  until: string | null;
}

export interface BudgetOutlook {
  exhaustion: DateInterval;
  /** Expected to run out before the window ends (for `total`: within the horizon). */
  exhaustedBeforePeriodEnd: boolean;
  /** Spend in the whole window as forecast (used + the rest of the window), null for `total`. */
  projectedPeriodSpend: { mean: number; lo80: number; hi80: number; lo95: number; hi95: number } | null;
  recommendations: Recommendation[];
}

/**
 * When a budget's current window runs out at the forecast rate, with intervals, and what to do
 * about it. Step 1 of the forecast is the UTC day `today` (of which `todaySoFar` is already spent
 * and inside `used`). `fmt` rounds a figure to the currency's minor unit (`up` for limits to raise to).
 */
export function budgetOutlook(
  f: Pick<SeriesForecast, 'points' | 'cumulative'>,
  today: Date,
  todaySoFar: number,
  b: OutlookBudget,
  fmt: (x: number, mode?: 'nearest' | 'up') => string,
  currency: string,
): BudgetOutlook {
  const H = f.cumulative.length;
  const dayOf = (h: number) => new Date(today.getTime() + (h - 1) * DAY_MS);
  const steps = b.windowEnd ? Math.min(H, Math.max(1, Math.round((b.windowEnd.getTime() - today.getTime()) / DAY_MS))) : H;
  const remaining = Math.max(0, b.limit - b.used);
  // Spend still to come from now: the cumulative forecast less what today already spent.
  const ahead = (pick: keyof ForecastPoint) => f.cumulative.map((c) => Math.max(0, c[pick] - todaySoFar));
  const dayWhen = (pick: keyof ForecastPoint) => {
    const h = firstReaching(ahead(pick), remaining <= 0 ? 0 : remaining, steps);
    return h === null ? null : isoDay(dayOf(h));
  };
  const exhaustion: DateInterval = {
    expected: remaining <= 0 ? isoDay(today) : dayWhen('mean'),
    earliest80: remaining <= 0 ? isoDay(today) : dayWhen('hi80'),
    latest80: remaining <= 0 ? isoDay(today) : dayWhen('lo80'),
    earliest95: remaining <= 0 ? isoDay(today) : dayWhen('hi95'),
    latest95: remaining <= 0 ? isoDay(today) : dayWhen('lo95'),
  };
  const last = f.cumulative[steps - 1]!;
  const rest = (x: number) => Math.max(0, x - todaySoFar);
  const projectedPeriodSpend = b.windowEnd
    ? {
        mean: b.used + rest(last.mean),
        lo80: b.used + rest(last.lo80),
        hi80: b.used + rest(last.hi80),
        lo95: b.used + rest(last.lo95),
        hi95: b.used + rest(last.hi95),
      }
    : null;
  const exhaustedBeforePeriodEnd = exhaustion.expected !== null;
  const name = b.period === 'total' ? 'budget' : `${b.period} budget`;
  const lastDay = dayOf(steps);
  const recommendations: Recommendation[] = [];
  const range = (a: string | null, z: string | null) => `${a ?? 'later'} – ${z ?? (b.windowEnd ? 'not before the period ends' : 'beyond the forecast')}`;
  if (exhaustedBeforePeriodEnd) {
    const ends = b.windowEnd ? `, before the period ends on ${dayLabel(new Date(b.windowEnd.getTime() - DAY_MS))}` : '';
    recommendations.push({
      kind: 'runs_out',
      message: `At the current rate the ${name} runs out on ${dayLabel(new Date(exhaustion.expected!))} (80 %: ${range(exhaustion.earliest80, exhaustion.latest80)})${ends}.`,
      amount: null,
      until: exhaustion.expected,
    });
    const needed = b.used + rest(last.hi80);
    recommendations.push({
      kind: 'raise_limit',
      message: `Raise the ${name} to ${fmt(needed, 'up')} ${currency} to last until ${dayLabel(lastDay)} (covers the 80 % forecast's upper bound).`,
      amount: fmt(needed, 'up'),
      until: isoDay(lastDay),
    });
    const daysLeft = steps - 1 + (todaySoFar > 0 || remaining > 0 ? 1 : 0);
    const perDay = daysLeft > 0 ? remaining / daysLeft : 0;
    recommendations.push({
      kind: 'reduce_spend',
      message: `Or keep spend under ${fmt(perDay)} ${currency} a day (the ${fmt(remaining)} ${currency} left over ${daysLeft} day(s)) to last until ${dayLabel(lastDay)}.`,
      amount: fmt(perDay),
      until: isoDay(lastDay),
    });
  } else if (projectedPeriodSpend) {
    const left = (x: number) => Math.max(0, b.limit - x);
    recommendations.push({
      kind: 'on_track',
      message: `At the current rate the ${name} lasts the period with about ${fmt(left(projectedPeriodSpend.mean))} ${currency} left (80 %: ${fmt(left(projectedPeriodSpend.hi80))} – ${fmt(left(projectedPeriodSpend.lo80))}).`,
      amount: fmt(left(projectedPeriodSpend.mean)),
      until: isoDay(lastDay),
    });
  } else {
    recommendations.push({
      kind: 'on_track',
      message: `At the current rate the ${name} lasts beyond ${dayLabel(dayOf(H))} (the end of the forecast).`,
      amount: null,
      until: isoDay(dayOf(H)),
    });
  }
  // A daily budget renews every day: the limit that covers each of the coming week's days.
  if (b.period === 'daily') {
    const week = f.points.slice(0, Math.min(7, f.points.length));
    const need = Math.max(...week.map((p) => p.hi80));
    const until = dayOf(week.length);
    if (need > b.limit) {
      recommendations.push({
        kind: 'raise_limit',
        message: `Raise the daily budget to ${fmt(need, 'up')} ${currency} to last each day until ${dayLabel(until)} (the 80 % forecast's highest day; now ${fmt(b.limit)}).`,
        amount: fmt(need, 'up'),
        until: isoDay(until),
      });
    }
  }
  return { exhaustion, exhaustedBeforePeriodEnd, projectedPeriodSpend, recommendations };
}

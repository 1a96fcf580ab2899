/**
 * Forecast backtest: rolling-origin evaluation of the spend forecasting methods (domain/forecast.ts)
 * on seeded daily spend histories — weekday/weekend seasonality, trend, noise, a step change,
 * sparse and bursty spend. Prints per series and method the MAPE, sMAPE and the share of held-out
 * days inside the 80 % and 95 % intervals (each interval built only from errors known at its
 * origin). The goal: 80 % intervals cover 75–85 %. No services.
 */
import { backtest, chooseMethod, FORECAST_METHODS, type BacktestResult } from '../../domain/forecast.js';
import type { BenchOptions, BenchOutput, Row } from './common.js';
import { prng as rng } from '../../test/support/prng.js';

function normal(r: () => number): number {
  const u = Math.max(r(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * r());
}

/** Daily spend (USD) of `days` days, day 0 a Monday. */
export interface SeededSeries {
  name: string;
  what: string;
  values: number[];
}

export function seededSpendHistories(days = 182): SeededSeries[] {
  const weekday = (d: number) => d % 7 < 5;
  const series: SeededSeries[] = [];
  {
    const r = rng(1);
    series.push({
      name: 'weekly',
      what: 'weekdays ~40, weekends ~8, normal noise sd 4',
      values: Array.from({ length: days }, (_, d) => Math.max(0, (weekday(d) ? 40 : 8) + 4 * normal(r))),
    });
  }
  {
    const r = rng(2);
    series.push({
      name: 'trend',
      what: 'weekly shape growing 1 %/day of its start (10 → ~28 on weekdays), noise sd 10 % of the level',
      values: Array.from({ length: days }, (_, d) => {
        const level = 10 * (1 + 0.01 * d) * (weekday(d) ? 1 : 0.3);
        return Math.max(0, level * (1 + 0.1 * normal(r)));
      }),
    });
  }
  {
    const r = rng(3);
    series.push({
      name: 'step',
      what: 'weekly shape, level doubles on day 120 (a new team), noise sd 3',
      values: Array.from({ length: days }, (_, d) => Math.max(0, (d >= 120 ? 2 : 1) * (weekday(d) ? 20 : 5) + 3 * normal(r))),
    });
  }
  {
    const r = rng(4);
    series.push({
      name: 'sparse',
      what: 'small project: most weekdays 1–5, one weekday in four and most weekends nothing',
      values: Array.from({ length: days }, (_, d) => (weekday(d) ? (r() < 0.75 ? 1 + 4 * r() : 0) : r() < 0.2 ? 1 + r() : 0)),
    });
  }
  {
    const r = rng(5);
    series.push({
      name: 'bursty',
      what: 'weekday base 15 with lognormal noise (σ 0.35) and a 3–6× burst one day in twelve',
      values: Array.from({ length: days }, (_, d) => {
        const base = (weekday(d) ? 15 : 4) * Math.exp(0.35 * normal(r) - 0.06);
        return r() < 1 / 12 ? base * (3 + 3 * r()) : base;
      }),
    });
  }
  return series;
}

const pct = (x: number | null) => (x === null ? Number.NaN : 100 * x);

export async function forecastBacktest(opts: BenchOptions): Promise<BenchOutput> {
  const horizon = 14;
  const histories = seededSpendHistories(opts.quick ? 100 : 182);
  const rows: Row[] = [];
  const table: Array<Record<string, unknown>> = [];
  let chosenIn80 = 0;
  let chosenScored = 0;
  for (const s of histories) {
    const results: BacktestResult[] = FORECAST_METHODS.map((m) => backtest(s.values, m, { period: 7, horizon, minTrain: 28 }));
    const chosen = chooseMethod(results);
    for (const r of results) {
      const mark = r === chosen ? ' (chosen)' : '';
      rows.push({ label: `${s.name} ${r.method}${mark}: MAPE`, unit: '%', value: pct(r.mape), decimals: 1 });
      rows.push({ label: `${s.name} ${r.method}${mark}: sMAPE`, unit: '%', value: pct(r.smape), decimals: 1 });
      rows.push({ label: `${s.name} ${r.method}${mark}: 80 % interval coverage`, unit: '%', value: pct(r.coverage80), decimals: 1 });
      rows.push({ label: `${s.name} ${r.method}${mark}: 95 % interval coverage`, unit: '%', value: pct(r.coverage95), decimals: 1 });
      table.push({
        series: s.name,
        method: r.method,
        chosen: r === chosen,
        mape: r.mape,
        smape: r.smape,
        coverage80: r.coverage80,
        coverage95: r.coverage95,
        scored: r.scored,
      });
    }
    chosenIn80 += (chosen.coverage80 ?? 0) * chosen.scored;
    chosenScored += chosen.scored;
    opts.log(`${s.name}: chosen ${chosen.method}`);
  }
  rows.push({ label: 'chosen methods, all series: 80 % interval coverage', unit: '%', value: (100 * chosenIn80) / chosenScored, decimals: 1 });
  return {
    rows,
    notes: [
      `Rolling origin: every day from day 28 is an origin; forecasts 1..${horizon} days ahead; an interval is scored only once ≥10 errors at its horizon were known at its origin (${histories[0]!.values.length} days per series).`,
      'Series are seeded synthetic daily spend (scripts/bench/forecast-backtest.ts says what each is); MAPE leaves out days with zero spend.',
    ],
    details: { table, series: histories.map((s) => ({ name: s.name, what: s.what })) },
  };
}

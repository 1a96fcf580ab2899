import assert from 'node:assert/strict';
import {
  backtest,
  budgetOutlook,
  chooseMethod,
  errorBands,
  firstReaching,
  fitHoltWinters,
  floatToDecimal,
  forecastSeries,
  hwForecast,
  hwRun,
  pointForecast,
  type BacktestResult,
} from '../../domain/forecast.js';

const week = [10, 10, 10, 10, 10, 2, 2];
const repeat = <T>(n: number, f: (i: number) => T): T[] => Array.from({ length: n }, (_, i) => f(i));

describe('domain/forecast: methods on hand-checkable series', () => {
  it('seasonal naive repeats the last week', () => {
    const y = repeat(21, (i) => week[i % 7]! + i);
    assert.deepEqual(pointForecast('seasonal-naive', y, 7, 9), [24, 25, 26, 27, 28, 21, 22, 24, 25]);
  });

  it('Holt-Winters reproduces a pure weekly pattern and a straight line exactly', () => {
    const seasonal = repeat(42, (i) => week[i % 7]!);
    const p = fitHoltWinters(seasonal, 7, 1);
    const f = hwForecast(hwRun(seasonal, 7, p), p, 7);
    f.forEach((v, k) => assert.ok(Math.abs(v - week[(42 + k) % 7]!) < 1e-9, `step ${k + 1}: ${v}`));
    // A line 3 + 2t with no season: level and trend are exact after the first two points.
    const line = repeat(30, (i) => 3 + 2 * i);
    const q = { alpha: 0.5, beta: 0.1, gamma: 0, phi: 1 };
    assert.deepEqual(
      hwForecast(hwRun(line, 1, q), q, 3).map((v) => Math.round(v * 1e9) / 1e9),
      [63, 65, 67],
    );
  });

  it('a damped trend adds φ + φ² + … of the trend', () => {
    const state = { level: 100, trend: 10, season: [0], sse: 0 };
    const f = hwForecast(state, { alpha: 0, beta: 0, gamma: 0, phi: 0.5 }, 3);
    assert.deepEqual(f, [105, 107.5, 108.75]);
  });

  it('interval offsets follow the split-conformal ranks of the sorted errors', () => {
    const errs = repeat(19, (i) => i - 9); // -9..9
    // n = 19: lower 80 % at rank ⌊20·0.1⌋ = 2 → -8; upper at ⌈20·0.9⌉ = 18 → 8; 95 %: ranks 0→1 (clamped) and 20→19.
    assert.deepEqual(errorBands(errs), { lo80: -8, hi80: 8, lo95: -9, hi95: 9 });
  });

  it('backtests without looking ahead: a series that changes after the origin is not known before it', () => {
    const y = repeat(60, (i) => (i < 50 ? 5 : 50));
    const r = backtest(y, 'seasonal-naive', { period: 7, horizon: 3, minTrain: 14 });
    assert.equal(r.origins, 46);
    // Errors at h=1 are zero until the jump, then 45 for the first week after it.
    assert.deepEqual(
      r.errors[0]!.slice(0, 36),
      repeat(36, () => 0),
    );
    assert.ok(r.errors[0]![36]! > 0);
    assert.ok(r.coverage80 !== null && r.coverage80 < 1, 'the jump falls outside intervals learned before it');
  });

  it('chooses the lowest sMAPE among acceptable coverage, else the coverage nearest 80 %', () => {
    const r = (method: BacktestResult['method'], smape: number, coverage80: number) => ({ method, smape, coverage80 }) as BacktestResult;
    assert.equal(
      chooseMethod([r('seasonal-naive', 0.2, 0.8), r('holt-winters', 0.1, 0.5), r('holt-winters-damped', 0.15, 0.75)]).method,
      'holt-winters-damped',
    );
    assert.equal(chooseMethod([r('seasonal-naive', 0.2, 0.6), r('holt-winters', 0.1, 0.95)]).method, 'holt-winters');
  });

  it('forecasts a trending weekly series inside its intervals and is deterministic', () => {
    const y = repeat(84, (i) => (i % 7 < 5 ? 20 + 0.2 * i : 4) + ((i * 37) % 11) / 10 - 0.5);
    const f = forecastSeries(y, { horizon: 14 });
    assert.deepEqual(forecastSeries(y, { horizon: 14 }), f);
    assert.equal(f.backtested, true);
    for (let h = 0; h < 14; h++) {
      const truth = (84 + h) % 7 < 5 ? 20 + 0.2 * (84 + h) : 4;
      const p = f.points[h]!;
      assert.ok(p.lo95 <= p.lo80 && p.lo80 <= p.mean && p.mean <= p.hi80 && p.hi80 <= p.hi95);
      assert.ok(truth >= p.lo95 - 1 && truth <= p.hi95 + 1, `h=${h + 1}: ${truth} vs [${p.lo95}, ${p.hi95}] (${f.method})`);
    }
    assert.ok(f.cumulative[13]!.mean > f.cumulative[6]!.mean);
  });

  it('falls back to the recent mean when the history is too short to backtest', () => {
    const f = forecastSeries([1, 2, 3], { horizon: 7 });
    assert.equal(f.method, 'mean');
    assert.equal(f.backtested, false);
    assert.equal(f.points[0]!.mean, 2);
    assert.equal(f.cumulative[6]!.mean, 14);
  });
});

describe('domain/forecast: money presentation, exhaustion and recommendations', () => {
  it('rounds floats to the minor unit, up for limits', () => {
    assert.equal(floatToDecimal(12.345, 2), '12.35');
    assert.equal(floatToDecimal(12.341, 2, 'up'), '12.35');
    assert.equal(floatToDecimal(12.34, 2, 'up'), '12.34');
    assert.equal(floatToDecimal(-0.001, 2), '0.00');
    assert.equal(floatToDecimal(0.5, 18), '0.500000000000000000');
  });

  it('finds the first day a cumulative spend reaches a threshold', () => {
    assert.equal(firstReaching([1, 3, 6, 10], 6), 3);
    assert.equal(firstReaching([1, 3, 6, 10], 11), null);
    assert.equal(firstReaching([1, 3, 6, 10], 10, 3), null);
  });

  it('a weekly budget that runs out mid-week: the day, its interval, and the limit to raise to', () => {
    // 10 a day (80 %: 8..12, 95 %: 6..14), from Wednesday; 25 of a 50 weekly budget used, nothing today yet.
    const today = new Date('2026-12-09T00:00:00Z'); // a Wednesday
    const points = repeat(28, () => ({ mean: 10, lo80: 8, hi80: 12, lo95: 6, hi95: 14 }));
    const cumulative = repeat(28, (i) => ({ mean: 10 * (i + 1), lo80: 8 * (i + 1), hi80: 12 * (i + 1), lo95: 6 * (i + 1), hi95: 14 * (i + 1) }));
    const o = budgetOutlook(
      { points, cumulative },
      today,
      0,
      { period: 'weekly', limit: 50, used: 25, windowStart: new Date('2026-12-07T00:00:00Z'), windowEnd: new Date('2026-12-14T00:00:00Z') },
      (x, mode) => floatToDecimal(x, 2, mode),
      'USD',
    );
    // 25 left: mean reaches it on day 3 (Friday), hi80 on day 3 (36 ≥ 25 at 3? 12·3 = 36; 12·2 = 24) → Friday, lo80 8·4 = 32 → Saturday.
    assert.deepEqual(o.exhaustion, {
      expected: '2026-12-11',
      earliest80: '2026-12-11',
      latest80: '2026-12-12',
      earliest95: '2026-12-10',
      latest95: '2026-12-13',
    });
    assert.equal(o.exhaustedBeforePeriodEnd, true);
    assert.equal(o.projectedPeriodSpend!.mean, 25 + 50);
    const [runsOut, raise, reduce] = o.recommendations;
    assert.equal(runsOut!.kind, 'runs_out');
    assert.match(
      runsOut!.message,
      /weekly budget runs out on Friday 2026-12-11 \(80 %: 2026-12-11 – 2026-12-12\), before the period ends on Sunday 2026-12-13/,
    );
    assert.equal(raise!.amount, '85.00'); // 25 used + 5 days × 12
    assert.equal(raise!.until, '2026-12-13');
    assert.equal(reduce!.amount, '5.00'); // 25 over 5 days
  });

  it('a daily budget below the coming week’s busiest day: raise it to that day’s upper bound', () => {
    const today = new Date('2026-12-09T00:00:00Z');
    const points = repeat(28, (i) => ({ mean: 3 + i, lo80: 2 + i, hi80: 4 + i, lo95: 1 + i, hi95: 5 + i }));
    let c = 0;
    const cumulative = points.map((p) => ((c += p.mean), { mean: c, lo80: c, hi80: c, lo95: c, hi95: c }));
    const o = budgetOutlook(
      { points, cumulative },
      today,
      1,
      { period: 'daily', limit: 5, used: 1, windowStart: today, windowEnd: new Date('2026-12-10T00:00:00Z') },
      (x, mode) => floatToDecimal(x, 2, mode),
      'USD',
    );
    assert.equal(o.exhaustedBeforePeriodEnd, false);
    const raise = o.recommendations.find((r) => r.kind === 'raise_limit')!;
    assert.equal(raise.amount, '10.00');
    assert.equal(raise.until, '2026-12-15');
    assert.match(raise.message, /Raise the daily budget to 10\.00 USD to last each day until Tuesday 2026-12-15/);
  });
});

import assert from 'node:assert/strict';
import { parseAmount } from '../../domain/money.js';
import { parsePriceList } from '../../domain/compute-prices.js';
import { allocatedFor, cheaperModel, slope, spotSaving } from '../../services/analytics.js';

const usd = (x: string) => parseAmount(x, 'USD');
/** Ledger units of any decimal (every currency shares the 10^-18 ledger scale; ETH allows all 18 decimals). */
const units = (x: string) => parseAmount(x, 'ETH');
const day = (iso: string) => new Date(`${iso}T00:00:00Z`);

describe('services/analytics: exact allocation, trend and model re-pricing', () => {
  it('allocates a budget per day of its own window: daily as is, weekly a seventh, monthly its month’s share', () => {
    const b = (period: 'daily' | 'weekly' | 'monthly' | 'total', limit: string) => ({ period, limit: usd(limit), currency: 'USD' as const });
    assert.equal(allocatedFor(b('daily', '10.00'), day('2026-12-07'), day('2026-12-14')), usd('70.00'));
    // 10.00 / 7 a day = 1.428571…; three days 4.285714… → 4.29
    assert.equal(allocatedFor(b('weekly', '10.00'), day('2026-12-07'), day('2026-12-10')), usd('4.29'));
    // 62.00 over December's 31 days: 2.00 a day; the last 5 days of December and 3 of January (31 days: 2.00 too).
    assert.equal(allocatedFor(b('monthly', '62.00'), day('2026-12-27'), day('2027-01-04')), usd('16.00'));
    // February 2027 has 28 days: 28.00 a month is 1.00 a day.
    assert.equal(allocatedFor(b('monthly', '28.00'), day('2027-02-01'), day('2027-02-08')), usd('7.00'));
    assert.equal(allocatedFor(b('total', '100.00'), day('2026-12-07'), day('2026-12-08')), null);
  });

  it('the least-squares slope is exact and rounds half-even only at the end', () => {
    assert.equal(slope([usd('1.00'), usd('2.00'), usd('3.00')]), usd('1.00'));
    assert.equal(slope([usd('4.00'), usd('12.90'), usd('1.55')]), -units('1.225'));
    assert.equal(slope([usd('5.00')]), 0n);
    assert.equal(slope([]), 0n);
  });

  it('re-prices a run’s calls at the cheapest model of its table, each at its own rate; calls without usage at the assumed share', () => {
    const prices = {
      big: { input: '3', output: '15' },
      small: { input: '1', output: '5' },
      huge: { input: '15', output: '75' },
    };
    // 20,000 in + 2,000 out: 0.09 on big, 0.03 on small. Recorded in EUR at 0.5 EUR per USD: 0.045 EUR, saving 0.03 EUR.
    const call = { amount: usd('0.09'), projectAmount: units('0.045'), details: { inputTokens: 20_000, outputTokens: 2_000, charged: 'usage' } };
    assert.deepEqual(cheaperModel(prices, [call]), { model: 'small', saving: units('0.03'), repriced: 1, assumed: 0 });
    // A call charged at its worst case: 80 % of what it cost, whichever model.
    const unknown = { amount: usd('0.50'), projectAmount: usd('0.50'), details: { inputTokens: 0, outputTokens: 0, charged: 'worst case' } };
    assert.deepEqual(cheaperModel(prices, [call, unknown]), { model: 'small', saving: units('0.03') + usd('0.40'), repriced: 1, assumed: 1 });
    // Already on the cheapest model: nothing to save.
    const onSmall = { amount: usd('0.03'), projectAmount: usd('0.03'), details: { inputTokens: 20_000, outputTokens: 2_000 } };
    assert.equal(cheaperModel(prices, [onSmall]), null);
    assert.equal(cheaperModel({}, [call]), null);
  });

  it('prices the spot saving of an on-demand run from the price list, and finds none without a cheaper spot entry', () => {
    const parsed = parsePriceList(
      {
        currency: 'USD',
        entries: [
          { provider: 'aws-ec2', region: '*', profile: 'standard', market: 'on-demand', hourly: '0.04' },
          { provider: 'aws-ec2', region: '*', profile: 'standard', market: 'spot', hourly: '0.01' },
          { provider: 'aws-ecs', region: '*', profile: 'standard', market: 'on-demand', hourly: '0.05' },
        ],
      },
      'override',
    );
    assert.ok(parsed.ok);
    const run = { region: null, profile: 'standard', hourly: null };
    const ec2 = spotSaving(parsed.list, { ...run, provider: 'aws-ec2' });
    assert.deepEqual(ec2 && [ec2.onDemandHourly, ec2.spotHourly, ec2.percentLess], ['0.04', '0.01', 75]);
    // The rate the run was charged wins over the list's on-demand one.
    assert.equal(spotSaving(parsed.list, { ...run, provider: 'aws-ec2', hourly: '0.02' })?.percentLess, 50);
    assert.equal(spotSaving(parsed.list, { ...run, provider: 'aws-ecs' }), null, 'no spot entry: no saving');
    assert.equal(spotSaving(parsed.list, { ...run, provider: 'aws-ec2', hourly: '0.005' }), null, 'spot dearer than what was paid');
  });
});

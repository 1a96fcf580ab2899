import assert from 'node:assert/strict';
import { PROFILES } from '../../domain/machines.js';
import {
  INSTANCE_TYPE_SIZES,
  NoSpotCapacityError,
  chooseSpotPlacement,
  latestSpotPrices,
  priceUnits,
  spotPolicy,
  type SpotPricePoint,
} from '../../domain/spot.js';

const at = (iso: string): Date => new Date(iso);
const point = (instanceType: string, availabilityZone: string, spotPrice: string, time = '2026-11-27T08:00:00Z'): SpotPricePoint => ({
  instanceType,
  availabilityZone,
  spotPrice,
  timestamp: at(time),
});

describe('domain/spot', () => {
  it('parses prices exactly, without floats', () => {
    assert.equal(priceUnits('0.02'), 20_000_000_000_000_000n);
    assert.equal(priceUnits('0.006500'), 6_500_000_000_000_000n);
    assert.equal(priceUnits('1'), 10n ** 18n);
    // 0.1 + 0.2 style trouble cannot happen: these differ by one unit and compare so.
    assert.ok(priceUnits('0.020000000000000001') > priceUnits('0.02'));
    assert.throws(() => priceUnits('-0.01'), RangeError);
    assert.throws(() => priceUnits('abc'), RangeError);
  });

  it('keeps only the most recent price of each type and zone', () => {
    const latest = latestSpotPrices([
      point('t3.small', 'us-east-1a', '0.0100', '2026-11-27T07:00:00Z'),
      point('t3.small', 'us-east-1a', '0.0070', '2026-11-27T08:00:00Z'),
      point('t3.small', 'us-east-1a', '0.0300', '2026-11-27T06:00:00Z'),
      point('t3.small', 'us-east-1b', '0.0090', '2026-11-27T06:00:00Z'),
    ]);
    assert.equal(latest.length, 2);
    assert.equal(latest.find((p) => p.availabilityZone === 'us-east-1a')?.spotPrice, '0.0070');
  });

  it('chooses the cheapest allowed type and zone under the maximum price', () => {
    const history = [
      point('t3.small', 'us-east-1a', '0.0081'),
      point('t3.small', 'us-east-1b', '0.0063'),
      point('t3a.small', 'us-east-1a', '0.0059'),
      point('t3a.small', 'us-east-1c', '0.0040'), // zone not allowed
      point('m5.large', 'us-east-1a', '0.0010'), // type not allowed
      point('t2.small', 'us-east-1b', '0.0061'),
    ];
    const choice = chooseSpotPlacement({
      history,
      allowedTypes: ['t3a.small', 't3.small', 't2.small'],
      allowedZones: ['us-east-1a', 'us-east-1b'],
      maxPrice: '0.02',
    });
    assert.deepEqual(
      { type: choice.instanceType, zone: choice.availabilityZone, price: choice.spotPrice },
      { type: 't3a.small', zone: 'us-east-1a', price: '0.0059' },
    );
    assert.equal(choice.priceUnits, 5_900_000_000_000_000n);
  });

  it('uses the latest price, not an older cheaper one', () => {
    const choice = chooseSpotPlacement({
      history: [
        point('t3.small', 'us-east-1a', '0.0010', '2026-11-26T00:00:00Z'),
        point('t3.small', 'us-east-1a', '0.0150', '2026-11-27T00:00:00Z'),
        point('t2.small', 'us-east-1a', '0.0120', '2026-11-27T00:00:00Z'),
      ],
      allowedTypes: ['t3.small', 't2.small'],
      allowedZones: ['us-east-1a'],
      maxPrice: '0.02',
    });
    assert.equal(choice.instanceType, 't2.small');
  });

  it('breaks price ties by type preference, then zone name', () => {
    const history = [point('t2.small', 'us-east-1b', '0.00001'), point('t3.small', 'us-east-1b', '0.00001'), point('t3.small', 'us-east-1a', '0.00001')];
    const choice = chooseSpotPlacement({
      history,
      allowedTypes: ['t3.small', 't2.small'],
      allowedZones: ['us-east-1b', 'us-east-1a'],
      maxPrice: '0.02',
    });
    assert.deepEqual([choice.instanceType, choice.availabilityZone], ['t3.small', 'us-east-1a']);
  });

  it('accepts a price equal to the maximum and refuses one a unit above it', () => {
    const base = { allowedTypes: ['t3.small'], allowedZones: ['us-east-1a'] };
    assert.equal(chooseSpotPlacement({ ...base, history: [point('t3.small', 'us-east-1a', '0.020')], maxPrice: '0.02' }).spotPrice, '0.020');
    assert.throws(
      () => chooseSpotPlacement({ ...base, history: [point('t3.small', 'us-east-1a', '0.020000000000000001')], maxPrice: '0.02' }),
      (err: unknown) => err instanceof NoSpotCapacityError && /above the maximum 0\.02/.test(err.message) && /t3\.small in us-east-1a/.test(err.message),
    );
  });

  it('says so when no allowed type or zone has a price at all', () => {
    assert.throws(
      () =>
        chooseSpotPlacement({
          history: [point('m5.large', 'us-east-1a', '0.001')],
          allowedTypes: ['t3.small'],
          allowedZones: ['us-east-1a'],
          maxPrice: '0.02',
        }),
      (err: unknown) => err instanceof NoSpotCapacityError && /no spot price/.test(err.message),
    );
  });

  it('gives the lightweight profile only types with at least 1 vCPU and 2 GiB, at most its hourly price', () => {
    const policy = spotPolicy('lightweight');
    assert.equal(policy.maxPrice, PROFILES.lightweight.hourlyPrice);
    assert.ok(policy.instanceTypes.length > 0);
    for (const type of policy.instanceTypes) {
      const size = INSTANCE_TYPE_SIZES[type];
      assert.ok(size, `${type} has a known size`);
      assert.ok(size.vcpus >= PROFILES.lightweight.cpus && size.memoryMiB >= PROFILES.lightweight.memoryMiB, type);
    }
    assert.throws(() => spotPolicy('enormous'), /unknown compute profile "enormous"/);
  });
});

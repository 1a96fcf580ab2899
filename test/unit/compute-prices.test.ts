import assert from 'node:assert/strict';
import { loadConfig } from '../../config/index.js';
import { hourlyUnits, lookupComputePrice, machineComputePrice, parseInlinePrices, withInstanceSpotPrice } from '../../domain/compute-prices.js';
import { PROFILES } from '../../domain/machines.js';

describe('compute prices (domain/compute-prices.ts, config)', () => {
  const defaults = loadConfig({});

  it('the repository list prices every profile, on-demand and spot, on any provider', () => {
    for (const profile of Object.keys(PROFILES)) {
      for (const spot of [false, true]) {
        for (const provider of ['local', 'container', 'kubernetes', 'aws-ec2', 'aws-ecs']) {
          const r = machineComputePrice(defaults, { provider, profile, spot });
          assert.ok(r.ok, `${provider}/${profile}/${spot}`);
          assert.equal(r.price.source, 'default');
        }
      }
    }
  });

  it('picks the most specific entry: provider before region, exact before *', () => {
    const config = loadConfig({
      AWS_REGION: 'eu-central-1',
      AUTOVIBE_COMPUTE_PRICES: '*/eu-central-1/large/on-demand=9,aws-ecs/*/large/on-demand=0.3',
    });
    const ec2 = machineComputePrice(config, { provider: 'aws-ec2', profile: 'large', spot: false });
    assert.ok(ec2.ok);
    assert.deepEqual(
      [ec2.price.entry, ec2.price.hourly, ec2.price.source, ec2.price.region],
      ['aws-ec2/eu-central-1/large/on-demand', '0.192', 'default', 'eu-central-1'],
    );
    const ecs = machineComputePrice(config, { provider: 'aws-ecs', profile: 'large', spot: false });
    assert.ok(ecs.ok);
    assert.deepEqual([ecs.price.entry, ecs.price.hourly, ecs.price.source], ['aws-ecs/*/large/on-demand', '0.3', 'price-list']);
    const local = machineComputePrice(config, { provider: 'local', profile: 'large', spot: false });
    assert.ok(local.ok);
    assert.equal(local.price.entry, '*/*/large/on-demand', 'a region entry does not apply to a provider without regions');
  });

  it('a spot machine pays its spot entry; its reservation holds the most its reported price may reach', () => {
    const ec2 = machineComputePrice(defaults, { provider: 'aws-ec2', profile: 'standard', spot: true });
    assert.ok(ec2.ok);
    assert.equal(ec2.price.hourly, '0.015');
    assert.equal(ec2.price.maxHourly, '0.05', 'the spot bid (the profile price) is above the on-demand entry');
    const ecs = machineComputePrice(defaults, { provider: 'aws-ecs', profile: 'standard', spot: true });
    assert.ok(ecs.ok);
    assert.equal(ecs.price.maxHourly, ecs.price.hourly, 'no reported price: the list price is the worst case');
    const listed = machineComputePrice(loadConfig({ AUTOVIBE_SPOT_CHARGING: 'list' }), { provider: 'aws-ec2', profile: 'standard', spot: true });
    assert.ok(listed.ok);
    assert.equal(listed.price.maxHourly, '0.015');
    const got = withInstanceSpotPrice(ec2.price, '0.0123');
    assert.deepEqual([got.hourly, got.listHourly, got.source, got.maxHourly], ['0.0123', '0.015', 'instance-spot-price', '0.05']);
    assert.throws(() => withInstanceSpotPrice(ec2.price, '1e-3'), /not a decimal/);
    assert.equal(hourlyUnits('0.0123'), 12_300_000_000_000_000n);
  });

  it('a list without the entry refuses, naming the variable and entry to configure', () => {
    const list = {
      currency: 'USD' as const,
      entries: [{ provider: '*', region: '*', profile: 'lightweight' as const, market: 'on-demand' as const, hourly: '0.1', origin: 'override' as const }],
    };
    assert.equal(lookupComputePrice(list, { provider: 'aws-ec2', region: 'us-east-1', profile: 'large', spot: false }), null);
    const spot = lookupComputePrice(list, { provider: 'aws-ec2', region: 'us-east-1', profile: 'lightweight', spot: true });
    assert.deepEqual([spot?.market, spot?.hourly], ['spot', '0.1'], 'no spot entry: the on-demand one');
    const r = machineComputePrice({ computePrices: list, spotCharging: 'instance', env: {} }, { provider: 'aws-ec2', profile: 'large', spot: true });
    assert.ok(!r.ok);
    assert.match(
      r.message,
      /no compute price for provider aws-ec2 in region us-east-1, profile large, spot: .*AUTOVIBE_COMPUTE_PRICES=aws-ec2\/us-east-1\/large\/spot=<USD per hour>/,
    );
  });

  it('refuses bad overrides at start with what to fix', () => {
    assert.throws(
      () => loadConfig({ AUTOVIBE_COMPUTE_PRICES: 'aws-ec2/large=0.1' }),
      /AUTOVIBE_COMPUTE_PRICES: "aws-ec2\/large=0.1": expected provider\/region\/profile\/market=price/,
    );
    assert.throws(() => loadConfig({ AUTOVIBE_COMPUTE_PRICES: '*/*/huge/spot=0.1' }), /profile must be one of: lightweight, standard, large/);
    assert.throws(() => loadConfig({ AUTOVIBE_COMPUTE_PRICES: '*/*/large/spot=0.1$' }), /hourly must be a decimal price per hour/);
    assert.throws(
      () => loadConfig({ AUTOVIBE_COMPUTE_PRICES_FILE: '/nonexistent/prices.json' }),
      /AUTOVIBE_COMPUTE_PRICES_FILE \(\/nonexistent\/prices.json\)/,
    );
    assert.deepEqual(parseInlinePrices(' local/*/large/on-demand=2 , '), {
      ok: true,
      entries: [{ provider: 'local', region: '*', profile: 'large', market: 'on-demand', hourly: '2' }],
    });
  });
});

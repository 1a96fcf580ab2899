/**
 * Machines are charged at the price of what really ran (real platform: api + worker on the real
 * Temporal server and Postgres). Prices come from the repository's list (config/compute-prices.json)
 * with the deployment's overrides; an aws-ec2 spot machine (on moto, real AWS SDK) is charged the
 * spot price its instance got; a provider/profile with no price is refused with what to configure.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DescribeImagesCommand, DescribeSpotPriceHistoryCommand, EC2Client } from '@aws-sdk/client-ec2';
import { fromNumeric, parseAmount, runtimeCost } from '../../domain/money.js';
import { STOP_REASONS } from '../../domain/machines.js';
import { spotPolicy } from '../../domain/spot.js';
import { startMoto, type MotoServer } from '../../scripts/services/moto.js';
import { projectWithBudget, startTestPlatform, waitForMachine, type TestPlatform } from '../support/platform.js';

const REGION = 'us-east-1';

interface CostItem {
  machineId: string | null;
  category: string;
  amount: string;
  currency: string;
  details: Record<string, any>;
}

/** The machine's compute cost event, checked to be exactly its runtime at `hourly`. */
async function computeEvent(p: TestPlatform, projectId: string, machineId: string, hourly: string): Promise<CostItem> {
  const costs = await p.api('GET', `/v1/projects/${projectId}/costs`);
  assert.equal(costs.status, 200, JSON.stringify(costs.body));
  const event = (costs.body.items as CostItem[]).find((c) => c.machineId === machineId && c.category === 'infra');
  assert.ok(event, `a compute cost event for ${machineId}: ${JSON.stringify(costs.body.items)}`);
  assert.equal(event.details.hourlyPrice, hourly);
  assert.equal(event.details.computePrice.hourly, hourly);
  assert.equal(typeof event.details.runtimeMs, 'number');
  assert.equal(fromNumeric(event.amount), runtimeCost(event.details.runtimeMs, fromNumeric(hourly)), JSON.stringify(event));
  return event;
}

describe('compute is charged at the price of what ran (real platform)', function () {
  this.timeout(240_000);
  let moto: MotoServer;
  let p: TestPlatform;
  let ec2: EC2Client;

  before(async () => {
    moto = await startMoto();
    ec2 = new EC2Client({ region: REGION, endpoint: moto.endpoint, credentials: moto.credentials });
    const images = await ec2.send(new DescribeImagesCommand({ Owners: ['amazon'] }));
    const imageId = images.Images?.find((i) => i.RootDeviceType === 'ebs' && i.ImageId)?.ImageId;
    assert.ok(imageId, 'moto lists an EBS-backed AMI');
    p = await startTestPlatform({
      label: 'compute-prices',
      env: {
        // The deployment's overrides on top of the repository's list.
        AUTOVIBE_COMPUTE_PRICES: 'local/*/standard/on-demand=1.50,local/*/large/on-demand=360',
        AWS_REGION: REGION,
        AUTOVIBE_AWS_ENDPOINT: moto.endpoint,
        AWS_ACCESS_KEY_ID: moto.credentials.accessKeyId,
        AWS_SECRET_ACCESS_KEY: moto.credentials.secretAccessKey,
        AUTOVIBE_AWS_EC2_IMAGE_ID: imageId,
      },
    });
  });

  after(async () => {
    await p?.stop();
    await moto?.stop();
  });

  it('two profiles are charged differently, each at its recorded price and source', async () => {
    const projectId = await projectWithBudget(p);
    const light = await p.api('POST', '/v1/machines', { projectId, type: 'shell', command: 'sleep 1', provider: 'local', profile: 'lightweight' });
    assert.equal(light.status, 202, JSON.stringify(light.body));
    const standard = await p.api('POST', '/v1/machines', { projectId, type: 'shell', command: 'sleep 1; true', provider: 'local', profile: 'standard' });
    assert.equal(standard.status, 202, JSON.stringify(standard.body));
    const a = await waitForMachine(p, light.body.id);
    const b = await waitForMachine(p, standard.body.id);
    assert.equal(a.status, 'completed', JSON.stringify(a));
    assert.equal(b.status, 'completed', JSON.stringify(b));

    // The repository's default for any provider; the deployment's override for local/standard.
    assert.deepEqual(a.computePrice, {
      provider: 'local',
      region: null,
      profile: 'lightweight',
      market: 'on-demand',
      hourly: '0.02',
      maxHourly: '0.02',
      currency: 'USD',
      source: 'default',
      entry: '*/*/lightweight/on-demand',
    });
    assert.deepEqual(b.computePrice, {
      provider: 'local',
      region: null,
      profile: 'standard',
      market: 'on-demand',
      hourly: '1.50',
      maxHourly: '1.50',
      currency: 'USD',
      source: 'price-list',
      entry: 'local/*/standard/on-demand',
    });
    const ea = await computeEvent(p, projectId, a.id, '0.02');
    const eb = await computeEvent(p, projectId, b.id, '1.50');
    assert.equal(ea.details.computePrice.source, 'default');
    assert.equal(eb.details.computePrice.source, 'price-list');
    // Both slept at least a second: at 75 times the price, the standard one costs more.
    assert.ok(fromNumeric(eb.amount) > fromNumeric(ea.amount), `${eb.amount} > ${ea.amount}`);
    // The machine's cost is its compute at that price (no model calls).
    assert.equal(b.cost.amount, eb.amount);
  });

  it("the reservation holds the machine's price: a dear profile reaches its money limit sooner", async () => {
    const projectId = await projectWithBudget(p);
    // $360/h is $0.10 a second: a $0.30 limit buys 3 seconds of a command that would sleep 60.
    const start = await p.api('POST', '/v1/machines', {
      projectId,
      type: 'shell',
      command: 'sleep 60',
      provider: 'local',
      profile: 'large',
      limits: { money: '0.30' },
    });
    assert.equal(start.status, 202, JSON.stringify(start.body));
    const m = await waitForMachine(p, start.body.id);
    assert.equal(m.stopReason, STOP_REASONS.moneyLimit, JSON.stringify(m));
    assert.equal(m.computePrice.hourly, '360');
    assert.ok(fromNumeric(m.cost.amount) <= parseAmount('0.30', 'USD'), `charged ${m.cost.amount}, within the limit`);
  });

  it('an aws-ec2 spot machine records and is charged the spot price its instance got', async () => {
    const projectId = await projectWithBudget(p);
    const start = await p.api('POST', '/v1/machines', { projectId, type: 'shell', command: 'true', provider: 'aws-ec2', spot: true });
    assert.equal(start.status, 202, JSON.stringify(start.body));
    const m = await waitForMachine(p, start.body.id);
    assert.equal(m.status, 'completed', JSON.stringify(m));
    assert.equal(m.spot, true);
    const price = m.computePrice;
    assert.equal(price.source, 'instance-spot-price', JSON.stringify(price));
    assert.equal(price.provider, 'aws-ec2');
    assert.equal(price.region, REGION);
    assert.equal(price.market, 'spot');
    assert.equal(price.entry, 'aws-ec2/*/lightweight/spot');
    assert.equal(price.listHourly, '0.0075');
    // The reservation held the worst case: the on-demand price a spot price may rise to.
    assert.equal(price.maxHourly, '0.0208');
    // What moto's price history offers for the profile's instance types in the region.
    const policy = spotPolicy('lightweight');
    const history = await ec2.send(new DescribeSpotPriceHistoryCommand({ InstanceTypes: [...policy.instanceTypes] as never }));
    const offered = new Set((history.SpotPriceHistory ?? []).map((h) => h.SpotPrice));
    assert.ok(offered.has(price.hourly), `${price.hourly} is one of moto's spot prices: ${[...offered].join(', ')}`);
    // The machine's history says which instance got it.
    const event = m.events.find((e: { action: string }) => e.action === 'machine.spot_price');
    assert.ok(event, JSON.stringify(m.events.map((e: { action: string }) => e.action)));
    assert.equal(event.details.hourly, price.hourly);
    assert.equal(event.details.instanceRef, m.instanceRef);
    const cost = await computeEvent(p, projectId, m.id, price.hourly);
    assert.equal(cost.details.computePrice.source, 'instance-spot-price');
    assert.equal(cost.details.provider, 'aws-ec2');
  });

  it('an on-demand aws-ec2 machine pays its region-less list entry', async () => {
    const projectId = await projectWithBudget(p);
    const start = await p.api('POST', '/v1/machines', { projectId, type: 'shell', command: 'true', provider: 'aws-ec2', spot: false, profile: 'standard' });
    assert.equal(start.status, 202, JSON.stringify(start.body));
    const m = await waitForMachine(p, start.body.id);
    assert.equal(m.status, 'completed', JSON.stringify(m));
    assert.equal(m.computePrice.source, 'default');
    assert.equal(m.computePrice.entry, 'aws-ec2/*/standard/on-demand');
    assert.equal(m.computePrice.hourly, '0.0416');
    await computeEvent(p, projectId, m.id, '0.0416');
  });
});

describe("the deployment's own list: unpriced machines refused, spot charged by the list (real platform, aws-ec2 on moto)", function () {
  this.timeout(180_000);
  let moto: MotoServer;
  let p: TestPlatform;
  let dir: string;

  before(async () => {
    moto = await startMoto();
    const ec2 = new EC2Client({ region: REGION, endpoint: moto.endpoint, credentials: moto.credentials });
    const images = await ec2.send(new DescribeImagesCommand({ Owners: ['amazon'] }));
    const imageId = images.Images?.find((i) => i.RootDeviceType === 'ebs' && i.ImageId)?.ImageId;
    assert.ok(imageId, 'moto lists an EBS-backed AMI');
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'compute-prices-'));
    const file = path.join(dir, 'prices.json');
    // The deployment's list replaces the repository's: only lightweight is priced, and local/standard.
    fs.writeFileSync(
      file,
      JSON.stringify({
        currency: 'USD',
        entries: [
          { provider: '*', region: '*', profile: 'lightweight', market: 'on-demand', hourly: '0.03' },
          { provider: 'local', region: '*', profile: 'standard', market: 'on-demand', hourly: '0.07' },
          { provider: 'aws-ec2', region: REGION, profile: 'lightweight', market: 'spot', hourly: '0.0061' },
        ],
      }),
    );
    p = await startTestPlatform({
      label: 'compute-prices-file',
      env: {
        AUTOVIBE_COMPUTE_PRICES_FILE: file,
        // Spot machines pay the list's spot price, not what the instance got.
        AUTOVIBE_SPOT_CHARGING: 'list',
        AWS_REGION: REGION,
        AUTOVIBE_AWS_ENDPOINT: moto.endpoint,
        AWS_ACCESS_KEY_ID: moto.credentials.accessKeyId,
        AWS_SECRET_ACCESS_KEY: moto.credentials.secretAccessKey,
        AUTOVIBE_AWS_EC2_IMAGE_ID: imageId,
      },
    });
  });

  after(async () => {
    await p?.stop();
    await moto?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('refuses an unpriced profile with 422 compute_price_missing, starts nothing, and charges listed ones', async () => {
    const projectId = await projectWithBudget(p);
    const refused = await p.api('POST', '/v1/machines', { projectId, type: 'shell', command: 'true', provider: 'local', profile: 'large' });
    assert.equal(refused.status, 422, JSON.stringify(refused.body));
    assert.equal(refused.body.error.code, 'compute_price_missing', JSON.stringify(refused.body));
    assert.match(refused.body.error.message, /no compute price for provider local, profile large, on-demand/);
    assert.match(refused.body.error.message, /AUTOVIBE_COMPUTE_PRICES=local\/\*\/large\/on-demand=<USD per hour>/);
    const listed = await p.api('GET', `/v1/machines?projectId=${projectId}`);
    assert.equal(listed.status, 200);
    assert.equal(listed.body.items.length, 0, 'nothing was started');

    const ok = await p.api('POST', '/v1/machines', { projectId, type: 'shell', command: 'true', provider: 'local', profile: 'standard' });
    assert.equal(ok.status, 202, JSON.stringify(ok.body));
    const m = await waitForMachine(p, ok.body.id);
    assert.equal(m.status, 'completed', JSON.stringify(m));
    assert.equal(m.computePrice.source, 'price-list');
    assert.equal(m.computePrice.hourly, '0.07');
    await computeEvent(p, projectId, m.id, '0.07');
  });

  it("with AUTOVIBE_SPOT_CHARGING=list an aws-ec2 spot machine pays its region's list price, not the instance's", async () => {
    const projectId = await projectWithBudget(p);
    const start = await p.api('POST', '/v1/machines', { projectId, type: 'shell', command: 'true', provider: 'aws-ec2', spot: true });
    assert.equal(start.status, 202, JSON.stringify(start.body));
    const m = await waitForMachine(p, start.body.id);
    assert.equal(m.status, 'completed', JSON.stringify(m));
    assert.deepEqual(m.computePrice, {
      provider: 'aws-ec2',
      region: REGION,
      profile: 'lightweight',
      market: 'spot',
      hourly: '0.0061',
      maxHourly: '0.0061',
      currency: 'USD',
      source: 'price-list',
      entry: `aws-ec2/${REGION}/lightweight/spot`,
    });
    assert.ok(!m.events.some((e: { action: string }) => e.action === 'machine.spot_price'), 'no reported price was taken');
    await computeEvent(p, projectId, m.id, '0.0061');
    // Its on-demand sibling has no entry in this list: refused, naming the region.
    const refused = await p.api('POST', '/v1/machines', { projectId, type: 'shell', command: 'true', provider: 'aws-ec2', spot: false, profile: 'standard' });
    assert.equal(refused.status, 422, JSON.stringify(refused.body));
    assert.match(refused.body.error.message, /AUTOVIBE_COMPUTE_PRICES=aws-ec2\/us-east-1\/standard\/on-demand=<USD per hour>/);
  });
});

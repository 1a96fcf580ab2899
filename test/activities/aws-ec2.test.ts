/**
 * The aws-ec2 provider through the real AWS SDK against moto's server (started here on loopback).
 * moto keeps EC2/EBS/SSM state like AWS does, but it runs no VM. Without a bucket exec goes through
 * SSM, which moto accepts and reports as Success with no output: tested for what is sent and for
 * interruption. With a bucket exec and files go through the remote runner over S3: there a
 * STAND-IN (test/support/remote-stand-in.ts) runs the instance's real user data as a host process,
 * so commands really run and their output and files really come back.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import {
  DescribeImagesCommand,
  DescribeInstanceAttributeCommand,
  DescribeInstancesCommand,
  DescribeSnapshotsCommand,
  DescribeSpotPriceHistoryCommand,
  DescribeSubnetsCommand,
  DescribeVolumesCommand,
  EC2Client,
  TerminateInstancesCommand,
  type Tag,
} from '@aws-sdk/client-ec2';
import { ListCommandsCommand, SSMClient } from '@aws-sdk/client-ssm';
import { AwsEc2Provider, createAwsEc2Provider, TAG_CHECKPOINT, TAG_MACHINE, TAG_PROJECT, TAG_SOURCE_SNAPSHOT } from '../../activities/compute/aws-ec2.js';
import type { ProvisionRequest } from '../../activities/compute/provider.js';
import { NoSpotCapacityError, chooseSpotPlacement, priceUnits, spotPolicy } from '../../domain/spot.js';
import { startMoto, type MotoServer } from '../../scripts/services/moto.js';
import { remoteRunnerCases } from '../support/remote-runner-cases.js';
import { standInForEc2Instance } from '../support/remote-stand-in.js';

const REGION = 'us-east-1';
/** The remote runner's output segments in these tests: 16 of 4 KiB. */
const SEGMENT_BYTES = 4096;
const SEGMENTS = 16;
const REPLICA = 'eu-west-1';

const tag = (tags: Tag[] | undefined, key: string): string | undefined => tags?.find((t) => t.Key === key)?.Value;

describe('aws-ec2 provider (real AWS SDK against moto server)', function () {
  this.timeout(120_000);
  let moto: MotoServer;
  let ec2: EC2Client;
  let ec2Replica: EC2Client;
  let ssm: SSMClient;
  let imageId: string;
  let provider: AwsEc2Provider;

  const request = (overrides: Partial<ProvisionRequest> = {}): ProvisionRequest => {
    const machineId = `machine-${crypto.randomUUID()}`;
    return {
      machineId,
      projectId: 'project-ec2',
      profile: 'lightweight',
      spot: true,
      workspace: '/nonexistent',
      tags: { 'autovibe:objective': 'objective-1' },
      ...overrides,
    };
  };

  before(async () => {
    moto = await startMoto();
    const clientConfig = (region: string) => ({ region, endpoint: moto.endpoint, credentials: moto.credentials });
    ec2 = new EC2Client(clientConfig(REGION));
    ec2Replica = new EC2Client(clientConfig(REPLICA));
    ssm = new SSMClient(clientConfig(REGION));
    const images = await ec2.send(new DescribeImagesCommand({ Owners: ['amazon'] }));
    imageId = images.Images?.find((i) => i.RootDeviceType === 'ebs' && i.ImageId)?.ImageId ?? '';
    assert.ok(imageId, 'moto lists an EBS-backed AMI');
    provider = createAwsEc2Provider({
      region: REGION,
      endpoint: moto.endpoint,
      credentials: moto.credentials,
      imageId,
      replicaRegions: [REPLICA],
      pollIntervalMs: 50,
    });
  });

  after(async () => {
    await moto?.stop();
  });

  it('is available when EC2 answers, and says why not when it does not', async () => {
    assert.deepEqual(await provider.availability(), { available: true });
    const dead = createAwsEc2Provider({ region: REGION, endpoint: 'http://127.0.0.1:9', credentials: moto.credentials, imageId });
    const result = await dead.availability();
    assert.equal(result.available, false);
    assert.match(result.reason ?? '', /EC2 in us-east-1 cannot be reached/);
  });

  it('provisions a tagged spot instance of the cheapest allowed type/zone under the maximum price', async () => {
    const req = request();
    const instance = await provider.provision(req);

    // The expected choice, computed here from moto's own spot price history and default subnets.
    const policy = spotPolicy('lightweight');
    const history = await ec2.send(new DescribeSpotPriceHistoryCommand({ InstanceTypes: [...policy.instanceTypes] as never }));
    const subnets = await ec2.send(new DescribeSubnetsCommand({ Filters: [{ Name: 'default-for-az', Values: ['true'] }] }));
    const expected = chooseSpotPlacement({
      history: (history.SpotPriceHistory ?? []).map((p) => ({
        instanceType: p.InstanceType!,
        availabilityZone: p.AvailabilityZone!,
        spotPrice: p.SpotPrice!,
        timestamp: p.Timestamp ?? new Date(0),
      })),
      allowedTypes: policy.instanceTypes,
      allowedZones: (subnets.Subnets ?? []).map((s) => s.AvailabilityZone!),
      maxPrice: policy.maxPrice,
    });

    const found = (await ec2.send(new DescribeInstancesCommand({ InstanceIds: [instance.instanceRef] }))).Reservations?.[0]?.Instances?.[0];
    assert.ok(found, 'the instance exists in EC2');
    assert.equal(found.InstanceType, expected.instanceType);
    assert.equal(found.Placement?.AvailabilityZone, expected.availabilityZone);
    assert.ok(policy.instanceTypes.includes(found.InstanceType!), 'an instance type the profile allows');
    assert.equal(found.InstanceLifecycle, 'spot');
    assert.equal(tag(found.Tags, TAG_PROJECT), req.projectId);
    assert.equal(tag(found.Tags, TAG_MACHINE), req.machineId);
    assert.equal(tag(found.Tags, 'autovibe:objective'), 'objective-1');

    assert.equal(instance.provider, 'aws-ec2');
    assert.equal(instance.machineId, req.machineId);
    assert.equal(instance.projectId, req.projectId);
    assert.equal(instance.details?.instanceType, expected.instanceType);
    assert.equal(instance.details?.availabilityZone, expected.availabilityZone);
    assert.ok(priceUnits(instance.details?.spotPrice ?? 'x') <= priceUnits('0.02'), 'spot price at most $0.02/h');

    // Its volumes carry the same tags.
    const volumes = await ec2.send(new DescribeVolumesCommand({ Filters: [{ Name: 'attachment.instance-id', Values: [instance.instanceRef] }] }));
    assert.ok((volumes.Volumes ?? []).length > 0, 'the instance has a volume');
    for (const v of volumes.Volumes ?? []) assert.equal(tag(v.Tags, TAG_MACHINE), req.machineId);

    // A retried provision finds the same instance instead of launching a second one.
    const again = await provider.provision(req);
    assert.equal(again.instanceRef, instance.instanceRef);
    const byTag = await ec2.send(new DescribeInstancesCommand({ Filters: [{ Name: `tag:${TAG_MACHINE}`, Values: [req.machineId] }] }));
    assert.equal(byTag.Reservations?.flatMap((r) => r.Instances ?? []).length, 1);
    await provider.terminate(instance);
  });

  it('refuses to launch when every spot price is above the maximum', async () => {
    // moto prices every type at 0.00001 USD/h; a lower maximum leaves nothing affordable.
    const cheap = createAwsEc2Provider({ region: REGION, endpoint: moto.endpoint, credentials: moto.credentials, imageId, maxPrice: '0.000001' });
    const req = request();
    await assert.rejects(cheap.provision(req), (err: unknown) => err instanceof NoSpotCapacityError && /above the maximum 0\.000001/.test(err.message));
    const byTag = await ec2.send(new DescribeInstancesCommand({ Filters: [{ Name: `tag:${TAG_MACHINE}`, Values: [req.machineId] }] }));
    assert.equal(byTag.Reservations?.flatMap((r) => r.Instances ?? []).length ?? 0, 0, 'nothing was launched');
  });

  it('lists its instances by tag, and terminate removes them (safe to repeat)', async () => {
    const a = await provider.provision(request());
    const b = await provider.provision(request({ spot: false, projectId: 'project-other' }));
    const listed = await provider.listInstances();
    const byRef = new Map(listed.map((i) => [i.instanceRef, i]));
    assert.equal(byRef.get(a.instanceRef)?.machineId, a.machineId);
    assert.equal(byRef.get(b.instanceRef)?.projectId, 'project-other');
    assert.equal(byRef.get(b.instanceRef)?.details?.lifecycle, 'on-demand');

    await provider.terminate(a);
    await provider.terminate(a);
    await provider.terminate({ ...a, instanceRef: 'i-0123456789abcdef0' });
    const after = (await provider.listInstances()).map((i) => i.instanceRef);
    assert.ok(!after.includes(a.instanceRef), 'terminated instance is not listed');
    assert.ok(after.includes(b.instanceRef));
    const state = (await ec2.send(new DescribeInstancesCommand({ InstanceIds: [a.instanceRef] }))).Reservations?.[0]?.Instances?.[0]?.State?.Name;
    assert.equal(state, 'terminated');
    await provider.terminate(b);
  });

  it('exec sends the command through SSM Run Command (moto runs nothing and reports success)', async () => {
    const instance = await provider.provision(request());
    const result = await provider.exec(instance, {
      command: ['echo', "it's here"],
      env: { GREETING: 'hello world' },
      network: false,
      deadline: Date.now() + 30_000,
    });
    assert.deepEqual(result, { exitCode: 0, stopReason: null });
    const commands = await ssm.send(new ListCommandsCommand({ InstanceId: instance.instanceRef }));
    const sent = commands.Commands?.[0];
    assert.equal(sent?.DocumentName, 'AWS-RunShellScript');
    // Without network: in an empty network namespace (SSM runs commands as root).
    const sentScript = sent?.Parameters?.commands?.[0] ?? '';
    const prefix = 'exec unshare --net -- /bin/sh -c ';
    assert.ok(sentScript.startsWith(prefix), sentScript);
    // The quoted script decodes back, and a real shell running it does what was asked.
    const inner = execFileSync('/bin/sh', ['-c', `printf %s ${sentScript.slice(prefix.length)}`], { encoding: 'utf8' });
    assert.equal(execFileSync('/bin/sh', ['-c', `${inner}; printf '[%s]' "$GREETING"`], { encoding: 'utf8' }), "it's here\n[hello world]");
    assert.deepEqual(await provider.exec(instance, { command: 'make test', network: true, deadline: Date.now() + 30_000 }), { exitCode: 0, stopReason: null });
    const again = await ssm.send(new ListCommandsCommand({ InstanceId: instance.instanceRef }));
    const texts = (again.Commands ?? []).map((c) => c.Parameters?.commands?.[0]);
    assert.ok(texts.includes('make test'), `the networked command is sent as is (got ${JSON.stringify(texts)})`);
    await provider.terminate(instance);
  });

  it('exec reports an interruption when the instance was terminated from outside; re-provisioning gets a new one', async () => {
    const req = request();
    const instance = await provider.provision(req);
    assert.deepEqual(await provider.checkInterruption(instance), { interrupted: false });
    // What AWS does when it reclaims spot capacity, done here with a plain EC2 client.
    await ec2.send(new TerminateInstancesCommand({ InstanceIds: [instance.instanceRef] }));
    const check = await provider.checkInterruption(instance);
    assert.equal(check.interrupted, true);
    assert.match(check.reason ?? '', /shutting-down|terminated/);
    const result = await provider.exec(instance, { command: 'true', network: false, deadline: Date.now() + 30_000 });
    assert.deepEqual(result, { exitCode: null, stopReason: 'interrupted' });
    assert.ok(!(await provider.listInstances()).some((i) => i.instanceRef === instance.instanceRef));
    // The machine workflow re-provisions after an interruption: a fresh instance, not the dead one.
    const replacement = await provider.provision(req);
    assert.notEqual(replacement.instanceRef, instance.instanceRef);
    assert.deepEqual(await provider.checkInterruption(replacement), { interrupted: false });
    await provider.terminate(replacement);
  });

  it('exec stops at once on a deadline already past or an aborted signal', async () => {
    const instance = await provider.provision(request());
    assert.deepEqual(await provider.exec(instance, { command: 'true', network: false, deadline: Date.now() - 1 }), { exitCode: null, stopReason: 'deadline' });
    const controller = new AbortController();
    controller.abort();
    assert.deepEqual(await provider.exec(instance, { command: 'true', network: false, deadline: Date.now() + 30_000, signal: controller.signal }), {
      exitCode: null,
      stopReason: 'aborted',
    });
    await provider.terminate(instance);
  });

  it('snapshots the root volume (tagged), copies it to the replica region, and restores from the copy', async () => {
    const req = request();
    const instance = await provider.provision(req);
    const { snapshotRef } = await provider.snapshot(instance, { checkpointId: 'checkpoint-1' });

    const snap = (await ec2.send(new DescribeSnapshotsCommand({ SnapshotIds: [snapshotRef] }))).Snapshots?.[0];
    assert.ok(snap, 'the snapshot exists');
    assert.equal(tag(snap.Tags, TAG_CHECKPOINT), 'checkpoint-1');
    assert.equal(tag(snap.Tags, TAG_MACHINE), req.machineId);
    assert.equal(tag(snap.Tags, TAG_PROJECT), req.projectId);
    const rootVolume = (await ec2.send(new DescribeInstancesCommand({ InstanceIds: [instance.instanceRef] }))).Reservations?.[0]?.Instances?.[0]
      ?.BlockDeviceMappings?.[0]?.Ebs?.VolumeId;
    assert.equal(snap.VolumeId, rootVolume);

    // A retried snapshot activity does not make a second snapshot or a second copy.
    assert.equal((await provider.snapshot(instance, { checkpointId: 'checkpoint-1' })).snapshotRef, snapshotRef);
    const mine = await ec2.send(new DescribeSnapshotsCommand({ Filters: [{ Name: `tag:${TAG_MACHINE}`, Values: [req.machineId] }] }));
    assert.equal(mine.Snapshots?.length, 1);

    const replicas = await provider.replicaStatus(snapshotRef);
    assert.equal(replicas.length, 1);
    assert.equal(replicas[0]?.region, REPLICA);
    assert.equal(replicas[0]?.state, 'completed');
    const copies = await ec2Replica.send(new DescribeSnapshotsCommand({ Filters: [{ Name: `tag:${TAG_SOURCE_SNAPSHOT}`, Values: [snapshotRef] }] }));
    assert.equal(copies.Snapshots?.length, 1, 'exactly one copy in the replica region');
    const copy = copies.Snapshots![0]!;
    assert.equal(copy.SnapshotId, replicas[0]?.snapshotId);
    assert.equal(tag(copy.Tags, TAG_CHECKPOINT), 'checkpoint-1');

    // Restore in the replica region (e.g. the home region is down): a new instance whose root
    // volume is made from the copy.
    const replicaProvider = createAwsEc2Provider({ region: REPLICA, endpoint: moto.endpoint, credentials: moto.credentials, imageId });
    const restored = await replicaProvider.provisionFromSnapshot(request({ machineId: `machine-${crypto.randomUUID()}`, spot: false }), snapshotRef);
    assert.equal(restored.details?.fromSnapshot, copy.SnapshotId);
    const restoredVolumes = await ec2Replica.send(
      new DescribeVolumesCommand({ Filters: [{ Name: 'attachment.instance-id', Values: [restored.instanceRef] }] }),
    );
    assert.ok(
      (restoredVolumes.Volumes ?? []).some((v) => v.SnapshotId === copy.SnapshotId),
      'a volume of the restored instance is made from the copy',
    );
    await assert.rejects(replicaProvider.provisionFromSnapshot(request(), 'snap-0000000000000000a'), /has no copy in eu-west-1/);

    // Restore in the home region from the original.
    const home = await provider.provisionFromSnapshot(request({ spot: false }), snapshotRef);
    assert.equal(home.details?.fromSnapshot, snapshotRef);
    await Promise.all([provider.terminate(instance), provider.terminate(home), replicaProvider.terminate(restored)]);
  });
});

describe('aws-ec2 provider with the remote runner over S3 (moto; the VM is a STAND-IN running the real user data)', function () {
  this.timeout(120_000);
  const BUCKET = 'autovibe-machines';
  let moto: MotoServer;
  let ec2: EC2Client;
  let s3: S3Client;
  let provider: AwsEc2Provider;

  before(async () => {
    moto = await startMoto();
    ec2 = new EC2Client({ region: REGION, endpoint: moto.endpoint, credentials: moto.credentials });
    s3 = new S3Client({ region: REGION, endpoint: moto.endpoint, credentials: moto.credentials, forcePathStyle: true });
    await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
    const images = await ec2.send(new DescribeImagesCommand({ Owners: ['amazon'] }));
    const imageId = images.Images?.find((i) => i.RootDeviceType === 'ebs' && i.ImageId)?.ImageId ?? '';
    provider = createAwsEc2Provider({
      region: REGION,
      endpoint: moto.endpoint,
      credentials: moto.credentials,
      imageId,
      workspaceBucket: BUCKET,
      // Small output segments, so a test's output spans many (and overflows the last).
      outputSegmentBytes: SEGMENT_BYTES,
      outputSegments: SEGMENTS,
      userData: 'echo booted > "$w/.booted-by-user-data"',
      pollIntervalMs: 200,
    });
  });

  after(async () => {
    await moto?.stop();
  });

  remoteRunnerCases(
    () => ({
      provider,
      standIn: (instance) => standInForEc2Instance(ec2, instance.instanceRef),
      reachableUrl: `${moto.endpoint}/moto-api/data.json`,
      // What AWS does when it reclaims spot capacity.
      interrupt: async (instance) => {
        await ec2.send(new TerminateInstancesCommand({ InstanceIds: [instance.instanceRef] }));
      },
      s3,
      bucket: BUCKET,
      segmentBytes: SEGMENT_BYTES,
      segments: SEGMENTS,
    }),
    'project-ec2-runner',
  );

  it('user data: unpack, then the configured user data, then the runner, detached', async () => {
    const workspace = fs.mkdtempSync(path.join(os.tmpdir(), 'autovibe-ec2-ws-'));
    try {
      fs.writeFileSync(path.join(workspace, 'README.md'), '# project\n');
      const instance = await provider.provision({
        machineId: `machine-${crypto.randomUUID()}`,
        projectId: 'project-ec2-runner',
        profile: 'lightweight',
        spot: false,
        workspace,
        tags: {},
      });
      const attr = await ec2.send(new DescribeInstanceAttributeCommand({ InstanceId: instance.instanceRef, Attribute: 'userData' }));
      const userData = Buffer.from(attr.UserData?.Value ?? '', 'base64').toString('utf8');
      assert.match(userData, /^#!\/bin\/sh\n/);
      const unpack = userData.indexOf('| tar -xz -C "$w"');
      const extra = userData.indexOf('.booted-by-user-data');
      const runner = userData.indexOf('nohup sh "$r"');
      assert.ok(unpack > 0 && extra > unpack && runner > extra, userData);
      const standIn = await standInForEc2Instance(ec2, instance.instanceRef);
      try {
        const booted = path.join(standIn.workdir, '.booted-by-user-data');
        for (let i = 0; i < 100 && !fs.existsSync(booted); i++) await new Promise((r) => setTimeout(r, 100));
        assert.equal(fs.readFileSync(booted, 'utf8'), 'booted\n');
        assert.equal(fs.readFileSync(path.join(standIn.workdir, 'README.md'), 'utf8'), '# project\n');
      } finally {
        await provider.terminate(instance);
        await standIn.stop();
      }
    } finally {
      fs.rmSync(workspace, { recursive: true, force: true });
    }
  });
});

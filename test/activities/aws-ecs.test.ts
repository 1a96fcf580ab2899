/**
 * The aws-ecs provider through the real AWS SDK against moto's server (started here on loopback).
 * moto keeps ECS clusters, task definitions and tasks like AWS does but runs no container. With a
 * bucket, exec and files go through the remote runner over S3: there a STAND-IN
 * (test/support/remote-stand-in.ts) runs the task's real command override as a host process.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { DescribeSecurityGroupsCommand, DescribeSubnetsCommand, EC2Client } from '@aws-sdk/client-ec2';
import {
  CreateClusterCommand,
  DescribeTasksCommand,
  ECSClient,
  RegisterTaskDefinitionCommand,
  RunTaskCommand,
  StopTaskCommand,
  type Tag,
} from '@aws-sdk/client-ecs';
import { AwsEcsProvider, ExecUnsupportedError, TAG_MACHINE, TAG_PROJECT, createAwsEcsProvider, fargateSize } from '../../activities/compute/aws-ecs.js';
import type { ProvisionRequest } from '../../activities/compute/provider.js';
import { startMoto, type MotoServer } from '../../scripts/services/moto.js';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { remoteRunnerCases } from '../support/remote-runner-cases.js';
import { standInForEcsTask } from '../support/remote-stand-in.js';

const REGION = 'us-east-1';
/** The remote runner's output segments in these tests: 16 of 4 KiB. */
const SEGMENT_BYTES = 4096;
const SEGMENTS = 16;
const CLUSTER = 'autovibe-machines';

const tag = (tags: Tag[] | undefined, key: string): string | undefined => tags?.find((t) => t.key === key)?.value;

describe('aws-ecs provider (real AWS SDK against moto server)', function () {
  this.timeout(120_000);
  let moto: MotoServer;
  let ecs: ECSClient;
  let subnetId: string;
  let securityGroupId: string;
  let provider: AwsEcsProvider;

  const request = (overrides: Partial<ProvisionRequest> = {}): ProvisionRequest => ({
    machineId: `machine-${crypto.randomUUID()}`,
    projectId: 'project-ecs',
    profile: 'lightweight',
    spot: true,
    workspace: '/nonexistent',
    tags: { 'autovibe:objective': 'objective-7' },
    ...overrides,
  });

  const describeTask = async (arn: string) => (await ecs.send(new DescribeTasksCommand({ cluster: CLUSTER, tasks: [arn], include: ['TAGS'] }))).tasks?.[0];

  before(async () => {
    moto = await startMoto();
    const clientConfig = { region: REGION, endpoint: moto.endpoint, credentials: moto.credentials };
    ecs = new ECSClient(clientConfig);
    const ec2 = new EC2Client(clientConfig);
    subnetId = (await ec2.send(new DescribeSubnetsCommand({}))).Subnets?.[0]?.SubnetId ?? '';
    securityGroupId = (await ec2.send(new DescribeSecurityGroupsCommand({}))).SecurityGroups?.[0]?.GroupId ?? '';
    assert.ok(subnetId && securityGroupId, 'moto has a default subnet and security group');
    await ecs.send(new CreateClusterCommand({ clusterName: CLUSTER, capacityProviders: ['FARGATE', 'FARGATE_SPOT'] }));
    await ecs.send(
      new RegisterTaskDefinitionCommand({
        family: 'autovibe-machine',
        requiresCompatibilities: ['FARGATE'],
        networkMode: 'awsvpc',
        cpu: '1024',
        memory: '2048',
        // Container-level cpu/memory too: moto sums them to place tasks (AWS accepts either).
        containerDefinitions: [{ name: 'machine', image: 'autovibe/machine:latest', essential: true, cpu: 1024, memory: 2048, command: ['sleep', 'infinity'] }],
      }),
    );
    provider = createAwsEcsProvider({
      region: REGION,
      endpoint: moto.endpoint,
      credentials: moto.credentials,
      cluster: CLUSTER,
      taskDefinition: 'autovibe-machine',
      containerName: 'machine',
      subnets: [subnetId],
      // moto needs them explicit; AWS would use the VPC's default group.
      securityGroups: [securityGroupId],
    });
  });

  after(async () => {
    await moto?.stop();
  });

  it('is available when the cluster answers, and says why not when it does not', async () => {
    assert.deepEqual(await provider.availability(), { available: true });
    const dead = createAwsEcsProvider({
      region: REGION,
      endpoint: 'http://127.0.0.1:9',
      credentials: moto.credentials,
      cluster: CLUSTER,
      taskDefinition: 'autovibe-machine',
      containerName: 'machine',
      subnets: [subnetId],
    });
    const result = await dead.availability();
    assert.equal(result.available, false);
    assert.match(result.reason ?? '', /ECS cluster autovibe-machines in us-east-1 cannot be reached/);
  });

  it('runs a spot machine on FARGATE_SPOT and an on-demand one on FARGATE, tagged and sized by profile', async () => {
    const spotReq = request();
    const spot = await provider.provision(spotReq);
    const onDemand = await provider.provision(request({ spot: false }));

    const spotTask = await describeTask(spot.instanceRef);
    assert.equal(spotTask?.capacityProviderName, 'FARGATE_SPOT');
    assert.equal((await describeTask(onDemand.instanceRef))?.capacityProviderName, 'FARGATE');
    assert.equal(spotTask?.startedBy, spotReq.machineId);
    assert.equal(tag(spotTask?.tags, TAG_MACHINE), spotReq.machineId);
    assert.equal(tag(spotTask?.tags, TAG_PROJECT), spotReq.projectId);
    assert.equal(tag(spotTask?.tags, 'autovibe:objective'), 'objective-7');
    assert.deepEqual({ cpu: spotTask?.overrides?.cpu, memory: spotTask?.overrides?.memory }, { cpu: '1024', memory: '2048' });
    assert.deepEqual(fargateSize('lightweight'), { cpu: '1024', memory: '2048' });

    assert.equal(spot.provider, 'aws-ecs');
    assert.equal(spot.machineId, spotReq.machineId);
    assert.equal(spot.details?.capacityProvider, 'FARGATE_SPOT');

    // A retried provision finds the running task instead of starting another.
    assert.equal((await provider.provision(spotReq)).instanceRef, spot.instanceRef);
    await Promise.all([provider.terminate(spot), provider.terminate(onDemand)]);
  });

  it('lists only its own running tasks, and terminate stops them (safe to repeat)', async () => {
    const a = await provider.provision(request());
    const b = await provider.provision(request({ projectId: 'project-other', spot: false }));
    // A task someone else runs in the same cluster, without our tags.
    const foreign = await ecs.send(
      new RunTaskCommand({
        cluster: CLUSTER,
        taskDefinition: 'autovibe-machine',
        launchType: 'FARGATE',
        networkConfiguration: { awsvpcConfiguration: { subnets: [subnetId], securityGroups: [securityGroupId] } },
      }),
    );
    const foreignArn = foreign.tasks?.[0]?.taskArn;
    assert.ok(foreignArn);

    const listed = await provider.listInstances();
    const byRef = new Map(listed.map((i) => [i.instanceRef, i]));
    assert.equal(byRef.get(a.instanceRef)?.machineId, a.machineId);
    assert.equal(byRef.get(b.instanceRef)?.projectId, 'project-other');
    assert.ok(!byRef.has(foreignArn), 'an untagged task is not ours');

    await provider.terminate(a);
    await provider.terminate(a);
    await provider.terminate({ ...a, instanceRef: `arn:aws:ecs:us-east-1:123456789012:task/${CLUSTER}/00000000000000000000000000000000` });
    const afterList = (await provider.listInstances()).map((i) => i.instanceRef);
    assert.ok(!afterList.includes(a.instanceRef));
    assert.ok(afterList.includes(b.instanceRef));
    assert.equal((await describeTask(a.instanceRef))?.lastStatus, 'STOPPED');
    await provider.terminate(b);
  });

  it('reports an interruption when the task is stopped from outside; re-provisioning starts a new task', async () => {
    const req = request();
    const instance = await provider.provision(req);
    assert.deepEqual(await provider.checkInterruption(instance), { interrupted: false });
    // What Fargate Spot does when it takes capacity back, done here with a plain ECS client.
    await ecs.send(new StopTaskCommand({ cluster: CLUSTER, task: instance.instanceRef, reason: 'Your Spot Task was interrupted.' }));
    const check = await provider.checkInterruption(instance);
    assert.equal(check.interrupted, true);
    assert.match(check.reason ?? '', /Spot Task was interrupted/);
    assert.deepEqual(await provider.exec(instance, { command: 'true', network: false, deadline: Date.now() + 10_000 }), {
      exitCode: null,
      stopReason: 'interrupted',
    });
    const replacement = await provider.provision(req);
    assert.notEqual(replacement.instanceRef, instance.instanceRef);
    assert.equal((await describeTask(replacement.instanceRef))?.capacityProviderName, 'FARGATE_SPOT');
    await provider.terminate(replacement);
  });

  it('exec on a running task says it needs ECS Exec; snapshot says there is no disk', async () => {
    const instance = await provider.provision(request());
    assert.deepEqual(await provider.exec(instance, { command: 'true', network: false, deadline: Date.now() - 1 }), {
      exitCode: null,
      stopReason: 'deadline',
    });
    await assert.rejects(
      provider.exec(instance, { command: 'true', network: false, deadline: Date.now() + 10_000 }),
      (err: unknown) => err instanceof ExecUnsupportedError && /ECS Exec/.test(err.message),
    );
    await assert.rejects(provider.snapshot(instance, { checkpointId: 'checkpoint-1' }), /keeps no disk/);
    await provider.terminate(instance);
  });
});

describe('aws-ecs provider with the remote runner over S3 (moto; the task is a STAND-IN running the real command override)', function () {
  this.timeout(120_000);
  const BUCKET = 'autovibe-ecs-machines';
  let moto: MotoServer;
  let ecs: ECSClient;
  let s3: S3Client;
  let provider: AwsEcsProvider;

  before(async () => {
    moto = await startMoto();
    const clientConfig = { region: REGION, endpoint: moto.endpoint, credentials: moto.credentials };
    ecs = new ECSClient(clientConfig);
    s3 = new S3Client({ ...clientConfig, forcePathStyle: true });
    await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
    // Tasks stay RUNNING however often they are described (moto advances them per read by default).
    await moto.setTransition('ecs::task', { progression: 'manual', times: 1_000_000 });
    const ec2 = new EC2Client(clientConfig);
    const subnetId = (await ec2.send(new DescribeSubnetsCommand({}))).Subnets?.[0]?.SubnetId ?? '';
    const securityGroupId = (await ec2.send(new DescribeSecurityGroupsCommand({}))).SecurityGroups?.[0]?.GroupId ?? '';
    await ecs.send(new CreateClusterCommand({ clusterName: CLUSTER, capacityProviders: ['FARGATE', 'FARGATE_SPOT'] }));
    await ecs.send(
      new RegisterTaskDefinitionCommand({
        family: 'autovibe-machine',
        requiresCompatibilities: ['FARGATE'],
        networkMode: 'awsvpc',
        cpu: '1024',
        memory: '2048',
        containerDefinitions: [{ name: 'machine', image: 'autovibe/machine:latest', essential: true, cpu: 1024, memory: 2048 }],
      }),
    );
    provider = createAwsEcsProvider({
      region: REGION,
      endpoint: moto.endpoint,
      credentials: moto.credentials,
      cluster: CLUSTER,
      taskDefinition: 'autovibe-machine',
      containerName: 'machine',
      subnets: [subnetId],
      securityGroups: [securityGroupId],
      workspaceBucket: BUCKET,
      // Small output segments, so a test's output spans many (and overflows the last).
      outputSegmentBytes: SEGMENT_BYTES,
      outputSegments: SEGMENTS,
      pollIntervalMs: 200,
    });
  });

  after(async () => {
    await moto?.stop();
  });

  remoteRunnerCases(
    () => ({
      provider,
      standIn: (instance) => standInForEcsTask(ecs, CLUSTER, instance.instanceRef, 'machine'),
      reachableUrl: `${moto.endpoint}/moto-api/data.json`,
      // What Fargate does when it reclaims Spot capacity.
      interrupt: async (instance) => {
        await ecs.send(new StopTaskCommand({ cluster: CLUSTER, task: instance.instanceRef, reason: 'SpotInterruption' }));
      },
      s3,
      bucket: BUCKET,
      segmentBytes: SEGMENT_BYTES,
      segments: SEGMENTS,
    }),
    'project-ecs-runner',
  );
});

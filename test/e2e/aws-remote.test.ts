/**
 * Remote machines end to end through the REST API: the real platform (Temporal, Postgres, git)
 * with the aws-ec2 and aws-ecs providers pointed at a moto server (EC2, ECS, S3 through the real
 * AWS SDK). moto starts no VM or container, so a STAND-IN (test/support/remote-stand-in.ts) runs
 * the instance's real boot script (EC2 user data / ECS command override) as a host process; the
 * runner protocol, curl against moto's presigned URLs and tar are all real.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { CreateBucketCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { DescribeImagesCommand, DescribeInstancesCommand, DescribeSecurityGroupsCommand, DescribeSubnetsCommand, EC2Client } from '@aws-sdk/client-ec2';
import { CreateClusterCommand, ECSClient, RegisterTaskDefinitionCommand } from '@aws-sdk/client-ecs';
import { startMoto, type MotoServer } from '../../scripts/services/moto.js';
import { projectWithBudget, startTestPlatform, waitForMachine, type TestPlatform } from '../support/platform.js';
import { standInForEc2Machine, standInForEcsMachine, type RemoteStandIn } from '../support/remote-stand-in.js';

const REGION = 'us-east-1';
const BUCKET = 'autovibe-e2e-machines';
const CLUSTER = 'autovibe-e2e';
const CONTAINER = 'machine';

describe('remote machines end to end (aws-ec2 and aws-ecs at moto, instances are STAND-INs)', function () {
  this.timeout(240_000);
  let moto: MotoServer;
  let ec2: EC2Client;
  let ecs: ECSClient;
  let s3: S3Client;
  let p: TestPlatform;
  let projectId: string;
  const standIns: RemoteStandIn[] = [];

  const file = async (checkpointId: string, name: string) => p.api('GET', `/v1/checkpoints/${checkpointId}/files/${name}`);
  const logOf = (machineId: string) => fs.readFileSync(path.join(p.home, 'logs', `${machineId}.log`), 'utf8');
  const objectsOf = async (machineId: string) =>
    ((await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: `autovibe/machines/${projectId}/${machineId}/` }))).Contents ?? []).length;

  before(async () => {
    moto = await startMoto();
    const clientConfig = { region: REGION, endpoint: moto.endpoint, credentials: moto.credentials };
    ec2 = new EC2Client(clientConfig);
    ecs = new ECSClient(clientConfig);
    s3 = new S3Client({ ...clientConfig, forcePathStyle: true });
    await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
    // Tasks stay RUNNING however often they are described (moto advances them per read by default).
    await moto.setTransition('ecs::task', { progression: 'manual', times: 1_000_000 });
    const images = await ec2.send(new DescribeImagesCommand({ Owners: ['amazon'] }));
    const imageId = images.Images?.find((i) => i.RootDeviceType === 'ebs' && i.ImageId)?.ImageId ?? '';
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
        // Container-level cpu/memory too: moto sums them to place tasks (AWS accepts either).
        containerDefinitions: [{ name: CONTAINER, image: 'debian:stable-slim', essential: true, cpu: 1024, memory: 2048 }],
      }),
    );
    p = await startTestPlatform({
      label: 'aws-remote',
      env: {
        AWS_REGION: REGION,
        AWS_ACCESS_KEY_ID: moto.credentials.accessKeyId,
        AWS_SECRET_ACCESS_KEY: moto.credentials.secretAccessKey,
        AUTOVIBE_AWS_ENDPOINT: moto.endpoint,
        AUTOVIBE_AWS_EC2_IMAGE_ID: imageId,
        AUTOVIBE_AWS_WORKSPACE_BUCKET: BUCKET,
        AUTOVIBE_AWS_ECS_CLUSTER: CLUSTER,
        AUTOVIBE_AWS_ECS_TASK_DEFINITION: 'autovibe-machine',
        AUTOVIBE_AWS_ECS_SUBNETS: subnetId,
        // moto needs them explicit; AWS would use the VPC's default group.
        AUTOVIBE_AWS_ECS_SECURITY_GROUPS: securityGroupId,
        AUTOVIBE_AWS_ECS_CONTAINER: CONTAINER,
      },
    });
    projectId = await projectWithBudget(p, '5.00');
  });
  after(async () => {
    for (const s of standIns) await s.stop();
    await p?.stop();
    await moto?.stop();
  });

  const start = async (provider: 'aws-ec2' | 'aws-ecs', command: string): Promise<{ id: string; standIn: RemoteStandIn }> => {
    // cache: false — both providers run the same commands, and each must run on its own instance.
    const res = await p.api('POST', '/v1/machines', { projectId, type: 'shell', provider, command, cache: false, limits: { money: '0.25', minutes: 5 } });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    const id = res.body.id as string;
    const { standIn } = provider === 'aws-ec2' ? await standInForEc2Machine(ec2, id) : await standInForEcsMachine(ecs, CLUSTER, id, CONTAINER);
    standIns.push(standIn);
    return { id, standIn };
  };

  for (const provider of ['aws-ec2', 'aws-ecs'] as const) {
    it(`${provider}: a shell machine runs on the instance; its output is in the log, its files in the final checkpoint, the instance is gone`, async () => {
      const { id, standIn } = await start(
        provider,
        'cat README.md 2>/dev/null; echo "made on the instance" > made.txt; mkdir -p out && echo deep > out/deep.txt; echo "hello from the instance"; echo "a warning" >&2',
      );
      const m = await waitForMachine(p, id, 120_000);
      assert.equal(m.status, 'completed', JSON.stringify(m));
      assert.equal(m.provider, provider);
      assert.equal(m.exitCode, 0);
      const log = logOf(id);
      assert.match(log, /hello from the instance/);
      assert.match(log, /a warning/);
      const final = m.checkpoints.at(-1);
      assert.ok(final, JSON.stringify(m));
      const made = await file(final, 'made.txt');
      assert.equal(made.status, 200, JSON.stringify(made.body));
      assert.equal(made.body, 'made on the instance\n');
      assert.equal((await file(final, 'out/deep.txt')).body, 'deep\n');
      // The instance is terminated, the stand-in with it, and the machine's objects are gone.
      if (provider === 'aws-ec2') {
        const found = (await ec2.send(new DescribeInstancesCommand({ InstanceIds: [m.instanceRef] }))).Reservations?.[0]?.Instances?.[0];
        assert.equal(found?.State?.Name, 'terminated');
      }
      for (let i = 0; i < 50 && !standIn.stopped(); i++) await new Promise((r) => setTimeout(r, 100));
      assert.equal(standIn.stopped(), true, 'the stand-in stopped with its instance');
      assert.equal(await objectsOf(id), 0);
    });

    it(`${provider}: a command failing on the instance fails the machine with its exit code`, async () => {
      const { id } = await start(provider, 'echo "about to fail"; exit 7');
      const m = await waitForMachine(p, id, 120_000);
      assert.equal(m.status, 'failed', JSON.stringify(m));
      assert.equal(m.exitCode, 7);
      assert.match(m.error, /exited with code 7: about to fail/);
    });
  }
});

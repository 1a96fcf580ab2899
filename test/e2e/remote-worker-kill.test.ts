/**
 * A worker SIGKILLed while a machine's command runs on a remote instance: aws-ec2 against a moto
 * server (the real AWS SDK, S3 presigned URLs, curl, tar, the runner protocol). moto starts no VM,
 * so a STAND-IN (test/support/remote-stand-in.ts) runs the instance's real user data as a host
 * process; it lives in this test process, so, like a VM, it outlives the killed worker.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { DescribeImagesCommand, DescribeInstancesCommand, EC2Client } from '@aws-sdk/client-ec2';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { startMoto, type MotoServer } from '../../scripts/services/moto.js';
import { projectWithBudget, startTestPlatform, waitFor, waitForMachine, type TestPlatform } from '../support/platform.js';
import { standInForEc2Machine, type RemoteStandIn } from '../support/remote-stand-in.js';
import { WorkerProcesses } from '../support/worker-processes.js';

const REGION = 'us-east-1';
const BUCKET = 'autovibe-kill-machines';

describe('a worker killed while a machine runs on a remote instance (aws-ec2 at moto, STAND-IN VM)', function () {
  this.timeout(240_000);
  let moto: MotoServer;
  let ec2: EC2Client;
  let p: TestPlatform;
  let env: Record<string, string>;
  const workers = new WorkerProcesses();
  const standIns: RemoteStandIn[] = [];

  before(async () => {
    moto = await startMoto();
    const clientConfig = { region: REGION, endpoint: moto.endpoint, credentials: moto.credentials };
    ec2 = new EC2Client(clientConfig);
    await new S3Client({ ...clientConfig, forcePathStyle: true }).send(new CreateBucketCommand({ Bucket: BUCKET }));
    const images = await ec2.send(new DescribeImagesCommand({ Owners: ['amazon'] }));
    env = {
      AWS_REGION: REGION,
      AWS_ACCESS_KEY_ID: moto.credentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: moto.credentials.secretAccessKey,
      AUTOVIBE_AWS_ENDPOINT: moto.endpoint,
      AUTOVIBE_AWS_EC2_IMAGE_ID: images.Images?.find((i) => i.RootDeviceType === 'ebs' && i.ImageId)?.ImageId ?? '',
      AUTOVIBE_AWS_WORKSPACE_BUCKET: BUCKET,
    };
    // The api runs here with the same provider settings; workers are processes we can kill.
    p = await startTestPlatform({ label: 'remote-kill', worker: false, heartbeatTimeoutSeconds: 3, env });
  });
  afterEach(async () => {
    await workers.killAll();
  });
  after(async () => {
    for (const s of standIns) await s.stop();
    await p?.stop();
    await moto?.stop();
  });

  it('finishes after a restart: the command starts over from the base files on the same instance, one checkpoint, one settled cost, the instance terminated', async () => {
    let worker = workers.start(p, env);
    const projectId = await projectWithBudget(p, '2.00');
    await waitFor(
      async () => ((await p.api('GET', '/v1/providers')).body.items.find((i: any) => i.id === 'aws-ec2')?.available ? true : null),
      'the worker to report the aws-ec2 provider',
      60_000,
    );
    const start = await p.api('POST', '/v1/machines', {
      projectId,
      type: 'shell',
      provider: 'aws-ec2',
      command: 'echo attempt >> attempts.txt; sleep 8; echo done > done.txt',
      cache: false,
      limits: { money: '0.50', minutes: 10 },
    });
    assert.equal(start.status, 202, JSON.stringify(start.body));
    const id: string = start.body.id;
    const { instanceId, standIn } = await standInForEc2Machine(ec2, id);
    standIns.push(standIn);
    await waitFor(async () => fs.existsSync(path.join(standIn.workdir, 'attempts.txt')), 'the command to run on the instance', 60_000);

    await workers.kill(worker);
    // Unlike a local sandbox, the instance does not die with the worker.
    assert.equal(standIn.stopped(), false);
    assert.equal((await p.api('GET', `/v1/machines/${id}`)).body.status, 'running');

    worker = workers.start(p, env);
    const m = await waitForMachine(p, id, 150_000);
    assert.equal(m.status, 'completed', JSON.stringify(m));
    assert.equal(m.instanceRef, instanceId, 'the same instance went on');
    assert.equal(m.checkpoints.length, 1);
    // The retry re-delivered the base files: the killed attempt's line is not in the checkpoint.
    assert.equal((await p.api('GET', `/v1/checkpoints/${m.checkpoints[0]}/files/attempts.txt`)).body, 'attempt\n');
    assert.equal((await p.api('GET', `/v1/checkpoints/${m.checkpoints[0]}/files/done.txt`)).body, 'done\n');

    assert.equal((await p.db('checkpoints').where({ machine_id: id })).length, 1);
    assert.equal((await p.db('cost_events').where({ machine_id: id })).length, 1);
    const reservations = await p.db('reservations').where({ machine_id: id });
    assert.equal(reservations.length, 1);
    assert.equal(reservations[0].status, 'settled');
    const project = (await p.api('GET', `/v1/projects/${projectId}`)).body;
    assert.equal(project.budget.reserved, '0.00');
    assert.equal(project.budget.spent, m.cost.amount);

    // One instance for the machine, terminated, and the stand-in gone with it.
    const launched = (await ec2.send(new DescribeInstancesCommand({ Filters: [{ Name: 'tag:autovibe:machine', Values: [id] }] }))).Reservations?.flatMap(
      (r) => r.Instances ?? [],
    );
    assert.equal(launched?.length, 1);
    assert.equal(launched?.[0]?.State?.Name, 'terminated');
    await waitFor(async () => standIn.stopped(), 'the stand-in to stop with its instance', 10_000);
  });
});

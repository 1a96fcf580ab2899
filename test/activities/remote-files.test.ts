/**
 * The machine activities with a remote provider (aws-ec2 at moto, the VM a STAND-IN running the
 * real user data): a checkpoint collects the instance's files first (once), and a retried command
 * (activity attempt 2, through Temporal's MockActivityEnvironment) starts from the base files
 * re-delivered to the instance, as it would on local.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { DescribeImagesCommand, EC2Client } from '@aws-sdk/client-ec2';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createProviders } from '../../activities/compute/index.js';
import { createMachineRunActivities } from '../../activities/machine-run.js';
import { insertMachine, updateMachine } from '../../store/machines.js';
import { startMoto, type MotoServer } from '../../scripts/services/moto.js';
import { projectWithBudget, startTestPlatform, type TestPlatform } from '../support/platform.js';
import { standInForEc2Instance, type RemoteStandIn } from '../support/remote-stand-in.js';

const REGION = 'us-east-1';
const BUCKET = 'autovibe-remote-files';

describe('machine activities with a remote provider: collect on checkpoint, re-deliver on retry (aws-ec2 at moto, STAND-IN VM)', function () {
  this.timeout(180_000);
  let moto: MotoServer;
  let p: TestPlatform;
  let standIn: RemoteStandIn | undefined;

  before(async () => {
    moto = await startMoto();
    const clientConfig = { region: REGION, endpoint: moto.endpoint, credentials: moto.credentials };
    await new S3Client({ ...clientConfig, forcePathStyle: true }).send(new CreateBucketCommand({ Bucket: BUCKET }));
    const images = await new EC2Client(clientConfig).send(new DescribeImagesCommand({ Owners: ['amazon'] }));
    p = await startTestPlatform({
      label: 'remote-files',
      worker: false,
      env: {
        AWS_REGION: REGION,
        AWS_ACCESS_KEY_ID: moto.credentials.accessKeyId,
        AWS_SECRET_ACCESS_KEY: moto.credentials.secretAccessKey,
        AUTOVIBE_AWS_ENDPOINT: moto.endpoint,
        AUTOVIBE_AWS_EC2_IMAGE_ID: images.Images?.find((i) => i.RootDeviceType === 'ebs')?.ImageId ?? '',
        AUTOVIBE_AWS_WORKSPACE_BUCKET: BUCKET,
      },
    });
  });
  after(async () => {
    await standIn?.stop();
    await p?.stop();
    await moto?.stop();
  });

  it('checkpoints hold the files the command left on the VM; a retried command starts from the base files', async () => {
    const projectId = await projectWithBudget(p, '5.00');
    const root = (await p.api('GET', `/v1/projects/${projectId}/checkpoints`)).body.items[0].id as string;
    const machineId = `machine-${crypto.randomUUID()}`;
    await insertMachine(p.db, {
      id: machineId,
      projectId,
      objectiveId: null,
      type: 'shell',
      provider: 'aws-ec2',
      profile: 'lightweight',
      command: 'true',
      prompt: null,
      parentCheckpointId: root,
      limits: { money: '0.25', minutes: 5 },
      workflowId: machineId,
      createdBy: 'test',
    });
    const acts = createMachineRunActivities({ db: p.db, config: p.config, log: p.log, temporal: p.temporal, providers: createProviders(p.config) });
    const first = new MockActivityEnvironment({ attempt: 1 });
    const retry = new MockActivityEnvironment({ attempt: 2 });
    const call = <A extends unknown[], R>(env: MockActivityEnvironment, fn: (...a: A) => Promise<R>, ...a: A): Promise<R> => env.run(fn, ...a) as Promise<R>;
    const file = async (checkpointId: string, name: string) => p.api('GET', `/v1/checkpoints/${checkpointId}/files/${name}`);
    const at = () => new Date().toISOString();

    const sandbox = await call(first, acts.provisionSandbox, { machineId, projectId, checkpointId: root, provider: 'aws-ec2', spot: false });
    await updateMachine(p.db, machineId, { status: 'running', instanceRef: sandbox.instanceRef });
    standIn = await standInForEc2Instance(new EC2Client({ region: REGION, endpoint: moto.endpoint, credentials: moto.credentials }), sandbox.instanceRef);
    const run = (env: MockActivityEnvironment, command: string, baseCommit: string) =>
      call(env, acts.runCommand, {
        machineId,
        projectId,
        command,
        baseCommit,
        deadline: Date.now() + 60_000,
        deadlineReason: 'time',
        instance: sandbox.instance,
      });

    // A file made on the VM is in the checkpoint: collected before the commit.
    const made = await run(first, 'echo base > base.txt', sandbox.commit);
    assert.equal(made.exitCode, 0, made.outputTail);
    const cp1 = await call(first, acts.createCheckpoint, {
      checkpointId: `checkpoint-${crypto.randomUUID()}`,
      machineId,
      projectId,
      parentCheckpointId: root,
      kind: 'manual',
      trigger: 'test',
      at: at(),
    });
    assert.equal((await file(cp1.checkpointId, 'base.txt')).body, 'base\n');

    // The first attempt leaves a mess on the VM; the retried attempt finds the base files only.
    const messy = await run(first, 'rm base.txt; echo junk > junk.txt', cp1.commit);
    assert.equal(messy.exitCode, 0, messy.outputTail);
    assert.ok(fs.existsSync(path.join(standIn.workdir, 'junk.txt')));
    const clean = await run(retry, 'cat base.txt && test ! -e junk.txt && echo clean > clean.txt', cp1.commit);
    assert.equal(clean.exitCode, 0, clean.outputTail);
    assert.equal(clean.outputTail, 'base\n');

    const input = {
      checkpointId: `checkpoint-${crypto.randomUUID()}`,
      machineId,
      projectId,
      parentCheckpointId: cp1.checkpointId,
      kind: 'final' as const,
      trigger: 'end',
      at: at(),
    };
    const cp2 = await call(first, acts.createCheckpoint, input);
    assert.equal((await file(cp2.checkpointId, 'clean.txt')).body, 'clean\n');
    assert.equal((await file(cp2.checkpointId, 'base.txt')).body, 'base\n');
    assert.equal((await file(cp2.checkpointId, 'junk.txt')).status, 404);

    // A retry of the same checkpoint collects nothing again: the host keeps the files it was made of.
    fs.writeFileSync(path.join(standIn.workdir, 'late.txt'), 'late\n');
    const again = await call(retry, acts.createCheckpoint, input);
    assert.equal(again.commit, cp2.commit);
    assert.equal(fs.existsSync(path.join(p.config.workspacesDir, machineId, 'late.txt')), false);

    await call(first, acts.terminateSandbox, { machineId, projectId, instance: sandbox.instance });
  });
});

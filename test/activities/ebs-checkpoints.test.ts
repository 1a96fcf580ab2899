/**
 * EBS snapshots of EC2 machines' checkpoints, through the machine-run and snapshot activities with
 * the providers the platform builds from its configuration: a real AwsEc2Provider (real AWS SDK)
 * against moto's server, real Postgres, real git. moto runs no VM, so the files a checkpoint commits
 * are the host workspace's; what is checked is what EC2 holds: snapshots, their copies, and the
 * volumes of restored instances.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { MockActivityEnvironment } from '@temporalio/testing';
import {
  DeleteSnapshotCommand,
  DescribeImagesCommand,
  DescribeInstancesCommand,
  DescribeSnapshotsCommand,
  DescribeVolumesCommand,
  EC2Client,
  TerminateInstancesCommand,
  type Snapshot,
  type Tag,
} from '@aws-sdk/client-ec2';
import { createProviders } from '../../activities/compute/index.js';
import { TAG_CHECKPOINT, TAG_SOURCE_SNAPSHOT } from '../../activities/compute/aws-ec2.js';
import { createMachineRunActivities, type RunCommandResult } from '../../activities/machine-run.js';
import { createSnapshotActivities } from '../../activities/snapshots.js';
import type { ActivityDeps } from '../../activities/deps.js';
import { listAudit } from '../../store/audit.js';
import { getInstanceSnapshot } from '../../store/instance-snapshots.js';
import { insertMachine, updateMachine } from '../../store/machines.js';
import { startMoto, type MotoServer } from '../../scripts/services/moto.js';
import { projectWithBudget, startTestPlatform, type TestPlatform } from '../support/platform.js';

const REGION = 'us-east-1';
const REPLICA = 'eu-west-1';
const tag = (tags: Tag[] | undefined, key: string) => tags?.find((t) => t.Key === key)?.Value;

describe('EBS snapshots of EC2 checkpoints (machine-run + snapshot activities, real AWS SDK against moto)', function () {
  this.timeout(180_000);
  let moto: MotoServer;
  let p: TestPlatform;
  let ec2: EC2Client;
  let ec2Replica: EC2Client;
  let acts: ReturnType<typeof createMachineRunActivities>;
  let snapshots: ReturnType<typeof createSnapshotActivities>;
  let userId: string;

  before(async () => {
    moto = await startMoto();
    const clientConfig = (region: string) => ({ region, endpoint: moto.endpoint, credentials: moto.credentials });
    ec2 = new EC2Client(clientConfig(REGION));
    ec2Replica = new EC2Client(clientConfig(REPLICA));
    const images = await ec2.send(new DescribeImagesCommand({ Owners: ['amazon'] }));
    const imageId = images.Images?.find((i) => i.RootDeviceType === 'ebs' && i.ImageId)?.ImageId;
    assert.ok(imageId, 'moto lists an EBS-backed AMI');
    // No worker: the activities run here, on the providers the platform's configuration gives.
    p = await startTestPlatform({
      label: 'ebs',
      worker: false,
      env: {
        AWS_REGION: REGION,
        AUTOVIBE_AWS_ENDPOINT: moto.endpoint,
        AWS_ACCESS_KEY_ID: moto.credentials.accessKeyId,
        AWS_SECRET_ACCESS_KEY: moto.credentials.secretAccessKey,
        AUTOVIBE_AWS_EC2_IMAGE_ID: imageId,
        AUTOVIBE_AWS_REPLICA_REGIONS: REPLICA,
      },
    });
    const deps: ActivityDeps = { db: p.db, config: p.config, log: pino({ level: 'silent' }), temporal: p.temporal, providers: createProviders(p.config) };
    acts = createMachineRunActivities(deps);
    snapshots = createSnapshotActivities(deps);
    userId = (await p.db('users').first('id')).id;
  });

  after(async () => {
    await p?.stop();
    await moto?.stop();
  });

  const rootOf = async (projectId: string): Promise<string> => (await p.api('GET', `/v1/projects/${projectId}`)).body.rootCheckpointId;

  /** An aws-ec2 machine row, as POST /v1/machines makes it. */
  const newMachine = async (projectId: string, parentCheckpointId: string): Promise<string> => {
    const id = `machine-${crypto.randomUUID()}`;
    await insertMachine(p.db, {
      id,
      projectId,
      objectiveId: null,
      type: 'shell',
      provider: 'aws-ec2',
      profile: 'lightweight',
      command: 'true',
      prompt: null,
      parentCheckpointId,
      limits: { money: '1.00', minutes: 10 },
      workflowId: id,
      createdBy: userId,
    });
    return id;
  };

  /** Provisions the machine on EC2 from the checkpoint and marks it running there (as the machine workflow does). */
  const provision = async (projectId: string, machineId: string, checkpointId: string) => {
    const sandbox = await acts.provisionSandbox({ machineId, projectId, checkpointId, provider: 'aws-ec2', profile: 'lightweight', spot: false });
    await acts.markMachine({ machineId, status: 'running', instanceRef: sandbox.instanceRef, started: true });
    return sandbox;
  };

  const checkpoint = (projectId: string, machineId: string, parentCheckpointId: string, checkpointId = `checkpoint-${crypto.randomUUID()}`) =>
    acts.createCheckpoint({ checkpointId, machineId, projectId, parentCheckpointId, kind: 'manual', trigger: 'request', at: new Date().toISOString() });

  const snapshotsTagged = async (client: EC2Client, key: string, value: string): Promise<Snapshot[]> =>
    (await client.send(new DescribeSnapshotsCommand({ OwnerIds: ['self'], Filters: [{ Name: `tag:${key}`, Values: [value] }] }))).Snapshots ?? [];

  const volumeSnapshotsOf = async (instanceRef: string): Promise<string[]> =>
    ((await ec2.send(new DescribeVolumesCommand({ Filters: [{ Name: 'attachment.instance-id', Values: [instanceRef] }] }))).Volumes ?? []).map(
      (v) => v.SnapshotId ?? '',
    );

  let projectId: string;
  let checkpointId: string;
  let snapshotRef: string;

  it('a checkpoint of an EC2 machine keeps an EBS snapshot of its root volume, tagged, with a copy in the replica region', async () => {
    projectId = await projectWithBudget(p);
    const root = await rootOf(projectId);
    const machineId = await newMachine(projectId, root);
    const sandbox = await provision(projectId, machineId, root);
    fs.writeFileSync(path.join(sandbox.workspace, 'work.txt'), 'done\n');

    checkpointId = `checkpoint-${crypto.randomUUID()}`;
    const made = await checkpoint(projectId, machineId, root, checkpointId);
    assert.equal(made.checkpointId, checkpointId);

    const row = await getInstanceSnapshot(p.db, checkpointId);
    assert.ok(row, 'the checkpoint has an instance snapshot row');
    assert.equal(row.provider, 'aws-ec2');
    assert.equal(row.region, REGION);
    assert.equal(row.machineId, machineId);
    snapshotRef = row.snapshotRef;

    // The snapshot in EC2 is of this instance's root volume and carries the checkpoint's tag.
    const tagged = await snapshotsTagged(ec2, TAG_CHECKPOINT, checkpointId);
    const original = tagged.find((s) => s.SnapshotId === snapshotRef);
    assert.ok(original, 'EC2 holds the snapshot tagged with the checkpoint');
    const found = (await ec2.send(new DescribeInstancesCommand({ InstanceIds: [sandbox.instanceRef] }))).Reservations?.[0]?.Instances?.[0];
    const rootVolume = found?.BlockDeviceMappings?.find((m) => m.DeviceName === found.RootDeviceName)?.Ebs?.VolumeId;
    assert.ok(rootVolume);
    assert.equal(original.VolumeId, rootVolume);

    // Its copy in the replica region, recorded with its id and state.
    const copies = await snapshotsTagged(ec2Replica, TAG_SOURCE_SNAPSHOT, snapshotRef);
    assert.equal(copies.length, 1, 'one copy in the replica region');
    assert.deepEqual(row.replicas, [{ region: REPLICA, state: 'completed', snapshotId: copies[0]!.SnapshotId }]);

    // The same checkpoint again (a retried activity) makes no second snapshot.
    await checkpoint(projectId, machineId, root, checkpointId);
    assert.equal((await snapshotsTagged(ec2, TAG_CHECKPOINT, checkpointId)).length, 1);
    assert.equal((await getInstanceSnapshot(p.db, checkpointId))?.snapshotRef, snapshotRef);
    assert.ok((await listAudit(p.db, { subjectId: checkpointId, action: 'checkpoint.instance_snapshot', limit: 10 })).length === 1);
    await acts.terminateSandbox({ machineId, projectId, instance: sandbox.instance });
  });

  it("provisioning from that checkpoint starts an instance whose root volume is made from the checkpoint's snapshot", async () => {
    const machineId = await newMachine(projectId, checkpointId);
    const sandbox = await provision(projectId, machineId, checkpointId);
    assert.equal(sandbox.instance.details?.fromSnapshot, snapshotRef);
    assert.ok((await volumeSnapshotsOf(sandbox.instanceRef)).includes(snapshotRef), 'a volume of the new instance comes from the snapshot');
    // The workspace still holds the checkpoint's files (the host side commits the next checkpoints).
    assert.equal(fs.readFileSync(path.join(sandbox.workspace, 'work.txt'), 'utf8'), 'done\n');
    const events = await listAudit(p.db, { subjectId: machineId, action: 'machine.disk_restored', limit: 10 });
    assert.equal(events.length, 1);
    assert.equal(events[0]!.details.snapshotRef, snapshotRef);

    // A checkpoint without a disk snapshot (the project's root) starts a plain instance.
    const other = await newMachine(projectId, await rootOf(projectId));
    const plain = await provision(projectId, other, await rootOf(projectId));
    assert.equal(plain.instance.details?.fromSnapshot, undefined);
    assert.ok(!(await volumeSnapshotsOf(plain.instanceRef)).includes(snapshotRef));
    await acts.terminateSandbox({ machineId, projectId, instance: sandbox.instance });
    await acts.terminateSandbox({ machineId: other, projectId, instance: plain.instance });
  });

  it('with the original snapshot gone, the machine is restored from the copy in the replica region', async () => {
    await ec2.send(new DeleteSnapshotCommand({ SnapshotId: snapshotRef }));
    const replicaCopy = (await snapshotsTagged(ec2Replica, TAG_SOURCE_SNAPSHOT, snapshotRef))[0]!;

    const machineId = await newMachine(projectId, checkpointId);
    const sandbox = await provision(projectId, machineId, checkpointId);
    // The replica's copy was brought back to the home region and the instance made from it.
    const home = (await snapshotsTagged(ec2, TAG_SOURCE_SNAPSHOT, snapshotRef)).filter((s) => s.SnapshotId !== replicaCopy.SnapshotId);
    assert.equal(home.length, 1, 'one copy brought back to the home region');
    assert.equal(tag(home[0]!.Tags, TAG_CHECKPOINT), checkpointId);
    assert.match(home[0]!.Description ?? '', new RegExp(`from its copy ${replicaCopy.SnapshotId} in ${REPLICA}`));
    assert.equal(sandbox.instance.details?.fromSnapshot, home[0]!.SnapshotId);
    assert.ok((await volumeSnapshotsOf(sandbox.instanceRef)).includes(home[0]!.SnapshotId!), 'a volume of the new instance comes from the copy');
    await acts.terminateSandbox({ machineId, projectId, instance: sandbox.instance });

    // Provisioning again reuses that copy instead of copying a second time.
    const again = await newMachine(projectId, checkpointId);
    const second = await provision(projectId, again, checkpointId);
    assert.equal(second.instance.details?.fromSnapshot, home[0]!.SnapshotId);
    assert.equal((await snapshotsTagged(ec2, TAG_SOURCE_SNAPSHOT, snapshotRef)).length, 1);
    await acts.terminateSandbox({ machineId: again, projectId, instance: second.instance });
  });

  it("an interrupted spot machine comes back on a new instance made from its checkpoint's disk snapshot", async () => {
    // The steps the machine workflow takes: provision, run (interrupted), record, terminate, provision again.
    const machineId = await newMachine(projectId, checkpointId);
    const sandbox = await acts.provisionSandbox({ machineId, projectId, checkpointId, provider: 'aws-ec2', profile: 'lightweight', spot: true });
    await acts.markMachine({ machineId, status: 'running', instanceRef: sandbox.instanceRef, started: true });
    const before = (await ec2.send(new DescribeInstancesCommand({ InstanceIds: [sandbox.instanceRef] }))).Reservations?.[0]?.Instances?.[0];
    assert.equal(before?.InstanceLifecycle, 'spot');
    // AWS takes the spot instance back.
    await ec2.send(new TerminateInstancesCommand({ InstanceIds: [sandbox.instanceRef] }));
    const run: RunCommandResult = await new MockActivityEnvironment().run(acts.runCommand, {
      machineId,
      projectId,
      command: 'make',
      baseCommit: sandbox.commit,
      deadline: Date.now() + 60_000,
      deadlineReason: 'time limit',
      instance: sandbox.instance,
    });
    assert.equal(run.interrupted, true);
    await acts.recordInterruption({ machineId, projectId, attempt: 1, instanceRef: sandbox.instanceRef, checkpointId });
    await acts.terminateSandbox({ machineId, projectId, instance: sandbox.instance });

    const again = await acts.provisionSandbox({ machineId, projectId, checkpointId, provider: 'aws-ec2', profile: 'lightweight', spot: true });
    assert.notEqual(again.instanceRef, sandbox.instanceRef);
    const disk = (await getInstanceSnapshot(p.db, checkpointId))!;
    const fromSnapshot = again.instance.details?.fromSnapshot;
    assert.ok(fromSnapshot, 'the new instance is made from a snapshot');
    // The original was deleted by the test before: the copy brought back from the replica region.
    const home = await snapshotsTagged(ec2, TAG_SOURCE_SNAPSHOT, disk.snapshotRef);
    assert.deepEqual(
      home.map((s) => s.SnapshotId),
      [fromSnapshot],
    );
    assert.ok((await volumeSnapshotsOf(again.instanceRef)).includes(fromSnapshot));
    const events = (await listAudit(p.db, { subjectId: machineId, limit: 50 })).map((e) => e.action);
    assert.ok(events.indexOf('machine.interrupted') < events.lastIndexOf('machine.disk_restored'), events.join(', '));
    await acts.terminateSandbox({ machineId, projectId, instance: again.instance });
  });

  it('a snapshot that cannot be taken does not lose the checkpoint: it is audited and nothing is recorded', async () => {
    const root = await rootOf(projectId);
    const machineId = await newMachine(projectId, root);
    await provision(projectId, machineId, root);
    // The instance vanished under the machine (an id EC2 does not know).
    await updateMachine(p.db, machineId, { instanceRef: 'i-0123456789abcdef0' });
    const id = `checkpoint-${crypto.randomUUID()}`;
    const made = await checkpoint(projectId, machineId, root, id);
    assert.equal(made.checkpointId, id);
    assert.match(made.commit, /^[0-9a-f]{40}$/);
    assert.equal((await p.api('GET', `/v1/checkpoints/${id}`)).status, 200);
    assert.equal(await getInstanceSnapshot(p.db, id), null);
    const failed = await listAudit(p.db, { subjectId: id, action: 'checkpoint.instance_snapshot_failed', limit: 10 });
    assert.equal(failed.length, 1);
    assert.match(String(failed[0]!.details.error), /i-0123456789abcdef0/);
    await acts.terminateSandbox({ machineId, projectId });
  });

  it('GET /v1/checkpoints/:id shows the instance snapshot with its replicas read from EC2', async () => {
    const root = await rootOf(projectId);
    const machineId = await newMachine(projectId, root);
    const sandbox = await provision(projectId, machineId, root);
    const { checkpointId: id } = await checkpoint(projectId, machineId, root);
    const row = (await getInstanceSnapshot(p.db, id))!;
    const copy = (await snapshotsTagged(ec2Replica, TAG_SOURCE_SNAPSHOT, row.snapshotRef))[0]!;

    const res = await p.api('GET', `/v1/checkpoints/${id}`);
    assert.equal(res.status, 200);
    assert.equal(res.body.instanceSnapshot.provider, 'aws-ec2');
    assert.equal(res.body.instanceSnapshot.snapshotRef, row.snapshotRef);
    assert.equal(res.body.instanceSnapshot.region, REGION);
    assert.equal(res.body.instanceSnapshot.status, 'available');
    assert.equal(res.body.instanceSnapshot.replicasSource, 'provider');
    assert.deepEqual(res.body.instanceSnapshot.replicas, [{ region: REPLICA, state: 'completed', snapshotId: copy.SnapshotId }]);

    // Read live: the copy deleted at EC2 shows as missing, though the record still says completed.
    await ec2Replica.send(new DeleteSnapshotCommand({ SnapshotId: copy.SnapshotId! }));
    const after = await p.api('GET', `/v1/checkpoints/${id}`);
    assert.deepEqual(after.body.instanceSnapshot.replicas, [{ region: REPLICA, state: 'missing', snapshotId: null }]);

    // The scheduled backup finds it (recorded copy not completed once refreshed) and copies it again.
    await p
      .db('instance_snapshots')
      .where({ checkpoint_id: id })
      .update({ replicas: JSON.stringify([{ region: REPLICA, state: 'missing' }]) });
    assert.ok((await snapshots.listSnapshotBacklog({ limit: 50 })).includes(id));
    await snapshots.replicateCheckpointSnapshot({ checkpointId: id });
    const recopied = await snapshotsTagged(ec2Replica, TAG_SOURCE_SNAPSHOT, row.snapshotRef);
    assert.equal(recopied.length, 1, 'a new copy in the replica region');
    assert.deepEqual((await getInstanceSnapshot(p.db, id))?.replicas, [{ region: REPLICA, state: 'completed', snapshotId: recopied[0]!.SnapshotId }]);
    assert.ok(!(await snapshots.listSnapshotBacklog({ limit: 50 })).includes(id));

    // A checkpoint with no disk snapshot says so.
    assert.equal((await p.api('GET', `/v1/checkpoints/${root}`)).body.instanceSnapshot, null);
    await acts.terminateSandbox({ machineId, projectId, instance: sandbox.instance });
  });

  it('the prune deletes the EBS snapshots (and copies) of pruned checkpoints and keeps the ones still needed', async () => {
    const own = await projectWithBudget(p);
    const root = await rootOf(own);
    const machineId = await newMachine(own, root);
    await provision(own, machineId, root);
    const { checkpointId: old } = await checkpoint(own, machineId, root);
    const { checkpointId: milestone } = await checkpoint(own, machineId, old);
    const { checkpointId: fresh } = await checkpoint(own, machineId, milestone);
    await acts.terminateSandbox({ machineId, projectId: own });
    await acts.markMachine({ machineId, status: 'completed', ended: true });
    // Two of them aged out of the retention grid; one of those is a milestone (kept forever).
    const longAgo = new Date(Date.now() - 400 * 86_400_000);
    await p.db('checkpoints').whereIn('id', [old, milestone]).update({ created_at: longAgo });
    await p.db('checkpoints').where({ id: milestone }).update({ milestone: true });
    const refs = Object.fromEntries(
      await Promise.all([old, milestone, fresh].map(async (id) => [id, (await getInstanceSnapshot(p.db, id))!.snapshotRef] as const)),
    );
    for (const ref of Object.values(refs)) assert.equal((await snapshotsTagged(ec2Replica, TAG_SOURCE_SNAPSHOT, ref)).length, 1);

    const env = new MockActivityEnvironment();
    const plan = await snapshots.planSnapshotPrune({ at: new Date().toISOString() });
    const mine = plan.prune.filter((id) => [old, milestone, fresh].includes(id));
    assert.deepEqual(mine, [old]);
    await env.run(() => snapshots.pruneCheckpointSnapshots({ checkpointIds: plan.prune }));

    // The pruned checkpoint's snapshot and its copy are gone; the row stays, marked deleted.
    const gone = (await ec2.send(new DescribeSnapshotsCommand({ OwnerIds: ['self'] }))).Snapshots ?? [];
    assert.ok(!gone.some((s) => s.SnapshotId === refs[old]), 'the original is deleted');
    assert.equal((await snapshotsTagged(ec2Replica, TAG_SOURCE_SNAPSHOT, refs[old]!)).length, 0, 'its copy is deleted');
    assert.ok((await getInstanceSnapshot(p.db, old))?.deletedAt);
    assert.equal((await p.api('GET', `/v1/checkpoints/${old}`)).body.instanceSnapshot.status, 'deleted');
    assert.equal((await listAudit(p.db, { subjectId: old, action: 'snapshot.instance_deleted', limit: 10 })).length, 1);

    // The milestone and the recent one keep theirs, copies included.
    for (const id of [milestone, fresh]) {
      assert.ok(
        gone.some((s) => s.SnapshotId === refs[id]),
        `${id} keeps its snapshot`,
      );
      assert.equal((await snapshotsTagged(ec2Replica, TAG_SOURCE_SNAPSHOT, refs[id]!)).length, 1, `${id} keeps its copy`);
      assert.equal((await getInstanceSnapshot(p.db, id))?.deletedAt, null);
    }
    // A restore from the pruned checkpoint starts a plain instance (its disk snapshot is gone).
    const later = await newMachine(own, old);
    const plain = await provision(own, later, old);
    assert.equal(plain.instance.details?.fromSnapshot, undefined);
    await acts.terminateSandbox({ machineId: later, projectId: own, instance: plain.instance });

    // Pruning again finds nothing more to delete.
    await env.run(() => snapshots.pruneCheckpointSnapshots({ checkpointIds: [old] }));
    assert.equal((await listAudit(p.db, { subjectId: old, action: 'snapshot.instance_deleted', limit: 10 })).length, 1);
  });
});

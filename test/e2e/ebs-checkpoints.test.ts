/**
 * Machines on aws-ec2 through the real platform (api + worker on the real Temporal server and
 * Postgres), the EC2 provider talking to moto's server with the real AWS SDK. moto runs no VM: its
 * SSM reports every command successful with no output, so a machine's command "runs" at once; what
 * is checked is the disk snapshot each checkpoint keeps and the disk a later machine starts from.
 */
import assert from 'node:assert/strict';
import { DescribeImagesCommand, DescribeSnapshotsCommand, EC2Client } from '@aws-sdk/client-ec2';
import { TAG_CHECKPOINT } from '../../activities/compute/aws-ec2.js';
import { startMoto, type MotoServer } from '../../scripts/services/moto.js';
import { projectWithBudget, startTestPlatform, waitForMachine, type TestPlatform } from '../support/platform.js';

const REGION = 'us-east-1';
const REPLICA = 'eu-west-1';

describe('EC2 machines keep and restore their disks (real platform, aws-ec2 on moto)', function () {
  this.timeout(180_000);
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
      label: 'ebs-e2e',
      env: {
        AWS_REGION: REGION,
        AUTOVIBE_AWS_ENDPOINT: moto.endpoint,
        AWS_ACCESS_KEY_ID: moto.credentials.accessKeyId,
        AWS_SECRET_ACCESS_KEY: moto.credentials.secretAccessKey,
        AUTOVIBE_AWS_EC2_IMAGE_ID: imageId,
        AUTOVIBE_AWS_REPLICA_REGIONS: REPLICA,
      },
    });
  });

  after(async () => {
    await p?.stop();
    await moto?.stop();
  });

  it("a machine's final checkpoint shows its EBS snapshot and copy; a machine from it starts on that disk", async () => {
    const projectId = await projectWithBudget(p);
    const start = await p.api('POST', '/v1/machines', { projectId, type: 'shell', command: 'true', provider: 'aws-ec2' });
    assert.equal(start.status, 202, JSON.stringify(start.body));
    const first = await waitForMachine(p, start.body.id);
    assert.equal(first.status, 'completed', JSON.stringify(first));
    const final = first.checkpoints.at(-1) as string;

    const checkpoint = await p.api('GET', `/v1/checkpoints/${final}`);
    assert.equal(checkpoint.status, 200);
    const disk = checkpoint.body.instanceSnapshot;
    assert.ok(disk, JSON.stringify(checkpoint.body));
    assert.equal(disk.provider, 'aws-ec2');
    assert.equal(disk.region, REGION);
    assert.equal(disk.status, 'available');
    assert.equal(disk.replicasSource, 'provider');
    assert.equal(disk.replicas.length, 1);
    assert.equal(disk.replicas[0].region, REPLICA);
    assert.equal(disk.replicas[0].state, 'completed');
    assert.match(disk.replicas[0].snapshotId, /^snap-/);
    // EC2 holds it, tagged with the checkpoint.
    const tagged = await ec2.send(new DescribeSnapshotsCommand({ OwnerIds: ['self'], Filters: [{ Name: `tag:${TAG_CHECKPOINT}`, Values: [final] }] }));
    assert.deepEqual(
      (tagged.Snapshots ?? []).map((s) => s.SnapshotId),
      [disk.snapshotRef],
    );

    // Another command: the same one from the same checkpoint would be answered by the machine cache.
    const next = await p.api('POST', '/v1/machines', { projectId, type: 'shell', command: 'echo again', provider: 'aws-ec2', checkpointId: final });
    assert.equal(next.status, 202, JSON.stringify(next.body));
    const second = await waitForMachine(p, next.body.id);
    assert.equal(second.status, 'completed', JSON.stringify(second));
    const restored = second.events.find((e: { action: string }) => e.action === 'machine.disk_restored');
    assert.ok(restored, `the machine's events show its disk restored: ${JSON.stringify(second.events.map((e: { action: string }) => e.action))}`);
    assert.equal(restored.details.snapshotRef, disk.snapshotRef);
    assert.equal(restored.details.checkpointId, final);
  });
});

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import Docker from 'dockerode';
import { startPodman, type PodmanService } from '../../scripts/services/podman.js';
import { ABUSERS, SMALL_LIMITS } from '../support/abusers.js';
import { projectWithBudget, startTestPlatform, waitForMachine, type TestPlatform } from '../support/platform.js';

/**
 * The `container` provider's limits and user, end to end on real podman (Docker API, runc): the
 * same fork bomb, memory hog and disk filler as on `local` each fail their machine with the limit
 * named, a neighbour completes, and the files a machine leaves in any state never block cleanup.
 */
describe('container provider: non-root user, resource limits, cleanup', function () {
  this.timeout(300_000);
  let podman: PodmanService;
  let docker: Docker;
  let p: TestPlatform;
  let projectId: string;
  /** Every machine starts from the empty root, not from what the machines before it left. */
  let root: string;

  before(async () => {
    podman = await startPodman();
    docker = new Docker({ socketPath: podman.socketPath });
    p = await startTestPlatform({
      label: 'container-limits',
      env: {
        AUTOVIBE_CONTAINER_SOCKET: podman.socketPath,
        AUTOVIBE_CONTAINER_IMAGE: podman.image,
        AUTOVIBE_RECONCILE_EVERY_S: '0',
        AUTOVIBE_PROFILE_LIMITS: JSON.stringify(SMALL_LIMITS),
      },
    });
    projectId = await projectWithBudget(p, '5.00');
    root = (await p.api('GET', `/v1/projects/${projectId}`)).body.rootCheckpointId;
    assert.match(root, /^checkpoint-/);
  });
  after(async () => {
    await p?.stop();
    await podman?.stop();
  });

  const start = async (command: string) => {
    const res = await p.api('POST', '/v1/machines', {
      projectId,
      type: 'shell',
      provider: 'container',
      command,
      checkpointId: root,
      limits: { money: '0.10', minutes: 3 },
    });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    return res.body.id as string;
  };
  const file = async (checkpointId: string, name: string) => String((await p.api('GET', `/v1/checkpoints/${checkpointId}/files/${name}`)).body);
  const containersOf = (machineId: string) => docker.listContainers({ all: true, filters: { label: [`autovibe.machine=${machineId}`] } });

  it('runs as uid 1000 on a read-only root, and what it leaves (mode 000, read-only dirs) never blocks cleanup', async () => {
    const command = [
      'id -u > uid.txt',
      'id -g > gid.txt',
      '(touch /etc/x 2>/dev/null && echo writable || echo read-only) > root.txt',
      'echo secret > locked && chmod 000 locked',
      'mkdir -p ro/deeper && echo x > ro/deeper/f && chmod 000 ro/deeper/f && chmod 500 ro/deeper ro',
      'mkdir sealed && chmod 000 sealed',
      'stat -c %u locked > owner.txt',
    ].join('; ');
    const m = await waitForMachine(p, await start(command), 120_000);
    assert.equal(m.status, 'completed', JSON.stringify(m));
    const cp = m.checkpoints.at(-1);
    assert.equal(await file(cp, 'uid.txt'), '1000\n');
    assert.equal(await file(cp, 'gid.txt'), '1000\n');
    assert.equal(await file(cp, 'root.txt'), 'read-only\n');
    assert.equal(await file(cp, 'owner.txt'), '1000\n');
    // Its mode-000 and read-only files were still checkpointed, and then removed with the workspace.
    assert.equal(await file(cp, 'locked'), 'secret\n');
    assert.equal(await file(cp, 'ro/deeper/f'), 'x\n');
    assert.equal(fs.existsSync(path.join(p.config.workspacesDir, m.id)), false, 'the workspace is gone');
    assert.deepEqual(await containersOf(m.id), []);
  });

  it('starts the next machine from those files as its own user again (root-owned checkout handed over)', async () => {
    const first = await waitForMachine(p, await start('mkdir -p kept && echo one > kept/f && chmod 000 kept/f && chmod 500 kept'), 120_000);
    assert.equal(first.status, 'completed', JSON.stringify(first));
    // The child machine starts from that checkpoint: the worker checks it out as root, the container writes to it.
    const res = await p.api('POST', '/v1/machines', {
      projectId,
      type: 'shell',
      provider: 'container',
      checkpointId: first.checkpoints.at(-1),
      // The restored read-only directory and mode-000 file are its own: it can open them up and remove them.
      command: 'stat -c %u kept/f > owner.txt && chmod 700 kept && rm -rf kept && echo two > two.txt',
      limits: { money: '0.10', minutes: 3 },
    });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    const m = await waitForMachine(p, res.body.id, 120_000);
    assert.equal(m.status, 'completed', JSON.stringify(m));
    assert.equal(await file(m.checkpoints.at(-1), 'two.txt'), 'two\n');
    assert.equal(await file(m.checkpoints.at(-1), 'owner.txt'), '1000\n');
    const { files } = (await p.api('GET', `/v1/checkpoints/${m.checkpoints.at(-1)}`)).body;
    assert.equal(
      files.some((f: any) => f.path.startsWith('kept/')),
      false,
    );
    assert.equal(fs.existsSync(path.join(p.config.workspacesDir, m.id)), false);
  });

  it('fails a fork bomb, a memory hog and a disk filler with the limit named, while a container beside them completes', async () => {
    const ids = Object.fromEntries(await Promise.all(Object.entries(ABUSERS).map(async ([name, a]) => [name, await start(a.command)] as const)));
    const neighbour = await start(
      'for i in 1 2 3 4 5 6; do (sleep 1; echo $i) & done; wait > /dev/null; head -c 4000000 /dev/urandom > blob; seq 1 6 > ok.txt',
    );
    for (const [name, abuser] of Object.entries(ABUSERS)) {
      const m = await waitForMachine(p, ids[name]!, 150_000);
      assert.equal(m.status, 'failed', `${name}: ${JSON.stringify(m)}`);
      assert.match(m.error, abuser.error, name);
      const costs = (await p.api('GET', `/v1/projects/${projectId}/costs`)).body.items.filter((e: any) => e.machineId === m.id);
      assert.equal(costs.length, 1, `${name}: one cost event`);
      assert.equal(fs.existsSync(path.join(p.config.workspacesDir, m.id)), false, `${name}: workspace removed`);
      assert.deepEqual(await containersOf(m.id), [], `${name}: container removed`);
    }
    const ok = await waitForMachine(p, neighbour, 150_000);
    assert.equal(ok.status, 'completed', JSON.stringify(ok));
    assert.equal(await file(ok.checkpoints.at(-1), 'ok.txt'), '1\n2\n3\n4\n5\n6\n');
  });

  it('caps /tmp (the root is read-only) at the disk limit', async () => {
    const m = await waitForMachine(p, await start('head -c 100000000 /dev/zero > /tmp/big; echo $? > rc.txt; du -k /tmp/big | cut -f1 > kib.txt'), 120_000);
    assert.equal(m.status, 'completed', JSON.stringify(m));
    assert.notEqual(await file(m.checkpoints.at(-1), 'rc.txt'), '0\n');
    assert.ok(Number(await file(m.checkpoints.at(-1), 'kib.txt')) <= 16 * 1024);
  });
});

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startPodman, type PodmanService } from '../../scripts/services/podman.js';
import { projectWithBudget, startTestPlatform, waitFor, waitForMachine, type TestPlatform } from '../support/platform.js';

/**
 * A provider that becomes available after the platform started (here: a Docker-compatible socket
 * that appears later, real podman behind it) is served without a restart: the worker starts
 * polling its machine and host queues and a machine placed on it runs.
 */
describe('a provider available only after start (real podman)', function () {
  this.timeout(240_000);
  let podman: PodmanService;
  let p: TestPlatform;
  let socketDir: string;

  before(async () => {
    podman = await startPodman();
    socketDir = fs.mkdtempSync(path.join(os.tmpdir(), 'autovibe-late-socket-'));
    p = await startTestPlatform({
      label: 'provider-late',
      env: { AUTOVIBE_CONTAINER_SOCKET: path.join(socketDir, 'docker.sock'), AUTOVIBE_CONTAINER_IMAGE: podman.image },
    });
  });
  after(async () => {
    await p?.stop();
    await podman?.stop();
    fs.rmSync(socketDir, { recursive: true, force: true });
  });

  it('serves the container provider once its socket appears, and runs a machine on it', async () => {
    const providers = async () => Object.fromEntries((await p.api('GET', '/v1/providers')).body.items.map((i: any) => [i.id, i]));
    assert.equal((await providers()).container.available, false, 'no socket yet');
    const projectId = await projectWithBudget(p, '5.00');

    fs.symlinkSync(podman.socketPath, path.join(socketDir, 'docker.sock'));
    await waitFor(async () => (await providers()).container.available, 'the container provider reported available', 90_000);
    const served = await waitFor(
      async () => {
        const names: string[] = await p.db('task_queues').where('name', 'like', '%-container%').pluck('name');
        return names.length >= 2 && names;
      },
      'the container machine and host queues served',
      60_000,
    );
    assert.ok(
      served.some((n) => n.includes('@')),
      `a host queue among ${served.join(', ')}`,
    );

    const start = await p.api('POST', '/v1/machines', {
      projectId,
      type: 'shell',
      provider: 'container',
      command: 'echo late > late.txt',
      limits: { money: '0.20' },
    });
    assert.equal(start.status, 202, JSON.stringify(start.body));
    const m = await waitForMachine(p, start.body.id, 120_000);
    assert.equal(m.status, 'completed', JSON.stringify(m));
    assert.equal(m.provider, 'container');
    assert.equal((await p.api('GET', `/v1/checkpoints/${m.checkpoints[0]}/files/late.txt`)).body, 'late\n');
  });
});

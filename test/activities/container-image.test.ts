import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ContainerProvider } from '../../activities/compute/container.js';
import { startPodman, type PodmanService } from '../../scripts/services/podman.js';

/**
 * What a new user meets: a Docker-compatible runtime started after the worker, and no machine
 * image built. The provider finds the socket at its next availability check and makes its default
 * image itself (real podman, Docker API).
 */
describe('container provider: a runtime that appears later, and a missing default image', function () {
  this.timeout(180_000);
  let podman: PodmanService;
  let cacheDir: string;

  before(async () => {
    podman = await startPodman({ image: 'localhost/unrelated:test' });
    cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), 'autovibe-image-test-'));
  });
  after(async () => {
    await podman?.stop();
    fs.rmSync(cacheDir, { recursive: true, force: true });
  });

  it('is unavailable without a socket, then finds it and imports its image from busybox', async () => {
    const runtime: { socket?: string } = {};
    const image = 'localhost/autovibe-machine:latest';
    const provider = new ContainerProvider({ socketPath: undefined, resolveSocket: () => runtime.socket, image, imageCacheDir: cacheDir, deployment: 'test' });
    const before = await provider.availability();
    assert.equal(before.available, false);
    assert.match(before.reason ?? '', /no Docker-compatible socket/);
    assert.equal((await podman.podman(['images', '--format', '{{.Repository}}:{{.Tag}}'])).includes(image), false);

    runtime.socket = podman.socketPath; // the runtime is installed and started now
    const after = await provider.availability();
    assert.deepEqual(after, { available: true });
    assert.ok((await podman.podman(['images', '--format', '{{.Repository}}:{{.Tag}}'])).includes(image), 'the image was made');
    // It runs as the machine user the platform uses.
    const out = await podman.podman(['run', '--rm', '--user', '1000:1000', image, '/bin/sh', '-c', 'id -un; echo ok > /tmp/x && cat /tmp/x']);
    assert.equal(out.trim(), 'machine\nok');
  });

  it('says what to do for a missing image it cannot make (not a local one)', async () => {
    const provider = new ContainerProvider({
      socketPath: podman.socketPath,
      image: 'registry.example/team/machine:1',
      imageCacheDir: cacheDir,
      deployment: 'test',
    });
    const a = await provider.availability();
    assert.equal(a.available, false);
    assert.match(a.reason ?? '', /pull or build it/);
  });
});

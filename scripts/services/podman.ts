/**
 * A private `podman system service` (Docker Engine API on a unix socket) for tests and benchmarks:
 * its own storage under a scratch directory, runc as the runtime and ulimits this host allows
 * (see containers.conf below), and a machine image imported from a static busybox root, so
 * nothing is pulled from a registry. The root filesystem tarball is cached under .autovibe/podman.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import Docker from 'dockerode';
import { describeExit, sleep, spawnServiceProcess } from './process.js';
import { busyboxPath, busyboxRootfsTarball } from '../../activities/compute/container-image.js';

const run = promisify(execFile);
const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const CACHE_DIR = path.join(REPO_ROOT, '.autovibe', 'podman');
export const TEST_IMAGE = 'localhost/autovibe-machine:test';

const CONTAINERS_CONF = `[containers]
default_ulimits = ["nofile=10000:10000", "nproc=10000:10000"]
[engine]
runtime = "runc"
`;

export interface PodmanService {
  socketPath: string;
  image: string;
  /** Runs the podman CLI against this service's storage (e.g. to inspect from outside). */
  podman(args: string[]): Promise<string>;
  stop(): Promise<void>;
}

export function podmanUnavailableReason(): string | null {
  for (const [bin, pkg] of [
    ['/usr/bin/podman', 'podman'],
    ['/usr/sbin/runc', 'runc'],
  ] as const) {
    if (!fs.existsSync(bin)) return `${bin} is missing (apt-get install -y ${pkg})`;
  }
  if (!busyboxPath()) return 'a static busybox is missing (apt-get install -y busybox-static)';
  return null;
}

export async function startPodman(opts: { image?: string } = {}): Promise<PodmanService> {
  const reason = podmanUnavailableReason();
  if (reason) throw new Error(`podman cannot run here: ${reason}`);
  const image = opts.image ?? TEST_IMAGE;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'avpod-'));
  const conf = path.join(dir, 'containers.conf');
  fs.writeFileSync(conf, CONTAINERS_CONF);
  const socketPath = path.join(dir, 'docker.sock');
  const env = { ...process.env, CONTAINERS_CONF: conf };
  const base = ['--root', path.join(dir, 'storage'), '--runroot', path.join(dir, 'run'), '--tmpdir', path.join(dir, 'tmp')];
  const podman = async (args: string[]) => (await run('/usr/bin/podman', [...base, ...args], { env, maxBuffer: 16 * 1024 * 1024 })).stdout;

  await podman(['import', await busyboxRootfsTarball(CACHE_DIR), image]);
  const service = spawnServiceProcess({
    name: 'podman system service',
    command: '/usr/bin/podman',
    args: [...base, 'system', 'service', '--time=0', `unix://${socketPath}`],
    env,
    logFile: path.join(dir, 'service.log'),
    killAfterMs: 5_000,
  });
  const docker = new Docker({ socketPath });
  const until = Date.now() + 30_000;
  for (;;) {
    if (service.hasExited()) {
      throw new Error(`podman system service ${describeExit(await service.exited)}: ${service.recentOutput()}`);
    }
    if (
      fs.existsSync(socketPath) &&
      (await docker.ping().then(
        () => true,
        () => false,
      ))
    )
      break;
    if (Date.now() > until) {
      await service.stop();
      throw new Error(`podman system service did not answer on ${socketPath}: ${service.recentOutput()}`);
    }
    await sleep(100);
  }
  return {
    socketPath,
    image,
    podman,
    async stop() {
      // Whatever a test left must not outlive it (the storage goes with the directory).
      await podman(['rm', '--all', '--force', '--time', '0']).catch(() => undefined);
      await service.stop();
      await podman(['system', 'reset', '--force']).catch(() => undefined);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

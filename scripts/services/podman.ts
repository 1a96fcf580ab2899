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

function busyboxPath(): string | undefined {
  return ['/usr/bin/busybox', '/bin/busybox'].find((p) => fs.existsSync(p));
}

/** A tarball of a minimal root: static busybox and its applet links, /workspace and /tmp. */
async function rootfsTarball(): Promise<string> {
  const tarball = path.join(CACHE_DIR, 'busybox-rootfs.tar');
  if (fs.existsSync(tarball)) return tarball;
  fs.mkdirSync(CACHE_DIR, { recursive: true });
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'autovibe-rootfs-'));
  try {
    for (const d of ['bin', 'usr/bin', 'etc', 'workspace', 'proc', 'sys', 'dev']) fs.mkdirSync(path.join(root, d), { recursive: true });
    fs.mkdirSync(path.join(root, 'tmp'), { mode: 0o1777 });
    fs.chmodSync(path.join(root, 'tmp'), 0o1777);
    fs.copyFileSync(busyboxPath()!, path.join(root, 'bin', 'busybox'));
    fs.chmodSync(path.join(root, 'bin', 'busybox'), 0o755);
    const { stdout } = await run(busyboxPath()!, ['--list']);
    for (const applet of stdout.split('\n').filter((a) => a && a !== 'busybox')) fs.symlinkSync('busybox', path.join(root, 'bin', applet));
    fs.writeFileSync(path.join(root, 'etc', 'passwd'), 'root:x:0:0:root:/tmp:/bin/sh\n');
    fs.writeFileSync(path.join(root, 'etc', 'group'), 'root:x:0:\n');
    const partial = `${tarball}.${process.pid}`;
    await run('tar', ['-C', root, '-cf', partial, '.']);
    fs.renameSync(partial, tarball);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
  return tarball;
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

  await podman(['import', await rootfsTarball(), image]);
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

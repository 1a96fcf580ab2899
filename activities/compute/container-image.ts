import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type Docker from 'dockerode';

const run = promisify(execFile);

export function busyboxPath(): string | undefined {
  return ['/usr/bin/busybox', '/bin/busybox'].find((p) => fs.existsSync(p));
}

/**
 * A tarball of a minimal machine root: a static busybox and its applet links, /workspace and /tmp.
 * Made from the host (nothing is pulled from a registry) and cached in `cacheDir`.
 */
export async function busyboxRootfsTarball(cacheDir: string): Promise<string> {
  const tarball = path.join(cacheDir, 'busybox-rootfs.tar');
  if (fs.existsSync(tarball)) return tarball;
  const busybox = busyboxPath();
  if (!busybox) throw new Error('a static busybox is missing (apt-get install -y busybox-static)');
  fs.mkdirSync(cacheDir, { recursive: true });
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'autovibe-rootfs-'));
  try {
    for (const d of ['bin', 'usr/bin', 'etc', 'workspace', 'proc', 'sys', 'dev']) fs.mkdirSync(path.join(root, d), { recursive: true });
    fs.mkdirSync(path.join(root, 'tmp'), { mode: 0o1777 });
    fs.chmodSync(path.join(root, 'tmp'), 0o1777);
    fs.copyFileSync(busybox, path.join(root, 'bin', 'busybox'));
    fs.chmodSync(path.join(root, 'bin', 'busybox'), 0o755);
    const { stdout } = await run(busybox, ['--list']);
    for (const applet of stdout.split('\n').filter((a) => a && a !== 'busybox')) fs.symlinkSync('busybox', path.join(root, 'bin', applet));
    // Machines run as uid 1000; both users exist so tools that look themselves up find a name.
    fs.writeFileSync(path.join(root, 'etc', 'passwd'), 'root:x:0:0:root:/tmp:/bin/sh\nmachine:x:1000:1000:machine:/tmp:/bin/sh\n');
    fs.writeFileSync(path.join(root, 'etc', 'group'), 'root:x:0:\nmachine:x:1000:\n');
    const partial = `${tarball}.${process.pid}`;
    await run('tar', ['-C', root, '-cf', partial, '.']);
    fs.renameSync(partial, tarball);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
  return tarball;
}

/**
 * Makes the default machine image when it is missing: a local image (`localhost/…`) cannot be
 * pulled, so the provider imports it from a busybox root built on this host, through the Docker
 * API (docker and podman both take `POST /images/create?fromSrc=-`). Returns why it could not.
 */
export async function ensureMachineImage(docker: Docker, image: string, cacheDir: string): Promise<string | null> {
  try {
    await docker.getImage(image).inspect();
    return null;
  } catch {
    // missing: make it below
  }
  if (!image.startsWith('localhost/')) return `image ${image} is missing: pull or build it on the Docker host`;
  const [repo, tag = 'latest'] = image.split(/:(?=[^/]+$)/);
  try {
    const tarball = await busyboxRootfsTarball(cacheDir);
    const stream = (await docker.importImage(tarball, { repo, tag })) as NodeJS.ReadableStream;
    await new Promise((resolve, reject) => docker.modem.followProgress(stream, (err: Error | null, out: unknown) => (err ? reject(err) : resolve(out))));
    await docker.getImage(image).inspect();
    return null;
  } catch (err) {
    return `image ${image} is missing and could not be made from busybox: ${(err as Error).message}`;
  }
}

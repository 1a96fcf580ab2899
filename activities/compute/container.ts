import path from 'node:path';
import os from 'node:os';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import { PassThrough } from 'node:stream';
import { promisify } from 'node:util';
import Docker from 'dockerode';
import { ensureMachineImage } from './container-image.js';
import { resourceLimitsOf, type ResourceLimits } from '../../domain/machines.js';
import { containerCgroup, watchLimits } from './resource-limits.js';
import type { ComputeProvider, ExecRequest, ExecResult, Instance, ProvisionRequest } from './provider.js';

/** Labels every container carries: how reconciliation finds them and whom they belong to. */
export const LABELS = {
  managed: 'autovibe.managed',
  /** Which deployment (task queue) started it: reconciliation never touches another's containers. */
  deployment: 'autovibe.deployment',
  machine: 'autovibe.machine',
  project: 'autovibe.project',
  profile: 'autovibe.profile',
  createdAt: 'autovibe.created-at',
} as const;

export interface ContainerProviderOptions {
  /** Unix socket of a Docker Engine API (docker, or `podman system service`). */
  socketPath: string | undefined;
  /**
   * Finds the socket again when there was none (or it stopped answering), so docker or podman
   * installed after the worker started is picked up at the next availability check.
   */
  resolveSocket?: () => string | undefined;
  image: string;
  /** Where the busybox root of a missing default image is built (see container-image.ts). */
  imageCacheDir?: string;
  /** This deployment's name on shared Docker hosts (the task queue by default). */
  deployment: string;
  /** Overrides of the profiles' resource limits (AUTOVIBE_PROFILE_LIMITS). */
  profileLimits?: Record<string, Partial<ResourceLimits>>;
}

/** The unprivileged user every container process runs as (files it leaves are this user's). */
export const CONTAINER_USER = { uid: 1000, gid: 1000 };

const run = promisify(execFile);

/**
 * Hands the workspace (and the machine's other writable host directories) to the container's user
 * before a command, so a non-root process can work in files the worker checked out as root.
 * Symlinks are changed themselves, never followed (`-h`, and -R does not descend through them).
 */
async function handToContainerUser(dirs: string[]): Promise<void> {
  const present = dirs.filter((d) => fs.existsSync(d));
  if (present.length === 0) return;
  await run('chown', ['-R', '-h', `${CONTAINER_USER.uid}:${CONTAINER_USER.gid}`, '--', ...present], { timeout: 120_000 });
}

/** The Docker-compatible socket to use: the configured one, else DOCKER_HOST, else the usual places. */
export function defaultContainerSocket(env: NodeJS.ProcessEnv): string | undefined {
  if (env.AUTOVIBE_CONTAINER_SOCKET) return env.AUTOVIBE_CONTAINER_SOCKET;
  if (env.DOCKER_HOST?.startsWith('unix://')) return env.DOCKER_HOST.slice('unix://'.length);
  return ['/var/run/docker.sock', '/run/podman/podman.sock'].find((p) => fs.existsSync(p));
}

const statusOf = (err: unknown) => (err as { statusCode?: number }).statusCode;

/**
 * The `container` provider: one long-lived container per machine on a Docker Engine API (docker or
 * podman), commands run in it with `exec`. Same isolation intent as the local sandbox: no network,
 * all capabilities dropped, the workspace bind-mounted at /workspace (plus the request's extra
 * mounts: an agent machine's CLIs, home and proxy socket). Processes run as an unprivileged user
 * (uid 1000) on a read-only root with a size-limited /tmp, under the profile's resource limits:
 * memory (no swap beyond it), processes, CPU, and no file beyond the disk limit; the workspace's
 * total is watched like on `local`. A limit that is hit stops the container and names the limit.
 * Small tasks share the host this way.
 */
export class ContainerProvider implements ComputeProvider {
  readonly id = 'container' as const;
  private docker: Docker | null;
  private socketPath: string | undefined;

  constructor(private readonly opts: ContainerProviderOptions) {
    this.socketPath = opts.socketPath;
    this.docker = opts.socketPath ? new Docker({ socketPath: opts.socketPath }) : null;
  }

  /** Looks for the socket again (a runtime installed or started after this worker). */
  private refreshSocket(): void {
    const found = this.opts.resolveSocket?.();
    if (found && found !== this.socketPath) {
      this.socketPath = found;
      this.docker = new Docker({ socketPath: found });
    }
  }

  private api(): Docker {
    if (!this.docker) throw new Error('no Docker-compatible socket configured (set AUTOVIBE_CONTAINER_SOCKET or DOCKER_HOST)');
    return this.docker;
  }

  async availability(): Promise<{ available: boolean; reason?: string }> {
    if (!this.docker) this.refreshSocket();
    if (!this.docker) {
      return { available: false, reason: 'no Docker-compatible socket found: run `podman system service` or docker and set AUTOVIBE_CONTAINER_SOCKET' };
    }
    try {
      await this.docker.ping();
    } catch (err) {
      this.refreshSocket();
      const answered = await this.docker.ping().then(
        () => true,
        () => false,
      );
      if (!answered) return { available: false, reason: `the Docker API at ${this.socketPath} does not answer: ${(err as Error).message}` };
    }
    const problem = await ensureMachineImage(this.docker, this.opts.image, this.opts.imageCacheDir ?? path.join(os.tmpdir(), 'autovibe-image'));
    if (problem) return { available: false, reason: `${problem} (at ${this.socketPath})` };
    return { available: true };
  }

  async provision(request: ProvisionRequest): Promise<Instance> {
    const limits = resourceLimitsOf(request.profile, this.opts.profileLimits);
    const memory = limits.memoryMiB * 1024 * 1024;
    const createdAt = new Date().toISOString();
    const labels: Record<string, string> = {
      ...Object.fromEntries(Object.entries(request.tags).map(([k, v]) => [`autovibe.tag.${k}`, v])),
      [LABELS.managed]: 'true',
      [LABELS.deployment]: this.opts.deployment,
      [LABELS.machine]: request.machineId,
      [LABELS.project]: request.projectId,
      [LABELS.profile]: request.profile,
      [LABELS.createdAt]: createdAt,
    };
    const container = await this.api().createContainer({
      Image: this.opts.image,
      // pid 1 only waits: every command of the machine is an exec.
      Cmd: ['/bin/sleep', '2147483647'],
      WorkingDir: '/workspace',
      User: `${CONTAINER_USER.uid}:${CONTAINER_USER.gid}`,
      Labels: labels,
      Env: [`AUTOVIBE_MACHINE_ID=${request.machineId}`, 'HOME=/tmp', 'PATH=/usr/local/bin:/usr/bin:/bin'],
      HostConfig: {
        NetworkMode: 'none',
        Binds: [`${request.workspace}:/workspace:rw`, ...(request.mounts ?? []).map((m) => `${m.source}:${m.target}:${m.writable ? 'rw' : 'ro'}`)],
        CapDrop: ['ALL'],
        SecurityOpt: ['no-new-privileges'],
        NanoCpus: Math.round(limits.cpus * 1e9),
        CpuShares: Math.max(2, Math.round(limits.cpus * 1024)),
        Memory: memory,
        MemorySwap: memory,
        PidsLimit: limits.pids,
        // The root is read-only and /tmp (the shell's HOME) is capped; the workspace is watched.
        ReadonlyRootfs: true,
        Tmpfs: { '/tmp': `rw,nosuid,nodev,size=${limits.diskMiB}m,mode=1777` },
      },
    });
    try {
      await container.start();
    } catch (err) {
      await container.remove({ force: true }).catch(() => undefined);
      throw err;
    }
    return {
      provider: 'container',
      instanceRef: container.id,
      machineId: request.machineId,
      projectId: request.projectId,
      details: {
        workspace: request.workspace,
        image: this.opts.image,
        profile: request.profile,
        createdAt,
        ...(request.mounts?.length ? { mounts: request.mounts.map((m) => m.target).join(',') } : {}),
        ...(request.mounts?.some((m) => m.writable) ? { writableSources: JSON.stringify(request.mounts.filter((m) => m.writable).map((m) => m.source)) } : {}),
      },
    };
  }

  /** Whether the container still exists and runs; a stopped or removed one was interrupted. */
  private async running(instanceRef: string): Promise<boolean> {
    try {
      const info = await this.api().getContainer(instanceRef).inspect();
      return info.State.Running === true;
    } catch (err) {
      // podman answers 500 "no such container" while a removal is under way.
      if (statusOf(err) === 404 || /no such container/i.test((err as Error).message)) return false;
      throw err;
    }
  }

  async exec(instance: Instance, request: ExecRequest): Promise<ExecResult> {
    if (request.network) throw new Error('the container provider runs machines without network');
    const container = this.api().getContainer(instance.instanceRef);
    const workspace = instance.details?.workspace ?? null;
    const writable = instance.details?.writableSources ? (JSON.parse(instance.details.writableSources) as string[]) : [];
    await handToContainerUser([...(workspace ? [workspace] : []), ...writable]);
    const limits = resourceLimitsOf(instance.details?.profile ?? 'lightweight', this.opts.profileLimits);
    let info: Docker.ContainerInspectInfo | null = null;
    try {
      info = await container.inspect();
    } catch (err) {
      if (statusOf(err) !== 404) throw err;
    }
    if (!info?.State.Running) return { exitCode: null, stopReason: 'interrupted' };
    let exec: Docker.Exec;
    try {
      exec = await container.exec({
        // No single file beyond the disk limit (RLIMIT_FSIZE, lowered by the unprivileged shell itself:
        // HostConfig.Ulimits would replace the engine's defaults, which this host needs).
        Cmd: [
          '/bin/sh',
          '-c',
          'ulimit -f "$0" && exec "$@"',
          String(limits.diskMiB * 2048),
          ...(typeof request.command === 'string' ? ['/bin/sh', '-c', request.command] : request.command),
        ],
        Env: Object.entries(request.env ?? {}).map(([k, v]) => `${k}=${v}`),
        WorkingDir: '/workspace',
        AttachStdout: true,
        AttachStderr: true,
      });
    } catch (err) {
      if (!(await this.running(instance.instanceRef))) return { exitCode: null, stopReason: 'interrupted' };
      throw err;
    }
    const stream = await exec.start({ hijack: true, stdin: false });
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    stdout.on('data', (c: Buffer) => request.onOutput?.(c, 'stdout'));
    stderr.on('data', (c: Buffer) => request.onOutput?.(c, 'stderr'));
    this.api().modem.demuxStream(stream, stdout, stderr);

    let stopReason: ExecResult['stopReason'] = null;
    let limit: string | undefined;
    const stop = (reason: NonNullable<ExecResult['stopReason']>) => {
      if (stopReason) return;
      stopReason = reason;
      // At a limit the container may have no process slot or memory left for a kill from inside:
      // the whole container is stopped (the machine fails and removes it).
      if (reason === 'limit') void container.kill({ signal: 'SIGKILL' }).catch(() => stream.destroy());
      // An exec cannot be killed through the API: kill every process but pid 1 from inside.
      else void this.killAll(instance).catch(() => stream.destroy());
    };
    // The kernel's counters of the container's groups, read on this host (the bind mounts already
    // require the engine to be here), and the workspace's size.
    const watch = watchLimits({
      limits,
      cgroup: info.State.Pid ? containerCgroup(info.State.Pid, limits) : null,
      workspace,
      onExceeded: (reason) => {
        limit = reason;
        stop('limit');
      },
      ...(request.onResources ? { onSample: request.onResources } : {}),
    });
    const timer = setTimeout(() => stop('deadline'), Math.max(request.deadline - Date.now(), 0));
    const onAbort = () => stop('aborted');
    request.signal?.addEventListener('abort', onAbort);
    if (request.signal?.aborted) onAbort();
    try {
      await new Promise<void>((resolve) => {
        stream.on('end', resolve);
        stream.on('close', resolve);
        stream.on('error', () => resolve());
      });
    } finally {
      watch.stop();
      clearTimeout(timer);
      request.signal?.removeEventListener('abort', onAbort);
    }
    if (stopReason === 'limit') return { exitCode: null, stopReason, ...(limit ? { limit } : {}) };
    if (stopReason) return { exitCode: null, stopReason };
    if (!(await this.running(instance.instanceRef))) return { exitCode: null, stopReason: 'interrupted' };
    // A limit hit in the command's last moments (the OOM killer ended it) still names the limit.
    const hit = await watch.final();
    if (hit) {
      await container.kill({ signal: 'SIGKILL' }).catch(() => undefined);
      return { exitCode: null, stopReason: 'limit', limit: hit };
    }
    const execInfo = await exec.inspect();
    return { exitCode: execInfo.ExitCode ?? null, stopReason: null };
  }

  private async killAll(instance: Instance): Promise<void> {
    const exec = await this.api()
      .getContainer(instance.instanceRef)
      .exec({ Cmd: ['/bin/kill', '-9', '-1'], AttachStdout: true, AttachStderr: true });
    const s = await exec.start({ hijack: true, stdin: false });
    s.resume();
    await new Promise<void>((resolve) => {
      s.on('end', resolve);
      s.on('close', resolve);
      s.on('error', () => resolve());
    });
  }

  async reset(instance: Instance): Promise<void> {
    if (await this.running(instance.instanceRef)) await this.killAll(instance);
  }

  async snapshot(instance: Instance, input: { checkpointId: string }) {
    // The workspace is bind-mounted from this host: the checkpoint's git commit is the snapshot.
    return { snapshotRef: `git:${input.checkpointId}:${instance.machineId}` };
  }

  async listInstances(): Promise<Instance[]> {
    if (!this.docker) return [];
    const containers = await this.docker.listContainers({
      all: true,
      filters: { label: [`${LABELS.managed}=true`, `${LABELS.deployment}=${this.opts.deployment}`] },
    });
    return containers.map((c) => ({
      provider: 'container' as const,
      instanceRef: c.Id,
      machineId: c.Labels[LABELS.machine] ?? '',
      projectId: c.Labels[LABELS.project] ?? '',
      details: { state: c.State, createdAt: c.Labels[LABELS.createdAt] ?? new Date(c.Created * 1000).toISOString() },
    }));
  }

  async terminate(instance: Instance): Promise<void> {
    try {
      await this.api().getContainer(instance.instanceRef).remove({ force: true, v: true });
    } catch (err) {
      // 404: already gone; 409: removal already in progress.
      if (statusOf(err) !== 404 && statusOf(err) !== 409) throw err;
    }
  }
}

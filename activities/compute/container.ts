import path from 'node:path';
import os from 'node:os';
import fs from 'node:fs';
import { PassThrough } from 'node:stream';
import Docker from 'dockerode';
import { ensureMachineImage } from './container-image.js';
import { PROFILES, type ProfileId } from '../../domain/machines.js';
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
 * mounts: an agent machine's CLIs, home and proxy socket), CPU and memory capped by the machine's
 * profile. Small tasks share the host this way.
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
    const profile = PROFILES[request.profile as ProfileId] ?? PROFILES.lightweight;
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
      Labels: labels,
      Env: [`AUTOVIBE_MACHINE_ID=${request.machineId}`, 'HOME=/tmp', 'PATH=/usr/local/bin:/usr/bin:/bin'],
      HostConfig: {
        NetworkMode: 'none',
        Binds: [`${request.workspace}:/workspace:rw`, ...(request.mounts ?? []).map((m) => `${m.source}:${m.target}:${m.writable ? 'rw' : 'ro'}`)],
        CapDrop: ['ALL'],
        SecurityOpt: ['no-new-privileges'],
        NanoCpus: profile.cpus * 1e9,
        Memory: profile.memoryMiB * 1024 * 1024,
        PidsLimit: 4096,
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
      },
    };
  }

  /** Whether the container still exists and runs; a stopped or removed one was interrupted. */
  private async running(instanceRef: string): Promise<boolean> {
    try {
      const info = await this.api().getContainer(instanceRef).inspect();
      return info.State.Running === true;
    } catch (err) {
      if (statusOf(err) === 404) return false;
      throw err;
    }
  }

  async exec(instance: Instance, request: ExecRequest): Promise<ExecResult> {
    if (request.network) throw new Error('the container provider runs machines without network');
    const container = this.api().getContainer(instance.instanceRef);
    let exec: Docker.Exec;
    try {
      exec = await container.exec({
        Cmd: typeof request.command === 'string' ? ['/bin/sh', '-c', request.command] : request.command,
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
    const stop = (reason: NonNullable<ExecResult['stopReason']>) => {
      if (stopReason) return;
      stopReason = reason;
      // An exec cannot be killed through the API: kill every process but pid 1 from inside.
      void this.killAll(instance).catch(() => stream.destroy());
    };
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
      clearTimeout(timer);
      request.signal?.removeEventListener('abort', onAbort);
    }
    if (stopReason) return { exitCode: null, stopReason };
    if (!(await this.running(instance.instanceRef))) return { exitCode: null, stopReason: 'interrupted' };
    const info = await exec.inspect();
    return { exitCode: info.ExitCode ?? null, stopReason: null };
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

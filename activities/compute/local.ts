import { bubblewrapPath, killSandboxes, liveSandboxPids, startSandbox } from './local-sandbox.js';
import fs from 'node:fs';
import { resourceLimitsOf, type ResourceLimits } from '../../domain/machines.js';
import { removeSandboxCgroups, watchLimits } from './resource-limits.js';
import type { ComputeProvider, ExecRequest, ExecResult, Instance, ProvisionRequest } from './provider.js';

/**
 * The `local` provider: a bubblewrap sandbox on this host per exec, over the machine's workspace.
 * Provisioning holds nothing but the workspace path, so it is instant and needs no warm pool; a
 * sandbox dies with the worker (`--die-with-parent`), so nothing can outlive the host process.
 * Each command runs under its profile's resource limits (memory, processes, CPU in a cgroup; the
 * workspace's size watched, no file beyond it); one hit stops the sandbox with the limit's name.
 */
export class LocalProvider implements ComputeProvider {
  readonly id = 'local' as const;

  constructor(private readonly opts: { profileLimits?: Record<string, Partial<ResourceLimits>>; warn?: (message: string) => void } = {}) {}

  async availability(): Promise<{ available: boolean; reason?: string }> {
    try {
      bubblewrapPath();
      return { available: true };
    } catch (err) {
      return { available: false, reason: (err as Error).message };
    }
  }

  async provision(request: ProvisionRequest): Promise<Instance> {
    return {
      provider: 'local',
      instanceRef: `local:${request.machineId}`,
      machineId: request.machineId,
      projectId: request.projectId,
      details: { workspace: request.workspace, profile: request.profile },
    };
  }

  exec(instance: Instance, request: ExecRequest): Promise<ExecResult> {
    const workspace = instance.details?.workspace;
    if (!workspace) throw new Error(`local instance ${instance.instanceRef} has no workspace`);
    const limits = resourceLimitsOf(instance.details?.profile ?? 'lightweight', this.opts.profileLimits);
    const sandbox = startSandbox(
      {
        machineId: instance.machineId,
        workspace,
        command: request.command,
        network: request.network,
        limits,
        ...(request.env ? { env: request.env } : {}),
        ...(request.mounts?.length ? { mounts: request.mounts } : {}),
      },
      this.opts.warn,
    );
    const child = sandbox.child;
    let stopReason: ExecResult['stopReason'] = null;
    let limit: string | undefined;
    const stop = (reason: NonNullable<ExecResult['stopReason']>) => {
      if (stopReason) return;
      stopReason = reason;
      sandbox.kill();
    };
    const watch = watchLimits({
      limits,
      cgroup: sandbox.cgroup,
      workspace,
      onExceeded: (reason) => {
        limit = reason;
        stop('limit');
      },
      ...(request.onResources ? { onSample: request.onResources } : {}),
    });
    child.stdout!.on('data', (c: Buffer) => request.onOutput?.(c, 'stdout'));
    child.stderr!.on('data', (c: Buffer) => request.onOutput?.(c, 'stderr'));
    const timer = setTimeout(() => stop('deadline'), Math.max(request.deadline - Date.now(), 0));
    const onAbort = () => stop('aborted');
    request.signal?.addEventListener('abort', onAbort);
    if (request.signal?.aborted) onAbort();
    return new Promise<number | null>((resolve, reject) => {
      child.on('error', reject);
      child.on('close', (code) => resolve(code));
    })
      .then(async (code): Promise<ExecResult> => {
        // A limit hit in the command's last moments (the OOM killer ended it) still names the limit.
        const hit = stopReason === null || stopReason === 'limit' ? await watch.final() : null;
        if (hit) return { exitCode: null, stopReason: 'limit', limit: limit ?? hit };
        return { exitCode: stopReason ? null : code, stopReason };
      })
      .finally(() => {
        watch.stop();
        sandbox.release();
        clearTimeout(timer);
        request.signal?.removeEventListener('abort', onAbort);
      });
  }

  async snapshot(instance: Instance, input: { checkpointId: string }) {
    // The workspace is a git worktree on this host: the checkpoint commit is the snapshot.
    return { snapshotRef: `git:${input.checkpointId}:${instance.machineId}` };
  }

  async listInstances(): Promise<Instance[]> {
    const machines = new Set<string>();
    for (const pid of liveSandboxPids()) {
      try {
        const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
        const m = /autovibe-machine=([^\0]+)/.exec(cmdline);
        if (m) machines.add(m[1]!);
      } catch {
        // ended while we looked
      }
    }
    return [...machines].map((machineId) => ({ provider: 'local', instanceRef: `local:${machineId}`, machineId, projectId: '' }));
  }

  async terminate(instance: Instance): Promise<void> {
    killSandboxes(instance.machineId);
    removeSandboxCgroups(`machine-${instance.machineId}`);
  }

  async reset(instance: Instance): Promise<void> {
    killSandboxes(instance.machineId);
  }
}

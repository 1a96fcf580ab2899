import { bubblewrapPath, killSandboxes, liveSandboxPids, startSandbox } from './local-sandbox.js';
import fs from 'node:fs';
import type { ComputeProvider, ExecRequest, ExecResult, Instance, ProvisionRequest } from './provider.js';

/**
 * The `local` provider: a bubblewrap sandbox on this host per exec, over the machine's workspace.
 * Provisioning holds nothing but the workspace path, so it is instant and needs no warm pool; a
 * sandbox dies with the worker (`--die-with-parent`), so nothing can outlive the host process.
 */
export class LocalProvider implements ComputeProvider {
  readonly id = 'local' as const;

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
      details: { workspace: request.workspace },
    };
  }

  exec(instance: Instance, request: ExecRequest): Promise<ExecResult> {
    const workspace = instance.details?.workspace;
    if (!workspace) throw new Error(`local instance ${instance.instanceRef} has no workspace`);
    const child = startSandbox({
      machineId: instance.machineId,
      workspace,
      command: request.command,
      network: request.network,
      ...(request.env ? { env: request.env } : {}),
    });
    let stopReason: ExecResult['stopReason'] = null;
    const stop = (reason: NonNullable<ExecResult['stopReason']>) => {
      if (stopReason) return;
      stopReason = reason;
      child.kill('SIGKILL');
    };
    child.stdout!.on('data', (c: Buffer) => request.onOutput?.(c, 'stdout'));
    child.stderr!.on('data', (c: Buffer) => request.onOutput?.(c, 'stderr'));
    const timer = setTimeout(() => stop('deadline'), Math.max(request.deadline - Date.now(), 0));
    const onAbort = () => stop('aborted');
    request.signal?.addEventListener('abort', onAbort);
    if (request.signal?.aborted) onAbort();
    return new Promise<ExecResult>((resolve, reject) => {
      child.on('error', reject);
      child.on('close', (code) => resolve({ exitCode: stopReason ? null : code, stopReason }));
    }).finally(() => {
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
  }

  async reset(instance: Instance): Promise<void> {
    killSandboxes(instance.machineId);
  }
}

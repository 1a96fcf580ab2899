import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../../config/index.js';
import { addWarmInstance, claimWarmInstance, listWarmInstances, removeWarmInstance } from '../../store/compute.js';
import type { Db } from '../../store/db.js';
import type { ComputeProvider, Instance, ProviderId } from './provider.js';
import { countWaitingMachines } from '../../store/machines.js';

/**
 * Warm pools: instances started ahead of demand, per provider and profile, so a machine skips the
 * cold start. A pooled instance mounts an empty slot directory; handing it to a machine renames that
 * directory to the machine's workspace (a bind mount follows the rename) and checks the checkpoint
 * out into it. The pool is kept in Postgres so every worker and the reconciler see the same one.
 */
export const POOL_DIR = '.pool';

export async function fillPool(db: Db, config: Config, provider: ComputeProvider, profile: string, count: number): Promise<Instance[]> {
  const added: Instance[] = [];
  for (let i = 0; i < count; i++) {
    const workspace = path.join(config.workspacesDir, POOL_DIR, crypto.randomUUID());
    await fs.mkdir(workspace, { recursive: true });
    const instance = await provider.provision({ machineId: '', projectId: '', profile, spot: false, workspace, tags: { pool: `${provider.id}/${profile}` } });
    try {
      await addWarmInstance(db, {
        instanceRef: instance.instanceRef,
        provider: provider.id,
        profile,
        workspace,
        instance: instance as unknown as Record<string, unknown>,
      });
    } catch (err) {
      await provider.terminate(instance);
      throw err;
    }
    added.push(instance);
  }
  return added;
}

/**
 * Takes a free warm instance for `machineId` (the same one again on a retry) and moves its slot to
 * `workspace`, which must not hold anything the machine needs. Null when the pool is empty.
 */
export async function claimFromPool(
  db: Db,
  providerId: ProviderId,
  profile: string,
  machine: { machineId: string; projectId: string },
  workspace: string,
): Promise<Instance | null> {
  const warm = await claimWarmInstance(db, providerId, profile, machine.machineId);
  if (!warm) return null;
  const slotExists = await fs.stat(warm.workspace).then(
    () => true,
    () => false,
  );
  if (slotExists) {
    await fs.rm(workspace, { recursive: true, force: true });
    await fs.mkdir(path.dirname(workspace), { recursive: true });
    await fs.rename(warm.workspace, workspace);
  }
  const instance = warm.instance as unknown as Instance;
  return { ...instance, machineId: machine.machineId, projectId: machine.projectId, details: { ...instance.details, workspace, warm: 'true' } };
}

/** Forgets a pooled instance (after it was terminated). */
export async function forgetWarm(db: Db, instanceRef: string): Promise<void> {
  await removeWarmInstance(db, instanceRef);
}

export interface PoolSpec {
  provider: string;
  profile: string;
  min: number;
  max: number;
}

/**
 * Brings each pool to its target: `min` free instances plus one per machine waiting for that
 * provider and profile (queue depth), never above `max`; surplus free instances are terminated.
 */
export async function maintainPools(
  db: Db,
  config: Config,
  providers: Map<ProviderId, ComputeProvider>,
  specs: PoolSpec[],
): Promise<Array<{ provider: string; profile: string; free: number; target: number; added: number; removed: number }>> {
  const report = [];
  for (const spec of specs) {
    const provider = providers.get(spec.provider as ProviderId);
    if (!provider || !(await provider.availability()).available) continue;
    const free = await listWarmInstances(db, { provider: spec.provider, profile: spec.profile, free: true });
    const target = Math.min(spec.max, spec.min + (await countWaitingMachines(db, spec.provider, spec.profile)));
    let added = 0;
    let removed = 0;
    if (free.length < target) added = (await fillPool(db, config, provider, spec.profile, target - free.length)).length;
    for (const surplus of free.slice(target)) {
      if (!(await removeWarmInstance(db, surplus.instanceRef, { onlyFree: true }))) continue; // claimed meanwhile
      await provider.terminate(surplus.instance as unknown as Instance);
      await fs.rm(surplus.workspace, { recursive: true, force: true });
      removed += 1;
    }
    report.push({ provider: spec.provider, profile: spec.profile, free: free.length, target, added, removed });
  }
  return report;
}

import { appendAudit } from '../store/audit.js';
import { listProviderStatus, listWarmInstances, removeWarmInstance, saveProviderStatus } from '../store/compute.js';
import type { Db } from '../store/db.js';
import { providerOf } from './compute/index.js';
import type { ComputeProvider, Instance, ProviderId } from './compute/provider.js';
import { maintainPools } from './compute/warm-pool.js';
import type { ActivityDeps } from './deps.js';
import { liveMachineRefs } from '../store/machines.js';

/** Asks every provider whether it can run here and records the answers for the api. */
export async function publishProviderStatus(
  db: Db,
  providers: Map<ProviderId, ComputeProvider>,
): Promise<Array<{ id: ProviderId; available: boolean; reason: string | null }>> {
  const out = [];
  for (const [id, provider] of providers) {
    const a = await provider.availability().catch((err: Error) => ({ available: false, reason: err.message }));
    await saveProviderStatus(db, { id, available: a.available, reason: a.reason ?? null, checkedAt: new Date() });
    out.push({ id, available: a.available, reason: a.reason ?? null });
  }
  return out;
}

/**
 * Activities of the reconciliation workflow: find instances that no live machine (and no warm
 * pool) owns, terminate each with an audit record, and keep the warm pools at their targets.
 */
export function createReconcileActivities({ db, config, providers }: ActivityDeps) {
  return {
    async checkProviders(): Promise<Array<{ id: ProviderId; available: boolean; reason: string | null }>> {
      // What a control-only worker finds says nothing of the machine hosts: their last report stands.
      if (!config.worker.roles.includes('machines')) {
        return (await listProviderStatus(db)).map((s) => ({ id: s.id as ProviderId, available: s.available, reason: s.reason }));
      }
      return publishProviderStatus(db, providers);
    },

    /**
     * Instances older than `minAgeSeconds` that belong to no live machine and are not free in a
     * warm pool. The age guard spares an instance whose machine row is being written right now.
     */
    async findOrphanInstances(input: { minAgeSeconds: number }): Promise<Instance[]> {
      const { ids: live, instanceRefs: liveRefs } = await liveMachineRefs(db);
      const pooled = new Map((await listWarmInstances(db)).map((w) => [w.instanceRef, w]));
      const cutoff = Date.now() - input.minAgeSeconds * 1000;
      const orphans: Instance[] = [];
      for (const [id, provider] of providers) {
        if (id === 'local') continue; // a local sandbox dies with its worker (--die-with-parent)
        if (!(await provider.availability()).available) continue;
        for (const instance of await provider.listInstances()) {
          const createdAt = instance.details?.createdAt ? Date.parse(instance.details.createdAt) : 0;
          if (createdAt > cutoff) continue;
          const warm = pooled.get(instance.instanceRef);
          if (warm && (warm.machineId === null || live.has(warm.machineId))) continue;
          if (liveRefs.has(instance.instanceRef)) continue;
          if (instance.machineId && live.has(instance.machineId)) continue;
          orphans.push(instance);
        }
      }
      return orphans;
    },

    /** Terminates one orphan and writes its audit record (once per instance). */
    async reclaimInstance(input: { instance: Instance }): Promise<void> {
      const { instance } = input;
      await providerOf(providers, instance.provider).terminate(instance);
      await removeWarmInstance(db, instance.instanceRef);
      await appendAudit(db, {
        actor: 'system',
        action: 'instance.reclaimed',
        subjectType: 'instance',
        subjectId: instance.instanceRef,
        projectId: instance.projectId || null,
        details: { provider: instance.provider, machineId: instance.machineId || null, reason: 'no live machine owns it' },
        idempotencyKey: `reclaim:${instance.provider}:${instance.instanceRef}`,
      });
    },

    /** Fills or trims each configured warm pool to its target (min + queue depth, at most max). */
    async maintainWarmPools(): Promise<Awaited<ReturnType<typeof maintainPools>>> {
      return maintainPools(db, config, providers, config.warmPools);
    },
  };
}

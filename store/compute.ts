import type { MachineTypeId } from '../domain/machine-types.js';
import { PROVIDERS, type ProviderId } from '../domain/machines.js';
import type { Availability, PlacementPolicy } from '../domain/placement.js';
import type { ServedQueue } from '../domain/queues.js';
import { recordAlerts, resolveAlerts } from './alerts.js';
import type { Db } from './db.js';
import { appendEvents } from './events.js';

/** What the workers last found about each compute provider. */
export interface ProviderStatus {
  id: string;
  available: boolean;
  reason: string | null;
  checkedAt: string;
}

/**
 * Records what a worker found about a provider. A provider that was available and is not any more
 * raises an `alert.provider_unavailable` (a deployment's alert: no project) in the same
 * transaction; the row lock makes two workers reporting it at once raise it once.
 */
export async function saveProviderStatus(db: Db, s: { id: string; available: boolean; reason: string | null; checkedAt: Date }): Promise<void> {
  await db.transaction(async (trx) => {
    const before = await trx('compute_providers').where({ id: s.id }).forUpdate().first('available');
    await trx('compute_providers').insert({ id: s.id, available: s.available, reason: s.reason, checked_at: s.checkedAt }).onConflict('id').merge();
    if (before && !before.available && s.available) {
      await appendEvents(trx, await resolveAlerts(trx, { keys: [`provider_unavailable:${s.id}`] }, 'the provider is available again'));
      return;
    }
    if (!before?.available || s.available) return;
    const events = await recordAlerts(trx, [
      {
        kind: 'provider_unavailable',
        severity: 'warning',
        projectId: null,
        subjectId: s.id,
        message: `compute provider ${s.id} became unavailable${s.reason ? `: ${s.reason}` : ''}; machines are not placed on it until it is back`,
        data: { provider: s.id, ...(s.reason ? { reason: s.reason } : {}) },
        dedupeKey: `provider_unavailable:${s.id}`,
      },
    ]);
    await appendEvents(trx, events);
  });
}

export async function listProviderStatus(db: Db): Promise<ProviderStatus[]> {
  const rows = await db('compute_providers').orderBy('id');
  return rows.map((r) => ({ id: r.id, available: r.available, reason: r.reason, checkedAt: new Date(r.checked_at).toISOString() }));
}

export async function getPlacementPolicy(db: Db, projectId: string): Promise<{ policy: PlacementPolicy; updatedBy: string; updatedAt: string } | null> {
  const row = await db('placement_policies').where({ project_id: projectId }).first();
  if (!row) return null;
  const policy = typeof row.policy === 'string' ? JSON.parse(row.policy) : row.policy;
  return { policy, updatedBy: row.updated_by, updatedAt: new Date(row.updated_at).toISOString() };
}

export async function setPlacementPolicy(db: Db, projectId: string, policy: PlacementPolicy, by: string): Promise<void> {
  await db('placement_policies')
    .insert({ project_id: projectId, policy: JSON.stringify(policy), updated_by: by, updated_at: new Date() })
    .onConflict('project_id')
    .merge();
}

/** A pre-started instance of a warm pool, free (machineId null) or handed to a machine. */
export interface WarmInstance {
  instanceRef: string;
  provider: string;
  profile: string;
  workspace: string;
  instance: Record<string, unknown>;
  machineId: string | null;
  createdAt: string;
}

const toWarm = (r: Record<string, any>): WarmInstance => ({
  instanceRef: r.instance_ref,
  provider: r.provider,
  profile: r.profile,
  workspace: r.workspace,
  instance: typeof r.instance === 'string' ? JSON.parse(r.instance) : r.instance,
  machineId: r.machine_id,
  createdAt: new Date(r.created_at).toISOString(),
});

export async function addWarmInstance(db: Db, w: Omit<WarmInstance, 'machineId' | 'createdAt'>): Promise<void> {
  await db('warm_instances').insert({
    instance_ref: w.instanceRef,
    provider: w.provider,
    profile: w.profile,
    workspace: w.workspace,
    instance: JSON.stringify(w.instance),
  });
}

/**
 * Hands one free warm instance to `machineId`, oldest first; a repeat by the same machine returns
 * the one it already got. Concurrent claims never get the same instance (row lock, skip locked).
 */
export async function claimWarmInstance(db: Db, provider: string, profile: string, machineId: string): Promise<WarmInstance | null> {
  return db.transaction(async (trx) => {
    const mine = await trx('warm_instances').where({ provider, profile, machine_id: machineId }).first();
    if (mine) return toWarm(mine);
    const free = await trx('warm_instances').where({ provider, profile }).whereNull('machine_id').orderBy('created_at').forUpdate().skipLocked().first();
    if (!free) return null;
    const [row] = await trx('warm_instances')
      .where({ instance_ref: free.instance_ref })
      .update({ machine_id: machineId, claimed_at: new Date() })
      .returning('*');
    return toWarm(row);
  });
}

export async function listWarmInstances(db: Db, f: { provider?: string; profile?: string; free?: boolean } = {}): Promise<WarmInstance[]> {
  const q = db('warm_instances').orderBy('created_at');
  if (f.provider) q.where({ provider: f.provider });
  if (f.profile) q.where({ profile: f.profile });
  if (f.free) q.whereNull('machine_id');
  return (await q).map(toWarm);
}

/** Removes the pool's row of an instance (only while free, with `onlyFree`); true when a row went. */
export async function removeWarmInstance(db: Db, instanceRef: string, opts: { onlyFree?: boolean } = {}): Promise<boolean> {
  const q = db('warm_instances').where({ instance_ref: instanceRef });
  if (opts.onlyFree) q.whereNull('machine_id');
  return (await q.delete()) > 0;
}

/**
 * Agent CLIs live on the worker host (.autovibe/tools) and reach their model through a host socket:
 * only providers that share the worker's host can mount them (the local sandbox, a container).
 */
export const AGENT_PROVIDERS: readonly ProviderId[] = ['local', 'container'];
export const AGENT_PROVIDER_REASON =
  'model-backed machines run on the local and container providers only (their CLIs and metering proxy live on the worker host)';

/**
 * What the workers last reported about each provider, as the placement's availability function.
 * `local` counts as available until a worker says otherwise (an api started before its worker).
 */
export async function providerAvailability(
  db: Db,
): Promise<{ availability: Availability; statuses: Array<{ id: ProviderId; available: boolean; reason: string | null; checkedAt: string | null }> }> {
  const rows = new Map((await listProviderStatus(db)).map((r) => [r.id, r]));
  const statuses = PROVIDERS.map((id) => {
    const row = rows.get(id);
    if (row) return { id, available: row.available, reason: row.available ? null : row.reason, checkedAt: row.checkedAt };
    return id === 'local'
      ? { id, available: true, reason: null, checkedAt: null }
      : { id, available: false, reason: `no worker has reported on the ${id} provider yet`, checkedAt: null };
  });
  const byId = new Map(statuses.map((s) => [s.id, s]));
  const availability: Availability = (provider: ProviderId, type: MachineTypeId) => {
    const s = byId.get(provider)!;
    if (!s.available) return { available: false, reason: s.reason ?? 'unavailable' };
    if (type !== 'shell' && !AGENT_PROVIDERS.includes(provider)) return { available: false, reason: AGENT_PROVIDER_REASON };
    return { available: true };
  };
  return { availability, statuses };
}

/** Machines running (or about to) on each provider, for capacity-aware placement. */
export async function runningByProvider(db: Db): Promise<Record<string, number>> {
  const rows: Array<{ provider: string; n: string | number }> = await db('machines')
    .whereIn('status', ['pending', 'provisioning', 'running', 'checkpointing'])
    .groupBy('provider')
    .select('provider', db.raw('count(*) as n'));
  return Object.fromEntries(rows.map((r) => [r.provider, Number(r.n)]));
}

/** Records (again) that a worker serves these queues now. */
export async function recordServedQueues(db: Db, queues: ServedQueue[], at: Date): Promise<void> {
  if (!queues.length) return;
  await db('task_queues')
    .insert(queues.map((q) => ({ name: q.name, role: q.role, provider: q.provider, host: q.host, seen_at: at })))
    .onConflict('name')
    .merge(['role', 'provider', 'host', 'seen_at']);
}

/** The queues some worker served since `since`, by name. */
export async function servedQueuesSince(db: Db, since: Date): Promise<ServedQueue[]> {
  const rows = await db('task_queues').where('seen_at', '>=', since).orderBy('name').select('name', 'role', 'provider', 'host');
  return rows.map((r) => ({ name: r.name, role: r.role, provider: r.provider ?? null, host: r.host ?? null }));
}

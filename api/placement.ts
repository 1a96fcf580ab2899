import type { MachineTypeId } from '../domain/machine-types.js';
import { PROVIDERS, type ProviderId } from '../domain/machines.js';
import type { Availability } from '../domain/placement.js';
import { listProviderStatus } from '../store/compute.js';
import type { Db } from '../store/db.js';

/** Agent CLIs live on the worker host (.autovibe/tools) and reach their model through a host socket. */
export const AGENT_PROVIDER_REASON = 'model-backed machines run on the local provider only (their CLIs and metering proxy live on the worker host)';

/**
 * What the workers last reported about each provider, as the placement's availability function.
 * `local` counts as available until a worker says otherwise (an api started before its worker).
 */
export async function providerAvailability(db: Db): Promise<{ availability: Availability; statuses: Array<{ id: ProviderId; available: boolean; reason: string | null; checkedAt: string | null }> }> {
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
    if (type !== 'shell' && provider !== 'local') return { available: false, reason: AGENT_PROVIDER_REASON };
    return { available: true };
  };
  return { availability, statuses };
}

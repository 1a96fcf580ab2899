import { ApplicationFailure } from '@temporalio/common';
import type { MachineTypeId } from '../domain/machine-types.js';
import type { ProviderId } from '../domain/machines.js';
import { decidePlacement, withCapacity } from '../domain/placement.js';
import type { Config } from '../config/index.js';
import { getPlacementPolicy, providerAvailability, runningByProvider } from '../store/compute.js';
import type { Db } from '../store/db.js';
import { insertMachine, type NewMachine } from '../store/machines.js';

/** One lock for every placement, so two machines placed at once cannot both take a provider's last place. */
const PLACEMENT_LOCK = 7_311_420_001;

/**
 * Places a machine of an objective or pipeline and writes its row, in one transaction under a
 * lock: the project's placement rules (then the defaults) pick the provider, and a provider that
 * already runs its capacity of machines (AUTOVIBE_PROVIDER_CAPACITY) counts as full, so work
 * spills over to the next provider of the rule. A repeat returns what was placed.
 */
export async function placeAndInsertMachine(
  db: Db,
  config: Config,
  machine: Omit<NewMachine, 'provider' | 'spot'> & { type: MachineTypeId },
  minutes: number,
): Promise<{ provider: ProviderId; spot: boolean }> {
  return db.transaction(async (trx) => {
    await trx.raw('select pg_advisory_xact_lock(?)', [PLACEMENT_LOCK]);
    const existing = await trx('machines').where({ id: machine.id }).first('provider', 'spot');
    if (existing) return { provider: existing.provider, spot: existing.spot };
    const { availability } = await providerAvailability(trx as unknown as Db);
    const decision = decidePlacement(
      (await getPlacementPolicy(trx as unknown as Db, machine.projectId))?.policy ?? null,
      { type: machine.type, minutes },
      withCapacity(availability, await runningByProvider(trx as unknown as Db), config.providerCapacity),
    );
    if (!decision.ok) {
      // Full providers free up as machines end: try again later rather than fail the work.
      if (decision.skipped.some((s) => s.reason.startsWith('at capacity'))) throw ApplicationFailure.retryable(decision.reason, 'AtCapacity');
      throw ApplicationFailure.nonRetryable(decision.reason, 'InputError');
    }
    await insertMachine(trx, { ...machine, provider: decision.provider, spot: decision.spot });
    return { provider: decision.provider, spot: decision.spot };
  });
}

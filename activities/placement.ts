import { ApplicationFailure } from '@temporalio/common';
import type { MachineTypeId } from '../domain/machine-types.js';
import type { ProfileId, ProviderId } from '../domain/machines.js';
import type { Config } from '../config/index.js';
import { placeAndRecordMachine } from '../store/machine-requests.js';
import type { Db } from '../store/db.js';
import type { NewMachine } from '../store/machines.js';

/**
 * Places a machine of an objective or pipeline and records it (row and `machine.requested` audit)
 * exactly as a direct request does (store/machine-requests.ts). A full provider is a retryable
 * failure: providers free up as machines end. A repeat returns what was placed.
 */
export async function placeAndInsertMachine(
  db: Db,
  config: Config,
  machine: Omit<NewMachine, 'provider' | 'spot'> & { type: MachineTypeId },
  minutes: number,
): Promise<{ provider: ProviderId; spot: boolean; limitPolicy: { policy: 'stop' | 'pause'; pauseMinutes: number } }> {
  const placed = await placeAndRecordMachine(db, config.providerCapacity, {
    ...machine,
    profile: machine.profile as ProfileId,
    minutes,
    actor: machine.createdBy,
  });
  if (!placed.ok) {
    if (placed.atCapacity) throw ApplicationFailure.retryable(placed.reason, 'AtCapacity');
    throw ApplicationFailure.nonRetryable(placed.reason, 'InputError');
  }
  return { provider: placed.provider, spot: placed.spot, limitPolicy: placed.limitPolicy };
}

import { ApplicationFailure } from '@temporalio/common';
import { ConflictError } from '../domain/errors.js';
import type { MachineTypeId } from '../domain/machine-types.js';
import type { ProfileId, ProviderId } from '../domain/machines.js';
import type { Config } from '../config/index.js';
import { decideRoute } from '../services/routing.js';
import { getCheckpoint } from '../store/checkpoints.js';
import { placeAndRecordMachine } from '../store/machine-requests.js';
import type { Db } from '../store/db.js';
import type { NewMachine } from '../store/machines.js';
import { getProject } from '../store/projects.js';
import type { NewRoutingDecision } from '../store/routing.js';

/**
 * Places a machine of an objective or pipeline and records it (row and `machine.requested` audit)
 * exactly as a direct request does (store/machine-requests.ts). `type: "auto"`: the router picks
 * the agent type first (services/routing.ts decideRoute) and its decision is recorded with the row,
 * so a retried activity keeps the type it recorded. A full provider is a retryable failure:
 * providers free up as machines end. A repeat returns what was placed.
 */
export async function placeAndInsertMachine(
  db: Db,
  config: Config,
  machine: Omit<NewMachine, 'provider' | 'spot' | 'type'> & { type: MachineTypeId | 'auto' },
  minutes: number,
): Promise<{ type: MachineTypeId; provider: ProviderId; spot: boolean; limitPolicy: { policy: 'stop' | 'pause'; pauseMinutes: number } }> {
  let type = machine.type;
  let routing: NewRoutingDecision | undefined;
  if (type === 'auto') {
    const routed = await routeAuto(db, config, machine);
    type = routed.type;
    routing = routed.stored ?? undefined;
  }
  const placed = await placeAndRecordMachine(db, config.providerCapacity, {
    ...machine,
    type,
    profile: machine.profile as ProfileId,
    minutes,
    actor: machine.createdBy,
    ...(routing ? { routing } : {}),
  });
  if (!placed.ok) {
    if (placed.atCapacity) throw ApplicationFailure.retryable(placed.reason, 'AtCapacity');
    throw ApplicationFailure.nonRetryable(placed.reason, 'InputError');
  }
  return { type: placed.type, provider: placed.provider, spot: placed.spot, limitPolicy: placed.limitPolicy };
}

async function routeAuto(db: Db, config: Config, machine: Omit<NewMachine, 'provider' | 'spot' | 'type'>) {
  const project = await getProject(db, machine.projectId);
  const checkpoint = await getCheckpoint(db, machine.parentCheckpointId);
  if (!project || !checkpoint) throw ApplicationFailure.nonRetryable(`machine ${machine.id}: project or checkpoint not found`, 'NotFoundError');
  if (!machine.prompt) throw ApplicationFailure.nonRetryable(`machine ${machine.id}: type auto needs a prompt`, 'InputError');
  try {
    return await decideRoute({ db, config }, { machineId: machine.id, project, checkpoint, prompt: machine.prompt });
  } catch (err) {
    // No available agent type: the objective or step fails saying why, instead of retrying.
    if (err instanceof ConflictError) throw ApplicationFailure.nonRetryable(err.message, 'InputError');
    throw err;
  }
}

import { allocatedCostCenterId } from '../domain/budget.js';
import type { MachineTypeId } from '../domain/machine-types.js';
import type { ProfileId, ProviderId } from '../domain/machines.js';
import { networkPolicyOf, withNetworkEnforcement } from '../domain/network.js';
import { decidePlacement, withCapacity } from '../domain/placement.js';
import { appendAudit } from './audit.js';
import { getPlacementPolicy, providerAvailability, runningByProvider } from './compute.js';
import type { Db } from './db.js';
import { insertMachine, type NewMachine } from './machines.js';
import { recordRoutingDecision, type NewRoutingDecision } from './routing.js';

/** One lock for every placement, so two machines placed at once cannot both take a provider's last place. */
const PLACEMENT_LOCK = 7_311_420_001;

/** A machine to place and record: its row without the placement, and who asked for it. */
export interface MachineRequest extends Omit<NewMachine, 'provider' | 'spot' | 'profile'> {
  type: MachineTypeId;
  minutes: number;
  /** Explicit choices of the caller (an explicit provider always wins, or is refused). */
  provider?: ProviderId;
  profile?: ProfileId;
  spot?: boolean;
  /** The audit actor: `user:<name>`, `objective:<id>`, `pipeline:<id>`. */
  actor: string;
  /** More for the `machine.requested` audit record (command, inputs, …). */
  details?: Record<string, unknown>;
  /** A `type: "auto"` machine's routing decision, recorded with its row (`type` is the chosen one). */
  routing?: NewRoutingDecision;
}

export type PlacedMachine =
  | {
      ok: true;
      /** The machine's type (a repeat: the type it was recorded with). */
      type: MachineTypeId;
      provider: ProviderId;
      profile: ProfileId;
      spot: boolean;
      /** What the machine does at a limit: the project's policy, for the machine's workflow. */
      limitPolicy: { policy: 'stop' | 'pause'; pauseMinutes: number };
    }
  | { ok: false; reason: string; skipped: Array<{ provider: ProviderId; reason: string }>; atCapacity: boolean };

/**
 * Requesting a machine, the same for every entry point (REST, objectives, pipelines): in one
 * transaction under the placement lock, the project's placement rules (then the defaults) pick
 * the provider — a provider already running its capacity (AUTOVIBE_PROVIDER_CAPACITY) counts as
 * full — then the machine's row and its `machine.requested` audit record are written. A repeat
 * (same machine id) returns what was placed and writes nothing.
 */
export async function placeAndRecordMachine(db: Db, providerCapacity: Record<string, number>, req: MachineRequest): Promise<PlacedMachine> {
  return db.transaction(async (trx) => {
    await trx.raw('select pg_advisory_xact_lock(?)', [PLACEMENT_LOCK]);
    const project = await trx('projects').where({ id: req.projectId }).first('limit_policy', 'pause_minutes', 'cost_center_id', 'network_policy');
    // A request's own policy (already checked against the project's), else the project's.
    const network = req.network ?? networkPolicyOf(project?.network_policy);
    const limitPolicy = { policy: (project?.limit_policy ?? 'stop') as 'stop' | 'pause', pauseMinutes: Number(project?.pause_minutes ?? 30) };
    const existing = await trx('machines').where({ id: req.id }).first('type', 'provider', 'spot', 'profile');
    if (existing) return { ok: true, type: existing.type, provider: existing.provider, profile: existing.profile, spot: existing.spot, limitPolicy };
    const { availability } = await providerAvailability(trx as unknown as Db);
    const decision = decidePlacement(
      (await getPlacementPolicy(trx as unknown as Db, req.projectId))?.policy ?? null,
      {
        type: req.type,
        minutes: req.minutes,
        ...(req.provider ? { provider: req.provider } : {}),
        ...(req.profile ? { profile: req.profile } : {}),
        ...(req.spot !== undefined ? { spot: req.spot } : {}),
      },
      withNetworkEnforcement(withCapacity(availability, await runningByProvider(trx as unknown as Db), providerCapacity), network),
    );
    if (!decision.ok) {
      return { ok: false, reason: decision.reason, skipped: decision.skipped, atCapacity: decision.skipped.some((s) => s.reason.startsWith('at capacity')) };
    }
    const { minutes: _minutes, actor, details, provider: _p, profile: _pr, spot: _s, network: _n, routing, ...row } = req;
    await insertMachine(trx, { ...row, provider: decision.provider, profile: decision.profile, spot: decision.spot, network });
    if (routing) await recordRoutingDecision(trx, routing, actor);
    await appendAudit(trx, {
      actor,
      action: 'machine.requested',
      subjectType: 'machine',
      subjectId: req.id,
      projectId: req.projectId,
      details: {
        type: req.type,
        command: req.command,
        checkpointId: req.parentCheckpointId,
        limits: req.limits,
        ...details,
        costCenterId: allocatedCostCenterId({ costCenterId: req.costCenterId ?? null }, { costCenterId: project?.cost_center_id ?? null }),
        network,
        placement: { provider: decision.provider, profile: decision.profile, spot: decision.spot, rule: decision.rule, skipped: decision.skipped },
      },
      idempotencyKey: `machine:${req.id}:requested`,
    });
    return { ok: true, type: req.type, provider: decision.provider, profile: decision.profile, spot: decision.spot, limitPolicy };
  });
}

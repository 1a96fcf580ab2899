import type { Knex } from 'knex';
import type { ComputePrice } from '../domain/compute-prices.js';
import { FINAL_MACHINE_STATUSES, type MachineStatus } from '../domain/machines.js';
import { networkPolicyOf, type NetworkPolicy } from '../domain/network.js';
import type { Db } from './db.js';
import { recordAlerts, resolveAlerts } from './alerts.js';
import { appendEvent, appendEvents, inTransaction } from './events.js';
import { keyOfRow, keyset, type CreatedKey, type KeysetPage } from './paging.js';

export interface MachineLimits {
  /** Decimal string in the project's currency. */
  money: string;
  minutes: number;
}

export interface MachineUsage {
  inputTokens?: number;
  outputTokens?: number;
  apiCalls?: number;
  runtimeMs?: number;
  /** What the agent tool itself reported, kept beside AutoVibe's own metering. */
  reportedByTool?: { inputTokens: number; outputTokens: number } | null;
  reportedCostUsd?: number | null;
}

export interface Machine {
  id: string;
  projectId: string;
  objectiveId: string | null;
  type: string;
  provider: string;
  profile: string;
  /** Runs on interruptible capacity. */
  spot: boolean;
  /** The compute price it is charged at and where that came from (null until its reservation). */
  computePrice: ComputePrice | null;
  status: MachineStatus;
  command: string | null;
  prompt: string | null;
  parentCheckpointId: string;
  limits: MachineLimits;
  workflowId: string;
  instanceRef: string | null;
  stopReason: string | null;
  error: string | null;
  exitCode: number | null;
  usage: MachineUsage;
  /** The cost center this run is allocated to, when it overrides its project's. */
  costCenterId: string | null;
  /** What the machine may reach on the network, fixed when it was requested (README "Network"). */
  network: NetworkPolicy;
  /** What its egress proxy let through and refused so far. */
  networkTotals: NetworkTotals;
  createdBy: string;
  createdAt: string;
  startedAt: string | null;
  endedAt: string | null;
}

export interface NetworkTotals {
  connections: number;
  refused: number;
  bytesUp: number;
  bytesDown: number;
}

const json = (v: unknown) => (typeof v === 'string' ? JSON.parse(v) : v);
const iso = (v: unknown) => (v ? new Date(v as string).toISOString() : null);

function toMachine(r: Record<string, any>): Machine {
  return {
    id: r.id,
    projectId: r.project_id,
    objectiveId: r.objective_id,
    type: r.type,
    provider: r.provider,
    profile: r.profile,
    spot: r.spot ?? false,
    computePrice: (typeof r.compute_price === 'string' ? JSON.parse(r.compute_price) : r.compute_price) ?? null,
    status: r.status,
    command: r.command,
    prompt: r.prompt,
    parentCheckpointId: r.parent_checkpoint_id,
    limits: json(r.limits),
    workflowId: r.workflow_id,
    instanceRef: r.instance_ref,
    stopReason: r.stop_reason,
    error: r.error,
    exitCode: r.exit_code,
    usage: json(r.usage),
    costCenterId: r.cost_center_id ?? null,
    network: networkPolicyOf(r.network),
    networkTotals: {
      connections: Number(r.network_connections ?? 0),
      refused: Number(r.network_refused ?? 0),
      bytesUp: Number(r.network_bytes_up ?? 0),
      bytesDown: Number(r.network_bytes_down ?? 0),
    },
    createdBy: r.created_by,
    createdAt: iso(r.created_at)!,
    startedAt: iso(r.started_at),
    endedAt: iso(r.ended_at),
  };
}

export type NewMachine = Pick<
  Machine,
  'id' | 'projectId' | 'objectiveId' | 'type' | 'provider' | 'profile' | 'command' | 'prompt' | 'parentCheckpointId' | 'limits' | 'workflowId' | 'createdBy'
> & { spot?: boolean; costCenterId?: string | null; network?: NetworkPolicy };

/** Inserts the machine row once (status pending); a repeat with the same id is a no-op. */
export async function insertMachine(db: Db | Knex.Transaction, m: NewMachine): Promise<void> {
  await inTransaction(db, async (trx) => {
    const inserted = await trx('machines')
      .insert({
        id: m.id,
        project_id: m.projectId,
        objective_id: m.objectiveId,
        type: m.type,
        provider: m.provider,
        profile: m.profile,
        spot: m.spot ?? false,
        status: 'pending',
        command: m.command,
        prompt: m.prompt,
        parent_checkpoint_id: m.parentCheckpointId,
        limits: JSON.stringify(m.limits),
        workflow_id: m.workflowId,
        created_by: m.createdBy,
        cost_center_id: m.costCenterId ?? null,
        network: m.network && m.network.mode !== 'none' ? JSON.stringify(m.network) : null,
      })
      .onConflict('id')
      .ignore()
      .returning('id');
    if (inserted.length) {
      await appendEvent(trx, { kind: 'machine.status', projectId: m.projectId, subjectId: m.id, data: { status: 'pending', previous: null, type: m.type } });
    }
  });
}

export interface MachineUpdate {
  status?: MachineStatus;
  instanceRef?: string | null;
  stopReason?: string | null;
  error?: string | null;
  exitCode?: number | null;
  usage?: MachineUsage;
  startedAt?: Date;
  endedAt?: Date;
}

export async function updateMachine(db: Db | Knex.Transaction, id: string, u: MachineUpdate): Promise<void> {
  const patch: Record<string, unknown> = {};
  if (u.status !== undefined) patch.status = u.status;
  if (u.instanceRef !== undefined) patch.instance_ref = u.instanceRef;
  if (u.stopReason !== undefined) patch.stop_reason = u.stopReason;
  if (u.error !== undefined) patch.error = u.error;
  if (u.exitCode !== undefined) patch.exit_code = u.exitCode;
  if (u.usage !== undefined) patch.usage = JSON.stringify(u.usage);
  if (u.startedAt !== undefined) patch.started_at = u.startedAt;
  if (u.endedAt !== undefined) patch.ended_at = u.endedAt;
  if (!Object.keys(patch).length) return;
  if (u.status === undefined) return void (await db('machines').where({ id }).update(patch));
  // A status change and its event commit together; repeating the same status adds no event.
  await inTransaction(db, async (trx) => {
    const before = await trx('machines').where({ id }).forUpdate().first('status', 'project_id');
    if (!before) return;
    await trx('machines').where({ id }).update(patch);
    if (before.status === u.status) return;
    // A machine paused at a limit waits for a human to extend or terminate it: say so, once per pause.
    const alerts =
      u.status === 'paused'
        ? await recordAlerts(trx, [
            {
              kind: 'machine_paused',
              severity: 'warning',
              projectId: before.project_id,
              subjectId: id,
              message: `machine ${id} is paused${u.stopReason ? ` (${u.stopReason})` : ''} and waits for a decision: extend it or terminate it`,
              data: { machineId: id, ...(u.stopReason ? { stopReason: u.stopReason } : {}) },
              dedupeKey: `machine_paused:${id}`,
            },
          ])
        : before.status === 'paused'
          ? await resolveAlerts(trx, { keys: [`machine_paused:${id}`] }, `the machine is ${u.status}`)
          : [];
    await appendEvents(trx, [
      {
        kind: 'machine.status',
        projectId: before.project_id,
        subjectId: id,
        data: {
          status: u.status,
          previous: before.status,
          ...(u.stopReason ? { stopReason: u.stopReason } : {}),
          ...(u.exitCode !== undefined && u.exitCode !== null ? { exitCode: u.exitCode } : {}),
          ...(u.error ? { error: u.error } : {}),
        },
      },
      ...alerts,
    ]);
  });
}

export async function getMachine(db: Db, id: string): Promise<Machine | null> {
  const row = await db('machines').where({ id }).first();
  return row ? toMachine(row) : null;
}

/** Machines by id, one query (ids without a machine are absent). */
export async function getMachines(db: Db, ids: readonly string[]): Promise<Map<string, Machine>> {
  const out = new Map<string, Machine>();
  if (!ids.length) return out;
  for (const r of await db('machines').whereIn('id', [...new Set(ids)])) out.set(r.id, toMachine(r));
  return out;
}

export async function listMachines(db: Db, f: { projectId?: string; status?: string; limit: number }): Promise<Machine[]> {
  const q = db('machines').orderBy('created_at', 'desc').limit(f.limit);
  if (f.projectId) q.where({ project_id: f.projectId });
  if (f.status) q.where({ status: f.status });
  return (await q).map(toMachine);
}

/** Machines newest first, one page; `projectIds` narrows to a key's projects. */
export async function pageMachines(
  db: Db,
  f: KeysetPage & { projectId?: string; status?: string; projectIds?: readonly string[] | null },
): Promise<Array<{ item: Machine; key: CreatedKey }>> {
  const q = keyset(db('machines'), 'machines', { ...f, desc: true });
  if (f.projectId) q.where('machines.project_id', f.projectId);
  if (f.status) q.where('machines.status', f.status);
  if (f.projectIds) q.whereIn('machines.project_id', f.projectIds);
  return (await q).map((r: any) => ({ item: toMachine(r), key: keyOfRow(r) }));
}

/** Machines of a provider and profile still waiting for an instance (pending or provisioning). */
export async function countWaitingMachines(db: Db, provider: string, profile: string): Promise<number> {
  const rows = await db('machines').where({ provider, profile }).whereIn('status', ['pending', 'provisioning']).count<{ count: string }[]>('* as count');
  return Number(rows[0]?.count ?? 0);
}

/** Ids and instance refs of the machines that have not ended. */
export async function liveMachineRefs(db: Db): Promise<{ ids: Set<string>; instanceRefs: Set<string> }> {
  const rows = await db('machines')
    .whereNotIn('status', FINAL_MACHINE_STATUSES as string[])
    .select('id', 'instance_ref');
  return { ids: new Set(rows.map((r) => r.id as string)), instanceRefs: new Set(rows.filter((r) => r.instance_ref).map((r) => r.instance_ref as string)) };
}

/** Adds what the machine's egress proxy counted (connections closed since the last call) to its totals. */
export async function addNetworkTotals(db: Db | Knex.Transaction, id: string, d: NetworkTotals): Promise<void> {
  await db('machines')
    .where({ id })
    .update({
      network_connections: db.raw('network_connections + ?', [d.connections]),
      network_refused: db.raw('network_refused + ?', [d.refused]),
      network_bytes_up: db.raw('network_bytes_up + ?', [d.bytesUp]),
      network_bytes_down: db.raw('network_bytes_down + ?', [d.bytesDown]),
    });
}

/** Records the compute price the machine is charged at (store the whole record: it explains the bill). */
export async function setComputePrice(db: Db, id: string, price: ComputePrice): Promise<void> {
  await db('machines')
    .where({ id })
    .update({ compute_price: JSON.stringify(price) });
}

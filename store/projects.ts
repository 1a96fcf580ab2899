import type { Knex } from 'knex';
import type { BillingMode } from '../domain/budget.js';
import { type CurrencyCode, fromNumeric, toNumeric } from '../domain/money.js';
import { networkPolicyOf, type NetworkPolicy } from '../domain/network.js';
import type { Db } from './db.js';
import { keyOfRow, keyset, type CreatedKey, type KeysetPage } from './paging.js';

export interface Project {
  id: string;
  name: string;
  repoUrl: string | null;
  repoPath: string;
  currency: CurrencyCode;
  greediness: number;
  defaultMachineMoney: bigint;
  rootCheckpointId: string | null;
  limitPolicy: 'stop' | 'pause';
  pauseMinutes: number;
  /** At most this many machines of the project's objectives and pipelines run at once. */
  maxConcurrentMachines: number;
  /** Named resources and their capacity (how many holders at once). */
  resources: Record<string, number>;
  /** The cost center the project's spending is allocated to. */
  costCenterId: string | null;
  /** What its machines may reach on the network unless a request narrows it (README "Network"). */
  networkPolicy: NetworkPolicy;
  /** `postpaid` until the first top-up is credited, then `prepaid` (spend must fit the balance too). */
  billing: BillingMode;
  createdBy: string;
  createdAt: string;
}

function toProject(r: Record<string, any>): Project {
  return {
    id: r.id,
    name: r.name,
    repoUrl: r.repo_url,
    repoPath: r.repo_path,
    currency: r.currency,
    greediness: Number(r.greediness),
    defaultMachineMoney: fromNumeric(r.default_machine_money),
    rootCheckpointId: r.root_checkpoint_id,
    limitPolicy: r.limit_policy,
    pauseMinutes: r.pause_minutes,
    maxConcurrentMachines: r.max_concurrent_machines ?? 4,
    resources: r.resources ?? {},
    costCenterId: r.cost_center_id ?? null,
    networkPolicy: networkPolicyOf(r.network_policy),
    billing: r.billing ?? 'postpaid',
    createdBy: r.created_by,
    createdAt: new Date(r.created_at).toISOString(),
  };
}

export async function insertProject(
  db: Db | Knex.Transaction,
  p: Omit<Project, 'createdAt' | 'maxConcurrentMachines' | 'resources' | 'costCenterId' | 'networkPolicy' | 'billing'> &
    Partial<Pick<Project, 'maxConcurrentMachines' | 'resources'>> & { costCenterId?: string | null },
): Promise<Project> {
  const [row] = await db('projects')
    .insert({
      id: p.id,
      name: p.name,
      repo_url: p.repoUrl,
      repo_path: p.repoPath,
      currency: p.currency,
      greediness: p.greediness,
      default_machine_money: toNumeric(p.defaultMachineMoney),
      root_checkpoint_id: p.rootCheckpointId,
      limit_policy: p.limitPolicy,
      pause_minutes: p.pauseMinutes,
      ...(p.maxConcurrentMachines !== undefined ? { max_concurrent_machines: p.maxConcurrentMachines } : {}),
      ...(p.resources !== undefined ? { resources: JSON.stringify(p.resources) } : {}),
      cost_center_id: p.costCenterId ?? null,
      created_by: p.createdBy,
    })
    .returning('*');
  return toProject(row);
}

export async function getProject(db: Db, id: string): Promise<Project | null> {
  const row = await db('projects').where({ id }).first();
  return row ? toProject(row) : null;
}

/** Projects by id, one query (ids without a project are absent). */
export async function getProjects(db: Db, ids: readonly string[]): Promise<Map<string, Project>> {
  const out = new Map<string, Project>();
  if (!ids.length) return out;
  for (const r of await db('projects').whereIn('id', [...new Set(ids)])) out.set(r.id, toProject(r));
  return out;
}

export async function listProjects(db: Db): Promise<Project[]> {
  return (await db('projects').orderBy('created_at', 'asc')).map(toProject);
}

/** Projects oldest first, one page; `projectIds` narrows to a key's projects. */
export async function pageProjects(db: Db, page: KeysetPage & { projectIds?: readonly string[] | null }): Promise<Array<{ item: Project; key: CreatedKey }>> {
  const q = keyset(db('projects'), 'projects', page);
  if (page.projectIds) q.whereIn('projects.id', page.projectIds);
  return (await q).map((r: any) => ({ item: toProject(r), key: keyOfRow(r) }));
}

export async function setLimitPolicy(db: Db, id: string, policy: 'stop' | 'pause', pauseMinutes: number): Promise<void> {
  await db('projects').where({ id }).update({ limit_policy: policy, pause_minutes: pauseMinutes });
}

export interface SchedulingSettings {
  maxConcurrentMachines?: number;
  /** 0..1 (3 decimals). */
  greediness?: number;
  resources?: Record<string, number>;
}

/** Sets a project's scheduling settings; give the transaction that also writes its audit record. */
export async function setSchedulingSettings(db: Db | Knex.Transaction, id: string, s: SchedulingSettings): Promise<void> {
  await db('projects')
    .where({ id })
    .update({
      ...(s.maxConcurrentMachines !== undefined ? { max_concurrent_machines: s.maxConcurrentMachines } : {}),
      ...(s.greediness !== undefined ? { greediness: s.greediness } : {}),
      ...(s.resources !== undefined ? { resources: JSON.stringify(s.resources) } : {}),
    });
}

export async function setProjectCostCenter(db: Db, id: string, costCenterId: string | null): Promise<void> {
  await db('projects').where({ id }).update({ cost_center_id: costCenterId });
}

/** Links a new project to its root checkpoint (inserted after the project row, which it references). */
export async function setRootCheckpoint(db: Db, id: string, rootCheckpointId: string): Promise<void> {
  await db('projects').where({ id }).update({ root_checkpoint_id: rootCheckpointId });
}

/** The project's network policy as set, with who set it and when (null: never set, so `none`). */
export async function getProjectNetworkPolicy(
  db: Db,
  id: string,
): Promise<{ policy: NetworkPolicy; updatedBy: string | null; updatedAt: string | null } | null> {
  const row = await db('projects').where({ id }).first('network_policy', 'network_policy_updated_by', 'network_policy_updated_at');
  if (!row) return null;
  return {
    policy: networkPolicyOf(row.network_policy),
    updatedBy: row.network_policy_updated_by ?? null,
    updatedAt: row.network_policy_updated_at ? new Date(row.network_policy_updated_at).toISOString() : null,
  };
}

/** Sets the project's network policy; give the transaction that also writes its audit record. */
export async function setProjectNetworkPolicy(db: Db | Knex.Transaction, id: string, policy: NetworkPolicy, by: string): Promise<void> {
  await db('projects')
    .where({ id })
    .update({ network_policy: JSON.stringify(policy), network_policy_updated_by: by, network_policy_updated_at: db.fn.now() });
}

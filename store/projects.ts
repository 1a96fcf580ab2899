import type { Knex } from 'knex';
import { type CurrencyCode, fromNumeric, toNumeric } from '../domain/money.js';
import type { Db } from './db.js';

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
  /** The cost center the project's spending is allocated to. */
  costCenterId: string | null;
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
    costCenterId: r.cost_center_id ?? null,
    createdBy: r.created_by,
    createdAt: new Date(r.created_at).toISOString(),
  };
}

export async function insertProject(db: Db | Knex.Transaction, p: Omit<Project, 'createdAt' | 'costCenterId'> & { costCenterId?: string | null }): Promise<Project> {
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

export async function listProjects(db: Db): Promise<Project[]> {
  return (await db('projects').orderBy('created_at', 'asc')).map(toProject);
}

export async function setLimitPolicy(db: Db, id: string, policy: 'stop' | 'pause', pauseMinutes: number): Promise<void> {
  await db('projects').where({ id }).update({ limit_policy: policy, pause_minutes: pauseMinutes });
}

export async function setProjectCostCenter(db: Db, id: string, costCenterId: string | null): Promise<void> {
  await db('projects').where({ id }).update({ cost_center_id: costCenterId });
}

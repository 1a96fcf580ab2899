import type { Knex } from 'knex';
import type { ScheduledFetchOutcome } from '../domain/git-remote.js';
import type { Db } from './db.js';
import { gitRemoteTokenContext, openOrNull, sealOrNull } from './secrets.js';

/** A project's git remote as the platform keeps it. `token` leaves the store only for git itself. */
export interface GitRemote {
  projectId: string;
  url: string;
  username: string | null;
  token: string | null;
  updatedBy: string;
  /** The branches a Temporal Schedule fetches and how often; null: no periodic fetch. */
  fetch: { branches: string[]; everyMinutes: number } | null;
  /** When the schedule last fetched, and each branch's outcome. */
  lastFetchAt: string | null;
  lastFetchResult: ScheduledFetchOutcome[] | null;
  createdAt: string;
  updatedAt: string;
}

const toRemote = (r: Record<string, any>): GitRemote => ({
  projectId: r.project_id,
  url: r.url,
  username: r.username,
  token: openOrNull(r.token, gitRemoteTokenContext(r.project_id)),
  updatedBy: r.updated_by,
  fetch: r.fetch_branches ? { branches: r.fetch_branches, everyMinutes: r.fetch_every_minutes } : null,
  lastFetchAt: r.last_fetch_at ? new Date(r.last_fetch_at).toISOString() : null,
  lastFetchResult: r.last_fetch_result ?? null,
  createdAt: new Date(r.created_at).toISOString(),
  updatedAt: new Date(r.updated_at).toISOString(),
});

/** Sets (or replaces) the project's remote. */
export async function putGitRemote(
  db: Db | Knex.Transaction,
  r: { projectId: string; url: string; username: string | null; token: string | null; updatedBy: string; fetch?: GitRemote['fetch'] },
): Promise<GitRemote> {
  const row = {
    project_id: r.projectId,
    url: r.url,
    username: r.username,
    token: sealOrNull(r.token, gitRemoteTokenContext(r.projectId)),
    updated_by: r.updatedBy,
    fetch_branches: r.fetch ? JSON.stringify(r.fetch.branches) : null,
    fetch_every_minutes: r.fetch?.everyMinutes ?? null,
    updated_at: new Date(),
  };
  const [stored] = await db('project_git_remotes')
    .insert(row)
    .onConflict('project_id')
    .merge(['url', 'username', 'token', 'updated_by', 'fetch_branches', 'fetch_every_minutes', 'updated_at'])
    .returning('*');
  return toRemote(stored);
}

export async function getGitRemote(db: Db, projectId: string): Promise<GitRemote | null> {
  const row = await db('project_git_remotes').where({ project_id: projectId }).first();
  return row ? toRemote(row) : null;
}

/** Removes the project's remote; false when it had none. */
export async function deleteGitRemote(db: Db | Knex.Transaction, projectId: string): Promise<boolean> {
  return (await db('project_git_remotes').where({ project_id: projectId }).delete()) > 0;
}

/** Keeps the outcome of the schedule's latest fetch (nothing when the remote is gone meanwhile). */
export async function recordScheduledFetch(db: Db, projectId: string, at: Date, result: ScheduledFetchOutcome[]): Promise<void> {
  await db('project_git_remotes')
    .where({ project_id: projectId })
    .update({ last_fetch_at: at, last_fetch_result: JSON.stringify(result) });
}

import type { Knex } from 'knex';
import type { Db } from './db.js';

/** A project's git remote as the platform keeps it. `token` leaves the store only for git itself. */
export interface GitRemote {
  projectId: string;
  url: string;
  username: string | null;
  token: string | null;
  updatedBy: string;
  createdAt: string;
  updatedAt: string;
}

const toRemote = (r: Record<string, any>): GitRemote => ({
  projectId: r.project_id,
  url: r.url,
  username: r.username,
  token: r.token,
  updatedBy: r.updated_by,
  createdAt: new Date(r.created_at).toISOString(),
  updatedAt: new Date(r.updated_at).toISOString(),
});

/** Sets (or replaces) the project's remote. */
export async function putGitRemote(
  db: Db | Knex.Transaction,
  r: { projectId: string; url: string; username: string | null; token: string | null; updatedBy: string },
): Promise<GitRemote> {
  const row = { project_id: r.projectId, url: r.url, username: r.username, token: r.token, updated_by: r.updatedBy, updated_at: new Date() };
  const [stored] = await db('project_git_remotes')
    .insert(row)
    .onConflict('project_id')
    .merge(['url', 'username', 'token', 'updated_by', 'updated_at'])
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

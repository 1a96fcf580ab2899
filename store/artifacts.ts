import type { Db } from './db.js';

export interface Artifact {
  machineId: string;
  name: string;
  path: string;
  size: number;
  sha256: string;
  checkpointId: string | null;
  createdAt: string;
}

/** Records (or updates) one artifact of a machine. */
export async function putArtifact(db: Db, a: Omit<Artifact, 'createdAt'>): Promise<void> {
  await db('machine_artifacts')
    .insert({ machine_id: a.machineId, name: a.name, path: a.path, size: a.size, sha256: a.sha256, checkpoint_id: a.checkpointId })
    .onConflict(['machine_id', 'name'])
    .merge(['path', 'size', 'sha256', 'checkpoint_id']);
}

export async function listArtifacts(db: Db, machineId: string): Promise<Artifact[]> {
  const rows = await db('machine_artifacts').where({ machine_id: machineId }).orderBy('name');
  return rows.map((r) => ({
    machineId: r.machine_id,
    name: r.name,
    path: r.path,
    size: Number(r.size),
    sha256: r.sha256,
    checkpointId: r.checkpoint_id,
    createdAt: new Date(r.created_at).toISOString(),
  }));
}

import type { Db } from './db.js';

/** One copy of an instance snapshot in another region, as the provider last reported it. */
export interface InstanceSnapshotReplica {
  region: string;
  state: string;
  snapshotId?: string;
}

/** A checkpoint's provider-side disk snapshot (EBS on aws-ec2). */
export interface InstanceSnapshot {
  checkpointId: string;
  projectId: string;
  machineId: string;
  provider: string;
  snapshotRef: string;
  region: string;
  replicas: InstanceSnapshotReplica[];
  createdAt: string;
  updatedAt: string;
  /** Set once the retention prune deleted it (and its copies) at the provider. */
  deletedAt: string | null;
}

const json = (v: unknown) => (typeof v === 'string' ? JSON.parse(v) : v);

function toInstanceSnapshot(r: Record<string, any>): InstanceSnapshot {
  return {
    checkpointId: r.checkpoint_id,
    projectId: r.project_id,
    machineId: r.machine_id,
    provider: r.provider,
    snapshotRef: r.snapshot_ref,
    region: r.region,
    replicas: (json(r.replicas) ?? []) as InstanceSnapshotReplica[],
    createdAt: new Date(r.created_at).toISOString(),
    updatedAt: new Date(r.updated_at).toISOString(),
    deletedAt: r.deleted_at ? new Date(r.deleted_at).toISOString() : null,
  };
}

const plainReplicas = (replicas: readonly InstanceSnapshotReplica[]) =>
  JSON.stringify(replicas.map((r) => ({ region: r.region, state: r.state, ...(r.snapshotId ? { snapshotId: r.snapshotId } : {}) })));

/** Records a checkpoint's instance snapshot once; a repeat returns the stored one (its replicas refreshed). */
export async function recordInstanceSnapshot(
  db: Db,
  s: Pick<InstanceSnapshot, 'checkpointId' | 'projectId' | 'machineId' | 'provider' | 'snapshotRef' | 'region' | 'replicas'>,
): Promise<InstanceSnapshot> {
  await db('instance_snapshots')
    .insert({
      checkpoint_id: s.checkpointId,
      project_id: s.projectId,
      machine_id: s.machineId,
      provider: s.provider,
      snapshot_ref: s.snapshotRef,
      region: s.region,
      replicas: plainReplicas(s.replicas),
    })
    .onConflict('checkpoint_id')
    .ignore();
  await setInstanceSnapshotReplicas(db, s.checkpointId, s.replicas);
  return (await getInstanceSnapshot(db, s.checkpointId))!;
}

export async function getInstanceSnapshot(db: Db, checkpointId: string): Promise<InstanceSnapshot | null> {
  const row = await db('instance_snapshots').where({ checkpoint_id: checkpointId }).first();
  return row ? toInstanceSnapshot(row) : null;
}

/** Keeps the copies' states as last seen (shown when the provider cannot be asked). */
export async function setInstanceSnapshotReplicas(db: Db, checkpointId: string, replicas: readonly InstanceSnapshotReplica[]): Promise<void> {
  await db('instance_snapshots')
    .where({ checkpoint_id: checkpointId })
    .whereNull('deleted_at')
    .update({ replicas: plainReplicas(replicas), updated_at: db.fn.now() });
}

/** Marks the snapshot deleted at its provider; true the first time. */
export async function markInstanceSnapshotDeleted(db: Db, checkpointId: string): Promise<boolean> {
  const n = await db('instance_snapshots')
    .where({ checkpoint_id: checkpointId })
    .whereNull('deleted_at')
    .update({ replicas: '[]', deleted_at: db.fn.now(), updated_at: db.fn.now() });
  return n > 0;
}

/** Checkpoints (of one project, or all) that still have an instance snapshot at the provider. */
export async function liveInstanceSnapshotIds(db: Db, projectId?: string): Promise<Set<string>> {
  const q = db('instance_snapshots').whereNull('deleted_at');
  if (projectId) q.where({ project_id: projectId });
  return new Set((await q.select('checkpoint_id')).map((r) => r.checkpoint_id as string));
}

/** Live instance snapshots with a copy not yet completed in some replica region, oldest first. */
export async function instanceSnapshotBacklog(db: Db, limit: number): Promise<string[]> {
  const rows = await db('instance_snapshots')
    .whereNull('deleted_at')
    .orderBy([{ column: 'created_at' }, { column: 'checkpoint_id' }])
    .select('checkpoint_id', 'replicas');
  const out: string[] = [];
  for (const r of rows) {
    const replicas = (json(r.replicas) ?? []) as InstanceSnapshotReplica[];
    if (replicas.some((x) => x.state !== 'completed')) out.push(r.checkpoint_id as string);
    if (out.length >= limit) break;
  }
  return out;
}

import crypto from 'node:crypto';
import { backupId } from '../domain/backups.js';
import { appendAudit } from '../store/audit.js';
import { listBackups as listBackupsIn, type BackupManifest } from '../store/backups.js';
import { listS3Backups, s3BackupTarget } from '../store/backup-s3.js';
import { platformBackup } from '../workflows/index.js';
import { actorOfCaller, type Caller, type ServiceContext } from './context.js';

export interface BackupView {
  id: string;
  createdAt: string;
  tables: number;
  rows: number;
  repositories: number;
  chunkFiles: number;
  /** Where a complete copy is: the primary directory, the replica (directory or bucket), or both. */
  locations: Array<'primary' | 'replica'>;
}

/** The complete backups in the primary and replica directories, newest first. */
export async function listBackups(ctx: Pick<ServiceContext, 'config'>): Promise<BackupView[]> {
  const byId = new Map<string, { manifest: BackupManifest; locations: BackupView['locations'] }>();
  for (const [where, dir] of [
    ['primary', ctx.config.backups.dir],
    ...(ctx.config.backups.s3 ? [] : [['replica', ctx.config.backups.replicaDir] as const]),
  ] as const) {
    for (const manifest of await listBackupsIn(dir)) {
      const seen = byId.get(manifest.id) ?? { manifest, locations: [] };
      seen.locations.push(where);
      byId.set(manifest.id, seen);
    }
  }
  // A bucket replica: listed by its manifests' keys (the primary has the same manifest).
  const bucket = s3BackupTarget(ctx.config.backups.s3);
  if (bucket) for (const id of await listS3Backups(bucket)) byId.get(id)?.locations.push('replica');
  return [...byId.values()]
    .sort((a, b) => (a.manifest.id < b.manifest.id ? 1 : -1))
    .map(({ manifest: m, locations }) => ({
      id: m.id,
      createdAt: m.createdAt,
      tables: m.tables.length,
      rows: m.tables.reduce((n, t) => n + t.rows, 0),
      repositories: m.repositories.length,
      chunkFiles: m.chunks.files,
      locations,
    }));
}

/** Starts a platform backup now (the same workflow the schedule runs); audited as backup.requested. */
export async function startBackup(ctx: ServiceContext, caller: Caller): Promise<{ id: string; workflowId: string }> {
  const id = backupId(new Date(), crypto.randomBytes(3).toString('hex'));
  const workflowId = `platform-backup-${id}`;
  await ctx.temporal.workflow.start(platformBackup, {
    taskQueue: ctx.config.taskQueue,
    workflowId,
    args: [{ id }],
    staticSummary: 'platformBackup · deployment-wide (requested)',
  });
  await appendAudit(ctx.db, {
    actor: actorOfCaller(caller),
    action: 'backup.requested',
    subjectType: 'backup',
    subjectId: id,
    projectId: null,
    details: { workflowId },
  });
  return { id, workflowId };
}

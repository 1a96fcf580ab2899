import { appendAudit } from '../store/audit.js';
import { createBackup, pruneBackups, replicateBackup, type BackupManifest } from '../store/backups.js';
import { s3BackupTarget, uploadBackup } from '../store/backup-s3.js';
import { pruneProjectHistory } from '../store/project-history.js';
import { listProjects } from '../store/projects.js';
import { repoMirror } from '../store/shared-storage.js';
import type { ActivityDeps } from './deps.js';

/** The audit actor of scheduled and requested platform backups. */
export const BACKUP_ACTOR = 'system:backup';

function summary(m: BackupManifest) {
  return {
    id: m.id,
    tables: m.tables.length,
    rows: m.tables.reduce((n, t) => n + t.rows, 0),
    repositories: m.repositories.length,
    chunkFiles: m.chunks.files,
  };
}

/** Activities of the platform backup workflow (workflows/backup.ts). Each is idempotent by backup id. */
export function createBackupActivities({ db, config }: Pick<ActivityDeps, 'db' | 'config'>) {
  const paths = { projectsDir: config.projectsDir, snapshotsDir: config.snapshotRegions.primary };
  const bucket = s3BackupTarget(config.backups.s3);
  return {
    /** Dumps the database and copies repositories and chunks into the primary backup directory; a complete backup is kept as is. */
    async takePlatformBackup(input: { id: string; at: string }) {
      // With a shared object store this host's repositories are a cache: bring every project's up to date first.
      const mirror = repoMirror(config);
      if (mirror) for (const p of await listProjects(db)) await mirror.hydrate(db, p.id);
      const manifest = await createBackup(db, paths, config.backups.dir, input.id, new Date(input.at));
      return summary(manifest);
    },
    /** Copies the backup to the replica (the S3 bucket when configured, else the replica directory) and verifies the copy. */
    async replicatePlatformBackup(input: { id: string }) {
      if (bucket) await uploadBackup(config.backups.dir, input.id, bucket);
      else await replicateBackup(config.backups.dir, config.backups.replicaDir, input.id);
      return { replicated: true };
    },
    /**
     * Keeps the newest `AUTOVIBE_BACKUP_KEEP` backups in each directory, drops project change journal
     * entries older than `AUTOVIBE_PROJECT_HISTORY_DAYS`; records the backup in the audit log.
     */
    async finishPlatformBackup(input: { id: string; rows: number; repositories: number }) {
      const journalEntriesPruned = await pruneProjectHistory(db, new Date(Date.now() - config.projectHistoryDays * 86_400_000));
      const pruned = [
        ...(await pruneBackups(config.backups.dir, config.backups.keep)),
        ...(await pruneBackups(config.backups.replicaDir, config.backups.keep)),
      ];
      await appendAudit(db, {
        actor: BACKUP_ACTOR,
        action: 'backup.completed',
        subjectType: 'backup',
        subjectId: input.id,
        projectId: null,
        details: {
          rows: input.rows,
          repositories: input.repositories,
          dir: config.backups.dir,
          replica: config.backups.s3?.url ?? config.backups.replicaDir,
          pruned,
          journalEntriesPruned,
        },
      });
      return { pruned: [...new Set(pruned)] };
    },
  };
}

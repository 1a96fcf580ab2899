import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from '../config/index.js';
import { listBackups, restoreBackup } from '../store/backups.js';
import { downloadBackup, listS3Backups, s3BackupTarget } from '../store/backup-s3.js';
import { createDb } from '../store/db.js';

const USAGE = `usage: npm run restore -- [--from replica|primary|s3|<directory>] [--backup <id>|latest] [--list]

Restores a platform backup onto the configured database (DATABASE_URL, else the embedded one in
AUTOVIBE_HOME) and data directories, which must be empty: run it with the platform stopped.
--from     where the backups are: the replica directory (default), the primary, the bucket
           of AUTOVIBE_BACKUP_S3 (s3; the backup is downloaded and verified first), or a directory
--backup   which one (default: the newest complete one)
--list     only list the complete backups there`;

/** `npm run restore`: the recovery step of the disaster-recovery plan (README, "Backups and recovery"). */
async function main() {
  const { values } = parseArgs({
    options: {
      from: { type: 'string', default: 'replica' },
      backup: { type: 'string', default: 'latest' },
      list: { type: 'boolean', default: false },
      help: { type: 'boolean' },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const config = loadConfig();
  const started = process.hrtime.bigint();
  let root: string;
  let chosen: string | undefined;
  if (values.from === 's3') {
    const bucket = s3BackupTarget(config.backups.s3);
    if (!bucket) throw new Error('--from s3 needs AUTOVIBE_BACKUP_S3 (s3://bucket/prefix)');
    const ids = await listS3Backups(bucket);
    if (values.list) {
      console.log(ids.length ? ids.join('\n') : `no complete backups in ${config.backups.s3!.url}`);
      return;
    }
    chosen = values.backup === 'latest' ? ids[0] : values.backup;
    if (!chosen) throw new Error(`no complete backups in ${config.backups.s3!.url}`);
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'autovibe-restore-'));
    await downloadBackup(bucket, chosen, root);
  } else {
    root = values.from === 'replica' ? config.backups.replicaDir : values.from === 'primary' ? config.backups.dir : path.resolve(values.from);
    const backups = await listBackups(root);
    if (values.list) {
      for (const b of backups) console.log(`${b.id}  ${b.createdAt}  ${b.tables.reduce((n, t) => n + t.rows, 0)} rows  ${b.repositories.length} repositories`);
      if (!backups.length) console.log(`no complete backups in ${root}`);
      return;
    }
    chosen = values.backup === 'latest' ? backups[0]?.id : values.backup;
    if (!chosen) throw new Error(`no complete backups in ${root}`);
  }
  const db = await createDb({ databaseUrl: config.databaseUrl, home: config.home });
  try {
    const r = await restoreBackup(db, { projectsDir: config.projectsDir, snapshotsDir: config.snapshotRegions.primary }, root, chosen);
    const seconds = Number((process.hrtime.bigint() - started) / 1_000_000n) / 1000;
    console.log(
      `restored ${r.manifest.id} (taken ${r.manifest.createdAt}) from ${values.from === 's3' ? config.backups.s3!.url : root}: ${r.rows} rows, ${r.repositories} repositories, ${r.chunks} snapshot chunk files` +
        `${r.migratedAfter.length ? `, then migrated: ${r.migratedAfter.join(', ')}` : ''} in ${seconds.toFixed(1)} s`,
    );
  } finally {
    await db.destroy();
  }
}

main().catch((err) => {
  console.error(`restore: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});

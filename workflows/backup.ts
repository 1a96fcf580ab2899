import { proxyActivities, uuid4 } from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import { backupId, type PlatformBackupResult } from '../domain/backups.js';
import { INPUT_ERROR, NOT_FOUND, retryUnless, shortActivity } from './activity-options.js';

/**
 * Started by the platform's backup Temporal Schedule (or on request): a consistent dump of the
 * database, the project repositories and the snapshot chunks into the backup directory, then a
 * verified copy in the replica directory, then retention. The id is fixed by the workflow, so a
 * retried activity finishes the same backup instead of starting another.
 */
export async function platformBackup(input: { id?: string } = {}): Promise<PlatformBackupResult> {
  const id = input.id ?? backupId(new Date(Date.now()), uuid4().slice(0, 6));
  // A backup that fails five times is reported as failed: the next scheduled one starts afresh.
  const long = proxyActivities<Activities>({
    startToCloseTimeout: '30 minutes',
    retry: retryUnless([NOT_FOUND, INPUT_ERROR, 'BackupError'], { maximumAttempts: 5 }),
  });
  const book = proxyActivities<Activities>(shortActivity());
  const taken = await long.takePlatformBackup({ id, at: new Date(Date.now()).toISOString() });
  const { replicated } = await long.replicatePlatformBackup({ id });
  const { pruned } = await book.finishPlatformBackup({ id, rows: taken.rows, repositories: taken.repositories });
  return { ...taken, replicated, pruned };
}

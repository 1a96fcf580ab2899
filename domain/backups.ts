/** A backup's id: `backup-20261207T120000Z-1a2b3c`. Sorts by time; `suffix` keeps two in one second apart. */
export function backupId(at: Date, suffix: string): string {
  const stamp = at
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
  return `backup-${stamp}-${suffix
    .replace(/[^a-z0-9]/gi, '')
    .slice(0, 8)
    .toLowerCase()}`;
}

/** What one platform backup run did (the workflow's result). */
export interface PlatformBackupResult {
  id: string;
  tables: number;
  rows: number;
  repositories: number;
  chunkFiles: number;
  /** Whether the copy in the replica directory was verified file by file. */
  replicated: boolean;
  pruned: string[];
}

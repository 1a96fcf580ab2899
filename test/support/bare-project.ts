import crypto from 'node:crypto';
import type { CurrencyCode } from '../../domain/money.js';
import type { Db } from '../../store/db.js';
import { insertProject } from '../../store/projects.js';

/**
 * A project row written straight through the store, for tests below the api (no repository, no
 * budget, default limits); returns its id.
 */
export async function insertBareProject(db: Db, p: { id?: string; name?: string; currency?: CurrencyCode } = {}): Promise<string> {
  const id = p.id ?? `project-${crypto.randomUUID()}`;
  await insertProject(db, {
    id,
    name: p.name ?? 'test',
    repoUrl: null,
    repoPath: '/nonexistent',
    currency: p.currency ?? 'USD',
    greediness: 0.5,
    defaultMachineMoney: 0n,
    rootCheckpointId: null,
    limitPolicy: 'stop',
    pauseMinutes: 60,
    createdBy: 'test',
  });
  return id;
}

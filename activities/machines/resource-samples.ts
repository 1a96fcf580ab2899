import type { Logger } from 'pino';
import type { Db } from '../../store/db.js';
import { saveResourceSample } from '../../store/alerts.js';
import type { ResourceUsage } from '../compute/resource-limits.js';

/**
 * Keeps a running machine's latest memory and disk use (what the provider's limit watch measured)
 * in `resource_samples`, at most every `everyMs`, for the alert engine's `resource_exhaustion`
 * condition. A failed write is logged and never stops the machine.
 */
export function resourceSampler(db: Db, log: Logger, m: { machineId: string; projectId: string }, everyMs = 5000): (usage: ResourceUsage) => void {
  let last = 0;
  let writing = false;
  return (u) => {
    const now = Date.now();
    if (writing || now - last < everyMs) return;
    last = now;
    writing = true;
    void saveResourceSample(db, {
      machineId: m.machineId,
      projectId: m.projectId,
      at: new Date(now),
      memoryBytes: u.memoryBytes,
      memoryLimitBytes: u.memoryLimitBytes,
      diskBytes: u.diskBytes,
      diskLimitBytes: u.diskLimitBytes,
    })
      .catch((err: Error) => log.warn({ err: err.message, machineId: m.machineId }, 'resource sample not saved'))
      .finally(() => {
        writing = false;
      });
  };
}

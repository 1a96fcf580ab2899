import { ScheduleAlreadyRunning, ScheduleOverlapPolicy, type Client } from '@temporalio/client';
import type { Config } from '../config/index.js';
import type { ReconcileInput } from '../workflows/index.js';

export const reconcileScheduleId = (config: Config) => `autovibe-reconcile-${config.taskQueue}`;

/**
 * The Temporal Schedule that runs `reconcileInstances` every `reconcileEverySeconds` (leaked
 * instances, warm pools). Creating it twice is harmless. Returns null when disabled (0 seconds).
 */
export async function ensureReconcileSchedule(client: Client, config: Config) {
  if (config.reconcileEverySeconds <= 0) return null;
  const scheduleId = reconcileScheduleId(config);
  const args: [ReconcileInput] = [{ minAgeSeconds: config.reconcileMinAgeSeconds }];
  try {
    await client.schedule.create({
      scheduleId,
      spec: { intervals: [{ every: `${config.reconcileEverySeconds}s` }] },
      action: { type: 'startWorkflow', workflowType: 'reconcileInstances', taskQueue: config.taskQueue, workflowId: `reconcile-${config.taskQueue}`, args },
      policies: { overlap: ScheduleOverlapPolicy.SKIP },
    });
  } catch (err) {
    if (!(err instanceof ScheduleAlreadyRunning)) throw err;
  }
  return client.schedule.getHandle(scheduleId);
}

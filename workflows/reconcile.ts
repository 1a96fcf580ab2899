import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';

export interface ReconcileInput {
  /** Instances younger than this are left alone: their machine row may be being written. */
  minAgeSeconds: number;
}

export interface ReconcileResult {
  /** `provider:instanceRef` of every instance terminated because no live machine owned it. */
  reclaimed: string[];
  pools: Array<{ provider: string; profile: string; free: number; target: number; added: number; removed: number }>;
}

const acts = proxyActivities<Activities>({
  startToCloseTimeout: '5 minutes',
  retry: { initialInterval: '1s', maximumInterval: '30s', maximumAttempts: 5 },
});

/**
 * No leaked instance, ever: compares what every provider runs with the machines table, terminates
 * what no live machine (and no warm pool) owns, one audit record each, then tops up the warm pools.
 * Started by a Temporal Schedule (workers/schedules.ts).
 */
export async function reconcileInstances(input: ReconcileInput): Promise<ReconcileResult> {
  await acts.checkProviders();
  const orphans = await acts.findOrphanInstances({ minAgeSeconds: input.minAgeSeconds });
  const reclaimed: string[] = [];
  for (const instance of orphans) {
    await acts.reclaimInstance({ instance });
    reclaimed.push(`${instance.provider}:${instance.instanceRef}`);
  }
  const pools = await acts.maintainWarmPools();
  return { reclaimed, pools };
}

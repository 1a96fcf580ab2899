import { proxyActivities, upsertMemo, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import { SEARCH_ATTRIBUTES } from '../domain/search-attributes.js';
import type { Activities } from '../activities/index.js';
import type { AlertEvaluationResult } from '../domain/alerts.js';
import { shortActivity } from './activity-options.js';

export interface AlertEvaluationInput {
  /** What started it (the schedule, a test, an operator): shown in the memo. */
  trigger?: string;
}

const acts = proxyActivities<Activities>(shortActivity('2 minutes'));

/**
 * One run of the alert engine (services/alerts.ts `evaluateAlerts`): raises every condition that
 * holds and has no open alert (time limits, provider rate limits, sandbox resources, projects'
 * own rules) and resolves every open alert whose condition cleared. Started by the
 * `alert-evaluation` Temporal Schedule (workers/schedules.ts), every minute by default. Its
 * AutoVibeStatus goes running → completed; the memo carries the counts.
 */
export async function alertEvaluation(input: AlertEvaluationInput = {}): Promise<AlertEvaluationResult> {
  const labelled = workflowInfo().typedSearchAttributes.get(SEARCH_ATTRIBUTES.status) !== undefined;
  const result = await acts.evaluateAlerts();
  upsertMemo({ trigger: input.trigger ?? 'schedule', raised: result.raised, resolved: result.resolved, open: result.open });
  if (labelled) upsertSearchAttributes([{ key: SEARCH_ATTRIBUTES.status, value: 'completed' }]);
  return result;
}

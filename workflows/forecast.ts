import { proxyActivities, upsertMemo, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import { SEARCH_ATTRIBUTES } from '../domain/search-attributes.js';
import type { Activities } from '../activities/index.js';
import { shortActivity } from './activity-options.js';

export interface ForecastRefreshInput {
  /** What started it (the schedule, a test, an operator): shown in the memo. */
  trigger?: string;
}

export interface ForecastRefreshResult {
  scopes: number;
  exhausting: number;
  alerts: number;
}

const acts = proxyActivities<Activities>(shortActivity('10 minutes'));

/**
 * Computes and stores the spend forecast of every project, cost center and department with spend
 * or a budget, raising a budget-forecast alert (once per budget period) where a budget is forecast
 * to run out before its period ends. Started by the `forecast-refresh` Temporal Schedule
 * (workers/schedules.ts). Its AutoVibeStatus goes running → completed; the memo carries the counts.
 */
export async function forecastRefresh(input: ForecastRefreshInput = {}): Promise<ForecastRefreshResult> {
  const labelled = workflowInfo().typedSearchAttributes.get(SEARCH_ATTRIBUTES.status) !== undefined;
  const result = await acts.refreshForecasts({ workflowId: workflowInfo().workflowId });
  upsertMemo({ trigger: input.trigger ?? 'schedule', scopes: result.scopes, exhausting: result.exhausting, alerts: result.alerts });
  if (labelled) upsertSearchAttributes([{ key: SEARCH_ATTRIBUTES.status, value: 'completed' }]);
  return result;
}

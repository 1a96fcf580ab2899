import { evaluateAlerts, type AlertEvaluationResult } from '../services/alerts.js';
import type { ActivityDeps } from './deps.js';

/** The alert-evaluation workflow's activity: raise the conditions that hold, resolve the ones that cleared. */
export function createAlertActivities(deps: ActivityDeps) {
  return {
    async evaluateAlerts(): Promise<AlertEvaluationResult> {
      return evaluateAlerts(deps);
    },
  };
}

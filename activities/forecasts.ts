import { refreshForecasts, type ForecastRefreshResult } from '../services/forecasts.js';
import type { ActivityDeps } from './deps.js';

/** The forecast-refresh workflow's activity: compute and store every scope's spend forecast (and raise budget-forecast alerts). */
export function createForecastActivities(deps: ActivityDeps) {
  return {
    async refreshForecasts(input: { workflowId: string }): Promise<ForecastRefreshResult> {
      return refreshForecasts(deps, { workflowId: input.workflowId });
    },
  };
}

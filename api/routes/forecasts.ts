import * as R from '../responses.js';
import { RouteGroup, inPath } from './table.js';
import { COST_CENTER_SCOPE, DEPARTMENT_SCOPE, PROJECT_SCOPE } from '../../domain/budget.js';
import type { StoredForecast } from '../../store/forecasts.js';
import { scopeForecast } from '../../services/forecasts.js';
import { param, type ApiContext } from '../context.js';

/** The stored body plus where it came from. */
const present = (f: StoredForecast) => ({ ...f.body, computedAt: f.computedAt, workflowId: f.workflowId });

/**
 * Spend forecasts as the forecast-refresh schedule stored them (never computed on request): per
 * project, cost center and department, with 80 %/95 % intervals, the budget's exhaustion date and
 * recommendations.
 */
export function forecastRoutes(ctx: ApiContext): RouteGroup {
  const r = new RouteGroup(ctx);
  r.get('/projects/:id/forecast', { permission: 'costs.read', resource: inPath('project') }, { 200: R.forecast }, async (req, res) => {
    res.json(present(await scopeForecast(ctx, PROJECT_SCOPE, param(req, 'id'))));
  });
  r.get(
    '/cost-centers/:id/forecast',
    { permission: 'cost-centers.read', resource: inPath('cost-center'), deploymentWide: true },
    { 200: R.forecast },
    async (req, res) => {
      res.json(present(await scopeForecast(ctx, COST_CENTER_SCOPE, param(req, 'id'))));
    },
  );
  r.get('/departments/:name/forecast', { permission: 'cost-centers.read', resource: 'none', deploymentWide: true }, { 200: R.forecast }, async (req, res) => {
    res.json(present(await scopeForecast(ctx, DEPARTMENT_SCOPE, param(req, 'name'))));
  });
  return r;
}

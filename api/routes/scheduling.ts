import * as R from '../responses.js';
import { RouteGroup, inPath } from './table.js';
import { callerOf, param, type ApiContext } from '../context.js';
import { getSchedulingView, schedulingView, setScheduling } from '../../services/scheduling.js';

export function schedulingRoutes(ctx: ApiContext): RouteGroup {
  const r = new RouteGroup(ctx);

  r.get('/projects/:id/scheduling', { permission: 'projects.read', resource: inPath('project') }, { 200: R.scheduling }, async (req, res) => {
    res.json(await getSchedulingView(ctx, param(req, 'id')));
  });

  r.put('/projects/:id/scheduling', { permission: 'projects.configure', resource: inPath('project') }, { 200: R.scheduling }, async (req, res) => {
    res.json(await schedulingView(ctx, await setScheduling(ctx, callerOf(req), param(req, 'id'), req.body)));
  });

  return r;
}

import * as R from '../responses.js';
import { RouteGroup, inPath, inQuery } from './table.js';
import { callerOf, param, type ApiContext } from '../context.js';
import { presentRoutingDecision } from '../present.js';
import { routingView, setRoutingSettings } from '../../services/routing.js';

/** Machine selection (README "Machine selection (type: auto)"): the router's state, and a project's knob. */
export function routingRoutes(ctx: ApiContext): RouteGroup {
  const r = new RouteGroup(ctx);

  r.get('/routing', { permission: 'routing.read', resource: inQuery('project', 'projectId') }, { 200: R.routing }, async (req, res) => {
    const view = await routingView(ctx, callerOf(req), req.query as Record<string, string>);
    res.json({ ...view, decisions: view.decisions.map(presentRoutingDecision) });
  });

  r.put('/projects/:id/routing', { permission: 'routing.configure', resource: inPath('project') }, { 200: R.routingSettingsResponse }, async (req, res) => {
    res.json(await setRoutingSettings(ctx, callerOf(req), param(req, 'id'), req.body));
  });

  return r;
}

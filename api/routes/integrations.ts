import { getProjectIntegration, openPullRequest, removeProjectIntegration, setProjectIntegration } from '../../services/integrations.js';
import { callerOf, param, type ApiContext } from '../context.js';
import * as R from '../responses.js';
import { inPath, RouteGroup } from './table.js';

/**
 * A project's integrations with outside trackers (GitHub now): owners set and remove them, readers
 * see their config (never the token or the webhook secret); a checkpoint becomes a pull request.
 * The tracker's own hooks come in at /hooks/:kind/:integrationId (api/hooks.ts), outside /v1.
 */
export function integrationRoutes(ctx: ApiContext): RouteGroup {
  const r = new RouteGroup(ctx);
  const project = inPath('project');

  r.put('/projects/:id/integrations/:kind', { permission: 'integrations.manage', resource: project }, { 200: R.integration }, async (req, res) => {
    res.json(await setProjectIntegration(ctx, callerOf(req), param(req, 'id'), param(req, 'kind'), req.body));
  });

  r.get('/projects/:id/integrations/:kind', { permission: 'integrations.read', resource: project }, { 200: R.integration }, async (req, res) => {
    res.json(await getProjectIntegration(ctx, param(req, 'id'), param(req, 'kind')));
  });

  r.delete('/projects/:id/integrations/:kind', { permission: 'integrations.manage', resource: project }, { 204: R.noContent }, async (req, res) => {
    await removeProjectIntegration(ctx, callerOf(req), param(req, 'id'), param(req, 'kind'));
    res.status(204).end();
  });

  r.post('/checkpoints/:id/pull-request', { permission: 'checkpoints.write', resource: inPath('checkpoint') }, { 200: R.pullRequest }, async (req, res) => {
    res.json(await openPullRequest(ctx, callerOf(req), param(req, 'id'), req.body));
  });

  return r;
}

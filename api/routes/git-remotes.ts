import { fetchProjectBranch, projectGitRemote, pushCheckpoint, removeProjectGitRemote, setProjectGitRemote } from '../../services/git-remotes.js';
import { callerOf, param, type ApiContext } from '../context.js';
import { presentCheckpoint } from '../present.js';
import * as R from '../responses.js';
import { inPath, RouteGroup } from './table.js';

/** A project's git remote (its token is never shown), pushing checkpoints as branches and fetching branches as checkpoints. */
export function gitRemoteRoutes(ctx: ApiContext): RouteGroup {
  const r = new RouteGroup(ctx);
  const project = inPath('project');

  r.put('/projects/:id/git-remote', { permission: 'projects.configure', resource: project }, { 200: R.gitRemote }, async (req, res) => {
    res.json(await setProjectGitRemote(ctx, callerOf(req), param(req, 'id'), req.body));
  });

  r.get('/projects/:id/git-remote', { permission: 'projects.read', resource: project }, { 200: R.gitRemote }, async (req, res) => {
    res.json(await projectGitRemote(ctx, param(req, 'id')));
  });

  r.delete('/projects/:id/git-remote', { permission: 'projects.configure', resource: project }, { 204: R.noContent }, async (req, res) => {
    await removeProjectGitRemote(ctx, callerOf(req), param(req, 'id'));
    res.status(204).end();
  });

  r.post('/projects/:id/git-remote/fetch', { permission: 'checkpoints.write', resource: project }, { 200: R.gitFetch }, async (req, res) => {
    const result = await fetchProjectBranch(ctx, callerOf(req), param(req, 'id'), req.body);
    res.json({ ...result, checkpoint: presentCheckpoint(result.checkpoint) });
  });

  r.post('/checkpoints/:id/push', { permission: 'checkpoints.write', resource: inPath('checkpoint') }, { 200: R.gitPush }, async (req, res) => {
    res.json(await pushCheckpoint(ctx, callerOf(req), param(req, 'id'), req.body));
  });

  return r;
}

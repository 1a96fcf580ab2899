import * as R from '../responses.js';
import { inPath, RouteGroup } from './table.js';
import { callerOf, param, type ApiContext } from '../context.js';
import { recoverProject } from '../../services/recoveries.js';

/** Point-in-time recovery of one project (admins): a copy as of a moment (201), in place or a dry run (200). */
export function recoveryRoutes(ctx: ApiContext): RouteGroup {
  const r = new RouteGroup(ctx);
  r.post(
    '/projects/:id/recoveries',
    { permission: 'projects.recover', resource: inPath('project') },
    { 200: R.recovery, 201: R.recovery },
    async (req, res) => {
      const result = await recoverProject(ctx, callerOf(req), param(req, 'id'), req.body ?? {});
      res.status(result.mode === 'copy' && !result.dryRun ? 201 : 200).json(result);
    },
  );
  return r;
}

import { z } from 'zod';
import * as R from '../responses.js';
import { pageAlerts } from '../../store/alerts.js';
import { principalOf, type ApiContext } from '../context.js';
import { decodeCursor, pageOf, seqKey } from '../pagination.js';
import { RouteGroup, inQuery } from './table.js';

export const alertsQuery = z.strictObject({
  projectId: z.string().min(1).max(200).optional(),
  limit: z.coerce.number().int().min(1).max(500, 'must be at most 500').default(100),
  cursor: z.string().max(1000).optional(),
});

/**
 * Alerts, newest first: budgets past a threshold, machines paused for a decision, failed payments,
 * providers gone unavailable. The same alerts are `alert.*` events on the event feed. A key bound
 * to projects sees its projects' alerts; the deployment's (no project) only keys bound to none.
 */
export function alertRoutes(ctx: ApiContext): RouteGroup {
  const r = new RouteGroup(ctx);
  r.get('/alerts', { permission: 'projects.read', resource: inQuery('project', 'projectId') }, { 200: R.page(R.alert) }, async (req, res) => {
    const q = alertsQuery.parse(req.query);
    const rows = await pageAlerts(ctx.db, {
      limit: q.limit + 1,
      ...(q.cursor ? { before: decodeCursor(q.cursor, seqKey)! } : {}),
      ...(q.projectId ? { projectId: q.projectId } : {}),
      projectIds: principalOf(req).projectIds,
    });
    res.json(pageOf(rows, q.limit, (a) => a.id));
  });
  return r;
}

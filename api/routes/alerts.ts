import { z } from 'zod';
import * as R from '../responses.js';
import { ALERT_KINDS, pageAlerts } from '../../store/alerts.js';
import { createAlertRule, listProjectAlertRules, removeAlertRule } from '../../services/alerts.js';
import { callerOf, param, principalOf, type ApiContext } from '../context.js';
import { decodeCursor, pageOf, seqKey } from '../pagination.js';
import { inPath, RouteGroup, inQuery } from './table.js';

export const alertsQuery = z.strictObject({
  projectId: z.string().min(1).max(200).optional(),
  status: z.enum(['open', 'resolved'], { error: 'must be open or resolved' }).optional(),
  kind: z.enum(ALERT_KINDS, { error: `must be one of ${ALERT_KINDS.join(', ')}` }).optional(),
  limit: z.coerce.number().int().min(1).max(500, 'must be at most 500').default(100),
  cursor: z.string().max(1000).optional(),
});

/**
 * Alerts, newest first: budgets past a threshold, machines paused for a decision or past their
 * time limit, failed payments, providers gone unavailable, rate limits nearly used up, projects'
 * own rules. Each is open until its condition clears, then resolved. The same alerts are `alert.*`
 * events on the event feed. A key bound to projects sees its projects' alerts; the deployment's
 * (no project) only keys bound to none. A project's alert rules: owners configure, viewers read.
 */
export function alertRoutes(ctx: ApiContext): RouteGroup {
  const r = new RouteGroup(ctx);
  r.get('/alerts', { permission: 'projects.read', resource: inQuery('project', 'projectId') }, { 200: R.page(R.alert) }, async (req, res) => {
    const q = alertsQuery.parse(req.query);
    const rows = await pageAlerts(ctx.db, {
      limit: q.limit + 1,
      ...(q.cursor ? { before: decodeCursor(q.cursor, seqKey)! } : {}),
      ...(q.projectId ? { projectId: q.projectId } : {}),
      ...(q.status ? { status: q.status } : {}),
      ...(q.kind ? { kind: q.kind } : {}),
      projectIds: principalOf(req).projectIds,
    });
    res.json(pageOf(rows, q.limit, (a) => a.id));
  });

  const project = inPath('project');
  r.post('/projects/:id/alert-rules', { permission: 'alerts.configure', resource: project }, { 201: R.alertRule }, async (req, res) => {
    res.status(201).json(await createAlertRule(ctx, callerOf(req), param(req, 'id'), req.body));
  });
  r.get('/projects/:id/alert-rules', { permission: 'projects.read', resource: project }, { 200: R.alertRules }, async (req, res) => {
    res.json({ items: await listProjectAlertRules(ctx, param(req, 'id')) });
  });
  r.delete('/projects/:id/alert-rules/:ruleId', { permission: 'alerts.configure', resource: project }, { 204: R.noContent }, async (req, res) => {
    await removeAlertRule(ctx, callerOf(req), param(req, 'id'), param(req, 'ruleId'));
    res.status(204).end();
  });
  return r;
}

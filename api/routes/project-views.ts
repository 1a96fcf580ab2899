import * as R from '../responses.js';
import { RouteGroup, inPath } from './table.js';
import { formatAmount } from '../../domain/money.js';
import { param, type ApiContext } from '../context.js';
import { presentBalance, presentBudget } from '../present.js';
import { projectBudgetsView, projectCheckpointTree, projectCostSeries } from '../../services/project-views.js';

/** Whole-project reads for dashboards: the evolution tree in one answer, spend over time, every budget. */
export function projectViewRoutes(ctx: ApiContext): RouteGroup {
  const r = new RouteGroup(ctx);

  // Revalidated cheaply: the answer carries an ETag of the tree's version; If-None-Match with it gets a 304 (no body, no rows read).
  r.get('/projects/:id/checkpoints/tree', { permission: 'checkpoints.read', resource: inPath('project') }, { 200: R.checkpointTree }, async (req, res) => {
    const tagOf = (version: string) => `"tree-${version}"`;
    const t = await projectCheckpointTree(ctx, param(req, 'id'), (version) => matchesIfNoneMatch(req.get('if-none-match'), tagOf(version)));
    res.set({ ETag: tagOf(t.version), 'Cache-Control': 'private, no-cache' });
    if (!t.nodes) return void res.status(304).end();
    res.json({ projectId: t.project.id, rootCheckpointId: t.project.rootCheckpointId, count: t.nodes.length, nodes: t.nodes });
  });

  r.get('/projects/:id/costs/series', { permission: 'costs.read', resource: inPath('project') }, { 200: R.costSeries }, async (req, res) => {
    const s = await projectCostSeries(ctx, param(req, 'id'), req.query);
    const c = s.project.currency;
    res.json({
      projectId: s.project.id,
      currency: c,
      bucket: s.bucket,
      from: s.from.toISOString(),
      to: s.to.toISOString(),
      categories: s.categories,
      total: formatAmount(s.total, c),
      buckets: s.buckets.map((b) => ({
        start: b.start.toISOString(),
        total: formatAmount(b.total, c),
        byCategory: Object.fromEntries(Object.entries(b.byCategory).map(([k, v]) => [k, formatAmount(v, c)])),
      })),
    });
  });

  r.get('/projects/:id/budgets', { permission: 'costs.read', resource: inPath('project') }, { 200: R.projectBudgets }, async (req, res) => {
    const v = await projectBudgetsView(ctx, param(req, 'id'));
    res.json({
      projectId: v.project.id,
      budget: presentBudget(v.budget),
      balance: presentBalance(v.balance),
      machineTypes: v.machineTypes.map((t) => ({ machineType: t.machineType, source: t.source, ...presentBudget(t.budget)! })),
    });
  });

  return r;
}

/**
 * Whether an If-None-Match header names `tag` (weakly compared, or `*`). Answered here rather than
 * by express, whose check gives up whenever the request says `Cache-Control: no-cache` — which
 * fetch() adds to every request that sets If-None-Match itself, as a dashboard refreshing does.
 */
function matchesIfNoneMatch(header: string | undefined, tag: string): boolean {
  if (!header) return false;
  const bare = (t: string) => t.trim().replace(/^W\//, '');
  return header.split(',').some((t) => t.trim() === '*' || bare(t) === bare(tag));
}

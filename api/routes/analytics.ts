import * as R from '../responses.js';
import { RouteGroup, inPath } from './table.js';
import { formatAmount } from '../../domain/money.js';
import { projectCostBreakdown, projectCostOpportunities, projectCostVariance, scopeCostBreakdown, type ScopeCostBreakdown } from '../../services/analytics.js';
import { param, principalOf, type ApiContext } from '../context.js';
import { presentCostBreakdown, presentCostOpportunities } from '../present.js';

/** Cost analytics of a project: breakdowns, variance against allocation, optimization opportunities. */
export function analyticsRoutes(ctx: ApiContext): RouteGroup {
  const r = new RouteGroup(ctx);

  r.get('/projects/:id/costs/breakdown', { permission: 'costs.read', resource: inPath('project') }, { 200: R.costBreakdown }, async (req, res) => {
    res.json(presentCostBreakdown(await projectCostBreakdown(ctx, param(req, 'id'), req.query)));
  });

  r.get('/projects/:id/costs/variance', { permission: 'costs.read', resource: inPath('project') }, { 200: R.costVariance }, async (req, res) => {
    const v = await projectCostVariance(ctx, param(req, 'id'), req.query);
    const c = v.project.currency;
    const money = (x: bigint) => formatAmount(x, c);
    const pct = (actual: bigint, allocated: bigint | null) =>
      allocated === null || allocated === 0n ? null : Number(((actual - allocated) * 10_000n) / allocated) / 100;
    const trend = (t: bigint) => ({ perPeriod: money(t), direction: t > 0n ? 'rising' : t < 0n ? 'falling' : 'flat' });
    res.json({
      projectId: v.project.id,
      currency: c,
      period: v.period,
      budget: v.budget ? { budgetId: v.budget.id, period: v.budget.period, limit: formatAmount(v.budget.limit, c) } : null,
      periods: v.periods.map((p) => ({
        start: p.start.toISOString(),
        end: p.end.toISOString(),
        actual: formatAmount(p.actual, c),
        allocated: p.allocated === null ? null : formatAmount(p.allocated, c),
        variance: p.allocated === null ? null : formatAmount(p.actual - p.allocated, c),
        variancePercent: pct(p.actual, p.allocated),
        byCategory: Object.fromEntries(Object.entries(p.byCategory).map(([k, x]) => [k, formatAmount(x, c)])),
      })),
      categories: v.categories.map((k) => ({ category: k.category, actual: k.actual.map(money), trend: trend(k.trendPerPeriod) })),
      machineTypes: v.machineTypes.map((t) => ({
        machineType: t.machineType,
        budget: t.budget
          ? {
              budgetId: t.budget.id,
              source: t.budget.source,
              period: t.budget.period,
              limit: formatAmount(t.budget.limit, t.budget.currency),
              currency: t.budget.currency,
            }
          : null,
        periods: t.actual.map((actual, i) => {
          const allocated = t.allocated[i] ?? null;
          return {
            actual: money(actual),
            allocated: allocated === null ? null : money(allocated),
            variance: allocated === null ? null : money(actual - allocated),
            variancePercent: pct(actual, allocated),
          };
        }),
        trend: trend(t.trendPerPeriod),
      })),
      trend: trend(v.trendPerPeriod),
    });
  });

  r.get('/projects/:id/costs/opportunities', { permission: 'costs.read', resource: inPath('project') }, { 200: R.costOpportunities }, async (req, res) => {
    res.json(
      presentCostOpportunities(await projectCostOpportunities(ctx, param(req, 'id'), req.query, { includeDeployment: principalOf(req).projectIds === null })),
    );
  });
  const presentScope = (b: ScopeCostBreakdown) => ({
    by: b.by,
    from: b.from.toISOString(),
    to: b.to.toISOString(),
    totals: b.totals.map((t) => ({ currency: t.currency, amount: formatAmount(t.amount, t.currency) })),
    groups: b.groups.map((g) => ({ key: g.key, currency: g.currency, amount: formatAmount(g.amount, g.currency), records: g.records })),
  });
  r.get(
    '/cost-centers/:id/costs/breakdown',
    { permission: 'cost-centers.read', resource: inPath('cost-center'), deploymentWide: true },
    { 200: R.scopeCostBreakdown },
    async (req, res) => {
      const id = param(req, 'id');
      res.json({ scopeType: 'cost-center', scopeId: id, ...presentScope(await scopeCostBreakdown(ctx, { costCenterId: id }, req.query)) });
    },
  );
  r.get(
    '/departments/:name/costs/breakdown',
    { permission: 'cost-centers.read', resource: 'none', deploymentWide: true },
    { 200: R.scopeCostBreakdown },
    async (req, res) => {
      const name = param(req, 'name');
      res.json({ scopeType: 'department', scopeId: name, ...presentScope(await scopeCostBreakdown(ctx, { department: name }, req.query)) });
    },
  );
  return r;
}

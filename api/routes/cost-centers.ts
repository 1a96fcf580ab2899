import * as R from '../responses.js';
import { RouteGroup, inPath } from './table.js';
import { COST_CENTER_SCOPE, DEPARTMENT_SCOPE } from '../../domain/cost-centers.js';
import { type CurrencyCode } from '../../domain/money.js';
import { costCenterTotals, pageCostCenters, type CostCenter, type CostTotal } from '../../store/cost-centers.js';
import { listCosts } from '../../store/costs.js';
import { callerOf, param, principalOf, type ApiContext } from '../context.js';
import { createdKey, decodeCursor, pageOf, pageQuery, seqKey } from '../pagination.js';
import { costCentersOfProjects } from '../../store/access.js';
import { money, presentBudget, presentCost } from '../present.js';
import { listCostCentersQuery } from '../../services/schemas.js';
import {
  createCostCenter,
  grandTotal,
  requireCostCenter,
  requireDepartment,
  scopeBudget,
  setCostCenterBudget,
  setDepartmentBudget,
  type GrandTotal,
} from '../../services/cost-centers.js';

const presentCostCenter = (c: CostCenter) => ({ id: c.id, name: c.name, kind: c.kind, department: c.department, createdAt: c.createdAt });

/** A grand total in the viewer's currency, with each conversion. */
function presentGrandTotal(g: GrandTotal) {
  return {
    ...money(g.amount, g.currency),
    conversions: g.conversions.map((c) => ({
      from: c.from,
      amount: money(c.amount, c.from).amount,
      converted: money(c.converted, g.currency).amount,
      rate: c.rate,
      source: c.source,
      asOf: c.asOf,
    })),
  };
}

/** Totals per currency (never added across currencies) and per category within each currency. */
function presentTotals(rows: CostTotal[]) {
  const byCurrency = new Map<CurrencyCode, { total: bigint; byCategory: Record<string, bigint> }>();
  for (const r of rows) {
    const t = byCurrency.get(r.currency) ?? { total: 0n, byCategory: {} };
    t.total += r.amount;
    t.byCategory[r.category] = (t.byCategory[r.category] ?? 0n) + r.amount;
    byCurrency.set(r.currency, t);
  }
  return [...byCurrency].map(([currency, t]) => ({
    ...money(t.total, currency),
    byCategory: Object.fromEntries(Object.entries(t.byCategory).map(([k, v]) => [k, money(v, currency).amount])),
  }));
}

export function costCenterRoutes(ctx: ApiContext): RouteGroup {
  const r = new RouteGroup(ctx);
  const { db } = ctx;

  const load = (id: string) => requireCostCenter(ctx, id);
  const statusOf = async (scopeType: string, scopeId: string) => {
    const b = await scopeBudget(ctx, scopeType, scopeId);
    return b ? presentBudget(b) : null;
  };

  r.post('/cost-centers', { permission: 'cost-centers.manage', resource: 'none', deploymentWide: true }, { 201: R.costCenter }, async (req, res) => {
    const center = await createCostCenter(ctx, callerOf(req), req.body);
    res.status(201).json(presentCostCenter(center));
  });

  r.get('/cost-centers', { permission: 'cost-centers.read', resource: 'none' }, { 200: R.page(R.costCenter) }, async (req, res) => {
    const q = listCostCentersQuery.parse(req.query);
    const p = principalOf(req);
    const rows = await pageCostCenters(db, {
      limit: q.limit + 1,
      after: decodeCursor(q.cursor, createdKey),
      ...(q.department ? { department: q.department } : {}),
      ids: p.projectIds === null ? null : await costCentersOfProjects(db, p.projectIds),
    });
    const page = pageOf(rows, q.limit, (r) => r.key);
    res.json({ items: page.items.map((r) => presentCostCenter(r.item)), nextCursor: page.nextCursor });
  });

  r.get('/cost-centers/:id', { permission: 'cost-centers.read', resource: inPath('cost-center') }, { 200: R.costCenterDetail }, async (req, res) => {
    const c = await load(param(req, 'id'));
    res.json({ ...presentCostCenter(c), budget: await statusOf(COST_CENTER_SCOPE, c.id) });
  });

  r.put(
    '/cost-centers/:id/budget',
    { permission: 'cost-centers.manage', resource: inPath('cost-center'), deploymentWide: true },
    { 200: R.budget },
    async (req, res) => {
      res.json(presentBudget(await setCostCenterBudget(ctx, callerOf(req), param(req, 'id'), req.body)));
    },
  );

  r.get(
    '/cost-centers/:id/costs',
    { permission: 'cost-centers.read', resource: inPath('cost-center'), deploymentWide: true },
    { 200: R.costCenterCosts },
    async (req, res) => {
      const c = await load(param(req, 'id'));
      const q = pageQuery.parse(req.query);
      const afterSeq = decodeCursor(q.cursor, seqKey);
      const [events, totals] = await Promise.all([
        listCosts(db, { costCenterId: c.id, limit: q.limit + 1, ...(afterSeq ? { afterSeq } : {}) }),
        costCenterTotals(db, { costCenterId: c.id }),
      ]);
      const page = pageOf(events, q.limit, (e) => e.seq);
      const grand = await grandTotal(ctx, totals, req.query);
      res.json({
        costCenter: presentCostCenter(c),
        items: page.items.map((e) => ({ ...presentCost(e), projectId: e.projectId })),
        nextCursor: page.nextCursor,
        totals: presentTotals(totals),
        grandTotal: presentGrandTotal(grand),
        budget: await statusOf(COST_CENTER_SCOPE, c.id),
      });
    },
  );

  r.put(
    '/departments/:name/budget',
    { permission: 'cost-centers.manage', resource: 'none', deploymentWide: true },
    { 200: R.departmentBudget },
    async (req, res) => {
      const name = param(req, 'name');
      res.json({ department: name, ...presentBudget(await setDepartmentBudget(ctx, callerOf(req), name, req.body)) });
    },
  );

  /** The department roll-up: its totals per currency, and per cost center. */
  r.get(
    '/departments/:name/costs',
    { permission: 'cost-centers.read', resource: 'none', deploymentWide: true },
    { 200: R.departmentCosts },
    async (req, res) => {
      const name = param(req, 'name');
      const centers = await requireDepartment(ctx, name);
      const totals = await costCenterTotals(db, { department: name });
      const grand = await grandTotal(ctx, totals, req.query);
      res.json({
        department: name,
        totals: presentTotals(totals),
        grandTotal: presentGrandTotal(grand),
        costCenters: await Promise.all(
          centers.map(async (c) => ({
            ...presentCostCenter(c),
            totals: presentTotals(totals.filter((t) => t.costCenterId === c.id)),
            budget: await statusOf(COST_CENTER_SCOPE, c.id),
          })),
        ),
        budget: await statusOf(DEPARTMENT_SCOPE, name),
      });
    },
  );

  return r;
}

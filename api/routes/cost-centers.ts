import * as R from '../responses.js';
import { RouteGroup, inPath } from './table.js';
import { COST_CENTER_SCOPE, DEPARTMENT_SCOPE } from '../../domain/cost-centers.js';
import { ConflictError, NotFoundError } from '../../domain/errors.js';
import { type CurrencyCode } from '../../domain/money.js';
import { appendAudit } from '../../store/audit.js';
import { budgetStatus, findBudget, setBudget } from '../../store/budgets.js';
import {
  costCenterTotals,
  findCostCenterByName,
  getCostCenter,
  insertCostCenter,
  listCostCenters,
  pageCostCenters,
  type CostCenter,
  type CostTotal,
} from '../../store/cost-centers.js';
import { listCosts } from '../../store/costs.js';
import { actorOf, param, principalOf, type ApiContext } from '../context.js';
import { MESSAGES } from '../errors.js';
import { idFromIdempotencyKey } from '../../store/ids.js';
import { createdKey, decodeCursor, pageOf, pageQuery, seqKey } from '../pagination.js';
import { costCentersOfProjects } from '../../store/access.js';
import { money, presentBudget, presentCost } from '../present.js';
import { createCostCenterBody, listCostCentersQuery, putBudgetBody } from '../../services/schemas.js';
import { parseAmountField } from './projects.js';

const presentCostCenter = (c: CostCenter) => ({ id: c.id, name: c.name, kind: c.kind, department: c.department, createdAt: c.createdAt });

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

  async function load(id: string): Promise<CostCenter> {
    const c = await getCostCenter(db, id);
    if (!c) throw new NotFoundError(MESSAGES.notFound('cost center', id));
    return c;
  }
  const statusOf = async (scopeType: string, scopeId: string) => {
    const b = await findBudget(db, scopeType, scopeId);
    return b ? presentBudget(await budgetStatus(db, b, new Date())) : null;
  };
  async function putBudget(actor: string, scopeType: string, scopeId: string, body: unknown) {
    const b = putBudgetBody.parse(body);
    const limit = parseAmountField('amount', b.amount, b.currency);
    const saved = await db.transaction(async (trx) => {
      const s = await setBudget(trx, { scopeType, scopeId, period: b.period, limit, currency: b.currency });
      await appendAudit(trx, { actor, action: 'budget.set', subjectType: scopeType, subjectId: scopeId, details: b });
      return s;
    });
    return presentBudget(await budgetStatus(db, saved, new Date()));
  }

  r.post('/cost-centers', { permission: 'cost-centers.manage', resource: 'none', deploymentWide: true }, { 201: R.costCenter }, async (req, res) => {
    const body = createCostCenterBody.parse(req.body);
    const id = idFromIdempotencyKey('cost-center', principalOf(req).apiKeyId, req.get('idempotency-key'));
    const clash = await findCostCenterByName(db, body.name);
    if (clash && clash.id !== id)
      throw new ConflictError(`name: a cost center named "${body.name}" exists (${clash.id})`, 'name_taken', { field: 'name', id: clash.id });
    const center = await insertCostCenter(db, { id, ...body, createdBy: principalOf(req).userId });
    await appendAudit(db, {
      actor: actorOf(req),
      action: 'cost_center.created',
      subjectType: 'cost-center',
      subjectId: id,
      details: body,
      idempotencyKey: `cost-center:${id}:created`,
    });
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
      const c = await load(param(req, 'id'));
      res.json(await putBudget(actorOf(req), COST_CENTER_SCOPE, c.id, req.body));
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
      res.json({
        costCenter: presentCostCenter(c),
        items: page.items.map((e) => ({ ...presentCost(e), projectId: e.projectId })),
        nextCursor: page.nextCursor,
        totals: presentTotals(totals),
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
      if ((await listCostCenters(db, { department: name })).length === 0) {
        throw new NotFoundError(`department ${name} has no cost centers; create one with POST /v1/cost-centers first`);
      }
      res.json({ department: name, ...(await putBudget(actorOf(req), DEPARTMENT_SCOPE, name, req.body)) });
    },
  );

  /** The department roll-up: its totals per currency, and per cost center. */
  r.get(
    '/departments/:name/costs',
    { permission: 'cost-centers.read', resource: 'none', deploymentWide: true },
    { 200: R.departmentCosts },
    async (req, res) => {
      const name = param(req, 'name');
      const centers = await listCostCenters(db, { department: name });
      if (centers.length === 0) throw new NotFoundError(`department ${name} has no cost centers`);
      const totals = await costCenterTotals(db, { department: name });
      res.json({
        department: name,
        totals: presentTotals(totals),
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

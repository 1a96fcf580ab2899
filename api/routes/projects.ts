import * as R from '../responses.js';
import { RouteGroup, inPath, inBody } from './table.js';
import { pageCheckpoints } from '../../store/checkpoints.js';
import { costTotals, listCosts } from '../../store/costs.js';
import { cacheSummary } from '../../store/cache.js';
import { pageProjects, type Project } from '../../store/projects.js';
import { callerOf, param, principalOf, type ApiContext } from '../context.js';
import { createdKey, decodeCursor, pageOf, pageQuery, seqKey } from '../pagination.js';
import { money, presentBudget, presentCacheSummary, presentCheckpoint, presentCost, presentProject } from '../present.js';
import { DEFAULT_PLACEMENT, type PlacementPolicy } from '../../domain/placement.js';
import { getPlacementPolicy } from '../../store/compute.js';
import {
  createProject,
  projectBudget,
  requireProject,
  setMachineTypeBudget,
  setProjectBudget,
  setProjectCostCenterOf,
  setProjectLimitPolicy,
  setProjectPlacement,
} from '../../services/projects.js';
import { getProjectNetwork, setProjectNetwork } from '../../services/network.js';

/** The project, or 404. */
export const loadProject = (ctx: ApiContext, id: string): Promise<Project> => requireProject(ctx, id);

export function projectRoutes(ctx: ApiContext): RouteGroup {
  const r = new RouteGroup(ctx);
  const { db } = ctx;
  const budgetOf = (p: Project) => projectBudget(ctx, p);

  r.post('/projects', { permission: 'projects.create', resource: inBody('cost-center', 'costCenterId') }, { 201: R.project }, async (req, res) => {
    const { project, created } = await createProject(ctx, callerOf(req), req.body);
    res.status(201).json(presentProject(project, created ? null : await budgetOf(project)));
  });

  r.get('/projects', { permission: 'projects.read', resource: 'none' }, { 200: R.page(R.project) }, async (req, res) => {
    const q = pageQuery.parse(req.query);
    const rows = await pageProjects(db, { limit: q.limit + 1, after: decodeCursor(q.cursor, createdKey), projectIds: principalOf(req).projectIds });
    const page = pageOf(rows, q.limit, (r) => r.key);
    res.json({ items: await Promise.all(page.items.map(async ({ item }) => presentProject(item, await budgetOf(item)))), nextCursor: page.nextCursor });
  });

  r.get('/projects/:id', { permission: 'projects.read', resource: inPath('project') }, { 200: R.project }, async (req, res) => {
    const project = await loadProject(ctx, param(req, 'id'));
    res.json(presentProject(project, await budgetOf(project)));
  });

  r.put('/projects/:id/budget', { permission: 'budgets.write', resource: inPath('project') }, { 200: R.budget }, async (req, res) => {
    res.json(presentBudget(await setProjectBudget(ctx, callerOf(req), param(req, 'id'), req.body)));
  });

  r.put('/projects/:id/machine-types/:type/budget', { permission: 'budgets.write', resource: inPath('project') }, { 200: R.typeBudget }, async (req, res) => {
    const type = param(req, 'type');
    res.json({ machineType: type, ...presentBudget(await setMachineTypeBudget(ctx, callerOf(req), param(req, 'id'), type, req.body)) });
  });

  r.put('/projects/:id/limit-policy', { permission: 'projects.configure', resource: inPath('project') }, { 200: R.limitPolicy }, async (req, res) => {
    res.json(await setProjectLimitPolicy(ctx, callerOf(req), param(req, 'id'), req.body));
  });

  /** The project's own rules (tried first) and the defaults that follow them. */
  const presentPlacement = (own: { policy: PlacementPolicy; updatedBy: string; updatedAt: string } | null) => ({
    rules: own?.policy.rules ?? [],
    defaults: DEFAULT_PLACEMENT.rules,
    updatedBy: own?.updatedBy ?? null,
    updatedAt: own?.updatedAt ?? null,
  });

  r.get('/projects/:id/placement', { permission: 'projects.read', resource: inPath('project') }, { 200: R.placement }, async (req, res) => {
    const project = await loadProject(ctx, param(req, 'id'));
    res.json(presentPlacement(await getPlacementPolicy(db, project.id)));
  });

  r.put('/projects/:id/placement', { permission: 'projects.configure', resource: inPath('project') }, { 200: R.placement }, async (req, res) => {
    res.json(presentPlacement(await setProjectPlacement(ctx, callerOf(req), param(req, 'id'), req.body)));
  });

  r.get('/projects/:id/network-policy', { permission: 'projects.read', resource: inPath('project') }, { 200: R.networkPolicy }, async (req, res) => {
    res.json(await getProjectNetwork(ctx, param(req, 'id')));
  });

  r.put('/projects/:id/network-policy', { permission: 'network.configure', resource: inPath('project') }, { 200: R.networkPolicy }, async (req, res) => {
    res.json(await setProjectNetwork(ctx, callerOf(req), param(req, 'id'), req.body));
  });

  r.put(
    '/projects/:id/cost-center',
    { permission: 'projects.configure', resource: [inPath('project'), inBody('cost-center', 'costCenterId')] },
    { 200: R.project },
    async (req, res) => {
      const updated = await setProjectCostCenterOf(ctx, callerOf(req), param(req, 'id'), req.body);
      res.json(presentProject(updated, await budgetOf(updated)));
    },
  );

  r.get('/projects/:id/checkpoints', { permission: 'checkpoints.read', resource: inPath('project') }, { 200: R.page(R.checkpoint) }, async (req, res) => {
    const project = await loadProject(ctx, param(req, 'id'));
    const q = pageQuery.parse(req.query);
    const rows = await pageCheckpoints(db, project.id, { limit: q.limit + 1, after: decodeCursor(q.cursor, createdKey) });
    const page = pageOf(rows, q.limit, (r) => r.key);
    res.json({ items: page.items.map((r) => presentCheckpoint(r.item)), nextCursor: page.nextCursor });
  });

  r.get('/projects/:id/costs', { permission: 'costs.read', resource: inPath('project') }, { 200: R.projectCosts }, async (req, res) => {
    const project = await loadProject(ctx, param(req, 'id'));
    const q = pageQuery.parse(req.query);
    const afterSeq = decodeCursor(q.cursor, seqKey);
    const [events, totals] = await Promise.all([
      listCosts(db, { projectId: project.id, limit: q.limit + 1, ...(afterSeq ? { afterSeq } : {}) }),
      costTotals(db, { projectId: project.id }),
    ]);
    const total = Object.values(totals).reduce((a, b) => a + b, 0n);
    const page = pageOf(events, q.limit, (e) => e.seq);
    res.json({
      items: page.items.map(presentCost),
      nextCursor: page.nextCursor,
      totals: {
        total: money(total, project.currency),
        byCategory: Object.fromEntries(Object.entries(totals).map(([k, v]) => [k, money(v, project.currency)])),
      },
      budget: presentBudget(await budgetOf(project)),
      cache: presentCacheSummary(await cacheSummary(db, project.id), project.currency),
    });
  });

  return r;
}

export { parseAmountField } from '../../services/inputs.js';

import * as R from '../responses.js';
import { RouteGroup, inPath, inBody } from './table.js';
import crypto from 'node:crypto';
import path from 'node:path';
import { InputError, NotFoundError } from '../../domain/errors.js';
import { DEFAULT_MACHINE_MONEY, MACHINE_TYPES } from '../../domain/machines.js';
import { FIAT_CURRENCIES, MAX_INPUT_UNITS, parseAmount, type CurrencyCode } from '../../domain/money.js';
import { FxUnavailableError } from '../../domain/fx.js';
import { createFxService } from '../../fx/service.js';
import type { BudgetPeriod } from '../../domain/budget.js';
import { appendAudit } from '../../store/audit.js';
import { budgetStatus, findBudget, setBudget } from '../../store/budgets.js';
import { insertCheckpoint, pageCheckpoints } from '../../store/checkpoints.js';
import { bindKeyToProject } from '../../store/auth.js';
import { costTotals, listCosts } from '../../store/costs.js';
import { cacheSummary } from '../../store/cache.js';
import { getCostCenter } from '../../store/cost-centers.js';
import { cloneProjectRepo, initProjectRepo, pinCheckpoint } from '../../store/git.js';
import { getProject, insertProject, pageProjects, setLimitPolicy, setProjectCostCenter, type Project } from '../../store/projects.js';
import { actorOf, param, principalOf, type ApiContext } from '../context.js';
import { MESSAGES } from '../errors.js';
import { idFromIdempotencyKey } from '../idempotency.js';
import { createdKey, decodeCursor, pageOf, pageQuery, seqKey } from '../pagination.js';
import { money, presentBudget, presentCacheSummary, presentCheckpoint, presentCost, presentProject } from '../present.js';
import { createProjectBody, putBudgetBody, putLimitPolicyBody, putPlacementBody, putProjectCostCenterBody, putTypeBudgetBody } from '../schemas.js';
import { DEFAULT_PLACEMENT, type PlacementPolicy } from '../../domain/placement.js';
import { checkRepoUrl, type RepoUrlScheme } from '../../domain/repo-url.js';
import { getPlacementPolicy, setPlacementPolicy } from '../../store/compute.js';

export async function loadProject(ctx: ApiContext, id: string): Promise<Project> {
  const project = await getProject(ctx.db, id);
  if (!project) throw new NotFoundError(MESSAGES.notFound('project', id));
  return project;
}

export function projectRoutes(ctx: ApiContext): RouteGroup {
  const r = new RouteGroup(ctx);
  const { db } = ctx;

  /** Validates and stores a budget of the project (its own, or a per-type one) with its audit record. */
  async function saveBudget(
    actor: string,
    project: Project,
    b: { scopeType: string; scopeId: string; period: BudgetPeriod; amount: string; currency: CurrencyCode },
    extraDetails: Record<string, unknown>,
  ) {
    // A budget may be in any supported currency: spends are converted to it when they are reserved.
    const limit = parseAmountField('amount', b.amount, b.currency);
    return db.transaction(async (trx) => {
      const saved = await setBudget(trx, { scopeType: b.scopeType, scopeId: b.scopeId, period: b.period, limit, currency: b.currency });
      await appendAudit(trx, {
        actor,
        action: 'budget.set',
        subjectType: 'project',
        subjectId: project.id,
        projectId: project.id,
        details: { ...extraDetails, amount: b.amount, currency: b.currency, period: b.period },
      });
      return saved;
    });
  }

  /**
   * The default per-machine limit in a new project's currency: the fiat default as is ("0.50"),
   * and for a crypto currency its USD worth converted now (rounded up) — 0.50 BTC is no default.
   */
  async function defaultMoneyIn(currency: CurrencyCode): Promise<bigint> {
    if (FIAT_CURRENCIES.includes(currency)) return parseAmount(DEFAULT_MACHINE_MONEY, currency);
    const fx = ctx.fx ?? createFxService(ctx);
    try {
      return (await fx.convert(parseAmount(DEFAULT_MACHINE_MONEY, 'USD'), 'USD', currency, 'up')).amount;
    } catch (e) {
      if (!(e instanceof FxUnavailableError)) throw e;
      throw new InputError(`defaultMachineMoney: give it for a ${currency} project (it cannot be derived from ${DEFAULT_MACHINE_MONEY} USD: ${e.message})`, {
        field: 'defaultMachineMoney',
      });
    }
  }

  const budgetOf = async (p: Project) => {
    const b = await findBudget(db, 'project', p.id);
    return b ? budgetStatus(db, b, new Date()) : null;
  };

  r.post('/projects', { permission: 'projects.create', resource: inBody('cost-center', 'costCenterId') }, { 201: R.project }, async (req, res) => {
    const body = createProjectBody.parse(req.body);
    if (body.repoUrl) checkRepoUrlField(body.repoUrl, ctx.config.repos.schemes);
    const defaultMachineMoney = body.defaultMachineMoney
      ? parseAmountField('defaultMachineMoney', body.defaultMachineMoney, body.currency)
      : await defaultMoneyIn(body.currency);
    if (body.costCenterId && !(await getCostCenter(db, body.costCenterId))) {
      throw new InputError(`costCenterId: cost center ${body.costCenterId} not found`, { field: 'costCenterId' });
    }
    const id = idFromIdempotencyKey('project', principalOf(req).apiKeyId, req.get('idempotency-key'));
    const existing = await getProject(db, id);
    if (existing) return void res.status(201).json(presentProject(existing, await budgetOf(existing)));

    const repoPath = path.join(ctx.config.projectsDir, `${id}.git`);
    const now = new Date();
    const rootCommit = body.repoUrl
      ? await cloneProjectRepo(body.repoUrl, repoPath, now, {
          schemes: ctx.config.repos.schemes,
          timeoutMs: ctx.config.repos.cloneTimeoutMs,
          maxBytes: ctx.config.repos.cloneMaxBytes,
        })
      : await initProjectRepo(repoPath, now);
    const rootCheckpointId = `checkpoint-${crypto.randomUUID()}`;
    await pinCheckpoint(repoPath, rootCheckpointId, rootCommit);
    const project = await db.transaction(async (trx) => {
      const p = await insertProject(trx, {
        id,
        name: body.name,
        repoUrl: body.repoUrl ?? null,
        repoPath,
        currency: body.currency,
        greediness: body.greediness,
        defaultMachineMoney,
        rootCheckpointId: null,
        limitPolicy: body.limitPolicy,
        pauseMinutes: body.pauseMinutes,
        costCenterId: body.costCenterId ?? null,
        createdBy: principalOf(req).userId,
      });
      await insertCheckpoint(trx, {
        id: rootCheckpointId,
        projectId: id,
        parentId: null,
        machineId: null,
        commit: rootCommit,
        kind: 'root',
        trigger: 'project created',
      });
      await trx('projects').where({ id }).update({ root_checkpoint_id: rootCheckpointId });
      // A key bound to projects keeps seeing what it creates.
      if (principalOf(req).projectIds !== null) await bindKeyToProject(trx, principalOf(req).apiKeyId, id);
      await appendAudit(trx, {
        actor: actorOf(req),
        action: 'project.created',
        subjectType: 'project',
        subjectId: id,
        projectId: id,
        details: {
          name: body.name,
          repoUrl: body.repoUrl ?? null,
          rootCheckpointId,
          commit: rootCommit,
          currency: body.currency,
          costCenterId: body.costCenterId ?? null,
        },
      });
      return { ...p, rootCheckpointId };
    });
    res.status(201).json(presentProject(project, null));
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
    const project = await loadProject(ctx, param(req, 'id'));
    const body = putBudgetBody.parse(req.body);
    const budget = await saveBudget(actorOf(req), project, { scopeType: 'project', scopeId: project.id, ...body }, {});
    res.json(presentBudget(await budgetStatus(db, budget, new Date())));
  });

  r.put('/projects/:id/machine-types/:type/budget', { permission: 'budgets.write', resource: inPath('project') }, { 200: R.typeBudget }, async (req, res) => {
    const project = await loadProject(ctx, param(req, 'id'));
    const type = param(req, 'type');
    if (!(MACHINE_TYPES as readonly string[]).includes(type)) {
      throw new NotFoundError(`machine type ${type} does not exist; see GET /v1/machine-types`);
    }
    const body = putTypeBudgetBody.parse(req.body);
    const budget = await saveBudget(
      actorOf(req),
      project,
      { scopeType: 'machine-type', scopeId: `${project.id}:${type}`, period: 'daily', ...body },
      { machineType: type },
    );
    res.json({ machineType: type, ...presentBudget(await budgetStatus(db, budget, new Date())) });
  });

  r.put('/projects/:id/limit-policy', { permission: 'projects.configure', resource: inPath('project') }, { 200: R.limitPolicy }, async (req, res) => {
    const project = await loadProject(ctx, param(req, 'id'));
    const body = putLimitPolicyBody.parse(req.body);
    await setLimitPolicy(db, project.id, body.policy, body.pauseMinutes);
    await appendAudit(db, {
      actor: actorOf(req),
      action: 'project.limit_policy_set',
      subjectType: 'project',
      subjectId: project.id,
      projectId: project.id,
      details: body,
    });
    res.json({ policy: body.policy, pauseMinutes: body.pauseMinutes });
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
    const project = await loadProject(ctx, param(req, 'id'));
    const body = putPlacementBody.parse(req.body) as PlacementPolicy;
    await setPlacementPolicy(db, project.id, body, actorOf(req));
    await appendAudit(db, {
      actor: actorOf(req),
      action: 'project.placement_set',
      subjectType: 'project',
      subjectId: project.id,
      projectId: project.id,
      details: { rules: body.rules },
    });
    res.json(presentPlacement(await getPlacementPolicy(db, project.id)));
  });

  r.put(
    '/projects/:id/cost-center',
    { permission: 'projects.configure', resource: [inPath('project'), inBody('cost-center', 'costCenterId')] },
    { 200: R.project },
    async (req, res) => {
      const project = await loadProject(ctx, param(req, 'id'));
      const { costCenterId } = putProjectCostCenterBody.parse(req.body);
      if (costCenterId && !(await getCostCenter(db, costCenterId))) {
        throw new InputError(`costCenterId: cost center ${costCenterId} not found`, { field: 'costCenterId' });
      }
      await setProjectCostCenter(db, project.id, costCenterId);
      await appendAudit(db, {
        actor: actorOf(req),
        action: 'project.cost_center_set',
        subjectType: 'project',
        subjectId: project.id,
        projectId: project.id,
        details: { costCenterId, previous: project.costCenterId },
      });
      const updated = await loadProject(ctx, project.id);
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

/** Refuses a repoUrl that is not a remote URL of an allowed scheme, or that carries credentials (422). */
function checkRepoUrlField(url: string, schemes: readonly RepoUrlScheme[]): void {
  const check = checkRepoUrl(url, schemes);
  // The URL itself is not quoted back: it may hold a secret.
  if (!check.ok) throw new InputError(`repoUrl: ${check.reason}`, { field: 'repoUrl' });
}

/** Parses a money field of a request (at most MAX_INPUT_UNITS), naming the field in the error. */
export function parseAmountField(field: string, value: string, currency: Parameters<typeof parseAmount>[1]): bigint {
  try {
    return parseAmount(value, currency, { max: MAX_INPUT_UNITS });
  } catch (e) {
    throw new InputError(`${field}: ${(e as Error).message}`, { field });
  }
}

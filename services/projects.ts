/** Use cases of projects: create one, and set its budgets, limit policy, placement and cost center. */
import crypto from 'node:crypto';
import path from 'node:path';
import { z } from 'zod';
import { InputError, NotFoundError } from '../domain/errors.js';
import { DEFAULT_MACHINE_MONEY, MACHINE_TYPES } from '../domain/machines.js';
import { FIAT_CURRENCIES, parseAmount, type CurrencyCode } from '../domain/money.js';
import { FxUnavailableError } from '../domain/fx.js';
import { MACHINE_TYPE_SCOPE, machineTypeScopeId, type BudgetPeriod } from '../domain/budget.js';
import type { PlacementPolicy } from '../domain/placement.js';
import { createFxService } from '../fx/service.js';
import { appendAudit } from '../store/audit.js';
import { bindKeyToProject } from '../store/auth.js';
import { budgetStatus, findBudget, setBudget, type BudgetStatus } from '../store/budgets.js';
import { recordCheckpoint } from '../store/checkpoints.js';
import { getPlacementPolicy, setPlacementPolicy } from '../store/compute.js';
import { getCostCenter } from '../store/cost-centers.js';
import { cloneProjectRepo, initProjectRepo } from '../store/git.js';
import { putGitRemote } from '../store/git-remotes.js';
import { idFromIdempotencyKey } from '../store/ids.js';
import { getProject, insertProject, setLimitPolicy, setProjectCostCenter, setRootCheckpoint, type Project } from '../store/projects.js';
import { actorOfCaller, type Caller, type ServiceContext } from './context.js';
import { checkRepoUrlField, notFoundMessage, parseAmountField } from './inputs.js';
import { createProjectBody, putBudgetBody, putLimitPolicyBody, putPlacementBody, putProjectCostCenterBody, putTypeBudgetBody } from './schemas.js';
import { repoMirror } from '../store/shared-storage.js';

/** The project, or NotFoundError (404 on REST, NOT_FOUND on GraphQL). */
export async function requireProject(ctx: ServiceContext, id: string): Promise<Project> {
  const project = await getProject(ctx.db, id);
  if (!project) throw new NotFoundError(notFoundMessage('project', id));
  return project;
}

/** A project named in a request body: a missing one is the body's fault (422 naming the field). */
export async function requireProjectField(ctx: ServiceContext, id: string, field = 'projectId'): Promise<Project> {
  const project = await getProject(ctx.db, id);
  if (!project) throw new InputError(`${field}: project ${id} not found`, { field });
  return project;
}

/** A cost center named in a request body must exist (422 naming the field). */
export async function requireCostCenterField(ctx: ServiceContext, id: string | null | undefined, field = 'costCenterId'): Promise<void> {
  if (id && !(await getCostCenter(ctx.db, id))) throw new InputError(`${field}: cost center ${id} not found`, { field });
}

/** The project's own budget with what is spent and reserved now, or null when it has none. */
export async function projectBudget(ctx: ServiceContext, project: Project): Promise<BudgetStatus | null> {
  const b = await findBudget(ctx.db, 'project', project.id);
  return b ? budgetStatus(ctx.db, b, new Date()) : null;
}

/**
 * The default per-machine limit in a new project's currency: the fiat default as is ("0.50"),
 * and for a crypto currency its USD worth converted now (rounded up) — 0.50 BTC is no default.
 */
async function defaultMoneyIn(ctx: ServiceContext, currency: CurrencyCode): Promise<bigint> {
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

/**
 * Creates a project: its repository (cloned from repoUrl, or empty), the root checkpoint, the row
 * and its audit record. A repeat with the same idempotency key returns the project it made.
 * A key bound to projects is bound to the new one too, so it keeps seeing what it creates.
 */
export async function createProject(
  ctx: ServiceContext,
  caller: Caller,
  input: z.input<typeof createProjectBody>,
): Promise<{ project: Project; created: boolean }> {
  const { db, config } = ctx;
  const body = createProjectBody.parse(input);
  if (body.repoUrl) checkRepoUrlField(body.repoUrl, config.repos.schemes);
  if (body.repoCredentials && !/^https?:\/\//i.test(body.repoUrl ?? ''))
    throw new InputError('repoCredentials: only for an https:// or http:// repoUrl (they are sent as HTTP Basic auth)', { field: 'repoCredentials' });
  const defaultMachineMoney = body.defaultMachineMoney
    ? parseAmountField('defaultMachineMoney', body.defaultMachineMoney, body.currency)
    : await defaultMoneyIn(ctx, body.currency);
  await requireCostCenterField(ctx, body.costCenterId);
  const id = idFromIdempotencyKey('project', caller.principal.apiKeyId, caller.idempotencyKey);
  const existing = await getProject(db, id);
  if (existing) return { project: existing, created: false };

  const repoPath = path.join(config.projectsDir, `${id}.git`);
  const now = new Date();
  const rootCommit = body.repoUrl
    ? await cloneProjectRepo(body.repoUrl, repoPath, now, {
        schemes: config.repos.schemes,
        timeoutMs: config.repos.cloneTimeoutMs,
        maxBytes: config.repos.cloneMaxBytes,
        ...(body.repoCredentials ? { auth: { username: body.repoCredentials.username ?? null, token: body.repoCredentials.token } } : {}),
      })
    : await initProjectRepo(repoPath, now);
  const rootCheckpointId = `checkpoint-${crypto.randomUUID()}`;
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
      createdBy: caller.principal.userId,
    });
    // Audited by project.created below, which names the root checkpoint.
    await recordCheckpoint(
      trx,
      repoPath,
      { id: rootCheckpointId, projectId: id, parentId: null, machineId: null, commit: rootCommit, kind: 'root', trigger: 'project created' },
      null,
      repoMirror(config),
    );
    await setRootCheckpoint(trx, id, rootCheckpointId);
    // The credentials that cloned it push and fetch too: the repoUrl becomes the project's git remote.
    if (body.repoUrl && body.repoCredentials)
      await putGitRemote(trx, {
        projectId: id,
        url: body.repoUrl,
        username: body.repoCredentials.username ?? null,
        token: body.repoCredentials.token,
        updatedBy: caller.principal.userId,
      });
    if (caller.principal.projectIds !== null) await bindKeyToProject(trx, caller.principal.apiKeyId, id);
    await appendAudit(trx, {
      actor: actorOfCaller(caller),
      action: 'project.created',
      subjectType: 'project',
      subjectId: id,
      projectId: id,
      details: {
        name: body.name,
        repoUrl: body.repoUrl ?? null,
        gitRemote: Boolean(body.repoCredentials),
        rootCheckpointId,
        commit: rootCommit,
        currency: body.currency,
        costCenterId: body.costCenterId ?? null,
      },
    });
    return { ...p, rootCheckpointId };
  });
  return { project, created: true };
}

/** Validates and stores a budget of the project (its own, or a per-type one) with its audit record. */
async function saveBudget(
  ctx: ServiceContext,
  caller: Caller,
  project: Project,
  b: { scopeType: string; scopeId: string; period: BudgetPeriod; amount: string; currency: CurrencyCode; alertPercents?: number[] | undefined },
  extraDetails: Record<string, unknown>,
): Promise<BudgetStatus> {
  // A budget may be in any supported currency: spends are converted to it when they are reserved.
  const limit = parseAmountField('amount', b.amount, b.currency);
  const saved = await ctx.db.transaction(async (trx) => {
    const budget = await setBudget(trx, {
      scopeType: b.scopeType,
      scopeId: b.scopeId,
      period: b.period,
      limit,
      currency: b.currency,
      ...(b.alertPercents ? { alertPercents: b.alertPercents } : {}),
    });
    await appendAudit(trx, {
      actor: actorOfCaller(caller),
      action: 'budget.set',
      subjectType: 'project',
      subjectId: project.id,
      projectId: project.id,
      details: { ...extraDetails, amount: b.amount, currency: b.currency, period: b.period, ...(b.alertPercents ? { alertPercents: b.alertPercents } : {}) },
    });
    return budget;
  });
  return budgetStatus(ctx.db, saved, new Date());
}

/** Sets the project's own budget (limit per period). */
export async function setProjectBudget(ctx: ServiceContext, caller: Caller, projectId: string, input: z.input<typeof putBudgetBody>): Promise<BudgetStatus> {
  const project = await requireProject(ctx, projectId);
  const body = putBudgetBody.parse(input);
  return saveBudget(ctx, caller, project, { scopeType: 'project', scopeId: project.id, ...body }, {});
}

/** Sets the project's daily budget for one machine type. */
export async function setMachineTypeBudget(
  ctx: ServiceContext,
  caller: Caller,
  projectId: string,
  type: string,
  input: z.input<typeof putTypeBudgetBody>,
): Promise<BudgetStatus> {
  const project = await requireProject(ctx, projectId);
  if (!(MACHINE_TYPES as readonly string[]).includes(type)) throw new NotFoundError(`machine type ${type} does not exist; see GET /v1/machine-types`);
  const body = putTypeBudgetBody.parse(input);
  return saveBudget(
    ctx,
    caller,
    project,
    { scopeType: MACHINE_TYPE_SCOPE, scopeId: machineTypeScopeId(project.id, type), period: 'daily', ...body },
    { machineType: type },
  );
}

/** What a machine does when it reaches a limit (terminate, or pause for a decision). */
export async function setProjectLimitPolicy(ctx: ServiceContext, caller: Caller, projectId: string, input: z.input<typeof putLimitPolicyBody>) {
  const project = await requireProject(ctx, projectId);
  const body = putLimitPolicyBody.parse(input);
  await ctx.db.transaction(async (trx) => {
    await setLimitPolicy(trx, project.id, body.policy, body.pauseMinutes);
    await appendAudit(trx, {
      actor: actorOfCaller(caller),
      action: 'project.limit_policy_set',
      subjectType: 'project',
      subjectId: project.id,
      projectId: project.id,
      details: body,
    });
  });
  return { policy: body.policy, pauseMinutes: body.pauseMinutes };
}

/** Replaces the project's own placement rules (tried before the defaults). */
export async function setProjectPlacement(ctx: ServiceContext, caller: Caller, projectId: string, input: z.input<typeof putPlacementBody>) {
  const project = await requireProject(ctx, projectId);
  const body = putPlacementBody.parse(input) as PlacementPolicy;
  await ctx.db.transaction(async (trx) => {
    await setPlacementPolicy(trx, project.id, body, actorOfCaller(caller));
    await appendAudit(trx, {
      actor: actorOfCaller(caller),
      action: 'project.placement_set',
      subjectType: 'project',
      subjectId: project.id,
      projectId: project.id,
      details: { rules: body.rules },
    });
  });
  return getPlacementPolicy(ctx.db, project.id);
}

/** Moves the project to a cost center (or out of one, with null). */
export async function setProjectCostCenterOf(
  ctx: ServiceContext,
  caller: Caller,
  projectId: string,
  input: z.input<typeof putProjectCostCenterBody>,
): Promise<Project> {
  const project = await requireProject(ctx, projectId);
  const { costCenterId } = putProjectCostCenterBody.parse(input);
  await requireCostCenterField(ctx, costCenterId);
  await ctx.db.transaction(async (trx) => {
    await setProjectCostCenter(trx, project.id, costCenterId);
    await appendAudit(trx, {
      actor: actorOfCaller(caller),
      action: 'project.cost_center_set',
      subjectType: 'project',
      subjectId: project.id,
      projectId: project.id,
      details: { costCenterId, previous: project.costCenterId },
    });
  });
  return requireProject(ctx, project.id);
}

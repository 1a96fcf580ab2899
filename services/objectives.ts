/**
 * Use cases of objectives: create one, change it (title, priority, sub-tasks, links), pause,
 * resume or cancel it, tick its sub-tasks off; and its views (live state, the project's DAG).
 */
import type { Knex } from 'knex';
import { z } from 'zod';
import { ConflictError, InputError, NotFoundError } from '../domain/errors.js';
import { dependencyDepth, dependentsCount, topologicalLayers, wouldCreateCycle } from '../domain/dag.js';
import { DEFAULT_MACHINE_MINUTES } from '../domain/machines.js';
import { formatAmount } from '../domain/money.js';
import { measureProgress, type ObjectiveStatus } from '../domain/objectives.js';
import { runVisibility } from '../domain/search-attributes.js';
import { projectIntegrations, requestTicket } from '../store/integrations.js';
import { appendAudit } from '../store/audit.js';
import { getCheckpoint, listCheckpoints } from '../store/checkpoints.js';
import { idFromIdempotencyKey } from '../store/ids.js';
import {
  getObjective,
  insertObjective,
  insertObjectiveLink,
  listObjectives,
  machineIdsOfObjective,
  markSubtasksDone,
  objectiveStatuses,
  progressHistory,
  recordProgress,
  updateObjective as updateObjectiveRow,
  type Objective,
} from '../store/objectives.js';
import {
  cancelObjectiveSignal,
  linkObjectiveUpdate,
  objective as objectiveWorkflow,
  objectiveStateQuery,
  pauseObjectiveSignal,
  resumeObjectiveSignal,
} from '../workflows/index.js';
import { actorOfCaller, type Caller, type ServiceContext } from './context.js';
import { notFoundMessage, parseAmountField } from './inputs.js';
import { machineMoneyLimitOf } from './money-limits.js';
import { requireProject } from './projects.js';
import { nudgeCoordinator, reprioritizeInCoordinator, requireKnownResources } from './scheduling.js';
import { createObjectiveBody, linkObjectiveBody, subtasksDoneBody, updateObjectiveBody } from './schemas.js';

const ENDED: readonly ObjectiveStatus[] = ['completed', 'failed', 'cancelled'];

/** The objective, or NotFoundError. */
export async function requireObjective(ctx: ServiceContext, id: string): Promise<Objective> {
  const o = await getObjective(ctx.db, id);
  if (!o) throw new NotFoundError(notFoundMessage('objective', id));
  return o;
}

/** An objective that has not ended yet, or ConflictError naming its end. */
export async function requireOpenObjective(ctx: ServiceContext, id: string): Promise<Objective> {
  const o = await requireObjective(ctx, id);
  if (ENDED.includes(o.status)) throw new ConflictError(`objective ${o.id} already ended (${o.status})`, 'objective_ended');
  return o;
}

/** An objective as users see it: with the machines it ran. */
export type ObjectiveView = Objective & { machines: string[] };

export async function objectiveView(ctx: ServiceContext, o: Objective): Promise<ObjectiveView> {
  return {
    ...o,
    // Objectives without criteria that completed before progress was measured still show done.
    progress: o.status === 'completed' ? 1 : o.progress,
    machines: await machineIdsOfObjective(ctx.db, o.id),
  };
}

/** What a running objective waits for, as its workflow tells it. */
export interface ObjectiveLive {
  waitingOn: string[];
  waitingFor: string | null;
  machineId: string | null;
  missing: string[];
}

/** The live state of a running objective (what it waits for), or null once it has ended or its workflow cannot be asked. */
export async function objectiveLive(ctx: ServiceContext, o: Objective): Promise<ObjectiveLive | null> {
  if (ENDED.includes(o.status)) return null;
  try {
    const s = await ctx.temporal.workflow.getHandle(o.workflowId).query(objectiveStateQuery);
    return { waitingOn: s.waitingOn, waitingFor: s.waitingFor ?? null, machineId: s.machineId, missing: s.missing ?? [] };
  } catch {
    return null;
  }
}

/** The objective with its machines and live state, or NotFoundError. */
export async function getObjectiveView(ctx: ServiceContext, id: string): Promise<ObjectiveView & { live: ObjectiveLive | null }> {
  const o = await requireObjective(ctx, id);
  return { ...(await objectiveView(ctx, o)), live: await objectiveLive(ctx, o) };
}

/** The project's objectives as a DAG: nodes with status and progress, edges, and layers in start order. */
export async function getObjectiveDag(ctx: ServiceContext, projectId: string) {
  const project = await requireProject(ctx, projectId);
  const objectives = await listObjectives(ctx.db, project.id);
  const graph = objectives.map((o) => ({ id: o.id, dependsOn: o.dependsOn }));
  const depth = dependencyDepth(graph);
  const dependents = dependentsCount(graph);
  return {
    nodes: await Promise.all(
      objectives.map(async (o) => ({
        id: o.id,
        title: o.title,
        status: o.status,
        priority: o.priority,
        progress: o.status === 'completed' ? 1 : o.progress,
        dependsOn: o.dependsOn,
        depth: depth.get(o.id) ?? 0,
        dependents: dependents.get(o.id) ?? 0,
        machines: await machineIdsOfObjective(ctx.db, o.id),
      })),
    ),
    edges: objectives.flatMap((o) => o.dependsOn.map((d) => ({ from: d, to: o.id }))),
    layers: topologicalLayers(graph),
  };
}

/**
 * Creates an objective of the project: checks its dependencies (objectives of this project),
 * resources, checkpoint and machine limits, records it with its first progress and audit record,
 * and starts its workflow. A repeat with the same idempotency key names the same objective.
 */
export async function createObjective(
  ctx: ServiceContext,
  caller: Caller,
  projectId: string,
  input: z.input<typeof createObjectiveBody>,
  /** More writes to commit with the new objective, before its workflow starts (an integration's link to it). */
  alongside?: (trx: Knex.Transaction, objectiveId: string) => Promise<void>,
): Promise<Objective> {
  const { db, config } = ctx;
  const project = await requireProject(ctx, projectId);
  const body = createObjectiveBody.parse(input);
  const deps = await objectiveStatuses(db, body.dependsOn);
  for (const dep of body.dependsOn) {
    if (!deps[dep]) throw new InputError(`dependsOn: objective ${dep} not found`, { field: 'dependsOn' });
  }
  requireKnownResources(project, body.resources, 'resources');
  if (body.ticket && !(await projectIntegrations(db, project.id)).some((i) => i.kind === 'jira' || i.kind === 'linear'))
    throw new InputError(
      `ticket: project ${project.id} has no jira or linear integration to make the ticket in; set one with PUT /v1/projects/${project.id}/integrations/jira (or linear)`,
      { field: 'ticket' },
    );
  const depObjectives = await Promise.all(body.dependsOn.map((d) => getObjective(db, d)));
  const foreign = depObjectives.find((o) => o && o.projectId !== project.id);
  // Another project's objective reads as a missing one.
  if (foreign) throw new InputError(`dependsOn: objective ${foreign.id} not found`, { field: 'dependsOn' });
  let checkpointId = body.checkpointId;
  if (checkpointId) {
    const c = await getCheckpoint(db, checkpointId);
    if (!c || c.projectId !== project.id)
      throw new InputError(`checkpointId: ${checkpointId} is not a checkpoint of project ${project.id}`, { field: 'checkpointId' });
  } else checkpointId = project.rootCheckpointId ?? (await listCheckpoints(db, project.id))[0]!.id;
  const money = body.limits.money ? parseAmountField('limits.money', body.limits.money, project.currency) : project.defaultMachineMoney;
  if (money <= 0n) throw new InputError('limits.money: must be more than zero', { field: 'limits.money' });
  const minutes = body.limits.minutes ?? DEFAULT_MACHINE_MINUTES;
  // Its machines' limit must cover one worst-case model call plus compute (the default is raised to it).
  const limit = await machineMoneyLimitOf(ctx, project, {
    type: body.machineType,
    requested: body.limits.money ? money : null,
    minutes,
    profile: 'lightweight',
  });
  const limits = { money: formatAmount(limit, project.currency), minutes };

  const id = idFromIdempotencyKey('objective', caller.principal.apiKeyId, caller.idempotencyKey);
  if (!(await getObjective(db, id))) {
    await db.transaction(async (trx) => {
      await insertObjective(trx, {
        id,
        projectId: project.id,
        title: body.title,
        priority: body.priority,
        machineType: body.machineType,
        command: body.command ?? null,
        prompt: body.prompt ?? null,
        workflowId: id,
        dependsOn: body.dependsOn,
        completion: body.completion ?? {},
        maxMachines: body.maxMachines ?? 1,
        resources: body.resources,
        createdBy: caller.principal.userId,
      });
      await recordProgress(trx, `objective:${id}:created`, {
        objectiveId: id,
        progress: 0,
        criteria: { completion: body.completion ?? {} },
        machineId: null,
        checkpointId: null,
        note: 'created',
      });
      await appendAudit(trx, {
        actor: actorOfCaller(caller),
        action: 'objective.created',
        subjectType: 'objective',
        subjectId: id,
        projectId: project.id,
        details: { title: body.title, dependsOn: body.dependsOn },
      });
      // Each ticket integration's dispatcher makes the ticket when it sees the objective's first status.
      if (body.ticket) await requestTicket(trx, id, caller.principal.userId);
      await alongside?.(trx, id);
    });
  }
  await ctx.temporal.workflow.start(objectiveWorkflow, {
    workflowId: id,
    taskQueue: config.taskQueue,
    ...runVisibility(
      'objective',
      { project: project.id, machineType: body.machineType, status: 'waiting', costCenter: project.costCenterId },
      { searchAttributes: config.searchAttributes, details: { objective: id, title: body.title } },
    ),
    workflowIdConflictPolicy: 'USE_EXISTING',
    args: [
      {
        objectiveId: id,
        projectId: project.id,
        dependsOn: body.dependsOn,
        startFromDependencies: !body.checkpointId,
        machine: {
          type: body.machineType,
          command: body.command ?? '',
          prompt: body.prompt ?? null,
          checkpointId,
          profile: 'lightweight',
          limits,
          heartbeatTimeoutSeconds: config.heartbeatTimeoutSeconds,
        },
        maxMachines: body.maxMachines ?? 1,
      },
    ],
  });
  return requireObjective(ctx, id);
}

const controlSignals = { pause: pauseObjectiveSignal, resume: resumeObjectiveSignal, cancel: cancelObjectiveSignal } as const;

/** Asks an open objective's workflow to pause, resume or cancel; its status says when it has. */
async function controlObjective(
  ctx: ServiceContext,
  caller: Caller,
  objectiveId: string,
  action: keyof typeof controlSignals,
): Promise<{ id: string; status: ObjectiveStatus }> {
  const o = await requireOpenObjective(ctx, objectiveId);
  await ctx.temporal.workflow.getHandle(o.workflowId).signal(controlSignals[action], { by: actorOfCaller(caller) });
  await appendAudit(ctx.db, {
    actor: actorOfCaller(caller),
    action: `objective.${action}_requested`,
    subjectType: 'objective',
    subjectId: o.id,
    projectId: o.projectId,
  });
  return { id: o.id, status: o.status };
}

/** Pauses an objective that still waits: it does not start until resumed. */
export const pauseObjective = (ctx: ServiceContext, caller: Caller, objectiveId: string) => controlObjective(ctx, caller, objectiveId, 'pause');
/** Resumes a paused objective. */
export const resumeObjective = (ctx: ServiceContext, caller: Caller, objectiveId: string) => controlObjective(ctx, caller, objectiveId, 'resume');
/** Cancels an objective: its workflow ends it. */
export const cancelObjective = (ctx: ServiceContext, caller: Caller, objectiveId: string) => controlObjective(ctx, caller, objectiveId, 'cancel');

/**
 * Makes an open objective wait on another objective of its project too. A link that would close a
 * cycle is refused; the objective's workflow accepts it only while it still waits (else 409).
 */
export async function linkObjective(ctx: ServiceContext, caller: Caller, objectiveId: string, input: z.input<typeof linkObjectiveBody>): Promise<Objective> {
  const { db } = ctx;
  const o = await requireOpenObjective(ctx, objectiveId);
  const body = linkObjectiveBody.parse(input);
  const dep = await getObjective(db, body.dependsOn);
  if (!dep || dep.projectId !== o.projectId)
    throw new InputError(`dependsOn: objective ${body.dependsOn} is not an objective of project ${o.projectId}`, { field: 'dependsOn' });
  const graph = (await listObjectives(db, o.projectId)).map((x) => ({ id: x.id, dependsOn: x.dependsOn }));
  const cycle = wouldCreateCycle(graph, o.id, dep.id);
  if (cycle) throw new InputError(`dependsOn: linking would close a cycle: ${cycle.join(' → ')}`, { field: 'dependsOn', path: cycle });
  if (o.dependsOn.includes(dep.id)) return o;
  await db.transaction(async (trx) => {
    await insertObjectiveLink(trx, o.id, dep.id);
    // The workflow decides: a link is accepted only while the objective still waits.
    try {
      await ctx.temporal.workflow.getHandle(o.workflowId).executeUpdate(linkObjectiveUpdate, { args: [{ dependsOn: dep.id }] });
    } catch (err) {
      throw new ConflictError((err as { cause?: Error }).cause?.message ?? (err as Error).message, 'objective_started');
    }
    await appendAudit(trx, {
      actor: actorOfCaller(caller),
      action: 'objective.linked',
      subjectType: 'objective',
      subjectId: o.id,
      projectId: o.projectId,
      details: { dependsOn: dep.id },
    });
  });
  return requireObjective(ctx, o.id);
}

/** Changes an open objective's title, priority, sub-tasks or machine count; a new priority moves its waiting requests now. */
export async function updateObjective(
  ctx: ServiceContext,
  caller: Caller,
  objectiveId: string,
  input: z.input<typeof updateObjectiveBody>,
): Promise<Objective> {
  const o = await requireOpenObjective(ctx, objectiveId);
  const body = updateObjectiveBody.parse(input);
  // The change and its audit record commit together, or neither does.
  await ctx.db.transaction(async (trx) => {
    await updateObjectiveRow(trx, o.id, body);
    await appendAudit(trx, {
      actor: actorOfCaller(caller),
      action: 'objective.updated',
      subjectType: 'objective',
      subjectId: o.id,
      projectId: o.projectId,
      details: body,
    });
  });
  if (body.priority !== undefined && body.priority !== o.priority) {
    // A request already waiting for a machine slot moves in the queue now.
    await reprioritizeInCoordinator(ctx, o.projectId, `objective ${o.id}`, body.priority);
    await nudgeCoordinator(ctx, o.projectId, actorOfCaller(caller));
  }
  return requireObjective(ctx, o.id);
}

/** Ticks sub-tasks of an open objective off and records the progress that makes. */
export async function markObjectiveSubtasksDone(
  ctx: ServiceContext,
  caller: Caller,
  objectiveId: string,
  input: z.input<typeof subtasksDoneBody>,
): Promise<Objective> {
  const { db } = ctx;
  const o = await requireOpenObjective(ctx, objectiveId);
  const body = subtasksDoneBody.parse(input);
  const known = o.completion.subtasks ?? [];
  const unknown = body.names.filter((n) => !known.includes(n));
  if (unknown.length) {
    throw new InputError(`names: unknown sub-task ${unknown.map((n) => `"${n}"`).join(', ')} (the objective has: ${known.join('; ') || 'none'})`, {
      field: 'names',
    });
  }
  const done = await markSubtasksDone(db, o.id, body.names);
  const last = (await progressHistory(db, o.id)).at(-1);
  const lastCheck = (last?.criteria as { check?: { passed: boolean } } | undefined)?.check;
  const lastVerdict = (last?.criteria as { verdict?: { complete: boolean } | null } | undefined)?.verdict;
  const { progress } = measureProgress(o.completion, {
    machineCompleted: false,
    subtasksDone: done,
    ...(lastCheck ? { check: lastCheck } : {}),
    verdict: lastVerdict ?? null,
  });
  await recordProgress(db, `objective:${o.id}:subtasks:${[...done].sort().join('|')}`, {
    objectiveId: o.id,
    progress,
    criteria: { ...(last?.criteria ?? {}), subtasks: { done: done.filter((d) => known.includes(d)).length, total: known.length } },
    machineId: null,
    checkpointId: null,
    note: `sub-tasks done by ${actorOfCaller(caller)}: ${body.names.join('; ')}`,
  });
  await appendAudit(db, {
    actor: actorOfCaller(caller),
    action: 'objective.subtasks_done',
    subjectType: 'objective',
    subjectId: o.id,
    projectId: o.projectId,
    details: { names: body.names },
  });
  return requireObjective(ctx, o.id);
}

import { runVisibility } from '../../domain/search-attributes.js';
import * as R from '../responses.js';
import { RouteGroup, inPath } from './table.js';
import { waitForStatus } from '../event-stream.js';
import { ConflictError, InputError, NotFoundError } from '../../domain/errors.js';
import { dependencyDepth, dependentsCount, topologicalLayers, wouldCreateCycle } from '../../domain/dag.js';
import { measureProgress } from '../../domain/objectives.js';
import { DEFAULT_MACHINE_MINUTES } from '../../domain/machines.js';
import { formatAmount } from '../../domain/money.js';
import { appendAudit } from '../../store/audit.js';
import { getCheckpoint, listCheckpoints } from '../../store/checkpoints.js';
import {
  getObjective,
  insertObjective,
  listObjectives,
  pageObjectives,
  machineIdsOfObjective,
  markSubtasksDone,
  objectiveStatuses,
  progressHistory,
  recordProgress,
  updateObjective,
  type Objective,
} from '../../store/objectives.js';
import {
  cancelObjectiveSignal,
  linkObjectiveUpdate,
  objective as objectiveWorkflow,
  objectiveStateQuery,
  pauseObjectiveSignal,
  reprioritizeSignal,
  resumeObjectiveSignal,
} from '../../workflows/index.js';
import { actorOf, param, principalOf, type ApiContext } from '../context.js';
import { MESSAGES } from '../errors.js';
import { idFromIdempotencyKey } from '../../store/ids.js';
import { createdKey, decodeCursor, pageOf, pageQuery, seqKey } from '../pagination.js';
import { createObjectiveBody, linkObjectiveBody, subtasksDoneBody, updateObjectiveBody } from '../../services/schemas.js';
import { loadProject, parseAmountField } from './projects.js';
import { nudgeCoordinator, requireKnownResources } from '../../services/scheduling.js';
import { coordinatorWorkflowId } from '../../domain/scheduling.js';
import { machineMoneyLimit } from '../../services/money-limits.js';

export function objectiveRoutes(ctx: ApiContext): RouteGroup {
  const r = new RouteGroup(ctx);
  const { db } = ctx;

  async function present(o: Objective) {
    return {
      ...o,
      // Objectives without criteria that completed before progress was measured still show done.
      progress: o.status === 'completed' ? 1 : o.progress,
      machines: await machineIdsOfObjective(db, o.id),
    };
  }

  /** The live state of a running objective (what it waits for), or null once it has ended. */
  async function live(o: Objective) {
    if (['completed', 'failed', 'cancelled'].includes(o.status)) return null;
    try {
      const s = await ctx.temporal.workflow.getHandle(o.workflowId).query(objectiveStateQuery);
      return { waitingOn: s.waitingOn, waitingFor: s.waitingFor ?? null, machineId: s.machineId, missing: s.missing ?? [] };
    } catch {
      return null;
    }
  }

  r.post('/projects/:id/objectives', { permission: 'objectives.write', resource: inPath('project') }, { 201: R.objective }, async (req, res) => {
    const project = await loadProject(ctx, param(req, 'id'));
    const body = createObjectiveBody.parse(req.body);
    const deps = await objectiveStatuses(db, body.dependsOn);
    for (const dep of body.dependsOn) {
      if (!deps[dep]) throw new InputError(`dependsOn: objective ${dep} not found`, { field: 'dependsOn' });
    }
    requireKnownResources(project, body.resources, 'resources');
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
    const limit = await machineMoneyLimit(ctx, project, {
      type: body.machineType,
      requested: body.limits.money ? money : null,
      minutes,
      profile: 'lightweight',
    });
    const limits = { money: formatAmount(limit, project.currency), minutes };

    const id = idFromIdempotencyKey('objective', principalOf(req).apiKeyId, req.get('idempotency-key'));
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
          createdBy: principalOf(req).userId,
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
          actor: actorOf(req),
          action: 'objective.created',
          subjectType: 'objective',
          subjectId: id,
          projectId: project.id,
          details: { title: body.title, dependsOn: body.dependsOn },
        });
      });
    }
    await ctx.temporal.workflow.start(objectiveWorkflow, {
      workflowId: id,
      taskQueue: ctx.config.taskQueue,
      ...runVisibility(
        'objective',
        { project: project.id, machineType: body.machineType, status: 'waiting', costCenter: project.costCenterId },
        { searchAttributes: ctx.config.searchAttributes, details: { objective: id, title: body.title } },
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
            heartbeatTimeoutSeconds: ctx.config.heartbeatTimeoutSeconds,
          },
          maxMachines: body.maxMachines ?? 1,
        },
      ],
    });
    res.status(201).json(await present((await getObjective(db, id))!));
  });

  r.get('/projects/:id/objectives', { permission: 'objectives.read', resource: inPath('project') }, { 200: R.page(R.objective) }, async (req, res) => {
    const project = await loadProject(ctx, param(req, 'id'));
    const q = pageQuery.parse(req.query);
    const rows = await pageObjectives(db, project.id, { limit: q.limit + 1, after: decodeCursor(q.cursor, createdKey) });
    const page = pageOf(rows, q.limit, (r) => r.key);
    res.json({ items: await Promise.all(page.items.map((r) => present(r.item))), nextCursor: page.nextCursor });
  });

  async function loadOpen(id: string): Promise<Objective> {
    const o = await getObjective(db, id);
    if (!o) throw new NotFoundError(MESSAGES.notFound('objective', id));
    if (['completed', 'failed', 'cancelled'].includes(o.status)) throw new ConflictError(`objective ${o.id} already ended (${o.status})`, 'objective_ended');
    return o;
  }

  const signals = { pause: pauseObjectiveSignal, resume: resumeObjectiveSignal, cancel: cancelObjectiveSignal } as const;
  for (const [action, signal] of Object.entries(signals)) {
    r.post(`/objectives/:id/${action}`, { permission: 'objectives.write', resource: inPath('objective') }, { 202: R.objectiveStatusOf }, async (req, res) => {
      const o = await loadOpen(param(req, 'id'));
      await ctx.temporal.workflow.getHandle(o.workflowId).signal(signal, { by: actorOf(req) });
      await appendAudit(db, {
        actor: actorOf(req),
        action: `objective.${action}_requested`,
        subjectType: 'objective',
        subjectId: o.id,
        projectId: o.projectId,
      });
      res.status(202).json({ id: o.id, status: o.status });
    });
  }

  r.post('/objectives/:id/links', { permission: 'objectives.write', resource: inPath('objective') }, { 200: R.objective }, async (req, res) => {
    const o = await loadOpen(param(req, 'id'));
    const body = linkObjectiveBody.parse(req.body);
    const dep = await getObjective(db, body.dependsOn);
    if (!dep || dep.projectId !== o.projectId)
      throw new InputError(`dependsOn: objective ${body.dependsOn} is not an objective of project ${o.projectId}`, { field: 'dependsOn' });
    const graph = (await listObjectives(db, o.projectId)).map((x) => ({ id: x.id, dependsOn: x.dependsOn }));
    const cycle = wouldCreateCycle(graph, o.id, dep.id);
    if (cycle) throw new InputError(`dependsOn: linking would close a cycle: ${cycle.join(' → ')}`, { field: 'dependsOn', path: cycle });
    if (o.dependsOn.includes(dep.id)) return void res.json(await present(o));
    await db.transaction(async (trx) => {
      await trx('objective_links').insert({ objective_id: o.id, depends_on_id: dep.id });
      // The workflow decides: a link is accepted only while the objective still waits.
      try {
        await ctx.temporal.workflow.getHandle(o.workflowId).executeUpdate(linkObjectiveUpdate, { args: [{ dependsOn: dep.id }] });
      } catch (err) {
        throw new ConflictError((err as { cause?: Error }).cause?.message ?? (err as Error).message, 'objective_started');
      }
      await appendAudit(trx, {
        actor: actorOf(req),
        action: 'objective.linked',
        subjectType: 'objective',
        subjectId: o.id,
        projectId: o.projectId,
        details: { dependsOn: dep.id },
      });
    });
    res.json(await present((await getObjective(db, o.id))!));
  });

  r.get(
    '/objectives/:id',
    { permission: 'objectives.read', resource: inPath('objective') },
    { 200: R.objectiveDetail },
    waitForStatus.objective(db),
    async (req, res) => {
      const o = await getObjective(db, param(req, 'id'));
      if (!o) throw new NotFoundError(MESSAGES.notFound('objective', param(req, 'id')));
      res.json({ ...(await present(o)), live: await live(o) });
    },
  );

  r.patch('/objectives/:id', { permission: 'objectives.write', resource: inPath('objective') }, { 200: R.objective }, async (req, res) => {
    const o = await loadOpen(param(req, 'id'));
    const body = updateObjectiveBody.parse(req.body);
    await updateObjective(db, o.id, body);
    await appendAudit(db, {
      actor: actorOf(req),
      action: 'objective.updated',
      subjectType: 'objective',
      subjectId: o.id,
      projectId: o.projectId,
      details: body,
    });
    if (body.priority !== undefined && body.priority !== o.priority) {
      // A request already waiting for a machine slot moves in the queue now.
      await ctx.temporal.workflow
        .getHandle(coordinatorWorkflowId(o.projectId))
        .signal(reprioritizeSignal, { label: `objective ${o.id}`, priority: body.priority })
        .catch(() => undefined);
      await nudgeCoordinator(ctx, o.projectId, actorOf(req));
    }
    res.json(await present((await getObjective(db, o.id))!));
  });

  /** Ticks sub-tasks off and records the progress that makes. */
  r.post('/objectives/:id/subtasks/done', { permission: 'objectives.write', resource: inPath('objective') }, { 200: R.objective }, async (req, res) => {
    const o = await loadOpen(param(req, 'id'));
    const body = subtasksDoneBody.parse(req.body);
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
      note: `sub-tasks done by ${actorOf(req)}: ${body.names.join('; ')}`,
    });
    await appendAudit(db, {
      actor: actorOf(req),
      action: 'objective.subtasks_done',
      subjectType: 'objective',
      subjectId: o.id,
      projectId: o.projectId,
      details: { names: body.names },
    });
    res.json(await present((await getObjective(db, o.id))!));
  });

  r.get('/objectives/:id/progress', { permission: 'objectives.read', resource: inPath('objective') }, { 200: R.objectiveProgress }, async (req, res) => {
    const o = await getObjective(db, param(req, 'id'));
    if (!o) throw new NotFoundError(MESSAGES.notFound('objective', param(req, 'id')));
    const q = pageQuery.parse(req.query);
    const afterSeq = decodeCursor(q.cursor, seqKey);
    const rows = await progressHistory(db, o.id, { limit: q.limit + 1, ...(afterSeq ? { afterSeq } : {}) });
    const page = pageOf(rows, q.limit, (r) => r.seq);
    res.json({ items: page.items.map(({ seq: _seq, ...r }) => r), nextCursor: page.nextCursor });
  });

  /** The project's objectives as a DAG: nodes with status and progress, edges, and layers in start order. */
  r.get('/projects/:id/objectives/dag', { permission: 'objectives.read', resource: inPath('project') }, { 200: R.objectiveDag }, async (req, res) => {
    const project = await loadProject(ctx, param(req, 'id'));
    const objectives = await listObjectives(db, project.id);
    const graph = objectives.map((o) => ({ id: o.id, dependsOn: o.dependsOn }));
    const depth = dependencyDepth(graph);
    const dependents = dependentsCount(graph);
    res.json({
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
          machines: await machineIdsOfObjective(db, o.id),
        })),
      ),
      edges: objectives.flatMap((o) => o.dependsOn.map((d) => ({ from: d, to: o.id }))),
      layers: topologicalLayers(graph),
    });
  });

  return r;
}

import { runVisibility } from '../../domain/search-attributes.js';
import * as R from '../responses.js';
import { RouteGroup, inPath, inBody } from './table.js';
import { z } from 'zod';
import { waitForStatus } from '../event-stream.js';
import { ConflictError, InputError, NotFoundError } from '../../domain/errors.js';
import { ancestorsOf, hasInputs } from '../../domain/artifacts.js';
import { validateDag } from '../../domain/dag.js';
import { checkDeclaredArtifacts, resolveInputEntries } from '../../store/artifact-inputs.js';
import { DEFAULT_MACHINE_MINUTES } from '../../domain/machines.js';
import { formatAmount } from '../../domain/money.js';
import { appendAudit } from '../../store/audit.js';
import { getCheckpoint, listCheckpoints } from '../../store/checkpoints.js';
import { getPipeline, insertPipeline, type Pipeline } from '../../store/pipelines.js';
import { cancelPipelineSignal, pipeline as pipelineWorkflow } from '../../workflows/index.js';
import { actorOf, param, principalOf, type ApiContext } from '../context.js';
import { MESSAGES } from '../errors.js';
import { idFromIdempotencyKey } from '../../store/ids.js';
import { machineTypeAvailability } from '../../services/machine-types.js';
import { createPipelineBody } from '../../services/schemas.js';
import { machineMoneyLimit } from '../../services/money-limits.js';
import { loadProject, parseAmountField } from './projects.js';
import { requireKnownResources } from '../../services/scheduling.js';

function present(p: Pipeline) {
  return {
    id: p.id,
    projectId: p.projectId,
    status: p.status,
    baseCheckpointId: p.baseCheckpointId,
    error: p.error,
    createdAt: p.createdAt,
    endedAt: p.endedAt,
    steps: p.steps.map((s) => ({
      id: s.id,
      type: s.type,
      dependsOn: s.dependsOn,
      ...(s.inputs ? { inputs: s.inputs } : {}),
      ...(s.artifacts ? { artifacts: s.artifacts } : {}),
      status: s.status,
      machineId: s.machineId,
      checkpointId: s.checkpointId,
      error: s.error,
      startedAt: s.startedAt,
      endedAt: s.endedAt,
    })),
  };
}

export function pipelineRoutes(ctx: ApiContext): RouteGroup {
  const r = new RouteGroup(ctx);
  const { db } = ctx;

  async function load(id: string): Promise<Pipeline> {
    const p = await getPipeline(db, id);
    if (!p) throw new NotFoundError(MESSAGES.notFound('pipeline', id));
    return p;
  }

  r.post('/pipelines', { permission: 'pipelines.write', resource: inBody('project', 'projectId') }, { 202: R.pipelineAccepted }, async (req, res) => {
    const body = createPipelineBody.parse(req.body);
    const problems = validateDag(body.steps.map((s) => ({ id: s.id, dependsOn: s.dependsOn })));
    if (problems.length) {
      throw new InputError(`steps: ${problems.map((p) => p.message).join('; ')}`, { field: 'steps', problems });
    }
    const project = await loadProject(ctx, body.projectId).catch(() => {
      throw new InputError(`projectId: project ${body.projectId} not found`, { field: 'projectId' });
    });
    let base = body.checkpointId;
    if (base) {
      const c = await getCheckpoint(db, base);
      if (!c || c.projectId !== project.id)
        throw new InputError(`checkpointId: ${base} is not a checkpoint of project ${project.id}`, { field: 'checkpointId' });
    } else base = (await listCheckpoints(db, project.id)).at(-1)!.id;
    // Artifact passing: a step may take from the steps it depends on (directly or not) and from existing ids.
    const declared = new Map(body.steps.map((s) => [s.id, { type: s.type, artifacts: s.artifacts ?? [] }]));
    for (const [i, s] of body.steps.entries()) {
      if (s.artifacts) checkDeclaredArtifacts(s.artifacts, `steps.${i}.artifacts`);
      if (s.inputs) {
        await resolveInputEntries(db, project, s.inputs, `steps.${i}.inputs`, { stepId: s.id, ancestors: ancestorsOf(body.steps, s.id), declared });
      }
    }
    const steps = body.steps.map((s, i) => {
      requireKnownResources(project, s.resources, `steps.${i}.resources`);
      if (s.type !== 'shell') {
        const a = machineTypeAvailability(ctx.config, s.type);
        if (!a.available) throw new ConflictError(`steps.${i}.type: ${s.type} is unavailable: ${a.reason}`, 'machine_type_unavailable');
      }
      const money = s.limits.money ? parseAmountField(`steps.${i}.limits.money`, s.limits.money, project.currency) : project.defaultMachineMoney;
      if (money <= 0n) throw new InputError(`steps.${i}.limits.money: must be more than zero`, { field: `steps.${i}.limits.money` });
      return {
        id: s.id,
        type: s.type,
        command: s.command ?? null,
        prompt: s.prompt ?? null,
        model: s.model ?? null,
        dependsOn: s.dependsOn,
        ...(s.resources.length ? { resources: s.resources } : {}),
        ...(s.cache === false ? { cache: false } : {}),
        limits: {
          money: formatAmount(money, project.currency),
          minutes: s.limits.minutes ?? DEFAULT_MACHINE_MINUTES,
          ...(s.limits.apiCalls ? { apiCalls: s.limits.apiCalls } : {}),
        },
        ...(hasInputs(s.inputs) ? { inputs: s.inputs! } : {}),
        ...(s.artifacts?.length ? { artifacts: s.artifacts } : {}),
      };
    });
    // Each agent step's limit must cover one worst-case model call plus compute (the default is raised to it).
    for (const [i, s] of body.steps.entries()) {
      const requested = s.limits.money ? parseAmountField(`steps.${i}.limits.money`, s.limits.money, project.currency) : null;
      const limit = await machineMoneyLimit(ctx, project, {
        ...s,
        requested,
        minutes: steps[i]!.limits.minutes,
        profile: 'lightweight',
        field: `steps.${i}.limits.money`,
      });
      steps[i]!.limits.money = formatAmount(limit, project.currency);
    }
    const id = idFromIdempotencyKey('pipeline', principalOf(req).apiKeyId, req.get('idempotency-key'));
    if (!(await getPipeline(db, id))) {
      await db.transaction(async (trx) => {
        await insertPipeline(trx, { id, projectId: project.id, baseCheckpointId: base, createdBy: principalOf(req).userId, steps });
        await appendAudit(trx, {
          actor: actorOf(req),
          action: 'pipeline.created',
          subjectType: 'pipeline',
          subjectId: id,
          projectId: project.id,
          details: {
            steps: steps.map((s) => ({
              id: s.id,
              type: s.type,
              dependsOn: s.dependsOn,
              ...(s.inputs ? { inputs: s.inputs } : {}),
              ...(s.artifacts ? { artifacts: s.artifacts } : {}),
            })),
          },
        });
      });
    }
    await ctx.temporal.workflow.start(pipelineWorkflow, {
      workflowId: id,
      taskQueue: ctx.config.taskQueue,
      ...runVisibility(
        'pipeline',
        { project: project.id, status: 'running', costCenter: project.costCenterId },
        { searchAttributes: ctx.config.searchAttributes, details: { pipeline: id, steps: steps.length } },
      ),
      workflowIdConflictPolicy: 'USE_EXISTING',
      args: [
        {
          pipelineId: id,
          projectId: project.id,
          baseCheckpointId: base,
          steps,
          heartbeatTimeoutSeconds: ctx.config.heartbeatTimeoutSeconds,
          priority: body.priority,
          currency: project.currency,
        },
      ],
    });
    res.status(202).json({ id, status: 'running' });
  });

  r.get('/pipelines/:id', { permission: 'pipelines.read', resource: inPath('pipeline') }, { 200: R.pipeline }, waitForStatus.pipeline(db), async (req, res) => {
    res.json(present(await load(param(req, 'id'))));
  });

  r.post(
    '/pipelines/:id/cancel',
    { permission: 'pipelines.write', resource: inPath('pipeline') },
    { 202: R.statusOf(z.literal('cancelling')) },
    async (req, res) => {
      const p = await load(param(req, 'id'));
      if (p.status !== 'running') throw new ConflictError(`pipeline ${p.id} already ended (${p.status})`, 'pipeline_ended');
      await ctx.temporal.workflow.getHandle(p.id).signal(cancelPipelineSignal, { by: actorOf(req) });
      await appendAudit(db, { actor: actorOf(req), action: 'pipeline.cancel_requested', subjectType: 'pipeline', subjectId: p.id, projectId: p.projectId });
      res.status(202).json({ id: p.id, status: 'cancelling' });
    },
  );

  return r;
}

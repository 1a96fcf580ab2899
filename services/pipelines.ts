/** Use cases of pipelines: create one (a DAG of machine steps), cancel it, and its view. */
import { z } from 'zod';
import { ConflictError, InputError, NotFoundError } from '../domain/errors.js';
import { ancestorsOf, hasInputs, type MachineInputs } from '../domain/artifacts.js';
import { validateDag } from '../domain/dag.js';
import { DEFAULT_MACHINE_MINUTES } from '../domain/machines.js';
import { formatAmount } from '../domain/money.js';
import { runVisibility } from '../domain/search-attributes.js';
import { checkDeclaredArtifacts, resolveInputEntries } from '../store/artifact-inputs.js';
import { appendAudit } from '../store/audit.js';
import { getCheckpoint, listCheckpoints } from '../store/checkpoints.js';
import { idFromIdempotencyKey } from '../store/ids.js';
import { getPipeline, insertPipeline, type Pipeline, type PipelineStatus, type StepStatus } from '../store/pipelines.js';
import { cancelPipelineSignal, pipeline as pipelineWorkflow } from '../workflows/index.js';
import { actorOfCaller, type Caller, type ServiceContext } from './context.js';
import { notFoundMessage, parseAmountField } from './inputs.js';
import { machineTypeAvailability } from './machine-types.js';
import { machineMoneyLimitOf } from './money-limits.js';
import { requireProjectField } from './projects.js';
import { requireKnownResources } from './scheduling.js';
import { createPipelineBody } from './schemas.js';
import { withLocalRepo } from '../store/shared-storage.js';

/** The pipeline, or NotFoundError. */
export async function requirePipeline(ctx: ServiceContext, id: string): Promise<Pipeline> {
  const p = await getPipeline(ctx.db, id);
  if (!p) throw new NotFoundError(notFoundMessage('pipeline', id));
  return p;
}

/** A pipeline as users see it: its steps with what each took, ran and left, without commands. */
export interface PipelineView {
  id: string;
  projectId: string;
  status: PipelineStatus;
  /** Its Temporal workflow (named by the pipeline's id). */
  workflowId: string;
  baseCheckpointId: string;
  error: string | null;
  createdAt: string;
  endedAt: string | null;
  steps: Array<{
    id: string;
    type: string;
    dependsOn: string[];
    inputs?: MachineInputs;
    artifacts?: string[];
    status: StepStatus;
    machineId: string | null;
    checkpointId: string | null;
    error: string | null;
    startedAt: string | null;
    endedAt: string | null;
  }>;
}

export function pipelineView(p: Pipeline): PipelineView {
  return {
    id: p.id,
    projectId: p.projectId,
    status: p.status,
    workflowId: p.id,
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

/** The pipeline's view, or NotFoundError. */
export async function getPipelineView(ctx: ServiceContext, id: string): Promise<PipelineView> {
  return pipelineView(await requirePipeline(ctx, id));
}

/**
 * Creates a pipeline: checks the steps (a DAG; inputs from earlier steps or existing ids; known
 * resources; available types; money limits that cover a worst-case call), records it with its
 * audit record and starts its workflow. A repeat with the same idempotency key names the same
 * pipeline and starts nothing new.
 */
export async function createPipeline(
  ctx: ServiceContext,
  caller: Caller,
  input: z.input<typeof createPipelineBody>,
): Promise<{ id: string; status: 'running' }> {
  const { db, config } = ctx;
  const body = createPipelineBody.parse(input);
  const problems = validateDag(body.steps.map((s) => ({ id: s.id, dependsOn: s.dependsOn })));
  if (problems.length) {
    throw new InputError(`steps: ${problems.map((p) => p.message).join('; ')}`, { field: 'steps', problems });
  }
  const project = await requireProjectField(ctx, body.projectId);
  let base = body.checkpointId;
  if (base) {
    const c = await getCheckpoint(db, base);
    if (!c || c.projectId !== project.id) throw new InputError(`checkpointId: ${base} is not a checkpoint of project ${project.id}`, { field: 'checkpointId' });
  } else base = (await listCheckpoints(db, project.id)).at(-1)!.id;
  // Artifact passing: a step may take from the steps it depends on (directly or not) and from existing ids.
  const declared = new Map(body.steps.map((s) => [s.id, { type: s.type, artifacts: s.artifacts ?? [] }]));
  for (const [i, s] of body.steps.entries()) {
    if (s.artifacts) checkDeclaredArtifacts(s.artifacts, `steps.${i}.artifacts`);
    if (s.inputs) {
      await resolveInputEntries(db, await withLocalRepo(db, config, project), s.inputs, `steps.${i}.inputs`, {
        stepId: s.id,
        ancestors: ancestorsOf(body.steps, s.id),
        declared,
      });
    }
  }
  const steps = body.steps.map((s, i) => {
    requireKnownResources(project, s.resources, `steps.${i}.resources`);
    if (s.type !== 'shell' && s.type !== 'auto') {
      const a = machineTypeAvailability(config, s.type);
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
    const limit = await machineMoneyLimitOf(ctx, project, {
      ...s,
      requested,
      minutes: steps[i]!.limits.minutes,
      profile: 'lightweight',
      field: `steps.${i}.limits.money`,
    });
    steps[i]!.limits.money = formatAmount(limit, project.currency);
  }
  const id = idFromIdempotencyKey('pipeline', caller.principal.apiKeyId, caller.idempotencyKey);
  if (!(await getPipeline(db, id))) {
    await db.transaction(async (trx) => {
      await insertPipeline(trx, { id, projectId: project.id, baseCheckpointId: base, createdBy: caller.principal.userId, steps });
      await appendAudit(trx, {
        actor: actorOfCaller(caller),
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
    taskQueue: config.taskQueue,
    ...runVisibility(
      'pipeline',
      { project: project.id, status: 'running', costCenter: project.costCenterId },
      { searchAttributes: config.searchAttributes, details: { pipeline: id, steps: steps.length } },
    ),
    workflowIdConflictPolicy: 'USE_EXISTING',
    args: [
      {
        pipelineId: id,
        projectId: project.id,
        baseCheckpointId: base,
        steps,
        heartbeatTimeoutSeconds: config.heartbeatTimeoutSeconds,
        priority: body.priority,
        currency: project.currency,
      },
    ],
  });
  return { id, status: 'running' };
}

/** Asks a running pipeline to stop (its workflow cancels the steps). */
export async function cancelPipeline(ctx: ServiceContext, caller: Caller, pipelineId: string): Promise<{ id: string; status: 'cancelling' }> {
  const p = await requirePipeline(ctx, pipelineId);
  if (p.status !== 'running') throw new ConflictError(`pipeline ${p.id} already ended (${p.status})`, 'pipeline_ended');
  await ctx.temporal.workflow.getHandle(p.id).signal(cancelPipelineSignal, { by: actorOfCaller(caller) });
  await appendAudit(ctx.db, {
    actor: actorOfCaller(caller),
    action: 'pipeline.cancel_requested',
    subjectType: 'pipeline',
    subjectId: p.id,
    projectId: p.projectId,
  });
  return { id: p.id, status: 'cancelling' };
}

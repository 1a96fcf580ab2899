/** Use cases of machines: request one, and terminate, extend or checkpoint a running one. */
import { WorkflowNotFoundError, WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError, type WorkflowHandle } from '@temporalio/client';
import { z } from 'zod';
import { ConflictError, InputError, NotFoundError } from '../domain/errors.js';
import { hasInputs, resolveStepRefs } from '../domain/artifacts.js';
import { machineComputePrice } from '../domain/compute-prices.js';
import { allocatedCostCenterId } from '../domain/budget.js';
import type { MachineTypeId } from '../domain/machine-types.js';
import { DEFAULT_MACHINE_MINUTES, FINAL_MACHINE_STATUSES, type MachineStatus } from '../domain/machines.js';
import { formatAmount } from '../domain/money.js';
import { withNetworkEnforcement } from '../domain/network.js';
import { decidePlacement, withCapacity } from '../domain/placement.js';
import { runVisibility } from '../domain/search-attributes.js';
import { appendAudit } from '../store/audit.js';
import { checkDeclaredArtifacts, resolveInputEntries } from '../store/artifact-inputs.js';
import { getCheckpoint, listCheckpoints } from '../store/checkpoints.js';
import { getPlacementPolicy, providerAvailability, runningByProvider } from '../store/compute.js';
import { idFromIdempotencyKey } from '../store/ids.js';
import { placeAndRecordMachine } from '../store/machine-requests.js';
import { getMachine, updateMachine, type Machine } from '../store/machines.js';
import { checkpointSignal, extendSignal, machineRun, reservationUpdate, terminateSignal, type MachineRunResult } from '../workflows/index.js';
import { actorOfCaller, type Caller, type ServiceContext } from './context.js';
import { notFoundMessage, parseAmountField } from './inputs.js';
import { machineTypeAvailability } from './machine-types.js';
import { machineMoneyLimit } from './money-limits.js';
import { machineNetworkPolicy } from './network.js';
import { requireCostCenterField, requireProject, requireProjectField } from './projects.js';
import { decideRoute } from './routing.js';
import { predictedLimit, predictMachine, refuseIfPredictedOver, refusesEarly } from './predictions.js';
import { predictionsOfMachines, recordPrediction, type StoredPrediction } from '../store/predictions.js';
import { createMachineBody, extendMachineBody } from './schemas.js';
import { withLocalRepo } from '../store/shared-storage.js';

/** The machine, or NotFoundError. */
export async function requireMachine(ctx: ServiceContext, id: string): Promise<Machine> {
  const m = await getMachine(ctx.db, id);
  if (!m) throw new NotFoundError(notFoundMessage('machine', id));
  return m;
}

/**
 * Requests a machine: checks the request against the project (checkpoint, inputs, type, money
 * limit), places it, records it with its audit record under the placement lock, starts its
 * workflow and waits for the reservation's verdict, so a refusal is a ConflictError now (409).
 * A repeat with the same idempotency key names the same machine and starts nothing new.
 */
export async function requestMachine(
  ctx: ServiceContext,
  caller: Caller,
  input: z.input<typeof createMachineBody>,
): Promise<{ id: string; workflowId: string; status: MachineStatus | 'running'; prediction: StoredPrediction | null }> {
  const { db, temporal, config } = ctx;
  const body = createMachineBody.parse(input);
  const project = await requireProjectField(ctx, body.projectId);
  let checkpointId = body.checkpointId;
  if (checkpointId) {
    const checkpoint = await getCheckpoint(db, checkpointId);
    if (!checkpoint || checkpoint.projectId !== project.id) {
      throw new InputError(`checkpointId: ${checkpointId} is not a checkpoint of project ${project.id}`, { field: 'checkpointId' });
    }
  } else {
    // Without a checkpoint, a machine continues from the project's newest one.
    checkpointId = (await listCheckpoints(db, project.id)).at(-1)!.id;
  }
  await requireCostCenterField(ctx, body.costCenterId);
  const moneyLimit = body.limits.money ? parseAmountField('limits.money', body.limits.money, project.currency) : project.defaultMachineMoney;
  if (moneyLimit <= 0n) throw new InputError('limits.money: must be more than zero', { field: 'limits.money' });
  const limits = {
    money: formatAmount(moneyLimit, project.currency),
    minutes: body.limits.minutes ?? DEFAULT_MACHINE_MINUTES,
    ...(body.limits.apiCalls ? { apiCalls: body.limits.apiCalls } : {}),
  };
  const id = idFromIdempotencyKey('machine', caller.principal.apiKeyId, caller.idempotencyKey);
  // type "auto": the router picks among the available agent types (README "Machine selection (type: auto)").
  const routed =
    body.type === 'auto'
      ? await decideRoute(ctx, { machineId: id, project, checkpoint: (await getCheckpoint(db, checkpointId))!, prompt: body.prompt! })
      : null;
  const type: MachineTypeId = routed ? routed.type : (body.type as MachineTypeId);
  if (type !== 'shell') {
    const availability = machineTypeAvailability(config, type);
    if (!availability.available) throw new ConflictError(`type: ${type} is unavailable: ${availability.reason}`, 'machine_type_unavailable');
  }
  // Artifact passing: every referenced file / history / artifact must exist in this project now.
  if (body.inputs) await resolveInputEntries(db, await withLocalRepo(db, config, project), body.inputs, 'inputs');
  const inputs = hasInputs(body.inputs) ? resolveStepRefs(body.inputs!, {}) : null;
  const artifacts = body.artifacts?.length ? checkDeclaredArtifacts(body.artifacts, 'artifacts') : null;

  // The machine's network: the project's, or the request's within it (README "Network").
  const network = machineNetworkPolicy(ctx, caller, project, body.network);
  const { availability: reported } = await providerAvailability(db);
  // Only providers that can enforce the policy may run it: an explicit other provider is refused (422).
  const availability = withNetworkEnforcement(withCapacity(reported, await runningByProvider(db), config.providerCapacity), network);
  const placement = decidePlacement(
    (await getPlacementPolicy(db, project.id))?.policy ?? null,
    {
      type,
      minutes: limits.minutes,
      ...(body.provider ? { provider: body.provider } : {}),
      ...(body.profile ? { profile: body.profile } : {}),
      ...(body.spot !== undefined ? { spot: body.spot } : {}),
    },
    availability,
  );
  if (!placement.ok) throw new InputError(`${body.provider ? 'provider: ' : ''}${placement.reason}`, { field: 'provider', skipped: placement.skipped });
  // Charged at the price of what runs: a provider/profile without a price is refused, not guessed.
  const price = machineComputePrice(config, placement);
  if (!price.ok) {
    throw new InputError(
      price.message,
      { field: body.profile ? 'profile' : 'provider', provider: placement.provider, profile: placement.profile },
      'compute_price_missing',
    );
  }
  // Predicted from the settled runs of its type before it starts (README "Cost prediction").
  const predicted = await predictMachine(ctx, project, type, routed?.operationClass ?? null);
  const prediction = predicted.ok ? predicted.prediction : null;
  // The limit must cover one worst-case model call plus the compute, or the first call is refused.
  const limit = await machineMoneyLimit(ctx, project, {
    ...body,
    type,
    requested: body.limits.money ? moneyLimit : null,
    minutes: limits.minutes,
    profile: placement.profile,
    hourlyPriceUsd: price.price.maxHourly,
    predictedUpper: body.limitFromPrediction && prediction ? predictedLimit(prediction, project) : null,
  });
  limits.money = formatAmount(limit, project.currency);
  if (prediction && (await refusesEarly(ctx, project.id, body.refuseIfPredictedOver))) await refuseIfPredictedOver(ctx, project, type, prediction, limit);

  // Placed again under the placement lock, with the row and its audit record in one
  // transaction: the same request path objectives and pipelines take.
  const placed = await placeAndRecordMachine(db, config.providerCapacity, {
    id,
    projectId: project.id,
    objectiveId: null,
    type,
    minutes: limits.minutes,
    ...(body.provider ? { provider: body.provider } : {}),
    profile: placement.profile,
    ...(body.spot !== undefined ? { spot: body.spot } : {}),
    command: body.command ?? null,
    prompt: body.prompt ?? null,
    parentCheckpointId: checkpointId,
    limits,
    workflowId: id,
    createdBy: caller.principal.userId,
    costCenterId: body.costCenterId ?? null,
    network,
    actor: actorOfCaller(caller),
    details: { profile: body.profile, ...(inputs ? { inputs } : {}), ...(artifacts ? { artifacts } : {}) },
    ...(routed?.stored ? { routing: routed.stored } : {}),
  });
  if (!placed.ok) throw new InputError(`${body.provider ? 'provider: ' : ''}${placed.reason}`, { field: 'provider', skipped: placed.skipped });
  if (prediction) await recordPrediction(db, { ...prediction, machineId: id, projectId: project.id, machineType: type, currency: project.currency });
  const handle = await temporal.workflow
    .start(machineRun, {
      workflowId: id,
      taskQueue: config.taskQueue,
      ...runVisibility(
        'machine',
        {
          project: project.id,
          machineType: type,
          provider: placed.provider,
          status: 'pending',
          costCenter: allocatedCostCenterId({ costCenterId: body.costCenterId ?? null }, project),
        },
        { searchAttributes: config.searchAttributes, details: { machine: id, profile: placed.profile, requestedBy: caller.principal.name } },
      ),
      args: [
        {
          machineId: id,
          projectId: project.id,
          type,
          command: body.command ?? '',
          prompt: body.prompt ?? null,
          model: body.model ?? null,
          parentCheckpointId: checkpointId,
          profile: placed.profile,
          provider: placed.provider,
          spot: placed.spot,
          limits,
          heartbeatTimeoutSeconds: config.heartbeatTimeoutSeconds,
          limitPolicy: placed.limitPolicy,
          ...(body.checkpointEveryMinutes ? { checkpointEveryMinutes: body.checkpointEveryMinutes } : {}),
          ...(inputs ? { inputs } : {}),
          ...(artifacts ? { artifacts } : {}),
          ...(body.cache === false ? { cache: false } : {}),
        },
      ],
      workflowIdConflictPolicy: 'USE_EXISTING',
    })
    .catch(async (err) => {
      await updateMachine(db, id, { status: 'failed', error: `could not start: ${(err as Error).message}`, endedAt: new Date() });
      throw err;
    });
  // The workflow owns the reservation; wait for its verdict so a refusal is a conflict now.
  try {
    const outcome = await reservationOutcome(handle);
    if (outcome && !outcome.ok) {
      throw new ConflictError(outcome.message, outcome.code, { remaining: outcome.remaining ?? null, currency: outcome.currency, machineId: id });
    }
  } catch (err) {
    if (err instanceof WorkflowUpdateRPCTimeoutOrCancelledError || err instanceof WorkflowUpdateFailedError) {
      // Still deciding (or already past it): the machine is accepted and its status tells the outcome.
      ctx.log.warn({ machineId: id, err: (err as Error).message }, 'reservation outcome not yet known');
    } else throw err;
  }
  const machine = await requireMachine(ctx, id);
  return {
    id,
    workflowId: id,
    status: machine.status === 'pending' ? 'running' : machine.status,
    prediction: (await predictionsOfMachines(db, [id])).get(id) ?? null,
  };
}

/**
 * The workflow's reservation verdict. A run that ends in its first workflow task (refused, or a
 * result-cache hit: its bookkeeping is local activities) closes before the update is delivered;
 * the server then aborts the update and the verdict is read from the run's result (undefined for
 * a run recorded before results carried it: its status tells the outcome).
 */
async function reservationOutcome(handle: WorkflowHandle<typeof machineRun>): Promise<MachineRunResult['reservation']> {
  try {
    return await handle.executeUpdate(reservationUpdate);
  } catch (err) {
    if (!(err instanceof WorkflowNotFoundError)) throw err;
    // Closed before the update was delivered, or gone: the result is there either way.
    const result = await handle.result().catch(() => undefined);
    if (!result) throw err;
    return result.reservation;
  }
}

/** A machine that has not ended yet, or ConflictError naming its end. */
async function requireRunningMachine(ctx: ServiceContext, id: string, whenEnded = ''): Promise<Machine> {
  const machine = await requireMachine(ctx, id);
  if (FINAL_MACHINE_STATUSES.includes(machine.status)) {
    throw new ConflictError(`machine ${machine.id} already ended (${machine.status})${whenEnded}`, 'machine_ended');
  }
  return machine;
}

/** Asks a machine to stop: it checkpoints, tears down and settles. */
export async function terminateMachine(ctx: ServiceContext, caller: Caller, machineId: string): Promise<{ id: string; status: 'terminating' }> {
  const machine = await requireRunningMachine(ctx, machineId);
  await ctx.temporal.workflow.getHandle(machine.workflowId).signal(terminateSignal, { by: actorOfCaller(caller) });
  await appendAudit(ctx.db, {
    actor: actorOfCaller(caller),
    action: 'machine.terminate_requested',
    subjectType: 'machine',
    subjectId: machine.id,
    projectId: machine.projectId,
  });
  return { id: machine.id, status: 'terminating' };
}

/** Gives a paused machine more money and/or minutes, and lets it continue. */
export async function extendMachine(
  ctx: ServiceContext,
  caller: Caller,
  machineId: string,
  input: z.input<typeof extendMachineBody>,
): Promise<{ id: string; status: 'resuming' }> {
  const machine = await requireMachine(ctx, machineId);
  const body = extendMachineBody.parse(input);
  const project = await requireProject(ctx, machine.projectId);
  if (body.money) {
    const more = parseAmountField('money', body.money, project.currency);
    if (more <= 0n) throw new InputError('money: must be more than zero', { field: 'money' });
  }
  if (machine.status !== 'paused') {
    throw new ConflictError(`machine ${machine.id} is ${machine.status}; only a paused machine can be extended`, 'machine_not_paused');
  }
  await ctx.temporal.workflow.getHandle(machine.workflowId).signal(extendSignal, { ...body, by: actorOfCaller(caller) });
  await appendAudit(ctx.db, {
    actor: actorOfCaller(caller),
    action: 'machine.extend_requested',
    subjectType: 'machine',
    subjectId: machine.id,
    projectId: machine.projectId,
    details: body,
  });
  return { id: machine.id, status: 'resuming' };
}

/** Asks a running machine for a checkpoint of its workspace now. */
export async function checkpointMachine(ctx: ServiceContext, caller: Caller, machineId: string): Promise<{ id: string; status: MachineStatus }> {
  const machine = await requireRunningMachine(ctx, machineId, `; its final checkpoint is in GET /v1/machines/${machineId}`);
  await ctx.temporal.workflow.getHandle(machine.workflowId).signal(checkpointSignal, { by: actorOfCaller(caller) });
  await appendAudit(ctx.db, {
    actor: actorOfCaller(caller),
    action: 'machine.checkpoint_requested',
    subjectType: 'machine',
    subjectId: machine.id,
    projectId: machine.projectId,
  });
  return { id: machine.id, status: machine.status };
}

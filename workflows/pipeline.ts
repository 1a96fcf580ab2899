import {
  CancellationScope,
  ChildWorkflowCancellationType,
  condition,
  defineQuery,
  defineSignal,
  executeChild,
  isCancellation,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  uuid4,
} from '@temporalio/workflow';
import { childVisibility, setStatusAttribute } from './visibility.js';
import { runAsType, type RequestedMachineType } from './auto-type.js';
import type { Activities } from '../activities/index.js';
import { hasInputs, resolveStepRefs, type MachineInputs } from '../domain/artifacts.js';
import { dependentsCount, readyNodes } from '../domain/dag.js';
import { parseAmount, type CurrencyCode } from '../domain/money.js';
import { ResourceClaims } from './coordination.js';
import { machineRun, type MachineRunInput } from './machine.js';
import { INPUT_ERROR, MERGE_CONFLICT, NOT_FOUND, shortActivity, shortLocalActivity } from './activity-options.js';

export interface PipelineStepInput {
  id: string;
  /** `auto`: the router picks the step machine's type when it is registered. */
  type: RequestedMachineType;
  command: string | null;
  prompt: string | null;
  model?: string | null;
  dependsOn: string[];
  limits: { money: string; minutes: number; apiCalls?: number | null };
  /** Named project resources the step holds while its machine runs. */
  resources?: string[];
  /** Files / conversations / artifacts to start with; `step` names an earlier step this one depends on. */
  inputs?: MachineInputs;
  /** Workspace files kept as the step's named artifacts. */
  artifacts?: string[];
  /** false: the step's machine runs even when a cached result exists. */
  cache?: boolean;
}

export interface PipelineInput {
  pipelineId: string;
  projectId: string;
  baseCheckpointId: string;
  steps: PipelineStepInput[];
  heartbeatTimeoutSeconds: number;
  /** Rank of the pipeline's steps against the project's other work (default 0). */
  priority?: number;
  /** The project's currency, in which step money limits are given. */
  currency?: CurrencyCode;
}

type StepState = 'waiting' | 'running' | 'completed' | 'failed' | 'skipped' | 'cancelled';

export interface PipelineState {
  status: 'running' | 'completed' | 'failed' | 'cancelled';
  steps: Record<string, { status: StepState; machineId: string | null; checkpointId: string | null }>;
}

export const cancelPipelineSignal = defineSignal<[{ by: string }]>('cancel');
export const pipelineStateQuery = defineQuery<PipelineState>('state');

const acts = proxyActivities<Activities>(shortActivity('1 minute', [NOT_FOUND, INPUT_ERROR, MERGE_CONFLICT]));
const local = proxyLocalActivities<Activities>(shortLocalActivity('1 minute', [NOT_FOUND, INPUT_ERROR]));
/**
 * Step marks, the machine row (registered and the step marked running in one `startStep`), the
 * finish and the coordinator's requests run as local activities, in the pipeline's own workflow
 * task (absent from older histories, which replay them as activities). All are idempotent.
 */
const LOCAL_BOOKKEEPING = 'pipeline-local-bookkeeping';

/**
 * A DAG of machine steps. Every step whose dependencies are complete starts at once (in
 * parallel), from its predecessor's final checkpoint, or from a merge of its predecessors'
 * checkpoints, so each step sees the files the steps before it produced. A failed step skips
 * the steps after it; cancelling terminates the running machines, which settle and release
 * their reservations.
 */
export async function pipeline(input: PipelineInput): Promise<PipelineState> {
  const state: PipelineState = {
    status: 'running',
    steps: Object.fromEntries(input.steps.map((s) => [s.id, { status: 'waiting' as StepState, machineId: null, checkpointId: null }])),
  };
  setHandler(pipelineStateQuery, () => state);
  const fast = patched(LOCAL_BOOKKEEPING);
  const book = fast ? local : acts;
  const scope = new CancellationScope();
  let cancelled = false;
  setHandler(cancelPipelineSignal, () => {
    cancelled = true;
    scope.cancel();
  });
  let changed = false;
  const byId = new Map(input.steps.map((s) => [s.id, s]));
  const finished = (id: string) => ['completed', 'failed', 'skipped', 'cancelled'].includes(state.steps[id]!.status);
  const claims = new ResourceClaims({ local: fast });
  const dependents = dependentsCount(input.steps);

  async function runStep(step: PipelineStepInput): Promise<void> {
    const deps = step.dependsOn.map((d) => state.steps[d]!.checkpointId!);
    let from = input.baseCheckpointId;
    if (deps.length === 1) from = deps[0]!;
    if (deps.length > 1) {
      from = (
        await acts.mergeCheckpoints({
          checkpointId: `checkpoint-${uuid4()}`,
          projectId: input.projectId,
          checkpointIds: deps,
          at: new Date(Date.now()).toISOString(),
          trigger: `pipeline ${input.pipelineId} step ${step.id}`,
        })
      ).checkpointId;
    }
    const machineId = `machine-${uuid4()}`;
    // Machine slots and named resources come from the project coordinator, in one global order.
    const claimed = patched('pipeline-steps-claim-resources');
    if (claimed) {
      await claims
        .acquire({
          projectId: input.projectId,
          requestId: machineId,
          resources: step.resources ?? [],
          priority: input.priority ?? 0,
          dependents: dependents.get(step.id) ?? 0,
          cost: parseAmount(step.limits.money, input.currency ?? 'USD').toString(),
          label: `pipeline ${input.pipelineId}`,
        })
        .catch(async (err: unknown) => {
          await claims.release(input.projectId, machineId);
          throw err;
        });
    }
    try {
      await runMachine(step, from, machineId);
    } finally {
      if (claimed) await claims.release(input.projectId, machineId);
    }
  }

  async function runMachine(step: PipelineStepInput, from: string, machineId: string): Promise<void> {
    state.steps[step.id]!.machineId = machineId;
    // The project's placement rules pick the provider, spilling over when one is at capacity.
    const place = patched('pipeline-machines-placed');
    const machine = {
      machineId,
      projectId: input.projectId,
      type: step.type,
      ...(place ? { place: true } : {}),
      profile: 'lightweight',
      command: step.command,
      prompt: step.prompt,
      parentCheckpointId: from,
      limits: { money: step.limits.money, minutes: step.limits.minutes },
      createdBy: `pipeline:${input.pipelineId}`,
    };
    let registered: Awaited<ReturnType<Activities['registerMachine']>>;
    if (fast) registered = await local.startStep({ ...machine, pipelineId: input.pipelineId, stepId: step.id });
    else {
      registered = await acts.registerMachine(machine);
      await acts.markStep({ pipelineId: input.pipelineId, stepId: step.id, status: 'running', machineId, started: true });
    }
    // type "auto": the type the router chose for this machine (recorded with its row).
    const type = runAsType(step.type, registered);
    const args: MachineRunInput = {
      machineId,
      projectId: input.projectId,
      type,
      command: step.command ?? '',
      prompt: step.prompt,
      model: step.model ?? null,
      parentCheckpointId: from,
      profile: 'lightweight',
      limits: step.limits,
      heartbeatTimeoutSeconds: input.heartbeatTimeoutSeconds,
      // Earlier steps are complete by now: their machine and final checkpoint stand in for `step`.
      ...(hasInputs(step.inputs) ? { inputs: resolveStepRefs(step.inputs!, state.steps) } : {}),
      ...(step.artifacts?.length ? { artifacts: step.artifacts } : {}),
      ...(step.cache === false ? { cache: false } : {}),
      ...(place ? { provider: registered.provider, spot: registered.spot } : {}),
      // The project's limit policy, as a direct request has it (older registrations returned nothing).
      ...(registered?.limitPolicy ? { limitPolicy: registered.limitPolicy } : {}),
    };
    const result = await executeChild(machineRun, {
      workflowId: machineId,
      ...childVisibility('machine', { project: input.projectId, machineType: type, provider: args.provider ?? 'local', status: 'pending' }),
      args: [args],
      cancellationType: ChildWorkflowCancellationType.WAIT_CANCELLATION_COMPLETED,
    });
    const ok = result.status === 'completed';
    const checkpointId = result.checkpoints.at(-1) ?? null;
    state.steps[step.id] = { status: ok ? 'completed' : 'failed', machineId, checkpointId };
    await book.markStep({
      pipelineId: input.pipelineId,
      stepId: step.id,
      status: ok ? 'completed' : 'failed',
      checkpointId,
      error: ok
        ? null
        : `machine ${machineId} ended ${result.status}${result.error ? `: ${result.error}` : result.stopReason ? ` (${result.stopReason})` : ''}`,
      ended: true,
    });
  }

  const launched: Promise<void>[] = [];
  const launch = (step: PipelineStepInput) => {
    state.steps[step.id]!.status = 'running';
    launched.push(
      scope
        .run(() => runStep(step))
        .catch(async (err: unknown) => {
          const status: StepState = isCancellation(err) ? 'cancelled' : 'failed';
          state.steps[step.id]!.status = status;
          await CancellationScope.nonCancellable(() =>
            book.markStep({
              pipelineId: input.pipelineId,
              stepId: step.id,
              status,
              error: err instanceof Error ? err.message : String(err),
              ended: true,
            }),
          );
        })
        .finally(() => {
          changed = true;
        }),
    );
  };

  while (!cancelled) {
    // Steps after a failure cannot run: skip them.
    for (const step of input.steps) {
      if (state.steps[step.id]!.status !== 'waiting') continue;
      const broken = step.dependsOn.find((d) => ['failed', 'skipped', 'cancelled'].includes(state.steps[d]!.status));
      if (broken) {
        state.steps[step.id]!.status = 'skipped';
        await book.markStep({ pipelineId: input.pipelineId, stepId: step.id, status: 'skipped', error: `step ${broken} did not complete`, ended: true });
      }
    }
    const done = new Set(input.steps.filter((s) => state.steps[s.id]!.status === 'completed').map((s) => s.id));
    const started = new Set(input.steps.filter((s) => state.steps[s.id]!.status !== 'waiting').map((s) => s.id));
    for (const id of readyNodes(input.steps, done, started)) launch(byId.get(id)!);
    if (input.steps.every((s) => finished(s.id))) break;
    changed = false;
    await condition(() => changed || cancelled);
  }
  await Promise.all(launched);

  await CancellationScope.nonCancellable(async () => {
    for (const step of input.steps) {
      if (state.steps[step.id]!.status === 'waiting') {
        state.steps[step.id]!.status = 'cancelled';
        await book.markStep({ pipelineId: input.pipelineId, stepId: step.id, status: 'cancelled', ended: true });
      }
    }
    const failed = input.steps.filter((s) => state.steps[s.id]!.status === 'failed').map((s) => s.id);
    state.status = cancelled ? 'cancelled' : failed.length ? 'failed' : 'completed';
    setStatusAttribute(state.status);
    await book.finishPipeline({
      pipelineId: input.pipelineId,
      status: state.status,
      error: state.status === 'failed' ? `steps failed: ${failed.join(', ')}` : null,
    });
  });
  return state;
}

import {
  condition,
  defineQuery,
  defineSignal,
  defineUpdate,
  executeChild,
  getExternalWorkflowHandle,
  patched,
  proxyActivities,
  setHandler,
  uuid4,
} from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import type { ObjectiveStatus } from '../domain/objectives.js';
import type { MachineType, ProfileId } from '../domain/machines.js';
import { machineRun, terminateSignal, type MachineRunResult } from './machine.js';

export interface ObjectiveInput {
  objectiveId: string;
  projectId: string;
  dependsOn: string[];
  /** Start from the checkpoints the dependencies ended with (merged when several), not machine.checkpointId. */
  startFromDependencies?: boolean;
  machine: {
    type: MachineType;
    command: string;
    prompt?: string | null;
    checkpointId: string;
    profile: ProfileId;
    limits: { money: string; minutes: number };
    heartbeatTimeoutSeconds: number;
  };
}

export interface ObjectiveState {
  status: ObjectiveStatus;
  waitingOn: string[];
  machineId: string | null;
}

export const dependencyChangedSignal = defineSignal<[{ objectiveId: string }]>('dependencyChanged');
export const pauseObjectiveSignal = defineSignal<[{ by: string }]>('pause');
export const resumeObjectiveSignal = defineSignal<[{ by: string }]>('resume');
export const cancelObjectiveSignal = defineSignal<[{ by: string }]>('cancel');
/** Adds a dependency while the objective still waits; refused once it has started. */
export const linkObjectiveUpdate = defineUpdate<ObjectiveState, [{ dependsOn: string }]>('link');
export const objectiveStateQuery = defineQuery<ObjectiveState>('state');

const acts = proxyActivities<Activities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1s', maximumInterval: '30s', nonRetryableErrorTypes: ['NotFoundError', 'InputError'] },
});

/** How long to wait for a dependency's signal before looking at its status again (signals can be missed). */
const RECHECK = '30 seconds';

/** An objective: waits until every objective it depends on is complete, then runs its machine. */
export async function objective(input: ObjectiveInput): Promise<ObjectiveState> {
  const state: ObjectiveState = { status: 'waiting', waitingOn: [...input.dependsOn], machineId: null };
  let nudged = false;
  let paused = false;
  let cancelRequested = false;
  const linked: string[] = [];
  setHandler(objectiveStateQuery, () => state);
  setHandler(dependencyChangedSignal, () => {
    nudged = true;
  });
  setHandler(pauseObjectiveSignal, () => {
    if (state.status === 'waiting') paused = true;
  });
  setHandler(resumeObjectiveSignal, () => {
    paused = false;
    nudged = true;
  });
  setHandler(cancelObjectiveSignal, () => {
    cancelRequested = true;
  });
  setHandler(
    linkObjectiveUpdate,
    ({ dependsOn }) => {
      if (!state.waitingOn.includes(dependsOn)) state.waitingOn.push(dependsOn);
      if (!linked.includes(dependsOn)) linked.push(dependsOn);
      nudged = true;
      return state;
    },
    {
      validator: (_link: { dependsOn: string }) => {
        if (state.status !== 'waiting' || cancelRequested) throw new Error(`objective ${input.objectiveId} has already started; dependencies can be added only while it waits`);
      },
    },
  );

  let pausedRecorded = false;
  while (state.waitingOn.length || paused) {
    if (cancelRequested) return finish(state, input, 'cancelled');
    if (paused !== pausedRecorded) {
      pausedRecorded = paused;
      await acts.markObjective({ objectiveId: input.objectiveId, status: paused ? 'paused' : 'waiting' });
    }
    if (state.waitingOn.length) {
      // A link may add a dependency while the statuses are read: judge only the ones asked about.
      const asked = [...state.waitingOn];
      const statuses = await acts.dependencyStatuses({ ids: asked });
      const broken = asked.find((id) => ['failed', 'cancelled'].includes(statuses[id] ?? 'failed'));
      if (broken) return finish(state, input, 'failed', `dependency ${broken} ${statuses[broken] ?? 'is missing'}`);
      state.waitingOn = state.waitingOn.filter((id) => !asked.includes(id) || statuses[id] !== 'completed');
      if (!state.waitingOn.length && !paused) break;
    }
    nudged = false;
    await condition(() => nudged || cancelRequested, RECHECK);
  }
  if (cancelRequested) return finish(state, input, 'cancelled');

  state.status = 'running';
  await acts.markObjective({ objectiveId: input.objectiveId, status: 'running' });
  let from = input.machine.checkpointId;
  const dependencies = [...input.dependsOn, ...linked.filter((d) => !input.dependsOn.includes(d))];
  if (input.startFromDependencies && dependencies.length && patched('objective-starts-from-dependencies')) {
    // Build on what the dependencies produced: their final checkpoints, merged when there are several.
    const ends = await acts.objectiveEndCheckpoints({ ids: dependencies });
    if (ends.length === 1) from = ends[0]!;
    if (ends.length > 1) {
      from = (
        await acts.mergeCheckpoints({
          checkpointId: `checkpoint-${uuid4()}`,
          projectId: input.projectId,
          checkpointIds: ends,
          at: new Date(Date.now()).toISOString(),
          trigger: `objective ${input.objectiveId} starts after`,
        })
      ).checkpointId;
    }
  }
  const machineId = `machine-${uuid4()}`;
  state.machineId = machineId;
  await acts.registerObjectiveMachine({
    machineId,
    objectiveId: input.objectiveId,
    projectId: input.projectId,
    type: input.machine.type,
    provider: 'local',
    profile: input.machine.profile,
    command: input.machine.command,
    prompt: input.machine.prompt ?? null,
    parentCheckpointId: from,
    limits: input.machine.limits,
  });
  // Cancelling a running objective terminates its machine cleanly (final checkpoint, cost settled).
  void condition(() => cancelRequested)
    .then(() => getExternalWorkflowHandle(machineId).signal(terminateSignal, { by: `objective ${input.objectiveId} cancelled` }))
    .catch(() => undefined);
  const result: MachineRunResult = await executeChild(machineRun, {
    workflowId: machineId,
    args: [
      {
        machineId,
        projectId: input.projectId,
        type: input.machine.type,
        command: input.machine.command,
        prompt: input.machine.prompt ?? null,
        parentCheckpointId: from,
        profile: input.machine.profile,
        limits: input.machine.limits,
        heartbeatTimeoutSeconds: input.machine.heartbeatTimeoutSeconds,
      },
    ],
  });
  if (result.status === 'completed') return finish(state, input, 'completed');
  if (cancelRequested) return finish(state, input, 'cancelled');
  return finish(state, input, 'failed', `machine ${machineId} ended ${result.status}${result.error ? `: ${result.error}` : ''}`);
}

async function finish(state: ObjectiveState, input: ObjectiveInput, status: ObjectiveStatus, error?: string): Promise<ObjectiveState> {
  state.status = status;
  await acts.markObjective({ objectiveId: input.objectiveId, status, ...(error ? { error } : {}) });
  for (const workflowId of await acts.dependentWorkflowIds({ objectiveId: input.objectiveId })) {
    try {
      await getExternalWorkflowHandle(workflowId).signal(dependencyChangedSignal, { objectiveId: input.objectiveId });
    } catch {
      // The dependent has not started yet or has ended; it reads statuses itself when it runs.
    }
  }
  return state;
}

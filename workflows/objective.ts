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
  workflowInfo,
} from '@temporalio/workflow';
import { childVisibility, setStatusAttribute } from './visibility.js';
import { runAsType, type RequestedMachineType } from './auto-type.js';
import type { Activities } from '../activities/index.js';
import type { ObjectiveStatus } from '../domain/objectives.js';
import type { MachineType, ProfileId } from '../domain/machines.js';
import { ResourceClaims } from './coordination.js';
import { machineRun, terminateSignal, type MachineRunResult } from './machine.js';
import { INPUT_ERROR, NOT_FOUND, retryUnless, shortActivity } from './activity-options.js';
import { machineQueue } from '../domain/queues.js';

export interface ObjectiveInput {
  objectiveId: string;
  projectId: string;
  dependsOn: string[];
  /** Start from the checkpoints the dependencies ended with (merged when several), not machine.checkpointId. */
  startFromDependencies?: boolean;
  machine: {
    /** `auto`: each machine's type is picked by the router when it is registered. */
    type: RequestedMachineType;
    command: string;
    prompt?: string | null;
    checkpointId: string;
    profile: ProfileId;
    limits: { money: string; minutes: number };
    heartbeatTimeoutSeconds: number;
  };
  /** Machines to run at most before giving up on the completion criteria (default 1). */
  maxMachines?: number;
}

export interface ObjectiveState {
  status: ObjectiveStatus;
  waitingOn: string[];
  machineId: string | null;
  /** Latest measured progress, 0..1 (objectives started before progress tracking leave it out). */
  progress?: number;
  /** What the objective waits for besides its dependencies (a machine slot, a resource). */
  waitingFor?: string | null;
  /** Machines run so far, oldest first. */
  machines?: string[];
  /** What is still missing after the last measurement. */
  missing?: string[];
}

export const dependencyChangedSignal = defineSignal<[{ objectiveId: string }]>('dependencyChanged');
export const pauseObjectiveSignal = defineSignal<[{ by: string }]>('pause');
export const resumeObjectiveSignal = defineSignal<[{ by: string }]>('resume');
export const cancelObjectiveSignal = defineSignal<[{ by: string }]>('cancel');
/** Adds a dependency while the objective still waits; refused once it has started. */
export const linkObjectiveUpdate = defineUpdate<ObjectiveState, [{ dependsOn: string }]>('link');
export const objectiveStateQuery = defineQuery<ObjectiveState>('state');

const acts = proxyActivities<Activities>(shortActivity());

const evaluation = proxyActivities<Activities>({
  startToCloseTimeout: '10 minutes',
  heartbeatTimeout: '30 seconds',
  retry: retryUnless([NOT_FOUND, INPUT_ERROR]),
});

/**
 * The completion check runs its command in a local sandbox (checkout, run, remove, all in one
 * activity): on the local machine queue, not among the bookkeeping (absent from older histories).
 */
const EVALUATION_ON_MACHINES = 'objective-evaluation-machine-queue';

/** How long to wait for a dependency's signal before looking at its status again (signals can be missed). */
const RECHECK = '30 seconds';

/** An objective: waits until every objective it depends on is complete, then runs its machine. */
export async function objective(input: ObjectiveInput): Promise<ObjectiveState> {
  const state: ObjectiveState = { status: 'waiting', waitingOn: [...input.dependsOn], machineId: null };
  let nudged = false;
  let paused = false;
  let cancelRequested = false;
  const linked: string[] = [];
  const claims = new ResourceClaims();
  setHandler(objectiveStateQuery, () => state);
  setHandler(dependencyChangedSignal, () => {
    nudged = true;
  });
  setHandler(pauseObjectiveSignal, () => {
    if (state.status !== 'waiting') return;
    paused = true;
    // Take the pause at once, not at the next recheck (runs from before wake on their timer, as recorded).
    if (patched('objective-pause-wakes')) nudged = true;
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
        if (state.status !== 'waiting' || cancelRequested)
          throw new Error(`objective ${input.objectiveId} has already started; dependencies can be added only while it waits`);
      },
    },
  );

  let pausedRecorded = false;
  while (state.waitingOn.length || paused) {
    if (cancelRequested) return finish(state, input, 'cancelled');
    if (paused !== pausedRecorded) {
      pausedRecorded = paused;
      setStatusAttribute(paused ? 'paused' : 'waiting');
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

  const dependencies = [...input.dependsOn, ...linked.filter((d) => !input.dependsOn.includes(d))];
  if (patched('objective-scheduled-with-criteria')) return runScheduled();

  state.status = 'running';
  setStatusAttribute('running');
  await acts.markObjective({ objectiveId: input.objectiveId, status: 'running' });
  let from = input.machine.checkpointId;
  if (input.startFromDependencies && dependencies.length && patched('objective-starts-from-dependencies')) from = await dependenciesEnd();
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
    ...childVisibility('machine', { project: input.projectId, machineType: input.machine.type, provider: 'local', status: 'pending' }),
    args: [
      {
        machineId,
        projectId: input.projectId,
        type: input.machine.type as MachineType,
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

  /** Where to build on what the dependencies produced: their final checkpoints, merged when there are several. */
  async function dependenciesEnd(): Promise<string> {
    const ends = await acts.objectiveEndCheckpoints({ ids: dependencies });
    if (ends.length === 0) return input.machine.checkpointId;
    if (ends.length === 1) return ends[0]!;
    const merged = await acts.mergeCheckpoints({
      checkpointId: `checkpoint-${uuid4()}`,
      projectId: input.projectId,
      checkpointIds: ends,
      at: new Date(Date.now()).toISOString(),
      trigger: `objective ${input.objectiveId} starts after`,
    });
    return merged.checkpointId;
  }

  /**
   * Machines one after another, each from where the last one ended, until the completion
   * criteria hold or `maxMachines` ran. Each machine first gets a machine slot (and the
   * objective's named resources) from the project coordinator, which ranks waiting objectives
   * by priority, dependents and cost within the project's concurrent-machine limit and budget.
   */
  async function runScheduled(): Promise<ObjectiveState> {
    state.progress = 0;
    state.machines = [];
    let from = input.startFromDependencies && dependencies.length ? await dependenciesEnd() : input.machine.checkpointId;
    const maxMachines = Math.max(1, input.maxMachines ?? 1);
    let prompt = input.machine.prompt ?? null;
    let lastError = '';
    for (let attempt = 1; attempt <= maxMachines; attempt++) {
      const machineId = `machine-${uuid4()}`;
      const claim = await acts.objectiveClaim({ objectiveId: input.objectiveId, money: input.machine.limits.money });
      let granted = false;
      const acquiring = claims
        .acquire({
          projectId: input.projectId,
          requestId: machineId,
          resources: claim.resources,
          priority: claim.priority,
          dependents: claim.dependents,
          cost: claim.cost,
          label: `objective ${input.objectiveId}`,
          onWait: (resource) => {
            state.waitingFor = resource;
          },
        })
        .then(() => {
          granted = true;
        });
      await condition(() => granted || cancelRequested);
      state.waitingFor = null;
      if (!granted) {
        await claims.release(input.projectId, machineId);
        return finish(state, input, 'cancelled');
      }
      await acquiring;
      if (state.status !== 'running') {
        state.status = 'running';
        setStatusAttribute('running');
        await acts.markObjective({ objectiveId: input.objectiveId, status: 'running' });
      }
      state.machineId = machineId;
      state.machines.push(machineId);
      let result: MachineRunResult;
      try {
        // The project's placement rules pick the provider, spilling over when one is at capacity.
        const place = patched('objective-machines-placed');
        const registered = await acts.registerObjectiveMachine({
          machineId,
          objectiveId: input.objectiveId,
          projectId: input.projectId,
          type: input.machine.type,
          provider: 'local',
          ...(place ? { place: true } : {}),
          profile: input.machine.profile,
          command: input.machine.command,
          prompt,
          parentCheckpointId: from,
          limits: input.machine.limits,
        });
        // type "auto": the type the router chose for this machine (recorded with its row).
        const type = runAsType(input.machine.type, registered);
        void condition(() => cancelRequested)
          .then(() => getExternalWorkflowHandle(machineId).signal(terminateSignal, { by: `objective ${input.objectiveId} cancelled` }))
          .catch(() => undefined);
        result = await executeChild(machineRun, {
          workflowId: machineId,
          ...childVisibility('machine', {
            project: input.projectId,
            machineType: type,
            provider: place ? registered.provider : 'local',
            status: 'pending',
          }),
          args: [
            {
              machineId,
              projectId: input.projectId,
              type,
              command: input.machine.command,
              prompt,
              parentCheckpointId: from,
              profile: input.machine.profile,
              limits: input.machine.limits,
              heartbeatTimeoutSeconds: input.machine.heartbeatTimeoutSeconds,
              ...(place ? { provider: registered.provider, spot: registered.spot } : {}),
              // The project's limit policy, as a direct request has it (older registrations returned nothing).
              ...(registered?.limitPolicy ? { limitPolicy: registered.limitPolicy } : {}),
              // Another try on the same files is asked for a different result, not the cached one.
              ...(attempt > 1 ? { cache: false } : {}),
            },
          ],
        });
      } finally {
        await claims.release(input.projectId, machineId);
      }
      const ended = result.checkpoints.at(-1) ?? from;
      const evaluating = patched(EVALUATION_ON_MACHINES)
        ? proxyActivities<Activities>({
            startToCloseTimeout: '10 minutes',
            heartbeatTimeout: '30 seconds',
            retry: retryUnless([NOT_FOUND, INPUT_ERROR]),
            taskQueue: machineQueue(workflowInfo().taskQueue, 'local'),
          })
        : evaluation;
      const measured = await evaluating.evaluateObjective({
        objectiveId: input.objectiveId,
        machineId,
        checkpointId: ended,
        machineCompleted: result.status === 'completed',
      });
      state.progress = measured.progress;
      state.missing = measured.missing;
      if (measured.complete) return finish(state, input, 'completed');
      if (cancelRequested) return finish(state, input, 'cancelled');
      lastError = `machine ${machineId} ended ${result.status}${result.error ? `: ${result.error}` : ''}`;
      from = ended;
      if (prompt !== null)
        prompt = `${input.machine.prompt ?? ''}\n\nA previous attempt left the work unfinished. Still missing:\n- ${measured.missing.join('\n- ')}`;
    }
    const missing = state.missing?.length ? `; still missing: ${state.missing.join('; ')}` : '';
    return finish(state, input, 'failed', `completion criteria not met after ${maxMachines} machine(s) (${lastError})${missing}`);
  }
}

async function finish(state: ObjectiveState, input: ObjectiveInput, status: ObjectiveStatus, error?: string): Promise<ObjectiveState> {
  state.status = status;
  setStatusAttribute(status);
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

import {
  ActivityFailure,
  CancellationScope,
  condition,
  defineQuery,
  defineSignal,
  defineUpdate,
  isCancellation,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  TimeoutFailure,
  uuid4,
  workflowInfo,
  type ActivityOptions,
} from '@temporalio/workflow';
import { setStatusAttribute } from './visibility.js';
import type { Activities, ReservationOutcome, RunCommandResult } from '../activities/index.js';
import { hasInputs, type ResolvedInputs } from '../domain/artifacts.js';
import { affordableMs, formatAmount, fromNumeric, parseAmount } from '../domain/money.js';
import { PROFILES, STOP_REASONS, type MachineStatus, type MachineType, type ProfileId, type ProviderId } from '../domain/machines.js';
import { INPUT_ERROR, NOT_FOUND, retryUnless, shortActivity, shortLocalActivity } from './activity-options.js';
import { machineQueue } from '../domain/queues.js';

export interface MachineRunInput {
  machineId: string;
  projectId: string;
  type: MachineType;
  /** For `shell` machines. */
  command: string;
  /** For model-backed machines. */
  prompt?: string | null;
  model?: string | null;
  parentCheckpointId: string;
  profile: ProfileId;
  /** Where the machine runs (placement decided by the api); `local` when absent. */
  provider?: ProviderId;
  /** Interruptible capacity, where the provider has it. */
  spot?: boolean;
  limits: { money: string; minutes: number; apiCalls?: number | null };
  /** Seconds without a heartbeat after which a running command is presumed lost and retried. */
  heartbeatTimeoutSeconds: number;
  /** How often a model-backed machine checkpoints its live workspace. */
  checkpointEveryMinutes?: number;
  /** What happens at a limit: stop (default), or pause with a checkpoint and wait for a human. */
  limitPolicy?: { policy: 'stop' | 'pause'; pauseMinutes: number };
  /** Files, conversation histories and artifacts of other machines placed in the workspace before the run. */
  inputs?: ResolvedInputs;
  /** Workspace files kept as the machine's named artifacts after the run; a missing one fails the machine. */
  artifacts?: string[];
  /** Reuse the result of an identical completed machine (same files, type, model, prompt, command, profile). Default true. */
  cache?: boolean;
}

export interface Extension {
  /** More money for the machine (added to its limit, reserved on the budget first). */
  money?: string;
  /** The time limit of the resumed run, in minutes. */
  minutes?: number;
  /** The API-call limit of the resumed run. */
  apiCalls?: number;
  by: string;
}

export interface MachineRunResult {
  status: MachineStatus;
  exitCode: number | null;
  stopReason: string | null;
  error: string | null;
  checkpoints: string[];
  charged: string | null;
  /**
   * The reservation's verdict when the run ended before it provisioned anything (refused, or a
   * result-cache hit): such a run can end in its first workflow task, before the api's reservation
   * update is delivered, and the api then reads the verdict here.
   */
  reservation?: ReservationOutcome;
}

export interface MachineRunState {
  phase: MachineStatus;
  checkpoints: string[];
  stopReason: string | null;
}

/** Limits that, under the pause policy, pause a machine instead of ending it. */
const LIMIT_REASONS: string[] = [STOP_REASONS.timeLimit, STOP_REASONS.moneyLimit, STOP_REASONS.apiCallLimit];
/** Artifact passing (inputs before the run, declared artifacts after it); absent from older histories. */
const ARTIFACT_PASSING = 'artifact-passing';
/** A command stopped at a profile's resource limit fails the machine (older histories: terminated). */
const RESOURCE_LIMIT_FAILS = 'resource-limit-fails';
/** How many times a machine whose instance vanished is re-provisioned before it fails. */
export const MAX_INTERRUPTIONS = 3;
const RESUME_NOTE = 'You were paused at a limit and have been given more; continue the task from the current state of the workspace.';
/** A worker shutting down (a deploy) hands its running machine over: re-provisioned elsewhere, not ended (absent from older histories). */
const WORKER_HANDOVER = 'worker-handover';
/**
 * The short bookkeeping writes (status marks, cache lookup, reserve, settle, release) run as local
 * activities, in the workflow's own task: no activity task and no extra workflow task each
 * (absent from older histories, which replay them as activities). All are idempotent on their keys.
 */
const LOCAL_BOOKKEEPING = 'machine-local-bookkeeping';
/**
 * Status marks that always ran right next to another call go with it: provisioning with the
 * reservation, running with the provisioning, checkpointing with the final checkpoint, the end
 * with the settlement (absent from older histories, which have them as separate marks).
 */
const MERGED_MARKS = 'machine-merged-marks';
/**
 * Machine queues (README "Task queues and workers"): the sandbox is provisioned from its provider's
 * machine queue (`<control queue>-<provider>`), and the run, its checkpoints and the termination go
 * to the queue of the host that provisioned it, where its workspace is. A host that takes none of
 * them within its wait (gone) counts as an interruption: the machine is provisioned again from its
 * latest checkpoint on another host. Absent from older histories: everything on the control queue.
 */
const MACHINE_QUEUES = 'machine-queues';
const HOST_LOST = 'its host stopped taking work';
const HANDOVER_NOTE =
  'Your run was stopped because the computer it ran on was shutting down, and was moved to another one; continue the task from the current state of the workspace.';

export const reservationUpdate = defineUpdate<ReservationOutcome>('reservation');
export const terminateSignal = defineSignal<[{ by: string }]>('terminate');
export const checkpointSignal = defineSignal<[{ by: string }]>('checkpoint');
export const extendSignal = defineSignal<[Extension]>('extend');
export const stateQuery = defineQuery<MachineRunState>('state');

const quick = proxyActivities<Activities>(shortActivity());
const local = proxyLocalActivities<Activities>(shortLocalActivity());

/** An activity that waited on a host's queue and was never taken: the host is gone. */
function hostLost(err: unknown): boolean {
  return err instanceof ActivityFailure && err.cause instanceof TimeoutFailure && err.cause.timeoutType === 'SCHEDULE_TO_START';
}

/**
 * One Intelligent Machine: reserve its money limit → provision a sandbox from the parent
 * checkpoint → run → checkpoint → terminate the sandbox (always) → settle the real cost → audit.
 */
export async function machineRun(input: MachineRunInput): Promise<MachineRunResult> {
  const state: MachineRunState = { phase: 'pending', checkpoints: [], stopReason: null };
  let reservation: ReservationOutcome | undefined;
  let terminateRequested = false;
  let checkpointRequests = 0;
  let runScope: CancellationScope | undefined;

  setHandler(stateQuery, () => state);
  setHandler(reservationUpdate, async () => {
    await condition(() => reservation !== undefined);
    return reservation!;
  });
  setHandler(terminateSignal, () => {
    terminateRequested = true;
    runScope?.cancel();
  });
  setHandler(checkpointSignal, () => {
    checkpointRequests += 1;
  });
  let extension: Extension | undefined;
  setHandler(extendSignal, (e) => {
    if (state.phase === 'paused') extension = e;
  });

  // Before the first command, so a new execution records the marker ahead of everything else.
  const book = patched(LOCAL_BOOKKEEPING) ? local : quick;
  const merged = patched(MERGED_MARKS);
  const queued = patched(MACHINE_QUEUES);
  /** Provisioning: any host serving the provider's machine queue (new executions), else the control queue. */
  const placing = queued
    ? proxyActivities<Activities>({ ...shortActivity(), taskQueue: machineQueue(workflowInfo().taskQueue, input.provider ?? 'local') })
    : quick;
  /** The sandbox's activities: on the host that provisioned it (new executions), else the control queue. */
  let onHost = quick;
  let pinned: Pick<ActivityOptions, 'taskQueue' | 'scheduleToStartTimeout'> = {};
  /** Terminates the sandbox on its host; a host that is gone took its sandbox with it (leaked instances are reclaimed by reconciliation). */
  const terminateOnHost = async (args: Parameters<Activities['terminateSandbox']>[0]) => {
    try {
      await onHost.terminateSandbox(args);
    } catch (err) {
      if (!(queued && hostLost(err))) throw err;
    }
  };
  /** The status a merged call has just written to the machine's row. */
  const phase = (status: MachineStatus) => {
    state.phase = status;
    setStatusAttribute(status);
  };
  const mark = (status: MachineStatus, extra: Omit<Parameters<Activities['markMachine']>[0], 'machineId' | 'status'> = {}) => {
    state.phase = status;
    setStatusAttribute(status);
    return book.markMachine({ machineId: input.machineId, status, ...extra });
  };

  // ---- result cache (patch 'machine-result-cache'): an identical completed run is reused, at zero cost.
  if (patched('machine-result-cache')) {
    const cached = await book.lookupMachineCache({
      machineId: input.machineId,
      projectId: input.projectId,
      type: input.type,
      model: input.model ?? null,
      prompt: input.prompt ?? null,
      command: input.command,
      profile: input.profile,
      parentCheckpointId: input.parentCheckpointId,
      use: input.cache !== false,
      // Files placed at the start and declared artifacts are part of what the machine is asked.
      ...(input.inputs || input.artifacts?.length ? { extra: JSON.stringify({ inputs: input.inputs ?? null, artifacts: input.artifacts ?? [] }) } : {}),
      checkpointId: `checkpoint-${uuid4()}`,
    });
    if (cached.hit) {
      // Nothing was reserved and no sandbox ran; the lookup marked the machine completed.
      reservation = { ok: true, reservationId: `cache:${cached.sourceMachineId}`, amount: '0', currency: cached.currency };
      state.phase = 'completed';
      setStatusAttribute('completed');
      state.checkpoints.push(cached.checkpointId);
      return {
        status: 'completed',
        exitCode: cached.exitCode,
        stopReason: null,
        error: null,
        checkpoints: state.checkpoints,
        charged: '0',
        reservation,
      };
    }
  }
  // ---- end of result cache

  reservation = await book.reserveMachineBudget({
    machineId: input.machineId,
    projectId: input.projectId,
    amount: input.limits.money,
    ...(input.type !== 'shell' ? { type: input.type } : {}),
    ...(merged ? { markStarted: true } : {}),
  });
  if (!reservation.ok) {
    await mark('refused', { error: reservation.message, ended: true });
    return { status: 'refused', exitCode: null, stopReason: null, error: reservation.message, checkpoints: [], charged: null, reservation };
  }
  if (terminateRequested) {
    await book.releaseMachineBudget({ machineId: input.machineId });
    await mark('terminated', { stopReason: STOP_REASONS.terminated, ended: true });
    return { status: 'terminated', exitCode: null, stopReason: STOP_REASONS.terminated, error: null, checkpoints: [], charged: '0' };
  }

  const profile = PROFILES[input.profile];
  const currency = reservation.currency;
  let reservedAmount = parseAmount(reservation.amount, currency);
  // The price in the reservation's currency (converted by the reservation when the profile's is another one).
  const hourlyPrice = reservation.hourlyPrice ?? profile.hourlyPrice;
  const hourlyUnits = reservation.hourlyPrice ? fromNumeric(reservation.hourlyPrice) : parseAmount(profile.hourlyPrice, profile.currency);
  let limits = { ...input.limits };
  const startedAt = Date.now();
  let pausedMs = 0;

  let status: MachineStatus = 'completed';
  let exitCode: number | null = null;
  let error: string | null = null;
  let provisioned = false;
  let lastCheckpoint = input.parentCheckpointId;
  let instance: Awaited<ReturnType<Activities['provisionSandbox']>>['instance'] | undefined;
  let interruptions = 0;
  /** Run time already used by segments that were interrupted: the limits hold across them. */
  let carriedMs = 0;
  /** What an agent is told when its run starts again (after a pause, or after a handover). */
  let resumeNote = RESUME_NOTE;

  const checkpoint = async (kind: 'final' | 'manual' | 'pause', trigger: string, markCheckpointing = false) => {
    const { checkpointId } = await onHost.createCheckpoint({
      checkpointId: `checkpoint-${uuid4()}`,
      machineId: input.machineId,
      projectId: input.projectId,
      parentCheckpointId: lastCheckpoint,
      kind,
      trigger,
      at: new Date(Date.now()).toISOString(),
      ...(markCheckpointing ? { markCheckpointing: true } : {}),
    });
    lastCheckpoint = checkpointId;
    state.checkpoints.push(checkpointId);
  };

  try {
    // Inputs become the machine's start checkpoint, so every retry and later checkpoint has them.
    let prompt = input.prompt ?? '';
    if (hasInputs(input.inputs) && patched(ARTIFACT_PASSING)) {
      const prepared = await quick.prepareInputs({
        machineId: input.machineId,
        projectId: input.projectId,
        parentCheckpointId: lastCheckpoint,
        checkpointId: `checkpoint-${uuid4()}`,
        inputs: input.inputs!,
        at: new Date(Date.now()).toISOString(),
      });
      if (!prepared.ok) throw new Error(prepared.error);
      lastCheckpoint = prepared.checkpointId;
      if (input.type !== 'shell') prompt = `${prompt}\n\n${prepared.note}`;
    }
    for (let segment = 0; ; segment++) {
      const segmentStart = Date.now();
      const timeLimitMs = limits.minutes * 60_000 - carriedMs;
      const moneyLimitMs = affordableMs(reservedAmount, hourlyUnits) - carriedMs;
      const deadline = segmentStart + Math.min(timeLimitMs, moneyLimitMs);
      const deadlineReason = moneyLimitMs < timeLimitMs ? STOP_REASONS.moneyLimit : STOP_REASONS.timeLimit;
      // The first segment's provisioning mark went with the reservation.
      if (merged && segment === 0) phase('provisioning');
      else await mark('provisioning', { started: true });
      const sandbox = await placing.provisionSandbox({
        machineId: input.machineId,
        projectId: input.projectId,
        checkpointId: lastCheckpoint,
        ...(input.provider ? { provider: input.provider, profile: input.profile, spot: input.spot ?? false } : {}),
        ...(merged ? { markRunning: true } : {}),
      });
      instance = sandbox.instance;
      provisioned = true;
      if (queued && sandbox.hostQueue) {
        pinned = { taskQueue: sandbox.hostQueue.queue, scheduleToStartTimeout: sandbox.hostQueue.waitSeconds * 1000 };
        onHost = proxyActivities<Activities>({ ...shortActivity(), ...pinned });
      }
      if (merged) phase('running');
      else await mark('running', { instanceRef: sandbox.instanceRef });

      const { runCommand, runAgent } = proxyActivities<Activities>({
        startToCloseTimeout: Math.max(deadline - Date.now(), 0) + 120_000,
        heartbeatTimeout: input.heartbeatTimeoutSeconds * 1000,
        retry: retryUnless([NOT_FOUND, INPUT_ERROR], { maximumInterval: '10s' }),
        ...pinned,
      });
      runScope = new CancellationScope();
      let runDone = false;
      let interrupted = false;
      let handedOver = false;
      let lostHost = false;
      const run: Promise<RunCommandResult> = runScope.run(async () => {
        if (input.type === 'shell') {
          return runCommand({
            machineId: input.machineId,
            projectId: input.projectId,
            command: input.command,
            baseCommit: sandbox.commit,
            deadline,
            deadlineReason,
            ...(input.provider ? { instance: sandbox.instance } : {}),
          });
        }
        const agent = await runAgent({
          machineId: input.machineId,
          projectId: input.projectId,
          type: input.type,
          prompt: segment === 0 ? prompt : `${prompt}\n\n${resumeNote}`,
          model: input.model ?? null,
          parentCheckpointId: lastCheckpoint,
          deadline,
          deadlineReason,
          computeStartedAt: startedAt + pausedMs,
          segment,
          moneyLimit: formatAmount(reservedAmount, currency),
          apiCallLimit: limits.apiCalls ?? null,
          hourlyPrice,
          checkpointEveryMinutes: input.checkpointEveryMinutes ?? 10,
          ...(input.provider ? { instance: sandbox.instance } : {}),
        });
        // Turn checkpoints were taken during the run; the final one follows them.
        state.checkpoints.push(...agent.checkpoints);
        lastCheckpoint = agent.lastCheckpointId;
        return agent;
      });
      // Checkpoints on request while the command runs; each is taken of the live workspace.
      const onRequest = (async () => {
        let handled = 0;
        for (;;) {
          await condition(() => runDone || checkpointRequests > handled);
          if (runDone) return;
          handled += 1;
          await checkpoint('manual', 'request');
        }
      })().catch(() => undefined); // a failed or cancelled checkpoint on request does not end the machine
      try {
        const result = await run;
        interrupted = result.interrupted === true;
        handedOver = result.handedOver === true;
        exitCode = result.exitCode;
        state.stopReason = result.stopReason;
        if (result.resourceLimit && result.stopReason && patched(RESOURCE_LIMIT_FAILS)) {
          // A fork bomb, a memory hog, a disk filler: the machine failed, and the error names the limit.
          status = 'failed';
          error = result.stopReason;
        } else if (result.stopReason) status = 'terminated';
        else if (result.exitCode !== 0) {
          status = 'failed';
          error = `command exited with code ${result.exitCode}: ${result.outputTail.slice(-500)}`;
        }
      } catch (err) {
        if (queued && !terminateRequested && hostLost(err)) lostHost = true;
        else {
          if (!(terminateRequested && isCancellation(err))) throw err;
          status = 'terminated';
          state.stopReason = STOP_REASONS.terminated;
        }
      } finally {
        runDone = true;
        await onRequest;
      }
      if (handedOver && !terminateRequested && patched(WORKER_HANDOVER)) {
        // Its worker is shutting down and stopped the run (after checkpointing an agent's workspace;
        // recorded as machine.handed_over): go on from the latest checkpoint on another worker, same
        // reservation, same limits. Not an interruption: deploys do not use up the re-provisions.
        carriedMs += Date.now() - segmentStart;
        resumeNote = HANDOVER_NOTE;
        // Its host is shutting down and takes no more work: clean up from wherever can.
        await placing.terminateSandbox({ machineId: input.machineId, projectId: input.projectId, ...(instance ? { instance } : {}) });
        provisioned = false;
        status = 'completed';
        exitCode = null;
        error = null;
        state.stopReason = null;
        continue;
      }
      if (handedOver && terminateRequested) {
        error = null;
        status = 'terminated';
        state.stopReason = STOP_REASONS.terminated;
      }
      resumeNote = RESUME_NOTE;
      if ((interrupted || lostHost) && !terminateRequested && interruptions < MAX_INTERRUPTIONS && patched('reprovision-on-interruption')) {
        // The instance vanished (spot reclaim, removed from outside): go on from the latest checkpoint.
        interruptions += 1;
        carriedMs += Date.now() - segmentStart;
        await quick.recordInterruption({
          machineId: input.machineId,
          projectId: input.projectId,
          attempt: interruptions,
          instanceRef: lostHost ? `${sandbox.instanceRef} (${HOST_LOST}: ${sandbox.hostQueue?.host})` : sandbox.instanceRef,
          checkpointId: lastCheckpoint,
        });
        // A host that is gone took its sandbox with it: waiting for it again would only delay the machine.
        if (!lostHost) await terminateOnHost({ machineId: input.machineId, projectId: input.projectId, ...(instance ? { instance } : {}) });
        provisioned = false;
        status = 'completed';
        exitCode = null;
        state.stopReason = null;
        continue;
      }
      if (interrupted || lostHost) {
        status = 'failed';
        error = `instance interrupted ${interruptions + 1} times; giving up after ${MAX_INTERRUPTIONS} re-provisions`;
      }
      const atLimit = state.stopReason !== null && LIMIT_REASONS.includes(state.stopReason);
      if (!(atLimit && input.limitPolicy?.policy === 'pause' && input.type !== 'shell' && !terminateRequested)) break;

      // Pause and ask: keep the work, free the compute, wait for a human to extend or terminate.
      await checkpoint('pause', state.stopReason!);
      await terminateOnHost({ machineId: input.machineId, projectId: input.projectId });
      carriedMs = 0;
      provisioned = false;
      const pausedAt = Date.now();
      extension = undefined;
      await mark('paused', { stopReason: state.stopReason });
      const answered = await condition(() => extension !== undefined || terminateRequested, input.limitPolicy.pauseMinutes * 60_000);
      pausedMs += Date.now() - pausedAt;
      if (!answered || terminateRequested || !extension) {
        state.stopReason = terminateRequested ? STOP_REASONS.terminated : `${state.stopReason}; not extended within ${input.limitPolicy.pauseMinutes} minutes`;
        status = 'terminated';
        break;
      }
      const ext: Extension = extension;
      if (ext.money) {
        const more = await quick.extendMachineBudget({ machineId: input.machineId, projectId: input.projectId, n: segment + 1, amount: ext.money });
        if (!more.ok) {
          state.stopReason = `extension refused: ${more.message}`;
          status = 'terminated';
          break;
        }
        reservedAmount += parseAmount(more.amount, currency);
      }
      limits = { ...limits, ...(ext.minutes ? { minutes: ext.minutes } : {}), ...(ext.apiCalls ? { apiCalls: ext.apiCalls } : {}) };
      status = 'completed';
      exitCode = null;
      state.stopReason = null;
    }
    if (provisioned) {
      if (merged) phase('checkpointing');
      else await mark('checkpointing');
      await checkpoint('final', state.stopReason ?? 'end', merged);
      if (input.artifacts?.length && patched(ARTIFACT_PASSING)) {
        const kept = await quick.storeDeclaredArtifacts({
          machineId: input.machineId,
          projectId: input.projectId,
          checkpointId: lastCheckpoint,
          paths: input.artifacts,
        });
        if (kept.missing.length && status === 'completed') {
          status = 'failed';
          error = `declared artifacts missing from the final checkpoint: ${kept.missing.join(', ')}`;
        }
      }
    }
  } catch (err) {
    if (isCancellation(err)) {
      status = 'terminated';
      state.stopReason = STOP_REASONS.terminated;
    } else {
      status = 'failed';
      error = err instanceof Error ? err.message : String(err);
    }
  } finally {
    // Compensation: the sandbox never outlives the machine, and the money is always settled.
    await CancellationScope.nonCancellable(async () => {
      if (provisioned) await terminateOnHost({ machineId: input.machineId, projectId: input.projectId, ...(instance ? { instance } : {}) });
    });
  }
  const settled = await CancellationScope.nonCancellable(() =>
    book.settleMachineCost({
      machineId: input.machineId,
      projectId: input.projectId,
      runtimeMs: Date.now() - startedAt - pausedMs,
      hourlyPrice: profile.hourlyPrice,
      priceCurrency: profile.currency,
      profile: input.profile,
      ...(merged ? { end: { status, stopReason: state.stopReason, error, exitCode } } : {}),
    }),
  );
  if (merged) phase(status);
  else await CancellationScope.nonCancellable(() => mark(status, { stopReason: state.stopReason, error, exitCode, ended: true }));
  return { status, exitCode, stopReason: state.stopReason, error, checkpoints: state.checkpoints, charged: settled.charged };
}

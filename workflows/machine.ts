import {
  CancellationScope,
  condition,
  defineQuery,
  defineSignal,
  defineUpdate,
  isCancellation,
  proxyActivities,
  setHandler,
  uuid4,
} from '@temporalio/workflow';
import type { Activities, ReservationOutcome } from '../activities/index.js';
import { affordableMs, formatAmount, fromNumeric, parseAmount } from '../domain/money.js';
import { PROFILES, STOP_REASONS, type MachineStatus, type MachineType, type ProfileId } from '../domain/machines.js';

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
  limits: { money: string; minutes: number; apiCalls?: number | null };
  /** Seconds without a heartbeat after which a running command is presumed lost and retried. */
  heartbeatTimeoutSeconds: number;
  /** How often a model-backed machine checkpoints its live workspace. */
  checkpointEveryMinutes?: number;
  /** What happens at a limit: stop (default), or pause with a checkpoint and wait for a human. */
  limitPolicy?: { policy: 'stop' | 'pause'; pauseMinutes: number };
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
}

export interface MachineRunState {
  phase: MachineStatus;
  checkpoints: string[];
  stopReason: string | null;
}

/** Limits that, under the pause policy, pause a machine instead of ending it. */
const LIMIT_REASONS: string[] = [STOP_REASONS.timeLimit, STOP_REASONS.moneyLimit, STOP_REASONS.apiCallLimit];
const RESUME_NOTE = 'You were paused at a limit and have been given more; continue the task from the current state of the workspace.';

export const reservationUpdate = defineUpdate<ReservationOutcome>('reservation');
export const terminateSignal = defineSignal<[{ by: string }]>('terminate');
export const checkpointSignal = defineSignal<[{ by: string }]>('checkpoint');
export const extendSignal = defineSignal<[Extension]>('extend');
export const stateQuery = defineQuery<MachineRunState>('state');

const quick = proxyActivities<Activities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1s', maximumInterval: '30s', nonRetryableErrorTypes: ['NotFoundError', 'InputError'] },
});

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

  const mark = (status: MachineStatus, extra: Omit<Parameters<Activities['markMachine']>[0], 'machineId' | 'status'> = {}) => {
    state.phase = status;
    return quick.markMachine({ machineId: input.machineId, status, ...extra });
  };

  reservation = await quick.reserveMachineBudget({
    machineId: input.machineId,
    projectId: input.projectId,
    amount: input.limits.money,
    ...(input.type !== 'shell' ? { type: input.type } : {}),
  });
  if (!reservation.ok) {
    await mark('refused', { error: reservation.message, ended: true });
    return { status: 'refused', exitCode: null, stopReason: null, error: reservation.message, checkpoints: [], charged: null };
  }
  if (terminateRequested) {
    await quick.releaseMachineBudget({ machineId: input.machineId });
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

  const checkpoint = async (kind: 'final' | 'manual' | 'pause', trigger: string) => {
    const { checkpointId } = await quick.createCheckpoint({
      checkpointId: `checkpoint-${uuid4()}`,
      machineId: input.machineId,
      projectId: input.projectId,
      parentCheckpointId: lastCheckpoint,
      kind,
      trigger,
      at: new Date(Date.now()).toISOString(),
    });
    lastCheckpoint = checkpointId;
    state.checkpoints.push(checkpointId);
  };

  try {
   for (let segment = 0; ; segment++) {
    const segmentStart = Date.now();
    const timeLimitMs = limits.minutes * 60_000;
    const moneyLimitMs = affordableMs(reservedAmount, hourlyUnits);
    const deadline = segmentStart + Math.min(timeLimitMs, moneyLimitMs);
    const deadlineReason = moneyLimitMs < timeLimitMs ? STOP_REASONS.moneyLimit : STOP_REASONS.timeLimit;
    await mark('provisioning', { started: true });
    const sandbox = await quick.provisionSandbox({
      machineId: input.machineId,
      projectId: input.projectId,
      checkpointId: lastCheckpoint,
    });
    provisioned = true;
    await mark('running', { instanceRef: sandbox.instanceRef });

    const { runCommand, runAgent } = proxyActivities<Activities>({
      startToCloseTimeout: Math.max(deadline - Date.now(), 0) + 120_000,
      heartbeatTimeout: input.heartbeatTimeoutSeconds * 1000,
      retry: { initialInterval: '1s', maximumInterval: '10s', nonRetryableErrorTypes: ['NotFoundError', 'InputError'] },
    });
    runScope = new CancellationScope();
    let runDone = false;
    const run: Promise<{ exitCode: number | null; stopReason: string | null; outputTail: string }> = runScope.run(async () => {
      if (input.type === 'shell') {
        return runCommand({
          machineId: input.machineId,
          projectId: input.projectId,
          command: input.command,
          baseCommit: sandbox.commit,
          deadline,
          deadlineReason,
        });
      }
      const agent = await runAgent({
        machineId: input.machineId,
        projectId: input.projectId,
        type: input.type,
        prompt: segment === 0 ? (input.prompt ?? '') : `${input.prompt ?? ''}\n\n${RESUME_NOTE}`,
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
      exitCode = result.exitCode;
      state.stopReason = result.stopReason;
      if (result.stopReason) status = 'terminated';
      else if (result.exitCode !== 0) {
        status = 'failed';
        error = `command exited with code ${result.exitCode}: ${result.outputTail.slice(-500)}`;
      }
    } catch (err) {
      if (!(terminateRequested && isCancellation(err))) throw err;
      status = 'terminated';
      state.stopReason = STOP_REASONS.terminated;
    } finally {
      runDone = true;
      await onRequest;
    }
    const atLimit = state.stopReason !== null && LIMIT_REASONS.includes(state.stopReason);
    if (!(atLimit && input.limitPolicy?.policy === 'pause' && input.type !== 'shell' && !terminateRequested)) break;

    // Pause and ask: keep the work, free the compute, wait for a human to extend or terminate.
    await checkpoint('pause', state.stopReason!);
    await quick.terminateSandbox({ machineId: input.machineId, projectId: input.projectId });
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
      await mark('checkpointing');
      await checkpoint('final', state.stopReason ?? 'end');
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
      if (provisioned) await quick.terminateSandbox({ machineId: input.machineId, projectId: input.projectId });
    });
  }
  const settled = await CancellationScope.nonCancellable(() =>
    quick.settleMachineCost({
      machineId: input.machineId,
      projectId: input.projectId,
      runtimeMs: Date.now() - startedAt - pausedMs,
      hourlyPrice: profile.hourlyPrice,
      priceCurrency: profile.currency,
      profile: input.profile,
    }),
  );
  await CancellationScope.nonCancellable(() => mark(status, { stopReason: state.stopReason, error, exitCode, ended: true }));
  return { status, exitCode, stopReason: state.stopReason, error, checkpoints: state.checkpoints, charged: settled.charged };
}

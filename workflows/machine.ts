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
import { affordableMs, parseAmount } from '../domain/money.js';
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

export const reservationUpdate = defineUpdate<ReservationOutcome>('reservation');
export const terminateSignal = defineSignal<[{ by: string }]>('terminate');
export const checkpointSignal = defineSignal<[{ by: string }]>('checkpoint');
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
  const reservedAmount = parseAmount(reservation.amount, reservation.currency);
  const timeLimitMs = input.limits.minutes * 60_000;
  const moneyLimitMs = affordableMs(reservedAmount, parseAmount(profile.hourlyPrice, profile.currency));
  const startedAt = Date.now();
  const deadline = startedAt + Math.min(timeLimitMs, moneyLimitMs);
  const deadlineReason = moneyLimitMs < timeLimitMs ? STOP_REASONS.moneyLimit : STOP_REASONS.timeLimit;

  let status: MachineStatus = 'completed';
  let exitCode: number | null = null;
  let error: string | null = null;
  let provisioned = false;
  let lastCheckpoint = input.parentCheckpointId;

  const checkpoint = async (kind: 'final' | 'manual', trigger: string) => {
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
    await mark('provisioning', { started: true });
    const sandbox = await quick.provisionSandbox({
      machineId: input.machineId,
      projectId: input.projectId,
      checkpointId: input.parentCheckpointId,
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
        prompt: input.prompt ?? '',
        model: input.model ?? null,
        parentCheckpointId: input.parentCheckpointId,
        deadline,
        deadlineReason,
        computeStartedAt: startedAt,
        moneyLimit: reservation.ok ? reservation.amount : '0',
        apiCallLimit: input.limits.apiCalls ?? null,
        hourlyPrice: profile.hourlyPrice,
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
    })();
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
    await mark('checkpointing');
    await checkpoint('final', state.stopReason ?? 'end');
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
      runtimeMs: Date.now() - startedAt,
      hourlyPrice: profile.hourlyPrice,
      priceCurrency: profile.currency,
      profile: input.profile,
    }),
  );
  await CancellationScope.nonCancellable(() => mark(status, { stopReason: state.stopReason, error, exitCode, ended: true }));
  return { status, exitCode, stopReason: state.stopReason, error, checkpoints: state.checkpoints, charged: settled.charged };
}

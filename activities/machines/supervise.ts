import fs from 'node:fs';
import path from 'node:path';
import { Context } from '@temporalio/activity';
import { CancelledFailure } from '@temporalio/common';
import { STOP_REASONS } from '../../domain/machines.js';
import { startSandbox, type SandboxSpec } from '../compute/local-sandbox.js';
import type { ComputeProvider, Instance, Mount } from '../compute/provider.js';
import type { ResourceUsage } from '../compute/resource-limits.js';
import type { LogSink } from './log-sink.js';

export interface SupervisedResult {
  exitCode: number | null;
  stopReason: string | null;
  /** The command was stopped at a resource limit of its profile (`stopReason` names it): the machine fails. */
  resourceLimit?: true;
  outputTail: string;
  stdout: string;
  /**
   * The worker is shutting down (a deploy): the command was stopped so the machine can go on
   * elsewhere from a checkpoint, instead of the activity failing as cancelled.
   */
  handedOver?: true;
}

const OUTPUT_TAIL_BYTES = 4096;

/**
 * Whether the activity was cancelled because its worker is shutting down (SIGTERM/SIGINT or
 * `Worker.shutdown()`), not because the workflow asked or the server timed it out.
 */
export function cancelledByWorkerShutdown(ctx: Context): boolean {
  if (!ctx.cancellationSignal.aborted) return false;
  if (ctx.cancellationDetails?.workerShutdown) return true;
  const reason: unknown = ctx.cancellationSignal.reason;
  return reason instanceof CancelledFailure && reason.message === 'WORKER_SHUTDOWN';
}

/**
 * Runs a sandbox to its end under the activity's eye: its output goes to the machine's log,
 * a heartbeat goes out every second (carrying `progress()`), and it is killed at `deadline`,
 * when `stopRequested()` names a reason, or when the activity is cancelled.
 */
export async function superviseSandbox(
  spec: SandboxSpec,
  opts: {
    logFile: string;
    /** The machine's log in the database (what GET /v1/machines/:id/logs reads), besides the local file. */
    sink?: LogSink;
    deadline: number;
    deadlineReason: string;
    keepStdout?: boolean;
    progress?: () => unknown;
    stopRequested?: () => string | null;
  },
): Promise<SupervisedResult> {
  const ctx = Context.current();
  fs.mkdirSync(path.dirname(opts.logFile), { recursive: true });
  const log = fs.createWriteStream(opts.logFile, { flags: 'a' });
  const sandbox = startSandbox(spec);
  const child = sandbox.child;
  let tail = Buffer.alloc(0);
  const stdoutChunks: Buffer[] = [];
  let bytes = 0;
  const collect = (isStdout: boolean) => (chunk: Buffer) => {
    log.write(chunk);
    opts.sink?.write(isStdout ? 'stdout' : 'stderr', chunk);
    bytes += chunk.length;
    if (isStdout && opts.keepStdout) stdoutChunks.push(chunk);
    tail = Buffer.concat([tail, chunk]).subarray(-OUTPUT_TAIL_BYTES);
  };
  child.stdout!.on('data', collect(true));
  child.stderr!.on('data', collect(false));
  const exited = new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve(code));
  });

  let stopReason: string | null = null;
  const stop = (reason: string) => {
    if (stopReason !== null) return;
    stopReason = reason;
    sandbox.kill();
  };
  const timer = setInterval(() => {
    ctx.heartbeat({ outputBytes: bytes, ...((opts.progress?.() as object) ?? {}) });
    if (Date.now() >= opts.deadline) stop(opts.deadlineReason);
    const requested = opts.stopRequested?.();
    if (requested) stop(requested);
  }, 1000);
  const onCancel = () => sandbox.kill();
  ctx.cancellationSignal.addEventListener('abort', onCancel);
  // Cancelled before the sandbox started (e.g. the worker began shutting down meanwhile): no event comes.
  if (ctx.cancellationSignal.aborted) onCancel();
  try {
    const code = await exited;
    if (cancelledByWorkerShutdown(ctx)) {
      return { exitCode: null, stopReason: null, outputTail: tail.toString('utf8'), stdout: Buffer.concat(stdoutChunks).toString('utf8'), handedOver: true };
    }
    if (ctx.cancellationSignal.aborted) throw new CancelledFailure('machine run cancelled');
    const requested = stopReason ?? opts.stopRequested?.() ?? null;
    return {
      exitCode: stopReason ? null : code,
      stopReason: requested,
      outputTail: tail.toString('utf8'),
      stdout: Buffer.concat(stdoutChunks).toString('utf8'),
    };
  } finally {
    clearInterval(timer);
    ctx.cancellationSignal.removeEventListener('abort', onCancel);
    sandbox.release();
    log.end();
  }
}

/**
 * Runs one command on a provider's instance under the activity's eye, like `superviseSandbox`:
 * output to the machine's log, a heartbeat every second (carrying `progress()`), stopped at
 * `deadline`, when `stopRequested()` names a reason, or on cancellation.
 * `interrupted` is true when the instance vanished under the command (killed or removed outside).
 */
export async function superviseExec(
  provider: ComputeProvider,
  instance: Instance,
  request: { command: string | string[]; network: boolean; env?: Record<string, string>; mounts?: Mount[] },
  opts: {
    logFile: string;
    /** The machine's log in the database (what GET /v1/machines/:id/logs reads), besides the local file. */
    sink?: LogSink;
    deadline: number;
    deadlineReason: string;
    keepStdout?: boolean;
    progress?: () => unknown;
    stopRequested?: () => string | null;
    /** What the sandbox uses, as the provider's limit watch measures it. */
    onResources?: (usage: ResourceUsage) => void;
  },
): Promise<SupervisedResult & { interrupted: boolean }> {
  const ctx = Context.current();
  fs.mkdirSync(path.dirname(opts.logFile), { recursive: true });
  const log = fs.createWriteStream(opts.logFile, { flags: 'a' });
  let tail = Buffer.alloc(0);
  let bytes = 0;
  const stdoutChunks: Buffer[] = [];
  // Stopped by the activity's cancellation or by a reason of the caller's (limits the caller meters).
  const stopper = new AbortController();
  let requested: string | null = null;
  const timer = setInterval(() => {
    ctx.heartbeat({ outputBytes: bytes, ...((opts.progress?.() as object) ?? {}) });
    const reason = requested === null ? (opts.stopRequested?.() ?? null) : null;
    if (reason) {
      requested = reason;
      stopper.abort();
    }
  }, 1000);
  try {
    const result = await provider.exec(instance, {
      ...request,
      deadline: opts.deadline,
      signal: AbortSignal.any([ctx.cancellationSignal, stopper.signal]),
      ...(opts.onResources ? { onResources: opts.onResources } : {}),
      onOutput: (chunk, stream) => {
        log.write(chunk);
        opts.sink?.write(stream === 'stdout' ? 'stdout' : 'stderr', chunk);
        bytes += chunk.length;
        if (stream === 'stdout' && opts.keepStdout) stdoutChunks.push(chunk);
        tail = Buffer.concat([tail, chunk]).subarray(-OUTPUT_TAIL_BYTES);
      },
    });
    if (cancelledByWorkerShutdown(ctx)) {
      return {
        exitCode: null,
        stopReason: null,
        outputTail: tail.toString('utf8'),
        stdout: Buffer.concat(stdoutChunks).toString('utf8'),
        interrupted: false,
        handedOver: true,
      };
    }
    if (ctx.cancellationSignal.aborted) throw new CancelledFailure('machine run cancelled');
    const stopReason =
      result.stopReason === 'limit'
        ? (result.limit ?? 'resource limit exceeded')
        : (requested ??
          (result.stopReason === 'deadline'
            ? opts.deadlineReason
            : result.stopReason === 'interrupted'
              ? STOP_REASONS.interrupted
              : (result.stopReason ?? opts.stopRequested?.() ?? null)));
    return {
      exitCode: result.exitCode,
      stopReason,
      ...(result.stopReason === 'limit' ? { resourceLimit: true as const } : {}),
      outputTail: tail.toString('utf8'),
      stdout: Buffer.concat(stdoutChunks).toString('utf8'),
      interrupted: result.stopReason === 'interrupted',
    };
  } finally {
    clearInterval(timer);
    log.end();
  }
}

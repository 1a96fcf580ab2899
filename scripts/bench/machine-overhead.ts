/**
 * Overhead of the platform around a machine: the time from POST /v1/machines until the sandbox
 * runs the command, over 20 machines one after another and 20 started at once.
 *
 * The client notes the wall clock (t0) just before each POST. The command, `date +%s%N > t.txt`,
 * writes the wall clock inside the sandbox (bubblewrap does not unshare the clock, so it is the
 * host's); the file comes back through the machine's final checkpoint, and sandbox time - t0
 * is the overhead. Along the way the 202 response, machines.started_at (stamped when
 * provisioning begins, after the budget reservation) and machines.ended_at (after the final
 * checkpoint, sandbox teardown and cost settlement) break it down.
 *
 * Side by side, a bare Temporal workflow with one activity (scripts/bench/workflows/bare-machine.ts:
 * provision, run the same command, tear down, with the same activity code) started with the
 * Temporal client directly, in its own worker and task queue in this process: its t0 is just
 * before the workflow start. Platform and bare machines alternate, so both see the same load.
 *
 * Real PostgreSQL, one Temporal dev server, the platform (api + worker) in this process.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { NativeConnection, Worker } from '@temporalio/worker';
import { createActivities } from '../../activities/index.js';
import { bundleWorkflows } from '../../workers/worker.js';
import { startBenchPlatform, type BenchPlatform } from './bench-platform.js';
import { sleep, stopAll, summarize, type BenchOptions, type BenchOutput, type Row } from './common.js';
import type { BareMachineActivities, BareMachineInput } from './workflows/bare-machine.js';

const BARE_WORKFLOWS = fileURLToPath(new URL('./workflows/bare-machine.ts', import.meta.url));

const COMMAND = 'date +%s%N > t.txt';
const FINAL_STATUSES = ['completed', 'failed', 'terminated', 'refused'];
const MACHINE_TIMEOUT_MS = 120_000;

interface Sample {
  machineId: string;
  /** Milliseconds after t0 (the client's wall clock just before POST). */
  response202: number;
  startedAt: number;
  commandRunning: number;
  endedAt: number;
}

export async function machineOverhead(opts: BenchOptions): Promise<BenchOutput> {
  const runs = opts.quick ? 5 : 20;
  const warmups = opts.quick ? 1 : 2;
  let bench: BenchPlatform | undefined;
  let bareWorker: Worker | undefined;
  let bareRunning: Promise<void> | undefined;
  let bareConnection: NativeConnection | undefined;
  try {
    const [benchStarted, bareBundle] = await Promise.allSettled([startBenchPlatform(opts, { label: 'machines' }), bundleWorkflows(BARE_WORKFLOWS)]);
    if (benchStarted.status === 'fulfilled') bench = benchStarted.value;
    for (const r of [benchStarted, bareBundle]) if (r.status === 'rejected') throw r.reason;
    if (!bench || bareBundle.status !== 'fulfilled') throw new Error('unreachable');
    const { api, config, projectId } = bench;
    const db = bench.platform.db;
    const client = bench.platform.temporal;

    // The bare side: one activity doing provision → run → tear down with the platform's activity code.
    const acts = createActivities({ db, config, log: bench.platform.log, temporal: client });
    const bareActivities: BareMachineActivities = {
      async bareMachineRun(input) {
        const ids = { machineId: input.machineId, projectId: input.projectId };
        const sandbox = await acts.provisionSandbox({ ...ids, checkpointId: input.checkpointId });
        try {
          const r = await acts.runCommand({
            ...ids,
            command: input.command,
            baseCommit: sandbox.commit,
            deadline: Date.now() + 60_000,
            deadlineReason: 'time limit',
          });
          const file = await fs.promises.readFile(path.join(sandbox.workspace, input.readFile), 'utf8').catch(() => null);
          return { exitCode: r.exitCode, file };
        } finally {
          await acts.terminateSandbox(ids);
        }
      },
    };
    const bareQueue = `bench-bare-machine-${crypto.randomBytes(4).toString('hex')}`;
    bareConnection = await NativeConnection.connect({ address: bench.temporalAddress });
    bareWorker = await Worker.create({
      connection: bareConnection,
      taskQueue: bareQueue,
      workflowBundle: bareBundle.value,
      activities: bareActivities,
      maxConcurrentActivityTaskExecutions: 100,
    });
    bareRunning = bareWorker.run();
    /** One bare machine: ms from just before the workflow start to the command running in its sandbox. */
    const bareOne = async (): Promise<number> => {
      const input: BareMachineInput = {
        machineId: `bare-${crypto.randomBytes(6).toString('hex')}`,
        projectId,
        checkpointId: bench!.rootCheckpointId,
        command: COMMAND,
        readFile: 't.txt',
      };
      const t0 = Date.now();
      const out = await client.workflow.execute('bareMachine', { taskQueue: bareQueue, workflowId: input.machineId, args: [input] });
      const { exitCode, file } = out as { exitCode: number | null; file: string | null };
      const text = String(file ?? '').trim();
      if (exitCode !== 0 || !/^\d{19}$/.test(text)) throw new Error(`bare machine ${input.machineId}: exit ${exitCode}, t.txt ${JSON.stringify(file)}`);
      return Number(BigInt(text) - BigInt(t0) * 1_000_000n) / 1e6;
    };

    /** Starts one machine; returns its id, t0 and when the 202 arrived (epoch ms). */
    const start = async (): Promise<{ id: string; t0: number; t202: number }> => {
      const t0 = Date.now();
      const res = await api('POST', '/v1/machines', { projectId, type: 'shell', command: COMMAND, limits: { money: '0.01' } });
      const t202 = Date.now();
      if (res.status !== 202) throw new Error(`POST /v1/machines: ${res.status} ${JSON.stringify(res.body)}`);
      return { id: res.body.id, t0, t202 };
    };

    /** Polls the machines table (one query for all) until every machine has ended. */
    const waitForEnd = async (ids: string[], pollMs: number): Promise<Map<string, { status: string; startedAt: Date | null; endedAt: Date | null }>> => {
      const deadline = Date.now() + MACHINE_TIMEOUT_MS;
      for (;;) {
        const rows: Array<{ id: string; status: string; started_at: Date | null; ended_at: Date | null }> = await db('machines')
          .whereIn('id', ids)
          .select('id', 'status', 'started_at', 'ended_at');
        if (rows.length === ids.length && rows.every((r) => FINAL_STATUSES.includes(r.status) && r.ended_at)) {
          return new Map(rows.map((r) => [r.id, { status: r.status, startedAt: r.started_at, endedAt: r.ended_at }]));
        }
        if (Date.now() > deadline) {
          const pending = rows.filter((r) => !FINAL_STATUSES.includes(r.status)).map((r) => `${r.id} (${r.status})`);
          throw new Error(`machines still running after ${MACHINE_TIMEOUT_MS / 1000}s: ${pending.join(', ')}`);
        }
        await sleep(pollMs);
      }
    };

    /** Reads the sandbox's clock from the final checkpoint and turns it into a sample. */
    const sampleOf = async (
      started: { id: string; t0: number; t202: number },
      row: { status: string; startedAt: Date | null; endedAt: Date | null },
    ): Promise<Sample> => {
      const m = await api('GET', `/v1/machines/${started.id}`);
      if (row.status !== 'completed') {
        const logFile = path.join(config.home, 'logs', `${started.id}.log`);
        const tail = fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8').slice(-500) : '(no log)';
        throw new Error(`machine ${started.id} ended ${row.status}: ${m.body.error ?? ''}\nsandbox log: ${tail}`);
      }
      const checkpoint: string | undefined = m.body.checkpoints?.at(-1);
      if (!checkpoint) throw new Error(`machine ${started.id} completed without a checkpoint`);
      const file = await api('GET', `/v1/checkpoints/${checkpoint}/files/t.txt`);
      const text = String(file.body).trim();
      if (file.status !== 200 || !/^\d{19}$/.test(text)) {
        throw new Error(`t.txt of checkpoint ${checkpoint}: ${file.status} ${JSON.stringify(file.body)}`);
      }
      const sandboxNs = BigInt(text);
      const t0Ns = BigInt(started.t0) * 1_000_000n;
      return {
        machineId: started.id,
        response202: started.t202 - started.t0,
        startedAt: (row.startedAt?.getTime() ?? Number.NaN) - started.t0,
        commandRunning: Number(sandboxNs - t0Ns) / 1e6,
        endedAt: (row.endedAt?.getTime() ?? Number.NaN) - started.t0,
      };
    };

    const one = async (): Promise<Sample> => {
      const started = await start();
      const rows = await waitForEnd([started.id], 25);
      return sampleOf(started, rows.get(started.id)!);
    };

    opts.log(`${warmups} warm-up machine(s) and bare workflow(s), not counted`);
    const warm: Sample[] = [];
    for (let i = 0; i < warmups; i++) {
      warm.push(await one());
      await bareOne();
    }

    opts.log(`${runs} machines one after another, each followed by a bare one-activity workflow`);
    const sequential: Sample[] = [];
    const bare: number[] = [];
    for (let i = 0; i < runs; i++) {
      sequential.push(await one());
      bare.push(await bareOne());
    }

    opts.log(`${runs} machines at once`);
    const batchT0 = Date.now();
    const started = await Promise.all(Array.from({ length: runs }, () => start()));
    const rows = await waitForEnd(
      started.map((s) => s.id),
      100,
    );
    const concurrent = await Promise.all(started.map((s) => sampleOf(s, rows.get(s.id)!)));
    const lastEnd = Math.max(...[...rows.values()].map((r) => r.endedAt?.getTime() ?? Number.NaN));

    const ms = (label: string, samples: Sample[], pick: (s: Sample) => number): Row => ({ label, unit: 'ms', stats: summarize(samples.map(pick)) });
    const seq = `${runs} sequential`;
    const con = `${runs} concurrent`;
    return {
      rows: [
        ms(`POST → command running, ${seq}`, sequential, (s) => s.commandRunning),
        { label: `bare one-activity workflow: start → command running, ${seq}`, unit: 'ms', stats: summarize(bare) },
        {
          label: `POST → command running against bare, ${seq} (medians)`,
          unit: '×',
          value: summarize(sequential.map((s) => s.commandRunning)).median / summarize(bare).median,
          decimals: 2,
        },
        ms(`POST → command running, ${con}`, concurrent, (s) => s.commandRunning),
        ms(`  POST → 202 response, ${seq}`, sequential, (s) => s.response202),
        ms(`  POST → 202 response, ${con}`, concurrent, (s) => s.response202),
        ms(`  POST → started_at (provisioning), ${seq}`, sequential, (s) => s.startedAt),
        ms(`  POST → started_at (provisioning), ${con}`, concurrent, (s) => s.startedAt),
        ms(`  POST → ended_at (completed), ${seq}`, sequential, (s) => s.endedAt),
        ms(`  POST → ended_at (completed), ${con}`, concurrent, (s) => s.endedAt),
        { label: `  first POST → last ended_at, ${con}`, unit: 'ms', value: lastEnd - batchT0 },
      ],
      notes: [
        `machine-overhead: command \`${COMMAND}\`; t0 is the client's wall clock (ms) just before POST; ` +
          `${warmups} warm-up machine(s) not counted; percentiles interpolate between ranks.`,
      ],
      details: {
        runs,
        warmups,
        command: COMMAND,
        samples: { warmup: warm, sequential, concurrent, bare },
      },
    };
  } finally {
    await stopAll(
      [
        [
          'bare worker',
          bareWorker &&
            (async () => {
              if (bareWorker!.getState() === 'RUNNING') bareWorker!.shutdown();
              await bareRunning;
            }),
        ],
        ['bare connection', bareConnection && (() => bareConnection!.close())],
      ],
      opts.log,
    );
    await bench?.stop();
  }
}

/**
 * Throughput of a 100-step pipeline of trivial `shell` steps (`true`), and the platform's overhead
 * per step against a bare Temporal workflow that runs the same activities.
 *
 * Platform: POST /v1/pipelines, end to end (validation, pipeline and step rows, one child
 * machineRun workflow per step with its machine row, cache lookup, budget reservation, status
 * marks, audit, settlement). The time is from just before the POST to the pipeline's ended_at.
 * Two shapes: a chain of 100, and 10 chains of 10 side by side (wide). Both with `cache: false`
 * on every step, so every step runs; then the chain again with the cache on, where every step is
 * a hit (`true` changes no file, so each step's input equals the first run's).
 *
 * Bare: scripts/bench/workflows/bare-pipeline.ts in its own worker and task queue, with the same
 * activity implementations (provision, run, checkpoint, terminate; and a variant that also
 * reserves and settles on the ledger), started with the Temporal client directly.
 *
 * Per-step overhead = (platform total - bare total) / steps. Real PostgreSQL, one Temporal dev
 * server, bubblewrap sandboxes, the platform (api + worker) in this process.
 */
import crypto from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { NativeConnection, Worker } from '@temporalio/worker';
import { createActivities } from '../../activities/index.js';
import { PROFILES } from '../../domain/machines.js';
import { bundleWorkflows } from '../../workers/worker.js';
import { startBenchPlatform, type BenchPlatform } from './bench-platform.js';
import { sleep, stopAll, summarize, type BenchOptions, type BenchOutput, type Row } from './common.js';
import { profileRows, profileWorkflows } from './history-profile.js';
import type { BarePipelineInput } from './workflows/bare-pipeline.js';

const BARE_WORKFLOWS = fileURLToPath(new URL('./workflows/bare-pipeline.ts', import.meta.url));
const COMMAND = 'true';
const STEP_MONEY = '0.01';
const PIPELINE_TIMEOUT_MS = 30 * 60_000;

interface PlatformRun {
  label: string;
  steps: number;
  totalMs: number;
  /** Each step's machine time (started → ended) and, along a chain, the gap before it started. */
  stepMs: number[];
  gapMs: number[];
  cacheHits: number;
  pipelineId: string;
  machineIds: string[];
}

export async function pipelineThroughput(opts: BenchOptions): Promise<BenchOutput> {
  const length = opts.quick ? 20 : 100;
  const wide = opts.quick ? { chains: 4, length: 5 } : { chains: 10, length: 10 };
  let bench: BenchPlatform | undefined;
  let bareWorker: Worker | undefined;
  let bareRunning: Promise<void> | undefined;
  let bareConnection: NativeConnection | undefined;
  try {
    const [started, bareBundle] = await Promise.allSettled([startBenchPlatform(opts, { label: 'pipeline' }), bundleWorkflows(BARE_WORKFLOWS)]);
    if (started.status === 'fulfilled') bench = started.value;
    for (const r of [started, bareBundle]) if (r.status === 'rejected') throw r.reason;
    if (!bench || bareBundle.status !== 'fulfilled') throw new Error('unreachable');
    const { platform, config, api, projectId } = bench;
    const root = bench.rootCheckpointId;
    const { db } = platform;
    const client = platform.temporal;

    // The bare worker: same activities, same process, its own task queue and workflow.
    const bareQueue = `bench-bare-${crypto.randomBytes(4).toString('hex')}`;
    bareConnection = await NativeConnection.connect({ address: bench.temporalAddress });
    bareWorker = await Worker.create({
      connection: bareConnection,
      taskQueue: bareQueue,
      workflowBundle: bareBundle.value,
      activities: createActivities({ db, config, log: platform.log, temporal: client }),
      maxConcurrentActivityTaskExecutions: 100,
    });
    bareRunning = bareWorker.run();

    /** `chains` chains of `len` steps; `stepId(c, k)` depends on `stepId(c, k - 1)`. */
    const dag = (chains: number, len: number, cache: boolean) =>
      Array.from({ length: chains }, (_, c) =>
        Array.from({ length: len }, (_, k) => ({
          id: `c${c}-s${k}`,
          type: 'shell',
          command: COMMAND,
          dependsOn: k ? [`c${c}-s${k - 1}`] : [],
          limits: { money: STEP_MONEY, minutes: 5 },
          ...(cache ? {} : { cache: false }),
        })),
      ).flat();

    const runPlatform = async (label: string, chains: number, len: number, cache: boolean): Promise<PlatformRun> => {
      const steps = dag(chains, len, cache);
      const t0 = Date.now();
      const res = await api('POST', '/v1/pipelines', { projectId, checkpointId: root, steps });
      if (res.status !== 202) throw new Error(`POST /v1/pipelines: ${res.status} ${JSON.stringify(res.body)}`);
      const id: string = res.body.id;
      const deadline = Date.now() + PIPELINE_TIMEOUT_MS;
      let row: { status: string; ended_at: Date | null; error: string | null };
      for (;;) {
        row = await db('pipelines').where({ id }).first('status', 'ended_at', 'error');
        if (row.status !== 'running' && row.ended_at) break;
        if (Date.now() > deadline) throw new Error(`pipeline ${id} still running after ${PIPELINE_TIMEOUT_MS / 1000}s`);
        await sleep(100);
      }
      if (row.status !== 'completed') throw new Error(`pipeline ${id} ended ${row.status}: ${row.error}`);
      const rows: Array<{ step_id: string; machine_id: string; started_at: Date; ended_at: Date }> = await db('pipeline_steps')
        .where({ pipeline_id: id })
        .select('step_id', 'machine_id', 'started_at', 'ended_at');
      const by = new Map(rows.map((r) => [r.step_id, r]));
      const stepMs = rows.map((r) => r.ended_at.getTime() - r.started_at.getTime());
      const gapMs = steps.filter((s) => s.dependsOn.length).map((s) => by.get(s.id)!.started_at.getTime() - by.get(s.dependsOn[0]!)!.ended_at.getTime());
      const hits = await db('machine_cache')
        .whereIn(
          'machine_id',
          rows.map((r) => r.machine_id),
        )
        .where({ outcome: 'hit' })
        .count({ n: '*' });
      const run = {
        label,
        steps: steps.length,
        totalMs: row.ended_at!.getTime() - t0,
        stepMs,
        gapMs,
        cacheHits: Number(hits[0]!.n),
        pipelineId: id,
        machineIds: rows.map((r) => r.machine_id),
      };
      opts.log(`${label}: ${run.steps} steps in ${(run.totalMs / 1000).toFixed(1)} s (${run.cacheHits} cache hits)`);
      return run;
    };

    const bareIds = new Map<string, string>();
    const runBare = async (label: string, chains: number, len: number, ledger: boolean): Promise<number> => {
      const input: BarePipelineInput = {
        runId: crypto.randomBytes(4).toString('hex'),
        projectId,
        baseCheckpointId: root,
        chains,
        length: len,
        command: COMMAND,
        heartbeatTimeoutSeconds: config.heartbeatTimeoutSeconds,
        ledger: ledger ? { money: STEP_MONEY, hourlyPrice: PROFILES.lightweight.hourlyPrice } : null,
      };
      const t0 = Date.now();
      bareIds.set(label, `bare-${input.runId}`);
      const out = await client.workflow.execute('barePipeline', { taskQueue: bareQueue, workflowId: `bare-${input.runId}`, args: [input] });
      const ms = Date.now() - t0;
      if ((out as { steps: number }).steps !== chains * len) throw new Error(`bare run did ${JSON.stringify(out)} of ${chains * len} steps`);
      opts.log(`${label}: ${chains * len} steps in ${(ms / 1000).toFixed(1)} s`);
      return ms;
    };

    opts.log('warm-up: a 3-step pipeline and a 3-step bare run, not counted');
    await runPlatform('warm-up', 1, 3, false);
    await runBare('warm-up', 1, 3, false);

    opts.log(`chain of ${length}`);
    const chain = await runPlatform(`platform chain of ${length}`, 1, length, false);
    const bareChain = await runBare(`bare chain of ${length}`, 1, length, false);
    const bareChainLedger = await runBare(`bare chain of ${length} + ledger`, 1, length, true);
    const wideSteps = wide.chains * wide.length;
    const wideLabel = `${wide.chains} chains × ${wide.length}`;
    opts.log(`wide: ${wideLabel}`);
    const wideRun = await runPlatform(`platform ${wideLabel}`, wide.chains, wide.length, false);
    const bareWide = await runBare(`bare ${wideLabel}`, wide.chains, wide.length, false);
    opts.log(`chain of ${length} again with the cache on`);
    const cached = await runPlatform(`platform chain of ${length}, cache on`, 1, length, true);
    if (cached.cacheHits !== length) throw new Error(`expected ${length} cache hits, got ${cached.cacheHits}`);

    // Where the time goes (issue 18: profile first), from the recorded histories of the chain runs.
    const bareChainLabel = `bare chain of ${length}`;
    const profiles = {
      pipeline: await profileWorkflows(client, [chain.pipelineId]),
      machines: await profileWorkflows(client, chain.machineIds),
      bare: await profileWorkflows(client, [bareIds.get(bareChainLabel)!]),
    };
    const perS = (steps: number, ms: number) => (steps / ms) * 1000;
    const rows: Row[] = [
      { label: `chain of ${length}: platform total (POST → ended_at)`, unit: 's', value: chain.totalMs / 1000, decimals: 2 },
      { label: `chain of ${length}: platform throughput`, unit: 'steps/s', value: perS(length, chain.totalMs), decimals: 2 },
      { label: `chain of ${length}: bare workflow total`, unit: 's', value: bareChain / 1000, decimals: 2 },
      { label: `chain of ${length}: bare workflow throughput`, unit: 'steps/s', value: perS(length, bareChain), decimals: 2 },
      { label: `chain of ${length}: bare workflow + reserve/settle total`, unit: 's', value: bareChainLedger / 1000, decimals: 2 },
      { label: `chain of ${length}: platform overhead per step vs bare`, unit: 'ms', value: (chain.totalMs - bareChain) / length, decimals: 0 },
      { label: `chain of ${length}: platform overhead per step vs bare + ledger`, unit: 'ms', value: (chain.totalMs - bareChainLedger) / length, decimals: 0 },
      { label: `  chain: step machine time (started → ended)`, unit: 'ms', stats: summarize(chain.stepMs), decimals: 0 },
      { label: `  chain: gap between a step's end and the next's start`, unit: 'ms', stats: summarize(chain.gapMs), decimals: 0 },
      { label: `wide ${wideLabel}: platform total`, unit: 's', value: wideRun.totalMs / 1000, decimals: 2 },
      { label: `wide ${wideLabel}: platform throughput`, unit: 'steps/s', value: perS(wideSteps, wideRun.totalMs), decimals: 2 },
      { label: `wide ${wideLabel}: bare workflow total`, unit: 's', value: bareWide / 1000, decimals: 2 },
      { label: `wide ${wideLabel}: bare workflow throughput`, unit: 'steps/s', value: perS(wideSteps, bareWide), decimals: 2 },
      { label: `wide ${wideLabel}: platform overhead per step vs bare`, unit: 'ms', value: (wideRun.totalMs - bareWide) / wideSteps, decimals: 0 },
      { label: `chain of ${length}, cache on (all hits): platform total`, unit: 's', value: cached.totalMs / 1000, decimals: 2 },
      { label: `chain of ${length}, cache on (all hits): throughput`, unit: 'steps/s', value: perS(length, cached.totalMs), decimals: 2 },
      ...profileRows('profile, platform chain: pipeline workflow', profiles.pipeline, length),
      ...profileRows('profile, platform chain: machine workflows', profiles.machines, length),
      ...profileRows('profile, bare chain', profiles.bare, length),
    ];
    return {
      rows,
      notes: [
        `pipeline-throughput: every step runs \`${COMMAND}\` in a bubblewrap sandbox; platform runs are POST /v1/pipelines with cache:false on every step ` +
          `(except the "cache on" run), timed from just before the POST to the pipeline's ended_at; the bare workflow runs provision, run, ` +
          `checkpoint and terminate per step (and reserve/settle in the "+ ledger" variant) with the same activity code; one run each, after a warm-up.`,
      ],
      details: {
        length,
        wide,
        command: COMMAND,
        platform: { chain, wide: wideRun, cached },
        bare: { chain: bareChain, chainLedger: bareChainLedger, wide: bareWide },
        profiles: Object.fromEntries(
          Object.entries(profiles).map(([k, v]) => [
            k,
            { ...v, activities: Object.fromEntries(v.activities), localActivities: Object.fromEntries(v.localActivities) },
          ]),
        ),
      },
    };
  } finally {
    const stops: Array<[string, (() => Promise<void>) | undefined]> = [
      [
        'bare worker',
        bareWorker &&
          (async () => {
            if (bareWorker!.getState() === 'RUNNING') bareWorker!.shutdown();
            await bareRunning;
          }),
      ],
      ['bare connection', bareConnection && (() => bareConnection!.close())],
    ];
    await stopAll(stops, opts.log);
    await bench?.stop();
  }
}

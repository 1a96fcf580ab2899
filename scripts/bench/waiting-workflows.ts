/**
 * 10,000 machine workflows running (waiting) at once, held by one worker process: its resident
 * memory (RSS), with the workflow cache as the worker is configured (AUTOVIBE_WORKER_MAX_CACHED_WORKFLOWS
 * when set, else the Temporal SDK's default, derived from the heap limit). Workflows beyond the
 * cache are evicted while they wait and replayed from history when their run ends.
 *
 * The workflow is the platform's real machineRun, from the real bundle, started as the api starts
 * it (search attributes, summary, input shape). The worker (scripts/bench/waiting-worker.ts, its
 * own process, so its RSS is the worker's alone) is sized by the platform's workerTuning. Its activities
 * are stand-ins (no database, no sandboxes): each workflow goes through the cache look-up,
 * reservation, status marks and provisioning, then waits on its run activity, which is completed
 * asynchronously and so stays running at Temporal — the state of a machine whose command runs.
 *
 * RSS is sampled every second (the worker's own process.memoryUsage) and its peak read from
 * /proc (VmHWM). Temporal is a dev server on this host (not counted).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Client, Connection } from '@temporalio/client';
import { loadConfig } from '../../config/index.js';
import { runVisibility } from '../../domain/search-attributes.js';
import { bundleWorkflows } from '../../workers/worker.js';
import { startTemporalDevServer, type TemporalDevServer } from '../services/temporal.js';
import { sleep, stopAll, summarize, type BenchOptions, type BenchOutput } from './common.js';

const WORKER_FILE = fileURLToPath(new URL('./waiting-worker.ts', import.meta.url));
const TARGET_BYTES = 2 * 1024 ** 3;
const START_CONCURRENCY = 50;
const MAX_IN_FLIGHT = 500;
const MiB = 1024 ** 2;

interface Status {
  rss: number;
  heapUsed: number;
  cached: number;
  waiting: number;
}

function peakRss(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : Number.NaN;
}

export async function waitingWorkflows(opts: BenchOptions): Promise<BenchOutput> {
  const count = opts.quick ? 1000 : 10_000;
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'autovibe-bench-waiting-'));
  let temporal: TemporalDevServer | undefined;
  let child: ChildProcess | undefined;
  let connection: Connection | undefined;
  try {
    opts.log('starting a Temporal dev server, bundling workflows');
    const [tp, bundle] = await Promise.allSettled([startTemporalDevServer({ uiPort: null }), bundleWorkflows()]);
    if (tp.status === 'fulfilled') temporal = tp.value;
    for (const r of [tp, bundle]) if (r.status === 'rejected') throw r.reason;
    if (!temporal || bundle.status !== 'fulfilled') throw new Error('unreachable');
    const bundlePath = path.join(home, 'workflow-bundle.js');
    fs.writeFileSync(bundlePath, bundle.value.code);

    const env = {
      AUTOVIBE_HOME: home,
      TEMPORAL_ADDRESS: temporal.address,
      TEMPORAL_TASK_QUEUE: `bench-waiting-${process.pid}`,
      // The cache as a deployment configures it (the SDK default when unset).
      ...(process.env.AUTOVIBE_WORKER_MAX_CACHED_WORKFLOWS ? { AUTOVIBE_WORKER_MAX_CACHED_WORKFLOWS: process.env.AUTOVIBE_WORKER_MAX_CACHED_WORKFLOWS } : {}),
      LOG_LEVEL: 'error',
    };
    const config = loadConfig(env);
    const cacheSetting =
      config.workerMaxCachedWorkflows !== undefined
        ? `AUTOVIBE_WORKER_MAX_CACHED_WORKFLOWS=${config.workerMaxCachedWorkflows}`
        : 'the SDK default (from the heap limit)';
    const proc = spawn(process.execPath, ['--import', 'tsx', WORKER_FILE], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: { ...process.env, ...env, WORKFLOW_BUNDLE: bundlePath },
    });
    child = proc;
    let status: Status | undefined;
    const samples: Array<{ t: number } & Status> = [];
    const t0 = performance.now();
    proc.on('message', (m: { status?: Status }) => {
      if (!m.status) return;
      status = m.status;
      samples.push({ t: performance.now() - t0, ...m.status });
    });
    const until = async (what: string, ok: () => boolean, timeoutMs: number, progress?: () => string) => {
      const deadline = Date.now() + timeoutMs;
      let lastLog = Date.now();
      while (!ok()) {
        if (proc.exitCode !== null) throw new Error(`the worker exited (${proc.exitCode}) waiting for ${what}`);
        if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs / 1000}s${progress ? ` (${progress()})` : ''}`);
        if (progress && Date.now() - lastLog > 15_000) {
          lastLog = Date.now();
          opts.log(progress());
        }
        await sleep(250);
      }
    };
    await until('the worker to start', () => status !== undefined, 120_000);
    await sleep(3000);
    const idleRss = status!.rss;
    opts.log(`worker up (RSS ${(idleRss / MiB).toFixed(0)} MiB); starting ${count} machine workflows`);

    connection = await Connection.connect({ address: temporal.address });
    const client = new Client({ connection, namespace: config.temporalNamespace });
    const tStart = performance.now();
    let next = 0;
    const starter = async () => {
      for (let i = next++; i < count; i = next++) {
        // Machines are requested over time, not all in one instant: at most MAX_IN_FLIGHT still on
        // their way to the run. Ten thousand advancing at once through a smaller cache evict one
        // another between every step and replay from history each time (measured: < 1 a second).
        while (i - (status?.waiting ?? 0) >= MAX_IN_FLIGHT) await sleep(50);
        const machineId = `machine-bench-${i}`;
        await client.workflow.start('machineRun', {
          workflowId: machineId,
          taskQueue: config.taskQueue,
          ...runVisibility(
            'machine',
            { project: 'project-bench', machineType: 'shell', provider: 'local', status: 'pending', costCenter: null },
            { searchAttributes: config.searchAttributes, details: { machine: machineId, profile: 'lightweight', requestedBy: 'bench' } },
          ),
          args: [
            {
              machineId,
              projectId: 'project-bench',
              type: 'shell',
              command: 'sleep infinity',
              prompt: null,
              model: null,
              parentCheckpointId: 'checkpoint-bench',
              profile: 'lightweight',
              provider: 'local',
              spot: false,
              limits: { money: '100.00', minutes: 24 * 60 },
              // The stand-in run never heartbeats: no heartbeat timeout inside the benchmark.
              heartbeatTimeoutSeconds: 24 * 3600,
              limitPolicy: { policy: 'stop', pauseMinutes: 60 },
            },
          ],
        });
      }
    };
    await Promise.all(Array.from({ length: START_CONCURRENCY }, starter));
    const startedMs = performance.now() - tStart;
    opts.log(`${count} started in ${(startedMs / 1000).toFixed(1)} s; waiting for all to reach their run`);
    await until(
      `${count} workflows waiting on their run`,
      () => (status?.waiting ?? 0) >= count,
      (opts.quick ? 10 : 60) * 60_000,
      () => `${status?.waiting ?? 0} waiting, ${status?.cached ?? 0} cached, RSS ${((status?.rss ?? 0) / MiB).toFixed(0)} MiB`,
    );
    const allWaitingMs = performance.now() - tStart;
    opts.log(`all ${count} waiting after ${(allWaitingMs / 1000).toFixed(1)} s; sampling RSS for ${opts.quick ? 5 : 20} s`);
    // Let the last workflow tasks (the run activity's scheduling) complete, then sample while idle.
    await sleep(5000);
    const from = samples.length;
    await sleep((opts.quick ? 5 : 20) * 1000);
    const steady = samples.slice(from);
    const peak = peakRss(proc.pid!);
    const last = steady.at(-1)!;
    const steadyRss = summarize(steady.map((s) => s.rss / MiB));
    const ok = steadyRss.max * MiB < TARGET_BYTES && peak < TARGET_BYTES;
    return {
      rows: [
        { label: `worker RSS, ${count} machine workflows waiting`, unit: 'MiB', stats: steadyRss, decimals: 0 },
        { label: '  peak RSS while starting them (VmHWM)', unit: 'MiB', value: peak / MiB, decimals: 0 },
        { label: '  RSS of the idle worker before', unit: 'MiB', value: idleRss / MiB, decimals: 0 },
        { label: '  per cached workflow ((steady - idle) / cached)', unit: 'KiB', value: (steadyRss.median * MiB - idleRss) / last.cached / 1024, decimals: 1 },
        { label: '  JS heap used', unit: 'MiB', value: last.heapUsed / MiB, decimals: 0 },
        { label: `  workflows in the worker cache (max ${cacheSetting})`, unit: 'workflows', value: last.cached, decimals: 0 },
        { label: '  start → all waiting on their run', unit: 's', value: allWaitingMs / 1000, decimals: 1 },
      ],
      notes: [
        `waiting-workflows: the real machineRun workflow (real bundle), ${count} started as the api starts machines, each parked on its run activity ` +
          `(stand-in activities completed asynchronously: no database, no sandboxes); one worker process sized by workerTuning, ` +
          `workflow cache ${cacheSetting}; the rest wait evicted (replayed when their run ends). RSS ${ok ? 'within' : 'MISSES'} the 2 GiB target (peak ${(peak / MiB).toFixed(0)} MiB).`,
      ],
      details: {
        count,
        startedMs,
        allWaitingMs,
        idleRss,
        peak,
        samples: samples.map((s) => ({ t: Math.round(s.t), rss: s.rss, heapUsed: s.heapUsed, cached: s.cached, waiting: s.waiting })),
      },
    };
  } finally {
    if (child && child.exitCode === null) {
      child.send({ stop: true });
      const exited = new Promise((r) => child!.once('exit', r));
      if ((await Promise.race([exited.then(() => true), sleep(15_000).then(() => false)])) === false) child.kill('SIGKILL');
    }
    await stopAll(
      [
        ['temporal client', connection ? () => connection!.close() : undefined],
        ['temporal', temporal?.stop],
      ],
      opts.log,
    );
    fs.rmSync(home, { recursive: true, force: true });
  }
}

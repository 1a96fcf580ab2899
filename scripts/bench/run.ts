/**
 * `npm run bench [-- [--quick] [name...]]`: runs the benchmarks in sequence (all, or the ones
 * named), prints a table and writes the results to .autovibe/bench/results-<timestamp>.json.
 * Every benchmark starts the services it needs and stops them before the next one begins.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { accounting } from './accounting.js';
import { apiLatency } from './api-latency.js';
import { agentFirstRequest } from './agent-first-request.js';
import { awsSpawn } from './aws-spawn.js';
import { formatTable, type Benchmark, type BenchOptions, type BenchOutput } from './common.js';
import { dashboardTree } from './dashboard-tree.js';
import { eventDelivery } from './event-delivery.js';
import { ledger } from './ledger.js';
import { machineOverhead } from './machine-overhead.js';
import { pipelineThroughput } from './pipeline-throughput.js';
import { spawnLatency } from './spawn-latency.js';
import { fx } from './fx.js';
import { waitingWorkflows } from './waiting-workflows.js';
import { snapshotStore } from './snapshots.js';
import { checkpointTree } from './checkpoint-tree.js';
import { checkpointOverhead } from './checkpoint-overhead.js';
import { forecastBacktest } from './forecast-backtest.js';
import { routing } from './routing.js';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

const BENCHMARKS: Record<string, { title: string; run: Benchmark }> = {
  'machine-overhead': {
    title: 'Time from POST /v1/machines to the sandbox running the command, 20 sequential and 20 concurrent, against a bare one-activity workflow',
    run: machineOverhead,
  },
  'ledger-throughput': {
    title: 'Budget reserve+settle pairs/s with 16 reservers (one hot budget, 100 budgets) next to pgbench on the same server',
    run: ledger,
  },
  'agent-first-request': {
    title: "From spawn request to a claude-code machine's first model request, median of 20 sequential",
    run: agentFirstRequest,
  },
  accounting: {
    title: 'Cost events recorded per second while a claude-code machine streams usage, against the bare CLI; recordCost() calls/s',
    run: accounting,
  },
  'pipeline-throughput': {
    title: '100-step pipeline of trivial shell steps (chain, and 10 chains of 10): steps/s, and overhead per step against a bare Temporal workflow',
    run: pipelineThroughput,
  },
  'spawn-latency': {
    title: 'Spawn latency per provider (local, container), cold and from the warm pool: request → first output',
    run: spawnLatency,
  },
  'aws-spawn': {
    title: 'aws-ec2 (spot) and aws-ecs (Fargate Spot) provision and terminate latency against moto, sequential',
    run: awsSpawn,
  },
  'forecast-backtest': {
    title: 'Spend forecasts: rolling-origin backtest on seeded daily spend histories — MAPE, sMAPE, 80 %/95 % interval coverage per series and method',
    run: forecastBacktest,
  },
  fx: {
    title: 'Exact currency conversions per second through a cross rate; rate look-ups per second from the warm cache',
    run: fx,
  },
  'api-latency': {
    title:
      'API p50/p99 at 500 req/s on read endpoints (GET project, list machines) with a real key, against a bare express app doing the same reads, side by side',
    run: apiLatency,
  },
  'event-delivery': {
    title: 'Event delivery to 1,000 subscribers (SSE and WebSocket) of one project: state change → event p50/p99, missed and duplicated',
    run: eventDelivery,
  },
  'waiting-workflows': {
    title: 'Worker RSS holding 10,000 running machine workflows (waiting on their command), with the workflow cache as configured',
    run: waitingWorkflows,
  },
  'dashboard-tree': {
    title: 'Dashboard: navigation to the 10,000-checkpoint evolution tree drawn in headless Chromium, cold and warm cache (median, p95)',
    run: dashboardTree,
  },
  snapshots: {
    title: 'Snapshot store over a chain of 50 checkpoints of a real repository with small edits: stored vs full copies, snapshot and restore MB/s',
    run: snapshotStore,
  },
  'checkpoint-overhead': {
    title:
      "A machine's checkpoint phase by phase (frozen copy, git commit, snapshot): first, unchanged workspace with and without the git stat cache, one file changed",
    run: checkpointOverhead,
  },
  'checkpoint-tree': {
    title: 'GET /v1/projects/:id/checkpoints/tree on 10,000 seeded checkpoints: whole (200) and revalidated (If-None-Match → 304), sequential',
    run: checkpointTree,
  },
  routing: {
    title: 'Machine selection: operation classifiers on the held-out labelled tasks; router vs best single type and oracle on replayed outcomes',
    run: routing,
  },
};

interface BenchRecord extends Partial<BenchOutput> {
  name: string;
  title: string;
  durationMs: number;
  error?: string;
}

function usage(): string {
  return [
    'usage: npm run bench -- [--quick] [benchmark...]',
    '',
    '  --quick   fewer runs and shorter phases (a smoke test, not a measurement)',
    '',
    'benchmarks (all when none is named):',
    ...Object.entries(BENCHMARKS).map(([name, b]) => `  ${name.padEnd(19)} ${b.title}`),
  ].join('\n');
}

function gitRevision(): { commit: string | null; dirty: boolean | null } {
  try {
    const commit = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: REPO_ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const status = execFileSync('git', ['status', '--porcelain'], { cwd: REPO_ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    return { commit, dirty: status.trim().length > 0 };
  } catch {
    return { commit: null, dirty: null };
  }
}

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(`${usage()}\n`);
    return 0;
  }
  const quick = args.includes('--quick');
  const unknownFlags = args.filter((a) => a.startsWith('-') && a !== '--quick');
  const names = args.filter((a) => !a.startsWith('-'));
  const unknown = names.filter((n) => !(n in BENCHMARKS));
  if (unknownFlags.length || unknown.length) {
    process.stderr.write(`unknown ${unknownFlags.length ? 'option' : 'benchmark'}: ${[...unknownFlags, ...unknown].join(', ')}\n\n${usage()}\n`);
    return 2;
  }
  const selected = names.length ? [...new Set(names)] : Object.keys(BENCHMARKS);

  const startedAt = new Date();
  const loadBefore = os.loadavg();
  const records: BenchRecord[] = [];
  for (const name of selected) {
    const bench = BENCHMARKS[name]!;
    const opts: BenchOptions = { quick, log: (m) => process.stderr.write(`[bench ${name}] ${m}\n`) };
    process.stderr.write(`\n== ${name}: ${bench.title}${quick ? ' (quick)' : ''}\n`);
    const t = performance.now();
    try {
      const out = await bench.run(opts);
      records.push({ name, title: bench.title, durationMs: Math.round(performance.now() - t), ...out });
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      process.stderr.write(`[bench ${name}] FAILED: ${message}\n`);
      records.push({ name, title: bench.title, durationMs: Math.round(performance.now() - t), error: message });
    }
    process.stderr.write(`[bench ${name}] done in ${((performance.now() - t) / 1000).toFixed(1)}s\n`);
  }
  const finishedAt = new Date();

  const cpus = os.cpus();
  const report = {
    startedAt: startedAt.toISOString(),
    finishedAt: finishedAt.toISOString(),
    quick,
    git: gitRevision(),
    host: {
      hostname: os.hostname(),
      platform: `${os.platform()} ${os.release()}`,
      arch: os.arch(),
      cpus: cpus.length,
      cpuModel: cpus[0]?.model ?? null,
      memoryBytes: os.totalmem(),
      node: process.version,
      // Other work on the machine skews absolute figures: the 1-minute load average before and after.
      loadAverage1m: { before: loadBefore[0], after: os.loadavg()[0] },
    },
    results: records,
  };
  const dir = path.join(REPO_ROOT, '.autovibe', 'bench');
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `results-${startedAt.toISOString().replace(/[:.]/g, '-')}.json`);
  fs.writeFileSync(file, `${JSON.stringify(report, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v), 2)}\n`);

  const notes = records.flatMap((r) => r.notes ?? []);
  const lines = [
    '',
    `AutoVibe benchmarks, ${startedAt.toISOString()}${quick ? ' (quick: not a measurement)' : ''} — ${cpus.length} CPU(s), Node ${process.version}, load average ${loadBefore[0]!.toFixed(2)} before / ${os.loadavg()[0]!.toFixed(2)} after`,
    '',
    formatTable(records.map((r) => ({ name: r.name, rows: r.rows ?? [], ...(r.error !== undefined ? { error: r.error } : {}) }))),
    '',
    ...notes.map((n) => `* ${n}`),
    ...(notes.length ? [''] : []),
    `results: ${path.relative(process.cwd(), file) || file} (total ${((finishedAt.getTime() - startedAt.getTime()) / 1000).toFixed(0)}s)`,
    '',
  ];
  process.stdout.write(lines.join('\n'));
  return records.some((r) => r.error !== undefined) ? 1 : 0;
}

// Every benchmark has stopped its services by now; exit rather than wait for handles the
// Temporal SDK may keep open.
main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);

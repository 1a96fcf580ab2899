/**
 * Accounting overhead: api cost events recorded per second while a machine streams usage.
 *
 * A claude-code machine runs a script of many quick model calls: N turns that each call the
 * Bash tool with `true` (no file changes), then a text turn. Every call goes out through the
 * metering proxy, which records one `api` cost event per call once the response has gone back
 * (activities/agent-run.ts: recordCost, updateMachine, the check whether the turn changed files).
 * The scripted endpoint stamps each model request when it arrives; the events' created_at come
 * from the database. The same script driven by the same CLI outside AutoVibe (spawned directly,
 * no sandbox, no proxy, no accounting) is the baseline: the difference per call is what the
 * sandbox, the proxy and the accounting add.
 *
 * Next to it, recordCost() (and recordCost() + updateMachine(), the database writes of one call)
 * in a loop with one serial writer, as the proxy does, on a fresh database of the same server:
 * the rate the database side alone would allow; and the per-call check whether the turn changed
 * files (the same git commands on an unchanged worktree), alone. The event loop utilization of
 * this process between the first and the last model call shows how much of the run the
 * platform's synchronous work held the loop (the proxy's included).
 *
 * Real PostgreSQL, one Temporal dev server, the platform (api + worker) in this process.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { machineTypeSpec, priceOf, tokenCost } from '../../domain/machine-types.js';
import { parseAmount } from '../../domain/money.js';
import { insertCheckpoint } from '../../store/checkpoints.js';
import { recordCost } from '../../store/costs.js';
import { createDb, migrateLatest, type Db } from '../../store/db.js';
import { insertMachine, updateMachine } from '../../store/machines.js';
import { insertProject } from '../../store/projects.js';
import type { Turn } from '../../test/support/llm/endpoint.js';
import { createDatabase } from '../services/postgres.js';
import { isModelRequest, runBareClaude, startAgentBench, type AgentBench, type Arrival } from './agent-platform.js';
import { summarize, type BenchOptions, type BenchOutput, type Stats } from './common.js';

const PROMPT = 'Run the no-op command until told to stop.';
const MONEY_LIMIT = '20.00';
const MACHINE_TIMEOUT_MS = 300_000;

/** `turns` no-op Bash tool calls, then a closing text turn: turns + 1 model calls. */
function noopScript(turns: number): Turn[] {
  const script: Turn[] = [];
  for (let i = 0; i < turns; i++) script.push({ kind: 'tool', name: 'Bash', args: { command: 'true', description: 'noop' } });
  script.push({ kind: 'text', text: 'Done.' });
  return script;
}

interface CallTimes {
  calls: number;
  /** Of which helper calls (the endpoint's `side` kind: no tools advertised). */
  sideCalls: number;
  /** First to last model request at the endpoint. */
  spanMs: number;
  callsPerSecond: number;
  /** Milliseconds between consecutive model requests. */
  gaps: number[];
  /**
   * Share of the time between the first and the last model request that this process's event
   * loop was busy (the platform's api, worker and metering proxy, and the endpoint, all run in it).
   */
  eventLoopUtilization: number;
}

function callTimes(arrivals: Arrival[]): CallTimes {
  const model = arrivals.filter((a) => isModelRequest(a.request));
  if (model.length < 2) throw new Error(`only ${model.length} model request(s) reached the endpoint`);
  const spanMs = model.at(-1)!.at - model[0]!.at;
  return {
    calls: model.length,
    sideCalls: model.filter((a) => a.request.kind === 'side').length,
    spanMs,
    callsPerSecond: ((model.length - 1) * 1000) / spanMs,
    gaps: model.slice(1).map((a, i) => a.at - model[i]!.at),
    eventLoopUtilization: performance.eventLoopUtilization(model.at(-1)!.elu, model[0]!.elu).utilization,
  };
}

interface MachineRun {
  machineId: string;
  times: CallTimes;
  events: number;
  /** First to last cost event (created_at). */
  eventSpanMs: number;
  eventsPerSecond: number;
  /** Per call: from the endpoint's answer to its cost event's created_at (ms). */
  lags: number[];
  /** POST → ended_at. */
  machineMs: number;
}

async function runMachine(bench: AgentBench, turns: number): Promise<MachineRun> {
  bench.resetEndpoint(noopScript(turns));
  const t0 = Date.now();
  const res = await bench.api('POST', '/v1/machines', {
    projectId: bench.projectId,
    type: 'claude-code',
    prompt: PROMPT,
    limits: { money: MONEY_LIMIT, minutes: 10 },
    // Every run is measured: the same input must not be answered from the result cache.
    cache: false,
  });
  if (res.status !== 202) throw new Error(`POST /v1/machines: ${res.status} ${JSON.stringify(res.body)}`);
  const id: string = res.body.id;
  // Poll slowly: the polling shares the database with the accounting under test.
  const m = await bench.waitForEnd(id, MACHINE_TIMEOUT_MS, 250);
  const times = callTimes(bench.arrivals);
  const scripted = bench.llm.requests.filter((r) => r.kind === 'main' && r.turnIndex !== null && r.turnIndex !== undefined).length;
  if (scripted !== turns + 1) throw new Error(`machine ${id} consumed ${scripted} of ${turns + 1} scripted turns`);

  const rows: Array<{ call: string | number; at_ms: string }> = await bench.platform
    .db('cost_events')
    .where({ machine_id: id, category: 'api' })
    .orderBy('seq')
    .select(bench.platform.db.raw("details->>'call' as call"), bench.platform.db.raw('extract(epoch from created_at) * 1000 as at_ms'));
  const at = rows.map((r) => Number(r.at_ms));
  const eventSpanMs = at.length > 1 ? Math.max(...at) - Math.min(...at) : Number.NaN;
  // The proxy numbers model calls 1, 2, … in the order they come in; one at a time, that is the
  // endpoint's order of arrival too.
  const model = bench.arrivals.filter((a) => isModelRequest(a.request));
  const lags = rows.flatMap((r) => {
    const answered = model[Number(r.call) - 1];
    return answered ? [Number(r.at_ms) - answered.at] : [];
  });
  return {
    machineId: id,
    times,
    events: rows.length,
    eventSpanMs,
    eventsPerSecond: ((rows.length - 1) * 1000) / eventSpanMs,
    lags,
    machineMs: (m.endedAt?.getTime() ?? Number.NaN) - t0,
  };
}

interface LoopResult {
  n: number;
  seconds: number;
  perSecond: number;
  latency: Stats;
}

/** `body(i)` one call after another for `durationMs`. */
async function serialLoop(durationMs: number, body: (i: number) => Promise<void>): Promise<LoopResult> {
  const latencies: number[] = [];
  const begin = performance.now();
  const end = begin + durationMs;
  for (let i = 0; performance.now() < end; i++) {
    const t = performance.now();
    await body(i);
    latencies.push(performance.now() - t);
  }
  const seconds = (performance.now() - begin) / 1000;
  return { n: latencies.length, seconds, perSecond: latencies.length / seconds, latency: summarize(latencies) };
}

/** recordCost() alone and with updateMachine(), one writer, on a fresh database of the platform's server. */
async function recordCostLoops(serverUrl: string, durationMs: number, warmupMs: number): Promise<{ record: LoopResult; recordAndUpdate: LoopResult }> {
  const url = await createDatabase(serverUrl, 'bench_costs');
  let db: Db | undefined;
  try {
    // The platform's pool settings (store/db.ts defaults); one caller at a time, as the proxy.
    db = await createDb({ databaseUrl: url });
    await migrateLatest(db);
    const projectId = 'bench-costs-project';
    const machineId = 'bench-costs-machine';
    await insertProject(db, {
      id: projectId,
      name: 'bench costs',
      repoUrl: null,
      repoPath: '/nonexistent',
      currency: 'USD',
      greediness: 0.5,
      defaultMachineMoney: parseAmount('0.50', 'USD'),
      rootCheckpointId: null,
      limitPolicy: 'stop',
      pauseMinutes: 60,
      createdBy: 'bench',
    });
    await insertCheckpoint(db, { id: 'bench-costs-root', projectId, parentId: null, machineId: null, commit: '0'.repeat(40), kind: 'root', trigger: 'bench' });
    await insertMachine(db, {
      id: machineId,
      projectId,
      objectiveId: null,
      type: 'claude-code',
      provider: 'local',
      profile: 'default',
      command: null,
      prompt: PROMPT,
      parentCheckpointId: 'bench-costs-root',
      limits: { money: MONEY_LIMIT, minutes: 10 },
      workflowId: 'bench-costs',
      createdBy: 'bench',
    });
    // The event the proxy writes for a call of the scripted endpoint's default usage.
    const spec = machineTypeSpec('claude-code');
    const model = spec.defaultModel!;
    const event = (key: string, call: number) => {
      const cost = tokenCost(priceOf(spec.prices, model)!, { inputTokens: 100 + call, outputTokens: 20 });
      return {
        idempotencyKey: key,
        projectId,
        machineId,
        category: 'api' as const,
        amount: cost,
        currency: 'USD' as const,
        projectAmount: cost,
        projectCurrency: 'USD' as const,
        details: { model, inputTokens: 100 + call, outputTokens: 20, call, type: 'claude-code', status: 200 },
      };
    };
    const d = db;
    const usage = { inputTokens: 0, outputTokens: 0, apiCalls: 0 };
    const warmup = await serialLoop(warmupMs, async (i) => {
      await recordCost(d, event(`warmup:${i}`, i));
    });
    const record = await serialLoop(durationMs, async (i) => {
      await recordCost(d, event(`record:${i}`, i));
    });
    const recordAndUpdate = await serialLoop(durationMs, async (i) => {
      await recordCost(d, event(`record+update:${i}`, i));
      usage.apiCalls += 1;
      usage.inputTokens += 100 + i;
      usage.outputTokens += 20;
      await updateMachine(d, machineId, { usage });
    });
    const written = Number((await d('cost_events').count({ n: '*' }))[0]!.n);
    const expected = warmup.n + record.n + recordAndUpdate.n;
    if (written !== expected) throw new Error(`recordCost wrote ${written} events, expected ${expected}`);
    return { record, recordAndUpdate };
  } finally {
    await db?.destroy().catch(() => {});
  }
}

/**
 * The check agent-run.ts makes after every model call, whether the turn changed files (git status,
 * add, write-tree, and rev-parse of the last checkpoint's tree, each a synchronous child process),
 * repeated on an unchanged worktree of a bare repository laid out as the platform's.
 */
function changeCheckLoop(runs: number): Stats {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'autovibe-bench-git-'));
  try {
    const repo = path.join(dir, 'repo.git');
    const workspace = path.join(dir, 'workspaces', 'machine');
    const identity = { GIT_AUTHOR_NAME: 'bench', GIT_AUTHOR_EMAIL: 'bench@localhost', GIT_COMMITTER_NAME: 'bench', GIT_COMMITTER_EMAIL: 'bench@localhost' };
    const git = (args: string[]) => execFileSync('git', args, { encoding: 'utf8', env: { ...process.env, ...identity } }).trim();
    git(['init', '--quiet', '--bare', repo]);
    const commit = git(['--git-dir', repo, 'commit-tree', '4b825dc642cb6eb9a060e54bf8d69288fbee4904', '-m', 'root']);
    git(['--git-dir', repo, 'worktree', 'add', '--quiet', '--detach', '--force', workspace, commit]);
    const admin = path.join(repo, 'worktrees', path.basename(workspace));
    const samples: number[] = [];
    for (let i = 0; i <= runs; i++) {
      const t = performance.now();
      execFileSync('git', ['--git-dir', admin, '--work-tree', workspace, 'status', '--porcelain', '--untracked-files=all'], { encoding: 'utf8' });
      execFileSync('git', ['--git-dir', admin, '--work-tree', workspace, 'add', '--all', '.']);
      const tree = execFileSync('git', ['--git-dir', admin, '--work-tree', workspace, 'write-tree'], { encoding: 'utf8' }).trim();
      const base = execFileSync('git', ['--git-dir', repo, 'rev-parse', `${commit}^{tree}`], { encoding: 'utf8' }).trim();
      if (tree !== base) throw new Error(`the unchanged worktree's tree ${tree} differs from ${base}`);
      // The first is a warm-up.
      if (i > 0) samples.push(performance.now() - t);
    }
    return summarize(samples);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export async function accounting(opts: BenchOptions): Promise<BenchOutput> {
  const turns = opts.quick ? 30 : 200;
  const loopMs = opts.quick ? 1_000 : 5_000;
  const bench = await startAgentBench(opts, 'accounting');
  try {
    opts.log('warm-up: a machine and a bare run of 5 turns, not counted');
    await runMachine(bench, 5);
    await runBareClaude(bench, () => noopScript(5), PROMPT);

    opts.log(`claude-code machine: ${turns} no-op Bash turns and a text turn`);
    const machine = await runMachine(bench, turns);
    opts.log(`bare claude CLI: the same ${turns + 1} turns`);
    const bareRun = await runBareClaude(bench, () => noopScript(turns), PROMPT);
    const bare = callTimes(bench.arrivals);
    if (bare.calls !== machine.times.calls) opts.log(`note: bare run made ${bare.calls} model calls, the machine ${machine.times.calls}`);

    opts.log(`recordCost() with one serial writer, ${loopMs / 1000}s; then recordCost() + updateMachine(), ${loopMs / 1000}s`);
    const loops = await recordCostLoops(bench.config.databaseUrl!, loopMs, Math.min(loopMs, 1_000));
    opts.log('the per-call check whether files changed (4 git commands), 50 times');
    const changeCheck = changeCheckLoop(opts.quick ? 10 : 50);

    const perCallAv = machine.times.spanMs / (machine.times.calls - 1);
    const perCallBare = bare.spanMs / (bare.calls - 1);
    const overhead = perCallAv - perCallBare;
    const ratio = machine.times.callsPerSecond / bare.callsPerSecond;
    const dbShare = loops.recordAndUpdate.latency.median;
    const lag = summarize(machine.lags);
    const n = machine.times.calls;
    const notes = [
      `accounting: one claude-code machine, ${turns} Bash \`true\` turns + 1 text turn (${n} model calls, ${machine.times.sideCalls} of them helper calls; bare ${bare.calls}, ${bare.sideCalls}); ` +
        `calls/s = (calls − 1) / (first → last model request at the endpoint); events/s = (events − 1) / (first → last cost event created_at); ` +
        `overhead per call = difference of the mean gaps between model requests, machine − bare; a warm-up machine and bare run of 5 turns not counted; ` +
        `server: fsync=off, synchronous_commit=off (scripts/services/postgres.ts). The CLI, the sandbox, git, PostgreSQL and this process share the host's ` +
        `${os.cpus().length} CPU(s); the bare run has them nearly to itself.`,
      machine.events === n
        ? `accounting: every model call recorded once (${machine.events} api cost events for ${n} calls); an event is written after its response has gone back, ` +
          `so the agent's next call does not wait for it (answered → event median ${lag.median.toFixed(1)} ms).`
        : `accounting: ${machine.events} api cost events for ${n} model calls: the count does not match.`,
      `accounting: the DB side is not the limit: one serial writer does ${loops.record.perSecond.toFixed(0)} recordCost()/s ` +
        `(${loops.recordAndUpdate.perSecond.toFixed(0)}/s with updateMachine()), ${(loops.record.perSecond / machine.eventsPerSecond).toFixed(0)}× the rate the machine produced events. ` +
        (ratio >= 0.9
          ? `Claude Code's own turn rate is the bottleneck: bare it makes ${bare.callsPerSecond.toFixed(1)} calls/s and the machine keeps ${(ratio * 100).toFixed(0)}% of that.`
          : `Claude Code's own turn rate (${bare.callsPerSecond.toFixed(1)} calls/s bare) bounds the figure; inside AutoVibe it reaches ${(ratio * 100).toFixed(0)}% of it, ` +
            `${overhead.toFixed(1)} ms more per call. The DB writes of a call take ~${dbShare.toFixed(1)} ms and run after the response has gone back. ` +
            `The check whether the turn changed files takes ~${changeCheck.median.toFixed(1)} ms on its own (4 git runs); it runs synchronously while the agent ` +
            `works on its next turn, blocking this process's event loop, the proxy's included (busy ${(machine.times.eventLoopUtilization * 100).toFixed(0)}% of the run, ` +
            `${(bare.eventLoopUtilization * 100).toFixed(0)}% while the bare CLI ran). The sandbox (the Bash tool under bubblewrap) and the forwarder and proxy hops ` +
            `are the other costs per call; this run does not separate them.`),
    ];
    return {
      rows: [
        { label: `api cost events recorded/s, machine streaming ${n} model calls`, unit: 'events/s', value: machine.eventsPerSecond },
        { label: `model calls/s at the endpoint, AutoVibe machine`, unit: 'calls/s', value: machine.times.callsPerSecond },
        { label: `model calls/s at the endpoint, bare claude CLI`, unit: 'calls/s', value: bare.callsPerSecond },
        { label: 'ratio machine / bare calls/s', unit: 'ratio', value: ratio, decimals: 3 },
        { label: 'overhead per model call (sandbox + proxy + accounting)', unit: 'ms', value: overhead },
        { label: '  gap between model requests, machine', unit: 'ms', stats: summarize(machine.times.gaps) },
        { label: '  gap between model requests, bare', unit: 'ms', stats: summarize(bare.gaps) },
        { label: '  event loop busy between first and last call, machine', unit: '%', value: machine.times.eventLoopUtilization * 100 },
        { label: '  event loop busy between first and last call, bare', unit: '%', value: bare.eventLoopUtilization * 100 },
        { label: '  call answered → its cost event (created_at)', unit: 'ms', stats: lag },
        { label: `  api cost events recorded (model calls: ${n})`, unit: 'events', value: machine.events, decimals: 0 },
        { label: 'recordCost() calls/s, 1 serial writer', unit: 'calls/s', value: loops.record.perSecond },
        { label: '  recordCost() latency', unit: 'ms', stats: loops.record.latency, decimals: 2 },
        { label: 'recordCost() + updateMachine() pairs/s, 1 serial writer', unit: 'pairs/s', value: loops.recordAndUpdate.perSecond },
        { label: '  recordCost() + updateMachine() latency', unit: 'ms', stats: loops.recordAndUpdate.latency, decimals: 2 },
        { label: "per-call 'files changed?' check (4 synchronous git runs), alone", unit: 'ms', stats: changeCheck, decimals: 2 },
      ],
      notes,
      details: {
        turns,
        moneyLimit: MONEY_LIMIT,
        machine,
        bare: { ...bare, cliMs: bareRun.ms },
        recordCost: loops,
        changeCheckMs: changeCheck,
      },
    };
  } finally {
    await bench.stop();
  }
}

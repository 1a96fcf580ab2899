/**
 * From spawn request to the agent's first model request: the time from POST /v1/machines of a
 * claude-code machine until its first model call (POST /v1/messages) reaches the model endpoint,
 * over 20 machines one after another, each left to end before the next starts.
 *
 * The client notes the wall clock (t0) just before each POST; the scripted endpoint notes it when
 * a request arrives, in the same process. In between: the api (budget reservation, machine row,
 * workflow start), the workflow (provisioning a git worktree and the sandbox), Claude Code's start
 * inside bubblewrap, the in-sandbox forwarder and the metering proxy. For scale, the same CLI run
 * bare (spawned directly, no sandbox, no proxy) against the same endpoint: spawn → first request.
 *
 * Real PostgreSQL, one Temporal dev server, the platform (api + worker) in this process.
 */
import { writeFileScript } from '../../test/support/llm/endpoint.js';
import { summarize, type BenchOptions, type BenchOutput, type Row } from './common.js';
import { isModelRequest, runBareClaude, startAgentBench, type AgentBench } from './agent-platform.js';

const PROMPT = 'Write hello.txt';
// Above the worst case the proxy reserves for one call (the CLI asks for up to 64k output tokens).
const MONEY_LIMIT = '5.00';
const MACHINE_TIMEOUT_MS = 120_000;

interface Sample {
  machineId: string;
  /** Milliseconds after t0 (the client's wall clock just before POST). */
  response202: number;
  startedAt: number;
  firstModelRequest: number;
  endedAt: number;
  /** Model calls the machine made (main and side). */
  modelRequests: number;
}

/** Milliseconds from t0 to the first model request in the endpoint's log, or throws. */
function firstModelRequestAfter(bench: AgentBench, t0: number, what: string): { ms: number; count: number } {
  const model = bench.arrivals.filter((a) => isModelRequest(a.request));
  const first = model[0];
  if (!first) {
    const seen = bench.arrivals.map((a) => `${a.request.method} ${a.request.path}`).join(', ') || 'nothing';
    throw new Error(`${what}: no model request reached the endpoint (it saw ${seen})`);
  }
  return { ms: first.at - t0, count: model.length };
}

async function oneMachine(bench: AgentBench): Promise<Sample> {
  bench.resetEndpoint(writeFileScript('claude', { path: '/workspace/hello.txt', content: 'x\n' }));
  const t0 = Date.now();
  const res = await bench.api('POST', '/v1/machines', {
    projectId: bench.projectId,
    type: 'claude-code',
    prompt: PROMPT,
    limits: { money: MONEY_LIMIT },
    // Every run is measured: the same input must not be answered from the result cache.
    cache: false,
  });
  const t202 = Date.now();
  if (res.status !== 202) throw new Error(`POST /v1/machines: ${res.status} ${JSON.stringify(res.body)}`);
  const id: string = res.body.id;
  const m = await bench.waitForEnd(id, MACHINE_TIMEOUT_MS);
  const first = firstModelRequestAfter(bench, t0, `machine ${id}`);
  return {
    machineId: id,
    response202: t202 - t0,
    startedAt: (m.startedAt?.getTime() ?? Number.NaN) - t0,
    firstModelRequest: first.ms,
    endedAt: (m.endedAt?.getTime() ?? Number.NaN) - t0,
    modelRequests: first.count,
  };
}

export async function agentFirstRequest(opts: BenchOptions): Promise<BenchOutput> {
  const runs = opts.quick ? 5 : 20;
  const bareRuns = opts.quick ? 3 : 10;
  const warmups = opts.quick ? 1 : 2;
  const bench = await startAgentBench(opts, 'first-request');
  try {
    opts.log(`${warmups} warm-up machine(s), not counted`);
    const warm: Sample[] = [];
    for (let i = 0; i < warmups; i++) warm.push(await oneMachine(bench));

    opts.log(`${runs} claude-code machines one after another`);
    const samples: Sample[] = [];
    for (let i = 0; i < runs; i++) samples.push(await oneMachine(bench));

    opts.log(`${bareRuns} bare claude runs (1 warm-up, not counted)`);
    const bare: number[] = [];
    for (let i = 0; i <= bareRuns; i++) {
      const run = await runBareClaude(bench, (workDir) => writeFileScript('claude', { path: `${workDir}/hello.txt`, content: 'x\n' }), PROMPT);
      const first = firstModelRequestAfter(bench, run.t0, 'bare claude');
      if (i > 0) bare.push(first.ms);
    }

    const ms = (label: string, pick: (s: Sample) => number): Row => ({ label, unit: 'ms', stats: summarize(samples.map(pick)) });
    const seq = `${runs} sequential`;
    const platform = summarize(samples.map((s) => s.firstModelRequest));
    const bareStats = summarize(bare);
    return {
      rows: [
        ms(`POST → first model request at the endpoint, ${seq}`, (s) => s.firstModelRequest),
        ms(`  POST → 202 response`, (s) => s.response202),
        ms(`  POST → started_at (provisioning)`, (s) => s.startedAt),
        ms(`  started_at → first model request`, (s) => s.firstModelRequest - s.startedAt),
        ms(`  POST → ended_at (completed)`, (s) => s.endedAt),
        { label: `bare claude CLI: spawn → first model request, ${bareRuns} runs`, unit: 'ms', stats: bareStats },
        { label: 'platform share: median POST → first request − median bare', unit: 'ms', value: platform.median - bareStats.median },
      ],
      notes: [
        `agent-first-request: claude-code machines (prompt "${PROMPT}", limits.money ${MONEY_LIMIT}, script: Write /workspace/hello.txt then a text turn); ` +
          `t0 is the client's wall clock (ms) just before POST; the first request is the first POST /v1/messages at the scripted endpoint ` +
          `(behind the in-sandbox forwarder and the metering proxy), stamped in the same process; each machine ends before the next starts; ` +
          `${warmups} warm-up machine(s) not counted. Bare: the same CLI spawned directly with the same endpoint, no sandbox, no proxy.`,
      ],
      details: {
        runs,
        warmups,
        bareRuns,
        moneyLimit: MONEY_LIMIT,
        samples: { warmup: warm, sequential: samples },
        bareSpawnToFirstRequestMs: bare,
      },
    };
  } finally {
    await bench.stop();
  }
}

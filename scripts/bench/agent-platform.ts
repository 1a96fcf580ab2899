/**
 * What the benchmarks of model-backed machines share: real PostgreSQL, a Temporal dev server and
 * the platform (api + worker) in this process, configured for claude-code machines against the
 * scripted model endpoint of the tests (test/support/llm), whose every request is stamped with
 * the wall clock when it reaches the endpoint. And the same CLI run bare, outside AutoVibe,
 * against the same endpoint, as the baseline.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance, type EventLoopUtilization } from 'node:perf_hooks';
import type { Config } from '../../config/index.js';
import { agentInvocation, installAgentClis, runAgent, toolsDir, type AgentRun } from '../../test/support/llm/agent-clis.js';
import { startScriptedEndpoint, type LoggedRequest, type ScriptedEndpoint, type Turn } from '../../test/support/llm/endpoint.js';
import type { Platform } from '../platform.js';
import { startBenchPlatform, type Api, type BenchPlatform } from './bench-platform.js';
import { sleep, stopAll, type BenchOptions } from './common.js';

const FINAL_STATUSES = ['completed', 'failed', 'terminated', 'refused'];

export type { Api } from './bench-platform.js';

/** A request as the endpoint saw it, with the wall clock (epoch ms) when it arrived. */
export interface Arrival {
  at: number;
  request: LoggedRequest;
  /** This process's event loop utilization so far, to compare two arrivals with. */
  elu: EventLoopUtilization;
}

/** A model call of the Anthropic dialect (not count_tokens, not a probe). */
export const isModelRequest = (r: LoggedRequest): boolean => r.method === 'POST' && r.path === '/v1/messages';

export interface EndedMachine {
  id: string;
  status: string;
  stopReason: string | null;
  error: string | null;
  startedAt: Date | null;
  endedAt: Date | null;
}

export interface AgentBench {
  platform: Platform;
  config: Config;
  api: Api;
  llm: ScriptedEndpoint;
  /** Every request that reached the endpoint since the last `resetEndpoint()`, in order of arrival. */
  arrivals: Arrival[];
  /** A project with a budget far above anything the benchmark spends. */
  projectId: string;
  /** Clears the endpoint's log and the arrivals, and sets the script of the next run. */
  resetEndpoint(script: Turn[]): void;
  /** Polls the machines table until the machine has ended; throws unless it completed. */
  waitForEnd(id: string, timeoutMs: number, pollMs?: number): Promise<EndedMachine>;
  stop(): Promise<void>;
}

/** Installs the agent CLIs if needed, then starts the endpoint and the platform around it. */
export async function startAgentBench(opts: BenchOptions, label: string): Promise<AgentBench> {
  const arrivals: Arrival[] = [];
  let llm: ScriptedEndpoint | undefined;
  let bench: BenchPlatform | undefined;
  const stop = async () => {
    await stopAll(
      [
        ['platform', bench?.stop],
        ['model endpoint', llm?.stop],
      ],
      opts.log,
    );
  };
  try {
    opts.log('installing the agent CLIs (a no-op when they are), starting the model endpoint');
    const [, endpoint] = await Promise.all([
      installAgentClis(),
      // The endpoint answers synchronously once a request's body is in: the callback runs in the
      // same tick as the arrival.
      startScriptedEndpoint({ onRequest: (request) => arrivals.push({ at: Date.now(), request, elu: performance.eventLoopUtilization() }) }),
    ] as const);
    llm = endpoint;
    bench = await startBenchPlatform(opts, {
      label,
      env: { AUTOVIBE_TOOLS_DIR: toolsDir(), ANTHROPIC_API_KEY: 'bench', ANTHROPIC_BASE_URL: llm.url },
    });
    const { platform, config, api, projectId } = bench;
    const db = platform.db;

    const types = await api('GET', '/v1/machine-types');
    const claude = (types.body?.items ?? []).find((t: any) => t.id === 'claude-code');
    if (!claude?.available) throw new Error(`machine type claude-code is unavailable: ${claude?.reason ?? JSON.stringify(types.body)}`);
    const endpointRef = llm;
    const waitForEnd = async (id: string, timeoutMs: number, pollMs = 50): Promise<EndedMachine> => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const row: Record<string, any> | undefined = await db('machines').where({ id }).first('id', 'status', 'stop_reason', 'error', 'started_at', 'ended_at');
        if (row && FINAL_STATUSES.includes(row.status) && row.ended_at) {
          const m: EndedMachine = {
            id,
            status: row.status,
            stopReason: row.stop_reason,
            error: row.error,
            startedAt: row.started_at,
            endedAt: row.ended_at,
          };
          if (m.status !== 'completed') {
            const logFile = path.join(config.home, 'logs', `${id}.log`);
            const tail = fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8').slice(-800) : '(no log)';
            throw new Error(`machine ${id} ended ${m.status} (${m.stopReason ?? ''} ${m.error ?? ''})\nsandbox log: ${tail}`);
          }
          return m;
        }
        if (Date.now() > deadline) throw new Error(`machine ${id} still ${row?.status ?? 'missing'} after ${timeoutMs / 1000}s`);
        await sleep(pollMs);
      }
    };

    return {
      platform,
      config,
      api,
      llm,
      arrivals,
      projectId,
      resetEndpoint(script) {
        endpointRef.reset();
        endpointRef.setScript(script);
        arrivals.length = 0;
      },
      waitForEnd,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/**
 * Runs Claude Code directly (no sandbox, no metering proxy, no platform) against the endpoint, in
 * a fresh work directory and HOME, as test/support/llm/agent-clis.ts does; the endpoint's log
 * and arrivals are reset and its script (made for that work directory) set first. `t0` is the
 * wall clock just before the CLI is spawned.
 */
export async function runBareClaude(
  bench: Pick<AgentBench, 'llm' | 'resetEndpoint'>,
  script: (workDir: string) => Turn[],
  prompt: string,
): Promise<AgentRun & { t0: number }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'autovibe-bench-bare-'));
  try {
    const workDir = path.join(dir, 'work');
    fs.mkdirSync(workDir);
    const inv = agentInvocation('claude', { endpointUrl: bench.llm.url, workDir, homeDir: path.join(dir, 'home'), prompt });
    bench.resetEndpoint(script(workDir));
    const t0 = Date.now();
    const run = await runAgent(inv);
    if (run.code !== 0) throw new Error(`bare claude exited ${run.code ?? run.signal}: ${run.stderr.slice(-500)}`);
    return { ...run, t0 };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The platform a benchmark measures: real PostgreSQL, a Temporal dev server and AutoVibe (api +
 * worker) in this process, with one project whose budget is far above anything a benchmark spends.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig, type Config } from '../../config/index.js';
import { bundleWorkflows } from '../../workers/worker.js';
import { startPlatform, type Platform } from '../platform.js';
import { startPostgres, type PostgresServer } from '../services/postgres.js';
import { startTemporalDevServer, type TemporalDevServer } from '../services/temporal.js';
import { stopAll, type BenchOptions } from './common.js';

export interface Api {
  <T = any>(method: string, p: string, body?: unknown): Promise<{ status: number; body: T }>;
}

export interface BenchPlatform {
  platform: Platform;
  config: Config;
  api: Api;
  /** Address of the Temporal dev server, for a benchmark's own workers. */
  temporalAddress: string;
  projectId: string;
  rootCheckpointId: string;
  /** Stops the platform, Temporal and PostgreSQL, and removes the platform's home. */
  stop(): Promise<void>;
}

/** An authenticated JSON client of the platform's REST API. */
export function apiClient(platform: Platform): Api {
  return async (method, p, body) => {
    const res = await fetch(`${platform.apiUrl}${p}`, {
      method,
      headers: {
        authorization: `Bearer ${platform.adminKey}`,
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    const isJson = res.headers.get('content-type')?.includes('json');
    return { status: res.status, body: isJson ? JSON.parse(text) : text };
  };
}

/**
 * Starts PostgreSQL and a Temporal dev server (in parallel with bundling the workflows), then the
 * platform configured with `env` on top of the benchmark defaults, then a project with a budget.
 */
export async function startBenchPlatform(opts: BenchOptions, input: { label: string; env?: Record<string, string> }): Promise<BenchPlatform> {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), `autovibe-bench-${input.label}-`));
  let postgres: PostgresServer | undefined;
  let temporal: TemporalDevServer | undefined;
  let platform: Platform | undefined;
  const stop = async () => {
    await stopAll(
      [
        ['platform', platform?.stop],
        ['temporal', temporal?.stop],
        ['postgres', postgres?.stop],
      ],
      opts.log,
    );
    fs.rmSync(home, { recursive: true, force: true });
  };
  try {
    opts.log('starting PostgreSQL and a Temporal dev server, bundling workflows');
    const [pg, tp, bundle] = await Promise.allSettled([startPostgres(), startTemporalDevServer({ uiPort: null }), bundleWorkflows()]);
    if (pg.status === 'fulfilled') postgres = pg.value;
    if (tp.status === 'fulfilled') temporal = tp.value;
    for (const r of [pg, tp, bundle]) if (r.status === 'rejected') throw r.reason;
    if (!postgres || !temporal || bundle.status !== 'fulfilled') throw new Error('unreachable');

    const config = loadConfig({
      AUTOVIBE_HOME: home,
      DATABASE_URL: postgres.url,
      TEMPORAL_ADDRESS: temporal.address,
      TEMPORAL_TASK_QUEUE: `bench-${input.label}-${crypto.randomBytes(4).toString('hex')}`,
      PORT: '0',
      LOG_LEVEL: 'error',
      ...input.env,
    });
    platform = await startPlatform({ config, worker: true, workflowBundle: bundle.value });
    const api = apiClient(platform);
    const project = await api('POST', '/v1/projects', { name: `bench ${input.label}` });
    if (project.status !== 201) throw new Error(`POST /v1/projects: ${project.status} ${JSON.stringify(project.body)}`);
    const budget = await api('PUT', `/v1/projects/${project.body.id}/budget`, { amount: '1000.00', currency: 'USD', period: 'total' });
    if (budget.status !== 200) throw new Error(`PUT budget: ${budget.status} ${JSON.stringify(budget.body)}`);
    return {
      platform,
      config,
      api,
      temporalAddress: temporal.address,
      projectId: project.body.id,
      rootCheckpointId: project.body.rootCheckpointId,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

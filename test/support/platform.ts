import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { WorkflowBundle } from '@temporalio/worker';
import { loadConfig, type Config } from '../../config/index.js';
import { createDatabase } from '../../scripts/services/postgres.js';
import { startPlatform, type Platform } from '../../scripts/platform.js';
import { bundleWorkflows } from '../../workers/worker.js';

let bundle: Promise<WorkflowBundle> | undefined;
/** The workflow bundle, built once per test run. */
export function workflowBundle(): Promise<WorkflowBundle> {
  bundle ??= bundleWorkflows();
  return bundle;
}

/** A fresh database on the shared test Postgres server. */
export async function freshDatabase(label: string): Promise<string> {
  const url = process.env.TEST_DATABASE_URL;
  if (!url) throw new Error('TEST_DATABASE_URL is not set: run tests through mocha (test/support/global-setup.ts)');
  return createDatabase(url, `t_${label.replace(/\W/g, '_')}_${crypto.randomBytes(4).toString('hex')}`);
}

export interface TestPlatformOptions {
  label: string;
  /** Use embedded PGlite instead of real Postgres. */
  embedded?: boolean;
  worker?: boolean;
  heartbeatTimeoutSeconds?: number;
  env?: Record<string, string>;
}

export interface TestPlatform extends Platform {
  config: Config;
  home: string;
  databaseUrl: string | undefined;
  /** Stops the platform as `npm start` does on SIGTERM/SIGINT, keeping its home and database (so another worker can go on). */
  halt(): Promise<void>;
  /** Calls the api with the admin key unless another key (or null for none) is given. */
  api<T = any>(
    method: string,
    path: string,
    body?: unknown,
    opts?: { key?: string | null; headers?: Record<string, string> },
  ): Promise<{ status: number; body: T }>;
}

/**
 * The real platform (api + worker) against the shared test Temporal server and a fresh
 * database, on its own task queue and home directory so suites never see each other's work.
 */
export async function startTestPlatform(opts: TestPlatformOptions): Promise<TestPlatform> {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), `autovibe-${opts.label}-`));
  const databaseUrl = opts.embedded ? undefined : await freshDatabase(opts.label);
  const temporalAddress = process.env.TEST_TEMPORAL_ADDRESS;
  if (!temporalAddress) throw new Error('TEST_TEMPORAL_ADDRESS is not set: run tests through mocha');
  const config = loadConfig({
    AUTOVIBE_HOME: home,
    ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {}),
    TEMPORAL_ADDRESS: temporalAddress,
    TEMPORAL_TASK_QUEUE: `test-${opts.label}-${crypto.randomBytes(4).toString('hex')}`,
    PORT: '0',
    LOG_LEVEL: 'warn',
    AUTOVIBE_HEARTBEAT_TIMEOUT_S: String(opts.heartbeatTimeoutSeconds ?? 5),
    // Every test is also a check that the api answers as its OpenAPI response schemas say.
    AUTOVIBE_VALIDATE_RESPONSES: '1',
    ...opts.env,
  });
  const platform = await startPlatform({ config, worker: opts.worker ?? true, workflowBundle: await workflowBundle() });
  const api: TestPlatform['api'] = async (method, p, body, o = {}) => {
    const key = o.key === undefined ? platform.adminKey : o.key;
    const res = await fetch(`${platform.apiUrl}${p}`, {
      method,
      headers: {
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...(key ? { authorization: `Bearer ${key}` } : {}),
        ...o.headers,
      },
      ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    const isJson = res.headers.get('content-type')?.includes('json');
    return { status: res.status, body: (isJson ? JSON.parse(text) : text) as any };
  };
  const stop = async () => {
    await platform.stop();
    fs.rmSync(home, { recursive: true, force: true });
  };
  return { ...platform, stop, halt: platform.stop, config, home, databaseUrl, api };
}

/** Polls `fn` until it returns a truthy value or the time runs out. */
export async function waitFor<T>(fn: () => Promise<T | undefined | null | false>, what: string, timeoutMs = 60_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value) return value;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const FINAL = ['completed', 'failed', 'terminated', 'refused'];

/** Waits until the machine reaches a final status and returns it. */
export async function waitForMachine(p: TestPlatform, id: string, timeoutMs = 60_000): Promise<any> {
  return waitFor(
    async () => {
      const { body } = await p.api('GET', `/v1/machines/${id}`);
      return FINAL.includes(body.status) ? body : null;
    },
    `machine ${id} to end`,
    timeoutMs,
  );
}

/** Creates a project with a budget and returns its id. */
export async function projectWithBudget(p: TestPlatform, amount = '10.00', period = 'daily'): Promise<string> {
  const project = await p.api('POST', '/v1/projects', { name: 'test project' });
  if (project.status !== 201) throw new Error(`project creation failed: ${JSON.stringify(project.body)}`);
  const budget = await p.api('PUT', `/v1/projects/${project.body.id}/budget`, { amount, currency: 'USD', period });
  if (budget.status !== 200) throw new Error(`budget failed: ${JSON.stringify(budget.body)}`);
  return project.body.id;
}

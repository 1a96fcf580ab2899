import { fileURLToPath } from 'node:url';
import { Client } from '@temporalio/client';
import { NativeConnection, Worker, bundleWorkflowCode, type BundleOptions, type WorkflowBundle } from '@temporalio/worker';
import type { Logger } from 'pino';
import { createActivities } from '../activities/index.js';
import { createProviders, type ComputeProvider, type ProviderId } from '../activities/compute/index.js';
import { publishProviderStatus } from '../activities/reconcile.js';
import type { Config } from '../config/index.js';
import type { Db } from '../store/db.js';
import { countActivityFailures } from './metrics.js';

export const WORKFLOWS_PATH = fileURLToPath(new URL('../workflows/index.ts', import.meta.url));

/** Workflow sources use `.js` import specifiers for `.ts` files (NodeNext); teach the bundler. */
const bundlerOptions: Pick<BundleOptions, 'webpackConfigHook'> = {
  webpackConfigHook: (config) => {
    config.resolve = { ...config.resolve, extensionAlias: { '.js': ['.ts', '.js'] } };
    return config;
  },
};

/** Builds the workflow bundle once; tests and benchmarks reuse it across workers. */
export async function bundleWorkflows(workflowsPath = WORKFLOWS_PATH): Promise<WorkflowBundle> {
  return bundleWorkflowCode({ workflowsPath, ...bundlerOptions, logger: quietBundlerLogger });
}

const quietBundlerLogger = {
  log() {},
  trace() {},
  debug() {},
  info() {},
  warn(message: string, meta?: unknown) {
    console.warn(message, meta ?? '');
  },
  error(message: string, meta?: unknown) {
    console.error(message, meta ?? '');
  },
};

export interface WorkerOptions {
  config: Config;
  db: Db;
  log: Logger;
  connection: NativeConnection;
  workflowBundle?: WorkflowBundle;
  /** The compute providers, when the process shares them with the api; built from config when absent. */
  providers?: Map<ProviderId, ComputeProvider>;
}

/**
 * How a platform worker is sized, from config: shared by createWorker and the benchmark that
 * holds thousands of waiting machine workflows in one worker (scripts/bench/waiting-workflows.ts).
 */
export function workerTuning(config: Config): { maxConcurrentActivityTaskExecutions: number; maxCachedWorkflows?: number } {
  return {
    maxConcurrentActivityTaskExecutions: 100,
    ...(config.workerMaxCachedWorkflows !== undefined ? { maxCachedWorkflows: config.workerMaxCachedWorkflows } : {}),
  };
}

/** A worker on the machines task queue with every workflow and activity of the platform. */
export async function createWorker(opts: WorkerOptions): Promise<Worker> {
  const providers = opts.providers ?? createProviders(opts.config);
  // The api places machines by what workers report; the reconcile schedule keeps it fresh.
  await publishProviderStatus(opts.db, providers);
  return Worker.create({
    connection: opts.connection,
    namespace: opts.config.temporalNamespace,
    taskQueue: opts.config.taskQueue,
    ...(opts.workflowBundle ? { workflowBundle: opts.workflowBundle } : { workflowBundle: await bundleWorkflows() }),
    activities: createActivities({
      db: opts.db,
      config: opts.config,
      log: opts.log,
      providers,
      temporal: new Client({ connection: opts.connection, namespace: opts.config.temporalNamespace }),
    }),
    ...workerTuning(opts.config),
    // On shutdown (SIGTERM/SIGINT, Worker.shutdown()) running activities are told at once: a machine's
    // run hands the machine over (activities/machines/supervise.ts), then the worker drains; past the
    // grace period it gives up and run() throws, and the process exits.
    shutdownGraceTime: 0,
    shutdownForceTime: opts.config.shutdownGraceSeconds * 1000,
    interceptors: { activity: [countActivityFailures] },
  });
}

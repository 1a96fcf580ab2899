import { fileURLToPath } from 'node:url';
import { Client } from '@temporalio/client';
import { NativeConnection, Worker, bundleWorkflowCode, type BundleOptions, type WorkflowBundle } from '@temporalio/worker';
import type { Logger } from 'pino';
import { createActivities } from '../activities/index.js';
import { createProviders, type ComputeProvider, type ProviderId } from '../activities/compute/index.js';
import { hostQueue, machineQueue, type ServedQueue } from '../domain/queues.js';
import { recordServedQueues } from '../store/compute.js';
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
 * How the control worker is sized, from config: shared by createWorker and the benchmark that
 * holds thousands of waiting machine workflows in one worker (scripts/bench/waiting-workflows.ts).
 */
export function workerTuning(config: Config): { maxConcurrentActivityTaskExecutions: number; maxCachedWorkflows?: number } {
  return {
    maxConcurrentActivityTaskExecutions: config.worker.controlConcurrency,
    ...(config.workerMaxCachedWorkflows !== undefined ? { maxCachedWorkflows: config.workerMaxCachedWorkflows } : {}),
  };
}

/** The queues a worker process serves: its roles, and for machines the given providers on this host (README "Task queues and workers"). */
export function servedQueues(config: Config, providers: Iterable<ProviderId>): ServedQueue[] {
  const { roles, host } = config.worker;
  return [
    ...(roles.includes('control') ? [{ name: config.taskQueue, role: 'control' as const, provider: null, host: null }] : []),
    ...(roles.includes('machines')
      ? [...providers].flatMap((provider) => [
          { name: machineQueue(config.taskQueue, provider), role: 'machines' as const, provider, host: null },
          { name: hostQueue(config.taskQueue, provider, host), role: 'machines' as const, provider, host },
        ])
      : []),
  ];
}

/** How often a running worker records again that it serves its queues (/metrics reports queues seen within a day). */
const SERVED_REFRESH_MS = 10 * 60_000;
/** How often a machine worker asks providers it did not serve at start whether they can run now. */
const LATE_PROVIDER_CHECK_MS = 15_000;

/**
 * The Temporal workers of one process, run and stopped together: on the control queue, every
 * workflow and activity (activities of executions from before the machine queues arrive there
 * too); on each machine queue, the activities alone, at most AUTOVIBE_WORKER_MACHINE_CONCURRENCY
 * at once, so a host full of machines never delays the bookkeeping.
 */
export class PlatformWorker {
  private stopping = false;
  private readonly runs: Array<Promise<void>> = [];
  private failed: ((e: unknown) => void) | null = null;

  constructor(
    readonly workers: Worker[],
    readonly queues: ServedQueue[],
    private readonly db: Db,
    /** Providers this host did not run at start, and how to start serving one once it can (none when AUTOVIBE_WORKER_PROVIDERS names them). */
    private readonly late: {
      pending: Map<ProviderId, ComputeProvider>;
      serve: (provider: ProviderId) => Promise<{ workers: Worker[]; queues: ServedQueue[] }>;
    } | null = null,
  ) {}

  private track(w: Worker) {
    const run = w.run();
    // Any worker failing ends run() at once, as Promise.all did.
    run.catch((e: unknown) => this.failed?.(e));
    this.runs.push(run.catch(() => undefined));
  }

  /**
   * A provider that becomes available after start (a Docker/podman socket that appears, a runtime
   * installed meanwhile) gets its machine and host queues served without a restart.
   */
  async serveLateProviders(): Promise<ProviderId[]> {
    if (!this.late) return [];
    const started: ProviderId[] = [];
    for (const [id, provider] of this.late.pending) {
      if (this.stopping) break;
      const a = await provider.availability().catch(() => ({ available: false }));
      if (!a.available || this.stopping) continue;
      this.late.pending.delete(id);
      const more = await this.late.serve(id);
      this.queues.push(...more.queues);
      for (const w of more.workers) {
        this.workers.push(w);
        this.track(w);
      }
      started.push(id);
    }
    return started;
  }

  get servesControl(): boolean {
    return this.queues.some((q) => q.role === 'control');
  }

  async run(): Promise<void> {
    const refresh = setInterval(() => void recordServedQueues(this.db, this.queues, new Date()).catch(() => undefined), SERVED_REFRESH_MS);
    const grow = this.late ? setInterval(() => void this.serveLateProviders().catch(() => undefined), LATE_PROVIDER_CHECK_MS) : undefined;
    const failure = new Promise<never>((_, reject) => (this.failed = reject));
    try {
      for (const w of this.workers) this.track(w);
      // Workers added meanwhile (late providers) are awaited too: the list grows while this waits.
      const all = (async () => {
        for (let i = 0; i < this.runs.length; i++) await this.runs[i];
      })();
      await Promise.race([all, failure]);
    } finally {
      this.stopping = true;
      clearInterval(refresh);
      if (grow) clearInterval(grow);
    }
  }

  shutdown(): void {
    this.stopping = true;
    for (const w of this.workers) if (w.getState() === 'RUNNING') w.shutdown();
  }

  getState(): ReturnType<Worker['getState']> {
    return this.workers.some((w) => w.getState() === 'RUNNING') ? 'RUNNING' : (this.workers[0]?.getState() ?? 'STOPPED');
  }
}

/** The worker(s) of one process: the control queue and/or the machine queues, by AUTOVIBE_WORKER_ROLES. */
export async function createWorker(opts: WorkerOptions): Promise<PlatformWorker> {
  const providers = opts.providers ?? createProviders(opts.config);
  // The api places machines by what workers report; the reconcile schedule keeps it fresh.
  const roles = opts.config.worker.roles;
  // The api places machines by what machine workers report; the reconcile schedule keeps it fresh.
  const status = roles.includes('machines') ? await publishProviderStatus(opts.db, providers) : [];
  // Unless told which, the machine queues of the providers this host can run now.
  const served = (opts.config.worker.providers ?? status.filter((s) => s.available).map((s) => s.id)).filter((p) => providers.has(p));
  const queues = servedQueues(opts.config, served);
  if (!queues.length)
    throw new Error('this worker serves no task queue: no provider is available on this host (AUTOVIBE_WORKER_PROVIDERS names the ones to serve)');
  await recordServedQueues(opts.db, queues, new Date());
  const activities = createActivities({
    db: opts.db,
    config: opts.config,
    log: opts.log,
    providers,
    temporal: new Client({ connection: opts.connection, namespace: opts.config.temporalNamespace }),
  });
  const common = {
    connection: opts.connection,
    namespace: opts.config.temporalNamespace,
    activities,
    // On shutdown (SIGTERM/SIGINT, Worker.shutdown()) running activities are told at once: a machine's
    // run hands the machine over (activities/machines/supervise.ts), then the worker drains; past the
    // grace period it gives up and run() throws, and the process exits.
    shutdownGraceTime: 0,
    shutdownForceTime: opts.config.shutdownGraceSeconds * 1000,
    interceptors: { activity: [countActivityFailures] },
  };
  const workers: Worker[] = [];
  const machineWorkers = async (machineQueues: ServedQueue[]) => {
    const out: Worker[] = [];
    for (const { name: taskQueue } of machineQueues) {
      // Activities only (no workflows): these pollers never take a workflow task.
      out.push(
        await Worker.create({
          ...common,
          taskQueue,
          maxConcurrentActivityTaskExecutions: opts.config.worker.machineConcurrency,
          maxConcurrentActivityTaskPolls: Math.min(2, opts.config.worker.machineConcurrency),
        }),
      );
    }
    return out;
  };
  for (const { name: taskQueue } of queues.filter((q) => q.role === 'control')) {
    workers.push(
      await Worker.create({
        ...common,
        taskQueue,
        ...(opts.workflowBundle ? { workflowBundle: opts.workflowBundle } : { workflowBundle: await bundleWorkflows() }),
        ...workerTuning(opts.config),
      }),
    );
  }
  workers.push(...(await machineWorkers(queues.filter((q) => q.role === 'machines'))));
  // Unless the providers are named, one not available at start is served once it is.
  const pending = new Map([...providers].filter(([id]) => roles.includes('machines') && !opts.config.worker.providers && !served.includes(id)));
  const late = pending.size
    ? {
        pending,
        serve: async (provider: ProviderId) => {
          const more = servedQueues({ ...opts.config, worker: { ...opts.config.worker, roles: ['machines'] } }, [provider]);
          await recordServedQueues(opts.db, more, new Date());
          await publishProviderStatus(opts.db, new Map([[provider, providers.get(provider)!]]));
          opts.log.info({ provider, queues: more.map((q) => q.name) }, 'provider available: serving its queues');
          return { workers: await machineWorkers(more), queues: more };
        },
      }
    : null;
  return new PlatformWorker(workers, queues, opts.db, late);
}

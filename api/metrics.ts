import crypto from 'node:crypto';
import type { Client } from '@temporalio/client';
import type express from 'express';
import { Gauge, Histogram, Registry, register as processRegistry } from 'prom-client';
import type { Db } from '../store/db.js';
import { machinesByStatus, openReservations, spendByCurrency } from '../store/metrics.js';
import { ApiError } from './errors.js';

/** The Temporal task queues whose backlog /metrics reports: asked for at each scrape (workers come and go). */
export interface QueueSource {
  client: Client;
  namespace: string;
  taskQueues: () => Promise<readonly string[]>;
}

// temporal.api.enums.v1 values (TaskQueueType WORKFLOW/ACTIVITY, TaskQueueKind NORMAL), written
// out: @temporalio/proto is only a transitive dependency.
const QUEUE_KINDS = [
  ['workflow', 1],
  ['activity', 2],
] as const;
const TASK_QUEUE_KIND_NORMAL = 1;

/**
 * Prometheus metrics of one api: request latency (by route template, method, status) measured
 * here, and platform gauges read from the database at scrape time (cheap GROUP BYs), so every
 * api replica reports the same platform totals. Money is exposed in major units as floats: the
 * ledger (GET /v1/projects/:id/costs) stays the exact figure. Queue depth is asked of Temporal
 * (DescribeTaskQueue with reportStats) at scrape time too.
 */
export function createMetrics(db: Db, queues?: QueueSource) {
  const registry = new Registry();
  const latency = new Histogram({
    name: 'autovibe_api_request_duration_seconds',
    help: 'API request latency by route template, method and status',
    labelNames: ['route', 'method', 'status'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  // The database gauges are read together once per scrape (every gauge's collect awaits the same
  // read: the registry collects metrics concurrently) and reset, so vanished labels go.
  let reading: Promise<void> | null = null;
  const refresh = () => (reading ??= read().finally(() => (reading = null)));
  const collect = async () => void (await refresh());
  const machines = new Gauge({ name: 'autovibe_machines', help: 'Machines by status', labelNames: ['status'] as const, registers: [registry], collect });
  const reservations = new Gauge({
    name: 'autovibe_open_reservations',
    help: 'Reservations holding money, by budget currency and scope (project or cost center)',
    labelNames: ['currency', 'scope'] as const,
    registers: [registry],
    collect,
  });
  const reserved = new Gauge({
    name: 'autovibe_reserved_amount',
    help: 'Money held by open reservations, in major units, by budget currency and scope',
    labelNames: ['currency', 'scope'] as const,
    registers: [registry],
    collect,
  });
  const spend = new Gauge({
    name: 'autovibe_spend_total',
    help: 'All money ever charged (the cost log), in major units, by currency; only grows',
    labelNames: ['currency'] as const,
    registers: [registry],
    collect,
  });
  // Asked separately from the database gauges: Temporal being down must not hide them (and vice versa).
  const backlog = new Gauge({
    name: 'autovibe_task_queue_backlog',
    help: 'Tasks waiting in a Temporal task queue for a worker (approximate, as Temporal reports it), by queue and kind',
    labelNames: ['queue', 'kind'] as const,
    registers: [registry],
    collect: async () => {
      backlog.reset();
      if (!queues) return;
      const names = await queues.taskQueues();
      const reads = names.flatMap((queue) =>
        QUEUE_KINDS.map(async ([kind, taskQueueType]) => {
          const res = await queues.client.workflowService.describeTaskQueue({
            namespace: queues.namespace,
            taskQueue: { name: queue, kind: TASK_QUEUE_KIND_NORMAL },
            taskQueueType,
            reportStats: true,
          });
          backlog.set({ queue, kind }, Number(res.stats?.approximateBacklogCount ?? 0));
        }),
      );
      // A queue Temporal does not answer for has no sample (unknown), rather than a false 0.
      await Promise.allSettled(reads);
    },
  });
  async function read(): Promise<void> {
    const [byStatus, open, spent] = await Promise.all([machinesByStatus(db), openReservations(db), spendByCurrency(db)]);
    for (const g of [machines, reservations, reserved, spend]) g.reset();
    for (const m of byStatus) machines.set({ status: m.status }, m.count);
    for (const r of open) {
      reservations.set({ currency: r.currency, scope: r.scope }, r.count);
      reserved.set({ currency: r.currency, scope: r.scope }, Number(r.amount));
    }
    for (const x of spent) spend.set({ currency: x.currency }, Number(x.amount));
  }

  /** Times every request; the label is the route template (`/v1/machines/:id`), never the raw path. */
  const measure: express.RequestHandler = (req, res, next) => {
    const end = latency.startTimer();
    res.on('finish', () => {
      const template = req.route?.path;
      const route = typeof template === 'string' ? `${req.originalUrl.startsWith('/v1/') ? '/v1' : ''}${template}` : 'unmatched';
      end({ route, method: req.method, status: String(res.statusCode) });
    });
    next();
  };

  /** GET /metrics: this api's metrics and the process-wide ones (worker activity failures when in-process). */
  const handler =
    (token: string | undefined): express.RequestHandler =>
    async (req, res, next) => {
      try {
        if (token && !sameSecret(req.get('authorization') ?? '', `Bearer ${token}`)) {
          throw new ApiError(401, 'unauthenticated', 'GET /metrics needs Authorization: Bearer <AUTOVIBE_METRICS_TOKEN>');
        }
        const [own, process] = await Promise.all([registry.metrics(), processRegistry.metrics()]);
        res.set('content-type', registry.contentType).send(`${own}\n${process}`);
      } catch (err) {
        next(err);
      }
    };

  return { registry, measure, handler };
}

function sameSecret(given: string, expected: string): boolean {
  const a = crypto.createHash('sha256').update(given).digest();
  const b = crypto.createHash('sha256').update(expected).digest();
  return crypto.timingSafeEqual(a, b);
}

import crypto from 'node:crypto';
import express, { type Express, type Router } from 'express';
import { rateLimit } from 'express-rate-limit';
import { requireApiKey } from './auth.js';
import type { ApiContext } from './context.js';
import { ApiError, BODY_LIMIT, errorMiddleware, MESSAGES } from './errors.js';
import { inputGuard } from './input-guard.js';
import { createMetrics } from './metrics.js';
import { servedQueuesSince } from '../store/compute.js';
import { idempotency } from './idempotency.js';
import { openApiDocument } from './openapi.js';
import { alertRoutes } from './routes/alerts.js';
import { auditRoutes } from './routes/audit.js';
import { backupRoutes } from './routes/backups.js';
import { recoveryRoutes } from './routes/recoveries.js';
import { checkpointRoutes } from './routes/checkpoints.js';
import { machineRoutes } from './routes/machines.js';
import { objectiveRoutes } from './routes/objectives.js';
import { pipelineRoutes } from './routes/pipelines.js';
import { schedulingRoutes } from './routes/scheduling.js';
import { routingRoutes } from './routes/routing.js';
import { roiRoutes } from './routes/roi.js';
import { reallocationRoutes } from './routes/reallocation.js';
import { predictionRoutes } from './routes/predictions.js';
import { paymentRoutes } from './routes/payments.js';
import { projectRoutes } from './routes/projects.js';
import { projectViewRoutes } from './routes/project-views.js';
import { fxRoutes } from './routes/fx.js';
import { costCenterRoutes } from './routes/cost-centers.js';
import { forecastRoutes } from './routes/forecasts.js';
import { analyticsRoutes } from './routes/analytics.js';
import { createFxService } from '../fx/service.js';
import { keyRoutes } from './routes/keys.js';
import { webhookRoutes } from './routes/webhooks.js';
import { gitRemoteRoutes } from './routes/git-remotes.js';
import { integrationRoutes } from './routes/integrations.js';
import { hookRoutes } from './hooks.js';
import { watchRoutes } from './routes/watch.js';
import { graphqlRoutes } from './routes/graphql.js';
import type { RouteGroup, RouteSpec } from './routes/table.js';
import { batchRoutes, type BatchTarget } from './routes/batch.js';
import { pingDatabase } from '../store/db.js';
import { dashboardRoutes } from './dashboard.js';

/**
 * Every /v1 route group. A route outside these has no declared permission and cannot be added.
 * `batch` is where POST /v1/batch sends its operations: the app these groups are mounted in.
 */
function routeGroups(ctx: ApiContext, batch: BatchTarget = {}): RouteGroup[] {
  return [
    projectRoutes(ctx),
    projectViewRoutes(ctx),
    machineRoutes(ctx),
    checkpointRoutes(ctx),
    objectiveRoutes(ctx),
    pipelineRoutes(ctx),
    auditRoutes(ctx),
    backupRoutes(ctx),
    recoveryRoutes(ctx),
    alertRoutes(ctx),
    schedulingRoutes(ctx),
    routingRoutes(ctx),
    roiRoutes(ctx),
    predictionRoutes(ctx),
    fxRoutes(ctx, ctx.fx ?? createFxService(ctx)),
    costCenterRoutes(ctx),
    reallocationRoutes(ctx),
    forecastRoutes(ctx),
    analyticsRoutes(ctx),
    paymentRoutes(ctx),
    keyRoutes(ctx),
    webhookRoutes(ctx),
    gitRemoteRoutes(ctx),
    integrationRoutes(ctx),
    watchRoutes(ctx),
    batchRoutes(ctx, batch),
    graphqlRoutes(ctx),
  ];
}

/** The route table: every /v1 route with its declared access (the permission matrix test reads it). */
export function routeTable(ctx: ApiContext): RouteSpec[] {
  return routeGroups(ctx).flatMap((g) => g.specs);
}

/** Each operation of the document names the permission its route declares (`x-permission`). */
function withPermissions<D extends { paths: Record<string, Record<string, Record<string, unknown>>> }>(doc: D, routes: RouteSpec[]): D {
  for (const r of routes) {
    const op = doc.paths[r.path.replace(/[:*](\w+)/g, '{$1}')]?.[r.method];
    if (op) Object.assign(op, { 'x-permission': r.access.permission, ...(r.access.deploymentWide ? { 'x-deployment-wide': true } : {}) });
  }
  return doc;
}

/** Per API key, per process: a runaway script gets 429 with Retry-After, not the database. */
function perKeyRateLimit(limit: number): express.RequestHandler {
  const windowMs = 60_000;
  return rateLimit({
    windowMs,
    limit,
    standardHeaders: 'draft-7',
    legacyHeaders: false,
    keyGenerator: (req) => req.principal?.apiKeyId ?? 'anonymous',
    handler: (req, res, next) => {
      const reset = (req as express.Request & { rateLimit?: { resetTime?: Date } }).rateLimit?.resetTime;
      const seconds = Math.max(1, Math.ceil(((reset?.getTime() ?? Date.now() + windowMs) - Date.now()) / 1000));
      res.set('Retry-After', String(seconds));
      next(new ApiError(429, 'rate_limited', MESSAGES.rateLimited(limit, windowMs / 1000), { retryAfterSeconds: seconds }));
    },
  });
}

/** The REST api: `/healthz`, `/readyz` and `/metrics` without an API key, everything else under `/v1` behind one. */
export function createApp(given: ApiContext): Express {
  const ctx: ApiContext = { ...given, fx: given.fx ?? createFxService(given) };
  const app = express();
  app.disable('x-powered-by');
  app.use((req, res, next) => {
    req.requestId = req.get('x-request-id')?.slice(0, 100) || crypto.randomUUID();
    res.set('x-request-id', req.requestId);
    next();
  });
  // Trackers' signed hooks (no API key): their raw bodies are verified before any parsing.
  app.use(hookRoutes(ctx));
  app.use(express.json({ limit: BODY_LIMIT }));
  app.use(inputGuard());

  // The control queue, and every queue a worker served within the last day (machine queues, host queues included).
  const taskQueues = async () => {
    const served = await servedQueuesSince(ctx.db, new Date(Date.now() - 24 * 3600_000)).catch(() => []);
    return [...new Set([ctx.config.taskQueue, ...served.map((q) => q.name)])];
  };
  const metrics = createMetrics(ctx.db, { client: ctx.temporal, namespace: ctx.config.temporalNamespace, taskQueues });
  app.use(metrics.measure);
  // Liveness: the process is up and serving. Cheap and dependency-free, so a slow database does not get it restarted.
  app.get('/healthz', (_req, res) => void res.json({ api: 'ok' }));
  // Readiness: the database and Temporal answer; 503 with the reasons while they do not.
  app.get('/readyz', async (_req, res) => {
    const [db, temporal] = await Promise.all([
      pingDatabase(ctx.db).then(
        () => 'ok',
        (e: Error) => `error: ${e.message}`,
      ),
      ctx.temporal.connection.workflowService.getSystemInfo({}).then(
        () => 'ok',
        (e: Error) => `error: ${e.message}`,
      ),
    ]);
    res.status(db === 'ok' && temporal === 'ok' ? 200 : 503).json({ api: 'ok', db, temporal });
  });
  // Prometheus: no API key (operators keep it off the public network, or set AUTOVIBE_METRICS_TOKEN).
  app.get('/metrics', metrics.handler(ctx.config.metricsToken));

  const v1 = express.Router();
  v1.use(requireApiKey(ctx.db));
  v1.use(perKeyRateLimit(ctx.config.rateLimitPerMinute));
  v1.use(idempotency(ctx.db, ctx.config.idempotency));
  const routes = routeTable(ctx);
  const doc = withPermissions(openApiDocument(routes), routes);
  v1.get('/openapi.json', (_req, res) => void res.json(doc));
  // POST /v1/batch runs each of its operations through this whole app, as a request of its own.
  const batch: BatchTarget = { app };
  for (const group of routeGroups(ctx, batch)) v1.use(group.router as Router);
  app.use('/v1', v1);
  // The web dashboard: a client of /v1 like any other (it logs in with an API key).
  app.use(dashboardRoutes({ temporalUiUrl: ctx.config.temporalUiUrl, temporalNamespace: ctx.config.temporalNamespace }, ctx.log));

  app.use((req, _res, next) => next(new ApiError(404, 'not_found', MESSAGES.routeNotFound(req.method, req.path))));
  app.use(errorMiddleware(ctx.log));
  return app;
}

import crypto from 'node:crypto';
import express, { type Express } from 'express';
import { requireApiKey } from './auth.js';
import type { ApiContext } from './context.js';
import { ApiError, BODY_LIMIT, errorMiddleware, MESSAGES } from './errors.js';
import { inputGuard } from './input-guard.js';
import { idempotency } from './idempotency.js';
import { openApiDocument } from './openapi.js';
import { auditRoutes } from './routes/audit.js';
import { checkpointRoutes } from './routes/checkpoints.js';
import { machineRoutes } from './routes/machines.js';
import { objectiveRoutes } from './routes/objectives.js';
import { pipelineRoutes } from './routes/pipelines.js';
import { schedulingRoutes } from './routes/scheduling.js';
import { paymentRoutes } from './routes/payments.js';
import { projectRoutes } from './routes/projects.js';
import { fxRoutes } from './routes/fx.js';
import { costCenterRoutes } from './routes/cost-centers.js';
import { createFxService } from '../fx/service.js';

/** The REST api: `/healthz` without auth, everything else under `/v1` behind an API key. */
export function createApp(given: ApiContext): Express {
  const ctx: ApiContext = { ...given, fx: given.fx ?? createFxService(given) };
  const app = express();
  app.disable('x-powered-by');
  app.use((req, res, next) => {
    req.requestId = req.get('x-request-id')?.slice(0, 100) || crypto.randomUUID();
    res.set('x-request-id', req.requestId);
    next();
  });
  app.use(express.json({ limit: BODY_LIMIT }));
  app.use(inputGuard());

  app.get('/healthz', async (_req, res) => {
    const [db, temporal] = await Promise.all([
      ctx.db.raw('select 1').then(
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

  const v1 = express.Router();
  v1.use(requireApiKey(ctx.db));
  v1.use(idempotency(ctx.db, ctx.config.idempotency));
  const doc = openApiDocument();
  v1.get('/openapi.json', (_req, res) => void res.json(doc));
  v1.use(projectRoutes(ctx));
  v1.use(machineRoutes(ctx));
  v1.use(checkpointRoutes(ctx));
  v1.use(objectiveRoutes(ctx));
  v1.use(pipelineRoutes(ctx));
  v1.use(auditRoutes(ctx));
  v1.use(schedulingRoutes(ctx));
  v1.use(fxRoutes(ctx, ctx.fx!));
  v1.use(costCenterRoutes(ctx));
  v1.use(paymentRoutes(ctx));
  app.use('/v1', v1);

  app.use((req, _res, next) => next(new ApiError(404, 'not_found', MESSAGES.routeNotFound(req.method, req.path))));
  app.use(errorMiddleware(ctx.log));
  return app;
}

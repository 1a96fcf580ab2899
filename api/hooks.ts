import express, { type Router } from 'express';
import { rateLimit } from 'express-rate-limit';
import { receiveHook } from '../services/integrations.js';
import type { ApiContext } from './context.js';
import { ApiError, BODY_LIMIT, MESSAGES } from './errors.js';

/**
 * Per integration (kind and id), per process, before the body is read: a flood at one hook URL
 * (a tracker's retry storm, or someone guessing) gets 429 and never reaches the database.
 */
function perIntegrationRateLimit(limit: number): express.RequestHandler {
  const windowMs = 60_000;
  return rateLimit({
    windowMs,
    limit,
    standardHeaders: 'draft-7',
    legacyHeaders: false,
    keyGenerator: (req) => `${String(req.params.kind)}:${String(req.params.integrationId)}`,
    handler: (req, res, next) => {
      const reset = (req as express.Request & { rateLimit?: { resetTime?: Date } }).rateLimit?.resetTime;
      const seconds = Math.max(1, Math.ceil(((reset?.getTime() ?? Date.now() + windowMs) - Date.now()) / 1000));
      res.set('Retry-After', String(seconds));
      next(new ApiError(429, 'rate_limited', MESSAGES.hookRateLimited(limit, windowMs / 1000), { retryAfterSeconds: seconds }));
    },
  });
}

/**
 * Incoming hooks of integrations (GitHub's webhooks now): `POST /hooks/:kind/:integrationId`,
 * without an API key — each is authenticated by its signature over the raw body, which is kept
 * as bytes here (never parsed first) and checked by the kind's verifier (services/integrations.ts
 * INBOUND). Mounted before the JSON body parser and the /v1 key check.
 */
export function hookRoutes(ctx: ApiContext): Router {
  const r = express.Router();
  r.post(
    '/hooks/:kind/:integrationId',
    perIntegrationRateLimit(ctx.config.hookRateLimitPerMinute),
    express.raw({ type: () => true, limit: BODY_LIMIT }),
    async (req, res) => {
      const headers: Record<string, string | undefined> = {};
      for (const [k, v] of Object.entries(req.headers)) headers[k] = Array.isArray(v) ? v[0] : v;
      const raw = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      const answer = await receiveHook(ctx, String(req.params.kind), String(req.params.integrationId), headers, raw);
      res.status(answer.status).json(answer.body);
    },
  );
  return r;
}

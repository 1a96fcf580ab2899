import express, { type Router } from 'express';
import { receiveHook } from '../services/integrations.js';
import type { ApiContext } from './context.js';
import { BODY_LIMIT } from './errors.js';

/**
 * Incoming hooks of integrations (GitHub's webhooks now): `POST /hooks/:kind/:integrationId`,
 * without an API key — each is authenticated by its signature over the raw body, which is kept
 * as bytes here (never parsed first) and checked by the kind's verifier (services/integrations.ts
 * INBOUND). Mounted before the JSON body parser and the /v1 key check.
 */
export function hookRoutes(ctx: ApiContext): Router {
  const r = express.Router();
  r.post('/hooks/:kind/:integrationId', express.raw({ type: () => true, limit: BODY_LIMIT }), async (req, res) => {
    const headers: Record<string, string | undefined> = {};
    for (const [k, v] of Object.entries(req.headers)) headers[k] = Array.isArray(v) ? v[0] : v;
    const raw = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const answer = await receiveHook(ctx, String(req.params.kind), String(req.params.integrationId), headers, raw);
    res.status(answer.status).json(answer.body);
  });
  return r;
}

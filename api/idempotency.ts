import crypto from 'node:crypto';
import type { RequestHandler } from 'express';
import type { Db } from '../store/db.js';
import { findStoredResponse, storeResponse } from '../store/idempotency.js';
import { idFromName } from '../store/ids.js';
import { ApiError, MESSAGES } from './errors.js';

/**
 * Honours `Idempotency-Key` on POST: the first response (below 500) is stored per api key and
 * replayed for a repeat of the same request; the same key with another body is refused.
 */
export function idempotency(db: Db): RequestHandler {
  return async (req, res, next) => {
    const key = req.get('idempotency-key');
    if (req.method !== 'POST' || !key || !req.principal) return next();
    if (key.length > 200) return next(new ApiError(400, 'invalid_request', 'Idempotency-Key: at most 200 characters'));
    const apiKeyId = req.principal.apiKeyId;
    const requestHash = crypto
      .createHash('sha256')
      .update(`${req.method} ${req.originalUrl}\n${JSON.stringify(req.body ?? null)}`)
      .digest('hex');
    const stored = await findStoredResponse(db, apiKeyId, key);
    if (stored) {
      if (stored.requestHash !== requestHash) return next(new ApiError(422, 'idempotency_key_reused', MESSAGES.idempotencyMismatch));
      res.set('Idempotent-Replayed', 'true');
      res.status(stored.status).json(stored.body);
      return;
    }
    const json = res.json.bind(res);
    res.json = (body: unknown) => {
      if (res.statusCode < 500) {
        void storeResponse(db, { apiKeyId, key, method: req.method, path: req.originalUrl, requestHash, status: res.statusCode, body }).catch(() => undefined);
      }
      return json(body);
    };
    next();
  };
}

/** A stable id derived from the caller's Idempotency-Key, so a retried POST names the same work. */
export function idFromIdempotencyKey(prefix: string, apiKeyId: string, key: string | undefined): string {
  if (!key) return `${prefix}-${crypto.randomUUID()}`;
  return idFromName(prefix, `${apiKeyId}\0${prefix}\0${key}`);
}

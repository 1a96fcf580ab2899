import crypto from 'node:crypto';
import type { RequestHandler } from 'express';
import type { Db } from '../store/db.js';
import { completeKey, releaseKey, reserveKey, type StoredResponse } from '../store/idempotency.js';
import { ApiError, MESSAGES } from './errors.js';

export interface IdempotencyOptions {
  /** How long a request waits for a concurrent one holding its key before answering 409. */
  waitMs: number;
  /** A key held longer than this is presumed abandoned (its process died) and may be taken over. */
  staleAfterSeconds: number;
}

const POLL_MS = 100;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Honours `Idempotency-Key` on POST, atomically: the key is reserved in the database (a pending
 * row, insert-if-absent) before the route runs, so of two concurrent requests with one key only
 * one runs. The other waits for its response and replays it, or after `waitMs` gets
 * `409 idempotency_in_progress` with Retry-After. A response below 500 is kept and replayed for
 * every repeat; a 5xx gives the key back. The same key with another request is refused (422).
 */
export function idempotency(db: Db, opts: IdempotencyOptions = { waitMs: 10_000, staleAfterSeconds: 300 }): RequestHandler {
  return async (req, res, next) => {
    const key = req.get('idempotency-key');
    if (req.method !== 'POST' || !key || !req.principal) return next();
    if (key.length > 200) return next(new ApiError(400, 'invalid_request', 'Idempotency-Key: at most 200 characters'));
    const ref = { apiKeyId: req.principal.apiKeyId, key };
    const requestHash = crypto
      .createHash('sha256')
      .update(`${req.method} ${req.originalUrl}\n${JSON.stringify(req.body ?? null)}`)
      .digest('hex');
    const replay = (stored: StoredResponse) => {
      res.set('Idempotent-Replayed', 'true');
      res.status(stored.status).json(stored.body);
    };
    try {
      const deadline = Date.now() + opts.waitMs;
      for (;;) {
        const found = await reserveKey(db, { ...ref, method: req.method, path: req.originalUrl, requestHash, staleAfterSeconds: opts.staleAfterSeconds });
        if (found.kind === 'reserved') break;
        if (found.kind === 'done') {
          if (found.response.requestHash !== requestHash) return next(new ApiError(422, 'idempotency_key_reused', MESSAGES.idempotencyMismatch));
          return replay(found.response);
        }
        if (found.kind === 'pending') {
          if (found.requestHash !== requestHash) return next(new ApiError(422, 'idempotency_key_reused', MESSAGES.idempotencyMismatch));
          if (Date.now() >= deadline) {
            res.set('Retry-After', '1');
            return next(new ApiError(409, 'idempotency_in_progress', MESSAGES.idempotencyInProgress));
          }
          await sleep(POLL_MS);
        }
        // 'gone': the holder failed and gave the key back; try to reserve it again.
      }
    } catch (err) {
      return next(err);
    }

    // This request holds the key: keep its JSON response before sending it, so a repeat that
    // arrives the moment the caller has the answer replays it.
    let settled = false;
    const json = res.json.bind(res);
    res.json = (body: unknown) => {
      settled = true;
      const status = res.statusCode;
      const keep = status < 500 ? completeKey(db, { ...ref, status, body }) : releaseKey(db, ref);
      void keep
        .catch(() => releaseKey(db, ref).catch(() => undefined))
        .then(() => json(body))
        .catch((err: unknown) => res.destroy(err as Error));
      return res;
    };
    res.on('close', () => {
      if (!settled) void releaseKey(db, ref).catch(() => undefined);
    });
    next();
  };
}

import type { Db } from './db.js';

export interface StoredResponse {
  requestHash: string;
  status: number;
  body: unknown;
}

export interface KeyRef {
  apiKeyId: string;
  key: string;
}

/** What reserving a key found: this request runs it, or another one holds or has answered it. */
export type Reservation = { kind: 'reserved' } | { kind: 'pending'; requestHash: string } | { kind: 'done'; response: StoredResponse } | { kind: 'gone' };

/**
 * Reserves (api key, Idempotency-Key) for this request: an insert-if-absent of a pending row, so
 * among concurrent requests exactly one gets `reserved`. A pending row older than
 * `staleAfterSeconds` (its process died mid-request) is taken over by a request with the same hash.
 */
export async function reserveKey(db: Db, r: KeyRef & { method: string; path: string; requestHash: string; staleAfterSeconds: number }): Promise<Reservation> {
  const inserted = await db('idempotent_requests')
    .insert({ api_key_id: r.apiKeyId, key: r.key, method: r.method, path: r.path, request_hash: r.requestHash, state: 'pending', status: null, body: null })
    .onConflict(['api_key_id', 'key'])
    .ignore()
    .returning('key');
  if (inserted.length > 0) return { kind: 'reserved' };
  const takenOver = await db('idempotent_requests')
    .where({ api_key_id: r.apiKeyId, key: r.key, state: 'pending', request_hash: r.requestHash })
    .andWhereRaw(`locked_at < now() - make_interval(secs => ?)`, [r.staleAfterSeconds])
    .update({ locked_at: db.fn.now() })
    .returning('key');
  if (takenOver.length > 0) return { kind: 'reserved' };
  const row = await db('idempotent_requests').where({ api_key_id: r.apiKeyId, key: r.key }).first();
  if (!row) return { kind: 'gone' };
  if (row.state === 'pending') return { kind: 'pending', requestHash: row.request_hash };
  return {
    kind: 'done',
    response: { requestHash: row.request_hash, status: row.status, body: typeof row.body === 'string' ? JSON.parse(row.body) : row.body },
  };
}

/** Records the response of the request holding the reservation. */
export async function completeKey(db: Db, r: KeyRef & { status: number; body: unknown }): Promise<void> {
  await db('idempotent_requests')
    .where({ api_key_id: r.apiKeyId, key: r.key, state: 'pending' })
    .update({ state: 'done', status: r.status, body: JSON.stringify(r.body ?? null) });
}

/** Gives the key back (the request failed with a 5xx, or answered without a JSON body): a retry runs anew. */
export async function releaseKey(db: Db, r: KeyRef): Promise<void> {
  await db('idempotent_requests').where({ api_key_id: r.apiKeyId, key: r.key, state: 'pending' }).delete();
}

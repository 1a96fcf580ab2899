import type { Db } from './db.js';

export interface StoredResponse {
  requestHash: string;
  status: number;
  body: unknown;
}

/** The response first given to (api key, Idempotency-Key), if any. */
export async function findStoredResponse(db: Db, apiKeyId: string, key: string): Promise<StoredResponse | null> {
  const row = await db('idempotent_requests').where({ api_key_id: apiKeyId, key }).first();
  if (!row) return null;
  return { requestHash: row.request_hash, status: row.status, body: typeof row.body === 'string' ? JSON.parse(row.body) : row.body };
}

export async function storeResponse(
  db: Db,
  r: { apiKeyId: string; key: string; method: string; path: string; requestHash: string; status: number; body: unknown },
): Promise<void> {
  await db('idempotent_requests')
    .insert({
      api_key_id: r.apiKeyId,
      key: r.key,
      method: r.method,
      path: r.path,
      request_hash: r.requestHash,
      status: r.status,
      body: JSON.stringify(r.body ?? null),
    })
    .onConflict(['api_key_id', 'key'])
    .ignore();
}

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { createDb, migrateLatest, type Db } from '../../store/db.js';
import { completeKey, releaseKey, reserveKey } from '../../store/idempotency.js';
import { freshDatabase } from '../support/platform.js';

describe('store: idempotency key reservations (real PostgreSQL)', function () {
  let db: Db;
  before(async () => {
    db = await createDb({ databaseUrl: await freshDatabase('idempotency') });
    await migrateLatest(db);
  });
  after(async () => {
    await db?.destroy();
  });

  const request = (key: string, requestHash = 'h1') => ({ apiKeyId: 'key-1', key, method: 'POST', path: '/v1/projects', requestHash, staleAfterSeconds: 60 });

  it('reserves a key for exactly one of many concurrent callers', async () => {
    const key = crypto.randomUUID();
    const results = await Promise.all(Array.from({ length: 20 }, () => reserveKey(db, request(key))));
    assert.equal(results.filter((r) => r.kind === 'reserved').length, 1);
    assert.ok(results.every((r) => r.kind === 'reserved' || (r.kind === 'pending' && r.requestHash === 'h1')));
  });

  it('replays the stored response once done, and gives the key back when released', async () => {
    const key = crypto.randomUUID();
    assert.equal((await reserveKey(db, request(key))).kind, 'reserved');
    await completeKey(db, { apiKeyId: 'key-1', key, status: 201, body: { id: 'x' } });
    assert.deepEqual(await reserveKey(db, request(key)), { kind: 'done', response: { requestHash: 'h1', status: 201, body: { id: 'x' } } });
    const other = crypto.randomUUID();
    assert.equal((await reserveKey(db, request(other))).kind, 'reserved');
    await releaseKey(db, { apiKeyId: 'key-1', key: other });
    assert.equal((await reserveKey(db, request(other))).kind, 'reserved');
  });

  it('lets a retry of the same request take over a key whose holder died, never one of another request', async () => {
    const key = crypto.randomUUID();
    assert.equal((await reserveKey(db, request(key))).kind, 'reserved');
    assert.equal((await reserveKey(db, request(key))).kind, 'pending', 'still fresh: held');
    await db('idempotent_requests')
      .where({ key })
      .update({ locked_at: db.raw(`now() - interval '61 seconds'`) });
    assert.deepEqual(await reserveKey(db, request(key, 'h2')), { kind: 'pending', requestHash: 'h1' }, 'another request never takes it over');
    const takers = await Promise.all(Array.from({ length: 5 }, () => reserveKey(db, request(key))));
    assert.equal(takers.filter((r) => r.kind === 'reserved').length, 1, 'one retry takes it over');
  });
});

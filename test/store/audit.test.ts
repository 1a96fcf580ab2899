import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { appendAudit, listAudit, verifyAuditChain, type AuditEntry } from '../../store/audit.js';
import { createDb, migrateLatest, type Db } from '../../store/db.js';
import { freshDatabase } from '../support/platform.js';

const GENESIS = '0'.repeat(64);

function entry(i: number, extra: Partial<AuditEntry> = {}): AuditEntry {
  return {
    actor: `user-${i % 3}`,
    action: 'machine.started',
    subjectType: 'machine',
    subjectId: `m-${i}`,
    projectId: i % 4 === 0 ? null : `p-${i % 2}`,
    details: { i, nested: { z: 1, a: [i, 'x', { k: true }] }, amount: '0.10' },
    ...extra,
  };
}

async function rows(db: Db) {
  return db('audit_log').orderBy('seq', 'asc');
}

async function newDb(label: string): Promise<Db> {
  const db = await createDb({ databaseUrl: await freshDatabase(label) });
  await migrateLatest(db);
  return db;
}

describe('store/audit (real PostgreSQL)', function () {
  let db: Db;

  before(async function () {
    db = await newDb('audit');
  });

  after(async function () {
    await db?.destroy();
  });

  it('an empty log verifies', async function () {
    assert.equal(await verifyAuditChain(db), null);
  });

  it('20 parallel appends form one intact chain', async function () {
    await Promise.all(Array.from({ length: 20 }, (_, i) => appendAudit(db, entry(i))));
    const all = await rows(db);
    assert.equal(all.length, 20);
    assert.deepEqual(all.map((r) => r.subject_id).sort(), Array.from({ length: 20 }, (_, i) => `m-${i}`).sort());
    // Each row links to the one before it, starting from the genesis hash.
    let prev = GENESIS;
    for (const r of all) {
      assert.equal(r.prev_hash, prev, `row ${r.seq} links to its predecessor`);
      assert.match(r.hash, /^[0-9a-f]{64}$/);
      prev = r.hash;
    }
    assert.equal(new Set(all.map((r) => r.hash)).size, 20, 'hashes are distinct');
    assert.equal(await verifyAuditChain(db), null);
  });

  it('keeps verifying after more parallel appends with keys in any order', async function () {
    await Promise.all(
      Array.from({ length: 20 }, (_, i) => appendAudit(db, entry(100 + i, { details: { zeta: i, alpha: { y: [3, 2, 1], b: 'ünïcödé ✓' }, mid: null } }))),
    );
    assert.equal((await rows(db)).length, 40);
    assert.equal(await verifyAuditChain(db), null);
    const listed = await listAudit(db, { subjectId: 'm-105', limit: 10 });
    assert.equal(listed.length, 1);
    assert.deepEqual(listed[0]?.details, { zeta: 5, alpha: { y: [3, 2, 1], b: 'ünïcödé ✓' }, mid: null });
  });

  it('refuses UPDATE and DELETE in the database', async function () {
    const [first] = await rows(db);
    assert.ok(first);
    await assert.rejects(db('audit_log').where({ seq: first.seq }).update({ actor: 'mallory' }), /append-only/);
    await assert.rejects(db('audit_log').where({ seq: first.seq }).delete(), /append-only/);
    await assert.rejects(db('audit_log').delete(), /append-only/);
    await assert.rejects(db.raw(`UPDATE audit_log SET details = '{}'::jsonb`), /append-only/);
    const again = await db('audit_log').where({ seq: first.seq }).first();
    assert.deepEqual(again, first);
    assert.equal((await rows(db)).length, 40);
  });

  it('writes an entry with an idempotency key once, even when appended concurrently', async function () {
    const before = (await rows(db)).length;
    const idempotencyKey = `key-${crypto.randomUUID()}`;
    await appendAudit(db, entry(500, { idempotencyKey }));
    await Promise.all(Array.from({ length: 10 }, () => appendAudit(db, entry(500, { idempotencyKey }))));
    const all = await rows(db);
    assert.equal(all.length, before + 1);
    assert.equal(all.filter((r) => r.idempotency_key === idempotencyKey).length, 1);
    assert.equal(await verifyAuditChain(db), null);
  });

  it('writes nothing when the caller’s transaction rolls back', async function () {
    const before = (await rows(db)).length;
    await assert.rejects(
      db.transaction(async (trx) => {
        await appendAudit(trx, entry(600));
        throw new Error('rollback');
      }),
      /rollback/,
    );
    assert.equal((await rows(db)).length, before);
    await db.transaction(async (trx) => appendAudit(trx, entry(601)));
    assert.equal((await rows(db)).length, before + 1);
    assert.equal(await verifyAuditChain(db), null);
  });

  describe('tampering', function () {
    let tdb: Db;

    beforeEach(async function () {
      tdb = await newDb('audit_tamper');
      for (let i = 0; i < 8; i++) await appendAudit(tdb, entry(i));
      assert.equal(await verifyAuditChain(tdb), null);
    });

    afterEach(async function () {
      await tdb?.destroy();
    });

    /** Runs `sql` with the append-only trigger switched off, as someone with table rights could. */
    async function tamper(sql: string, bindings: readonly unknown[]): Promise<void> {
      await tdb.transaction(async (trx) => {
        await trx.raw('ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_change');
        await trx.raw(sql, bindings as any[]);
        await trx.raw('ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_change');
      });
    }

    it('detects changed details at the changed row', async function () {
      const target = (await rows(tdb))[4];
      assert.ok(target);
      await tamper(`UPDATE audit_log SET details = jsonb_set(details, '{amount}', '"0.01"') WHERE seq = ?`, [target.seq]);
      assert.equal(await verifyAuditChain(tdb), String(target.seq));
      // The trigger is back on.
      await assert.rejects(tdb('audit_log').where({ seq: target.seq }).delete(), /append-only/);
    });

    it('detects a changed actor in the first row', async function () {
      const target = (await rows(tdb))[0];
      assert.ok(target);
      await tamper(`UPDATE audit_log SET actor = 'someone-else' WHERE seq = ?`, [target.seq]);
      assert.equal(await verifyAuditChain(tdb), String(target.seq));
    });

    it('detects a replaced hash at that row', async function () {
      const target = (await rows(tdb))[2];
      assert.ok(target);
      await tamper(`UPDATE audit_log SET hash = ? WHERE seq = ?`, ['f'.repeat(64), target.seq]);
      assert.equal(await verifyAuditChain(tdb), String(target.seq));
    });

    it('detects a forged row with a valid hash of its own at the row after it', async function () {
      const all = await rows(tdb);
      const target = all[3];
      const next = all[4];
      assert.ok(target && next);
      // Forge a self-consistent row 3: replay rows 0..2 elsewhere and let appendAudit hash the forgery.
      const forge = await newDb('audit_forge');
      let forged: Record<string, any> | undefined;
      try {
        for (const r of all.slice(0, 3)) {
          const { seq: _seq, ...copy } = r;
          await forge('audit_log').insert({ ...copy, details: JSON.stringify(copy.details) });
        }
        await appendAudit(forge, { ...entry(3), actor: 'someone-else' });
        forged = (await rows(forge))[3];
        assert.equal(await verifyAuditChain(forge), null, 'the forged chain is itself valid');
      } finally {
        await forge.destroy();
      }
      assert.ok(forged);
      assert.equal(forged.prev_hash, target.prev_hash);
      await tamper(`UPDATE audit_log SET actor = ?, at = ?, hash = ? WHERE seq = ?`, [forged.actor, forged.at, forged.hash, target.seq]);
      assert.equal(await verifyAuditChain(tdb), String(next.seq));
    });

    it('detects a deleted row at the row after it', async function () {
      const all = await rows(tdb);
      const target = all[5];
      const next = all[6];
      assert.ok(target && next);
      await tamper('DELETE FROM audit_log WHERE seq = ?', [target.seq]);
      assert.equal(await verifyAuditChain(tdb), String(next.seq));
    });

    it('detects a changed timestamp', async function () {
      const target = (await rows(tdb))[7];
      assert.ok(target);
      await tamper(`UPDATE audit_log SET at = at + interval '1 second' WHERE seq = ?`, [target.seq]);
      assert.equal(await verifyAuditChain(tdb), String(target.seq));
    });
  });
});

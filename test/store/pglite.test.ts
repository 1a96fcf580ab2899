import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fromNumeric, parseAmount } from '../../domain/money.js';
import { appendAudit, verifyAuditChain } from '../../store/audit.js';
import { budgetStatus, reserve, setBudget, settle } from '../../store/budgets.js';
import { createDb, isEmbedded, migrateLatest, type Db } from '../../store/db.js';

const usd = (text: string) => parseAmount(text, 'USD');
const NOW = new Date('2026-03-15T12:00:00.000Z');

describe('store on embedded PGlite', function () {
  this.timeout(120_000);
  let home: string;
  let db: Db;

  before(async function () {
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'autovibe-pglite-test-'));
    db = await createDb({ home });
    assert.ok(isEmbedded(db));
    assert.ok((await migrateLatest(db)).length > 0);
  });

  after(async function () {
    await db?.destroy();
    if (home) fs.rmSync(home, { recursive: true, force: true });
  });

  it('admits exactly 10 of 50 concurrent 0.10 reservations on a 1.00 budget', async function () {
    const budget = await setBudget(db, { scopeType: 'project', scopeId: 'p-lite', period: 'daily', limit: usd('1.00'), currency: 'USD' });
    const outcomes = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        reserve(db, { key: `lite-${i}-${crypto.randomUUID()}`, budgetIds: [budget.id], projectId: 'p-lite', amount: usd('0.10'), now: NOW }),
      ),
    );
    assert.equal(outcomes.filter((o) => o.ok).length, 10);
    for (const o of outcomes.filter((x) => !x.ok)) {
      assert.deepEqual(o, { ok: false, budgetId: budget.id, remaining: 0n, limit: usd('1.00') });
    }
    const status = await budgetStatus(db, budget, NOW);
    assert.equal(status.reserved, usd('1.00'));
    assert.equal(status.spent, 0n);
    const rows = await db('reservations').where({ budget_id: budget.id });
    assert.equal(rows.length, 10);
    assert.equal(
      rows.reduce((s, r) => s + fromNumeric(r.amount), 0n),
      usd('1.00'),
    );
  });

  it('keeps 18-decimal amounts exact', async function () {
    const budget = await setBudget(db, {
      scopeType: 'project',
      scopeId: 'p-lite-eth',
      period: 'total',
      limit: parseAmount('12345678901234567890.123456789012345678', 'ETH'),
      currency: 'ETH',
    });
    const amount = parseAmount('0.000000000000000007', 'ETH');
    const k = `lite-eth-${crypto.randomUUID()}`;
    assert.ok((await reserve(db, { key: k, budgetIds: [budget.id], projectId: 'p', amount, now: NOW })).ok);
    assert.equal(await settle(db, k, amount - 1n), amount - 1n);
    const status = await budgetStatus(db, budget, NOW);
    assert.equal(status.spent, 6n);
    assert.equal(status.remaining, budget.limit - 6n);
  });

  it('keeps the audit chain intact under parallel appends and refuses changes', async function () {
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        appendAudit(db, { actor: 'a', action: 'x', subjectType: 's', subjectId: `s-${i}`, details: { i, b: { z: 1, a: 2 } } }),
      ),
    );
    assert.equal((await db('audit_log').count<{ count: string | number }[]>('* as count'))[0]?.count?.toString(), '20');
    assert.equal(await verifyAuditChain(db), null);
    await assert.rejects(db('audit_log').update({ actor: 'm' }), /append-only/);
  });
});

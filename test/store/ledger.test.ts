import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import type { BudgetPeriod } from '../../domain/budget.js';
import { NotFoundError } from '../../domain/errors.js';
import { fromNumeric, parseAmount, type CurrencyCode } from '../../domain/money.js';
import { budgetStatus, findBudget, release, reservationStatus, reserve, setBudget, settle, type Budget } from '../../store/budgets.js';
import { createDb, migrateLatest, type Db } from '../../store/db.js';
import { freshDatabase } from '../support/platform.js';
import { prng } from '../support/prng.js';

const usd = (text: string) => parseAmount(text, 'USD');
const key = (label: string) => `${label}-${crypto.randomUUID()}`;
const NOW = new Date('2026-03-15T12:00:00.000Z');

async function newBudget(db: Db, limit: bigint, period: BudgetPeriod = 'daily', currency: CurrencyCode = 'USD'): Promise<Budget> {
  return setBudget(db, { scopeType: 'project', scopeId: `p-${crypto.randomUUID()}`, period, limit, currency });
}

/** Every window of a budget, read straight from the table. */
async function windows(db: Db, budgetId: string): Promise<Array<{ start: string; spent: bigint; reserved: bigint }>> {
  const rows = await db('budget_windows').where({ budget_id: budgetId }).orderBy('window_start');
  return rows.map((r) => ({ start: new Date(r.window_start).toISOString(), spent: fromNumeric(r.spent), reserved: fromNumeric(r.reserved) }));
}

async function totals(db: Db, budgetId: string): Promise<{ spent: bigint; reserved: bigint }> {
  const ws = await windows(db, budgetId);
  return ws.reduce((a, w) => ({ spent: a.spent + w.spent, reserved: a.reserved + w.reserved }), { spent: 0n, reserved: 0n });
}

async function reservationRows(db: Db, id: string) {
  return db('reservations').where({ id }).orderBy('budget_id');
}

describe('store/budgets ledger (real PostgreSQL)', function () {
  let db: Db;
  let url: string;

  before(async function () {
    url = await freshDatabase('ledger');
    db = await createDb({ databaseUrl: url });
    await migrateLatest(db);
  });

  after(async function () {
    await db?.destroy();
  });

  describe('concurrent reservations', function () {
    async function fiftyAgainstOneDollar(pool: Db): Promise<void> {
      const budget = await newBudget(pool, usd('1.00'));
      const outcomes = await Promise.all(
        Array.from({ length: 50 }, (_, i) => reserve(pool, { key: key(`r${i}`), budgetIds: [budget.id], projectId: 'proj-1', amount: usd('0.10'), now: NOW })),
      );
      const admitted = outcomes.filter((o) => o.ok);
      const refused = outcomes.filter((o) => !o.ok);
      assert.equal(admitted.length, 10, 'exactly ten 0.10 reservations fit in 1.00');
      assert.equal(refused.length, 40);
      for (const o of refused) {
        assert.deepEqual(o, { ok: false, budgetId: budget.id, remaining: 0n, limit: usd('1.00') });
      }
      for (const o of admitted) assert.equal(o.ok && o.amount, usd('0.10'));

      const status = await budgetStatus(pool, budget, NOW);
      assert.equal(status.reserved, usd('1.00'));
      assert.equal(status.spent, 0n);
      assert.ok(status.spent + status.reserved <= status.limit);
      assert.equal(status.remaining, 0n);

      const rows = await pool('reservations').where({ budget_id: budget.id });
      assert.equal(rows.length, 10, 'one ledger row per admitted reservation');
      assert.equal(
        rows.reduce((sum, r) => sum + fromNumeric(r.amount), 0n),
        usd('1.00'),
      );
      assert.ok(rows.every((r) => r.status === 'reserved'));
    }

    it('admits exactly 10 of 50 concurrent 0.10 reservations on a 1.00 budget (default pool of 20)', async function () {
      await fiftyAgainstOneDollar(db);
    });

    it('admits exactly 10 of 50 when all 50 transactions run at once (pool of 60)', async function () {
      const wide = await createDb({ databaseUrl: url, pool: { min: 0, max: 60 } });
      try {
        await fiftyAgainstOneDollar(wide);
      } finally {
        await wide.destroy();
      }
    });

    it('never lets spent + reserved pass the limit under 16 concurrent reserve→settle workers', async function () {
      this.timeout(120_000);
      const limit = usd('20.00');
      const budget = await newBudget(db, limit);
      let charged = 0n;
      let admitted = 0;
      let refused = 0;
      let observations = 0;

      const observe = async (where: string) => {
        const [w] = await windows(db, budget.id);
        observations++;
        if (!w) return;
        assert.ok(w.spent + w.reserved <= limit, `${where}: spent ${w.spent} + reserved ${w.reserved} > limit ${limit}`);
        assert.ok(w.spent >= 0n && w.reserved >= 0n, `${where}: negative column`);
      };

      const worker = async (n: number) => {
        const rand = prng(1000 + n);
        for (let i = 0; i < 30; i++) {
          // 0.01 .. 1.50 USD, in whole cents.
          const amount = BigInt(1 + Math.floor(rand() * 150)) * usd('0.01');
          const k = `w${n}-${i}-${crypto.randomUUID()}`;
          const outcome = await reserve(db, { key: k, budgetIds: [budget.id], projectId: `proj-${n}`, amount, now: NOW });
          await observe(`worker ${n} after reserve ${i}`);
          if (!outcome.ok) {
            refused++;
            continue;
          }
          admitted++;
          // The real spend: any number of ledger units, sometimes above the reservation.
          const actual = (amount * BigInt(Math.floor(rand() * 1_500_000_000))) / 1_000_000_000n + BigInt(Math.floor(rand() * 1000));
          const charge = await settle(db, k, actual);
          assert.equal(charge, actual < amount ? actual : amount, 'settle charges the actual amount, capped at the reservation');
          charged += charge;
          await observe(`worker ${n} after settle ${i}`);
        }
      };

      await Promise.all(Array.from({ length: 16 }, (_, n) => worker(n)));

      const [w] = await windows(db, budget.id);
      assert.ok(w);
      assert.equal(w.reserved, 0n, 'everything reserved was settled');
      assert.equal(w.spent, charged, 'spent is exactly the sum of the charges');
      assert.ok(w.spent <= limit);
      assert.ok(admitted > 0 && refused > 0, `both outcomes happened (admitted ${admitted}, refused ${refused})`);
      assert.equal(observations, 16 * 30 + admitted);

      const rows = await db('reservations').where({ budget_id: budget.id });
      assert.equal(rows.length, admitted);
      assert.equal(
        rows.reduce((s, r) => s + fromNumeric(r.settled_amount), 0n),
        charged,
      );
    });
  });

  describe('idempotency and settlement', function () {
    it('reserving twice with the same key makes one reservation, counted once', async function () {
      const budget = await newBudget(db, usd('1.00'));
      const k = key('same');
      const first = await reserve(db, { key: k, budgetIds: [budget.id], projectId: 'p', amount: usd('0.40'), now: NOW });
      const second = await reserve(db, { key: k, budgetIds: [budget.id], projectId: 'p', amount: usd('0.40'), now: NOW });
      assert.deepEqual(first, { ok: true, reservationId: k, amount: usd('0.40') });
      assert.deepEqual(second, first);
      assert.equal((await reservationRows(db, k)).length, 1);
      assert.equal((await budgetStatus(db, budget, NOW)).reserved, usd('0.40'));
    });

    it('concurrent reservations with the same key make one reservation, counted once', async function () {
      const budget = await newBudget(db, usd('1.00'));
      const k = key('same-concurrent');
      const outcomes = await Promise.all(
        Array.from({ length: 10 }, () => reserve(db, { key: k, budgetIds: [budget.id], projectId: 'p', amount: usd('0.40'), now: NOW })),
      );
      for (const o of outcomes) assert.deepEqual(o, { ok: true, reservationId: k, amount: usd('0.40') });
      assert.equal((await reservationRows(db, k)).length, 1);
      assert.equal((await budgetStatus(db, budget, NOW)).reserved, usd('0.40'));
    });

    it('concurrent reservations with the same key agree even when a second copy would not fit', async function () {
      // 0.60 fits in 1.00 once but not twice: every retry of the one reservation must still see it admitted.
      const budget = await newBudget(db, usd('1.00'));
      const k = key('same-tight');
      const outcomes = await Promise.all(
        Array.from({ length: 10 }, () => reserve(db, { key: k, budgetIds: [budget.id], projectId: 'p', amount: usd('0.60'), now: NOW })),
      );
      for (const o of outcomes) assert.deepEqual(o, { ok: true, reservationId: k, amount: usd('0.60') });
      assert.equal((await reservationRows(db, k)).length, 1);
      assert.equal((await budgetStatus(db, budget, NOW)).reserved, usd('0.60'));
    });

    it('a refusal reports the exact remaining amount and changes nothing', async function () {
      const budget = await newBudget(db, usd('1.00'));
      assert.ok((await reserve(db, { key: key('a'), budgetIds: [budget.id], projectId: 'p', amount: usd('0.70'), now: NOW })).ok);
      const k = key('b');
      const outcome = await reserve(db, { key: k, budgetIds: [budget.id], projectId: 'p', amount: usd('0.40'), now: NOW });
      assert.deepEqual(outcome, { ok: false, budgetId: budget.id, remaining: usd('0.30'), limit: usd('1.00') });
      assert.equal((await reservationRows(db, k)).length, 0);
      assert.equal(await reservationStatus(db, k), null);
      assert.equal((await budgetStatus(db, budget, NOW)).reserved, usd('0.70'));
      // Exactly the remainder still fits.
      assert.ok((await reserve(db, { key: key('c'), budgetIds: [budget.id], projectId: 'p', amount: usd('0.30'), now: NOW })).ok);
      assert.equal((await budgetStatus(db, budget, NOW)).remaining, 0n);
    });

    it('settling twice charges once and returns the same charge', async function () {
      const budget = await newBudget(db, usd('1.00'));
      const k = key('settle-twice');
      await reserve(db, { key: k, budgetIds: [budget.id], projectId: 'p', amount: usd('0.50'), now: NOW });
      const actual = usd('0.20') + 7n; // not a whole cent: the ledger keeps it exactly
      assert.equal(await settle(db, k, actual), actual);
      assert.equal(await settle(db, k, usd('0.45')), actual, 'a second settle returns the first charge');
      const status = await budgetStatus(db, budget, NOW);
      assert.equal(status.spent, actual);
      assert.equal(status.reserved, 0n);
      assert.equal(status.remaining, usd('1.00') - actual);
      assert.equal(await reservationStatus(db, k), 'settled');
    });

    it('concurrent settles of one reservation charge once', async function () {
      const budget = await newBudget(db, usd('1.00'));
      const k = key('settle-concurrent');
      await reserve(db, { key: k, budgetIds: [budget.id], projectId: 'p', amount: usd('0.50'), now: NOW });
      const charges = await Promise.all(Array.from({ length: 8 }, () => settle(db, k, usd('0.30'))));
      assert.deepEqual(charges, Array(8).fill(usd('0.30')));
      assert.deepEqual(await totals(db, budget.id), { spent: usd('0.30'), reserved: 0n });
    });

    it('settle caps the charge at the reserved amount', async function () {
      const budget = await newBudget(db, usd('1.00'));
      const k = key('cap');
      await reserve(db, { key: k, budgetIds: [budget.id], projectId: 'p', amount: usd('0.50'), now: NOW });
      assert.equal(await settle(db, k, usd('0.80')), usd('0.50'));
      assert.deepEqual(await totals(db, budget.id), { spent: usd('0.50'), reserved: 0n });
      const [row] = await reservationRows(db, k);
      assert.equal(fromNumeric(row.settled_amount), usd('0.50'));
    });

    it('release gives the money back; settle after release charges nothing', async function () {
      const budget = await newBudget(db, usd('1.00'));
      const k = key('release');
      await reserve(db, { key: k, budgetIds: [budget.id], projectId: 'p', amount: usd('0.50'), now: NOW });
      assert.equal((await budgetStatus(db, budget, NOW)).remaining, usd('0.50'));
      await release(db, k);
      assert.deepEqual(await totals(db, budget.id), { spent: 0n, reserved: 0n });
      assert.equal((await budgetStatus(db, budget, NOW)).remaining, usd('1.00'));
      assert.equal(await reservationStatus(db, k), 'released');
      await release(db, k); // idempotent
      assert.equal(await settle(db, k, usd('0.30')), 0n);
      assert.deepEqual(await totals(db, budget.id), { spent: 0n, reserved: 0n });
      assert.equal(await reservationStatus(db, k), 'released');
      // The released money can be reserved again.
      assert.ok((await reserve(db, { key: key('after'), budgetIds: [budget.id], projectId: 'p', amount: usd('1.00'), now: NOW })).ok);
    });

    it('settle and release of an unknown reservation throw NotFoundError', async function () {
      await assert.rejects(settle(db, key('nope'), 1n), NotFoundError);
      await assert.rejects(release(db, key('nope')), NotFoundError);
    });

    it('reserving on an unknown budget throws NotFoundError and reserves nothing', async function () {
      const budget = await newBudget(db, usd('1.00'));
      const k = key('unknown-budget');
      await assert.rejects(
        reserve(db, { key: k, budgetIds: [budget.id, 'budget-does-not-exist'], projectId: 'p', amount: usd('0.10'), now: NOW }),
        NotFoundError,
      );
      assert.equal((await reservationRows(db, k)).length, 0);
      assert.deepEqual(await totals(db, budget.id), { spent: 0n, reserved: 0n });
    });
  });

  describe('multi-budget reservations', function () {
    /** Two budgets whose ids sort as [first, second], with the given limits. */
    async function pair(firstLimit: bigint, secondLimit: bigint): Promise<[Budget, Budget]> {
      const a = await newBudget(db, 1n);
      const b = await newBudget(db, 1n);
      const [first, second] = a.id < b.id ? [a, b] : [b, a];
      return [
        await setBudget(db, { scopeType: first.scopeType, scopeId: first.scopeId, period: 'daily', limit: firstLimit, currency: 'USD' }),
        await setBudget(db, { scopeType: second.scopeType, scopeId: second.scopeId, period: 'daily', limit: secondLimit, currency: 'USD' }),
      ];
    }

    for (const small of ['first', 'second'] as const) {
      it(`is all-or-nothing when the ${small} budget (in lock order) is too small`, async function () {
        const [first, second] = small === 'first' ? await pair(usd('0.30'), usd('10.00')) : await pair(usd('10.00'), usd('0.30'));
        const tooSmall = small === 'first' ? first : second;
        const k = key('multi');
        const outcome = await reserve(db, { key: k, budgetIds: [second.id, first.id], projectId: 'p', amount: usd('0.50'), now: NOW });
        assert.deepEqual(outcome, { ok: false, budgetId: tooSmall.id, remaining: usd('0.30'), limit: usd('0.30') });
        assert.deepEqual(await totals(db, first.id), { spent: 0n, reserved: 0n });
        assert.deepEqual(await totals(db, second.id), { spent: 0n, reserved: 0n });
        assert.equal((await reservationRows(db, k)).length, 0);
      });
    }

    it('reserves, settles and releases on every budget together', async function () {
      const [first, second] = await pair(usd('10.00'), usd('2.00'));
      const k = key('multi-ok');
      const outcome = await reserve(db, { key: k, budgetIds: [first.id, second.id], projectId: 'p', amount: usd('0.50'), now: NOW });
      assert.deepEqual(outcome, { ok: true, reservationId: k, amount: usd('0.50') });
      assert.equal((await reservationRows(db, k)).length, 2);
      assert.deepEqual(await totals(db, first.id), { spent: 0n, reserved: usd('0.50') });
      assert.deepEqual(await totals(db, second.id), { spent: 0n, reserved: usd('0.50') });
      assert.equal(await settle(db, k, usd('0.20')), usd('0.20'));
      assert.deepEqual(await totals(db, first.id), { spent: usd('0.20'), reserved: 0n });
      assert.deepEqual(await totals(db, second.id), { spent: usd('0.20'), reserved: 0n });

      const k2 = key('multi-release');
      assert.ok((await reserve(db, { key: k2, budgetIds: [first.id, second.id], projectId: 'p', amount: usd('1.00'), now: NOW })).ok);
      await release(db, k2);
      assert.deepEqual(await totals(db, first.id), { spent: usd('0.20'), reserved: 0n });
      assert.deepEqual(await totals(db, second.id), { spent: usd('0.20'), reserved: 0n });
    });

    it('concurrent multi-budget reservations in opposite orders neither deadlock nor overspend', async function () {
      const [first, second] = await pair(usd('1.00'), usd('1.00'));
      const outcomes = await Promise.all(
        Array.from({ length: 30 }, (_, i) =>
          reserve(db, {
            key: key(`x${i}`),
            budgetIds: i % 2 ? [first.id, second.id] : [second.id, first.id],
            projectId: 'p',
            amount: usd('0.10'),
            now: NOW,
          }),
        ),
      );
      assert.equal(outcomes.filter((o) => o.ok).length, 10);
      assert.deepEqual(await totals(db, first.id), { spent: 0n, reserved: usd('1.00') });
      assert.deepEqual(await totals(db, second.id), { spent: 0n, reserved: usd('1.00') });
    });
  });

  describe('periods and budgets', function () {
    it('a daily budget starts a fresh window the next day', async function () {
      const budget = await newBudget(db, usd('1.00'), 'daily');
      const day1 = new Date('2026-03-15T12:00:00.000Z');
      const day1Late = new Date('2026-03-15T23:59:59.999Z');
      const day2 = new Date('2026-03-16T00:00:00.000Z');
      const k1 = key('day1');
      assert.ok((await reserve(db, { key: k1, budgetIds: [budget.id], projectId: 'p', amount: usd('0.80'), now: day1 })).ok);
      const late = await reserve(db, { key: key('day1-late'), budgetIds: [budget.id], projectId: 'p', amount: usd('0.80'), now: day1Late });
      assert.deepEqual(late, { ok: false, budgetId: budget.id, remaining: usd('0.20'), limit: usd('1.00') });
      const k2 = key('day2');
      assert.ok((await reserve(db, { key: k2, budgetIds: [budget.id], projectId: 'p', amount: usd('0.80'), now: day2 })).ok);

      // Settling the day-1 reservation later still charges day 1.
      assert.equal(await settle(db, k1, usd('0.50')), usd('0.50'));
      assert.deepEqual(await windows(db, budget.id), [
        { start: '2026-03-15T00:00:00.000Z', spent: usd('0.50'), reserved: 0n },
        { start: '2026-03-16T00:00:00.000Z', spent: 0n, reserved: usd('0.80') },
      ]);
      const s1 = await budgetStatus(db, budget, day1);
      const s2 = await budgetStatus(db, budget, day2);
      assert.deepEqual(
        [s1.windowStart.toISOString(), s1.windowEnd?.toISOString(), s1.spent, s1.reserved, s1.remaining],
        ['2026-03-15T00:00:00.000Z', '2026-03-16T00:00:00.000Z', usd('0.50'), 0n, usd('0.50')],
      );
      assert.deepEqual(
        [s2.windowStart.toISOString(), s2.windowEnd?.toISOString(), s2.spent, s2.reserved, s2.remaining],
        ['2026-03-16T00:00:00.000Z', '2026-03-17T00:00:00.000Z', 0n, usd('0.80'), usd('0.20')],
      );
      const [row1] = await reservationRows(db, k1);
      const [row2] = await reservationRows(db, k2);
      assert.equal(new Date(row1.window_start).toISOString(), '2026-03-15T00:00:00.000Z');
      assert.equal(new Date(row2.window_start).toISOString(), '2026-03-16T00:00:00.000Z');
    });

    it('a monthly budget rolls over from December to January; a total budget never does', async function () {
      const monthly = await newBudget(db, usd('1.00'), 'monthly');
      const total = await newBudget(db, usd('1.00'), 'total');
      for (const now of ['2026-12-31T23:59:59.999Z', '2027-01-01T00:00:00.000Z']) {
        assert.ok((await reserve(db, { key: key('m'), budgetIds: [monthly.id], projectId: 'p', amount: usd('1.00'), now: new Date(now) })).ok);
      }
      assert.deepEqual(
        (await windows(db, monthly.id)).map((w) => w.start),
        ['2026-12-01T00:00:00.000Z', '2027-01-01T00:00:00.000Z'],
      );
      assert.ok(
        (await reserve(db, { key: key('t'), budgetIds: [total.id], projectId: 'p', amount: usd('1.00'), now: new Date('2026-12-31T23:59:59.999Z') })).ok,
      );
      const refused = await reserve(db, {
        key: key('t'),
        budgetIds: [total.id],
        projectId: 'p',
        amount: usd('0.01'),
        now: new Date('2030-01-01T00:00:00.000Z'),
      });
      assert.equal(refused.ok, false);
      assert.deepEqual(
        (await windows(db, total.id)).map((w) => w.start),
        ['1970-01-01T00:00:00.000Z'],
      );
    });

    it('setBudget updates the limit of a scope in place; a lowered limit refuses new reservations', async function () {
      const budget = await newBudget(db, usd('1.00'));
      assert.ok((await reserve(db, { key: key('l'), budgetIds: [budget.id], projectId: 'p', amount: usd('0.60'), now: NOW })).ok);
      const lowered = await setBudget(db, { scopeType: budget.scopeType, scopeId: budget.scopeId, period: 'daily', limit: usd('0.50'), currency: 'USD' });
      assert.equal(lowered.id, budget.id);
      assert.equal(lowered.limit, usd('0.50'));
      assert.deepEqual(await findBudget(db, budget.scopeType, budget.scopeId), lowered);
      const status = await budgetStatus(db, lowered, NOW);
      assert.equal(status.remaining, 0n, 'remaining is never negative');
      const outcome = await reserve(db, { key: key('l2'), budgetIds: [budget.id], projectId: 'p', amount: 1n, now: NOW });
      assert.deepEqual(outcome, { ok: false, budgetId: budget.id, remaining: 0n, limit: usd('0.50') });
    });

    it('stores limits and amounts of 20 integer digits and 18 decimals exactly', async function () {
      const limit = parseAmount('12345678901234567890.123456789012345678', 'ETH');
      const budget = await newBudget(db, limit, 'total', 'ETH');
      assert.equal(budget.limit, limit);
      assert.equal((await findBudget(db, 'project', budget.scopeId))?.limit, limit);
      const amount = parseAmount('9876543210987654321.987654321098765432', 'ETH');
      const k = key('eth');
      assert.ok((await reserve(db, { key: k, budgetIds: [budget.id], projectId: 'p', amount, now: NOW })).ok);
      assert.equal(await settle(db, k, amount - 1n), amount - 1n);
      const status = await budgetStatus(db, budget, NOW);
      assert.equal(status.spent, amount - 1n);
      assert.equal(status.remaining, limit - amount + 1n);
      // One ledger unit more than what is left is refused; exactly what is left is admitted.
      const left = limit - amount + 1n;
      assert.equal((await reserve(db, { key: key('eth'), budgetIds: [budget.id], projectId: 'p', amount: left + 1n, now: NOW })).ok, false);
      assert.equal((await reserve(db, { key: key('eth'), budgetIds: [budget.id], projectId: 'p', amount: left, now: NOW })).ok, true);
      assert.equal((await budgetStatus(db, budget, NOW)).remaining, 0n);
    });
  });
});

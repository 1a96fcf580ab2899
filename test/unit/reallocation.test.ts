import assert from 'node:assert/strict';
import { minorUnit, parseAmount } from '../../domain/money.js';
import { assess, planMoves, type Candidate, type ReallocationSettings } from '../../domain/reallocation.js';
import { prng } from '../support/prng.js';

const usd = (s: string) => parseAmount(s, 'USD');
const cent = minorUnit('USD');

const settings = (o: Partial<ReallocationSettings> = {}): ReallocationSettings => ({
  enabled: true,
  dryRun: false,
  maxStepPercent: 10,
  lookbackDays: 7,
  currency: 'USD',
  minAllocation: 0n,
  maxAllocation: null,
  ...o,
});

const candidate = (o: Partial<Candidate> & { projectId: string }): Candidate => ({
  name: o.projectId,
  limit: usd('10.00'),
  usedNow: 0n,
  periods: 8,
  hits: 0,
  usedInPeriods: 0n,
  spend: 0n,
  completed: 0,
  ...o,
});

describe('domain/reallocation: roles and bounded moves', () => {
  it('takes from the under-using and the low-ROI, gives to the high-ROI project at its limit, never the other way', () => {
    const plan = planMoves(
      [
        candidate({ projectId: 'high', limit: usd('20.00'), hits: 7, usedInPeriods: usd('138.00'), usedNow: usd('5.00'), spend: usd('133.00'), completed: 10 }),
        candidate({ projectId: 'idle', limit: usd('10.00'), usedInPeriods: usd('9.00'), usedNow: usd('2.00'), spend: usd('7.00') }),
        candidate({
          projectId: 'costly',
          limit: usd('20.00'),
          hits: 7,
          usedInPeriods: usd('143.50'),
          usedNow: usd('17.50'),
          spend: usd('126.00'),
          completed: 1,
        }),
      ],
      settings({ maxStepPercent: 20, minAllocation: usd('5.00'), maxAllocation: usd('23.00') }),
      'the last 7 days',
    );
    assert.deepEqual(
      plan.projects.map((p) => [p.projectId, p.role, p.utilisationBp, p.roiMillionths]),
      [
        ['high', 'receiver', 8625, 75188n],
        ['idle', 'donor', 1125, 0n],
        ['costly', 'donor', 8968, 7937n],
      ],
    );
    assert.equal(plan.meanRoiMillionths, 27708n);
    assert.deepEqual(
      plan.moves.map((m) => [m.from.projectId, m.to.projectId, m.amount]),
      [
        ['idle', 'high', usd('2.00')],
        ['costly', 'high', usd('1.00')],
      ],
    );
  });

  it('with everyone at the same ROI, the greedy take from the under-using; no spend anywhere, nobody receives', () => {
    const same = assess([
      candidate({ projectId: 'a', hits: 2, usedInPeriods: usd('70.00'), spend: usd('70.00'), completed: 7 }),
      candidate({ projectId: 'b', usedInPeriods: usd('10.00'), spend: usd('10.00'), completed: 1 }),
    ]);
    assert.deepEqual(
      same.projects.map((p) => p.role),
      ['receiver', 'donor'],
    );
    const none = planMoves([candidate({ projectId: 'a', hits: 3 }), candidate({ projectId: 'b' })], settings(), 'x');
    assert.deepEqual(none.moves, []);
  });

  it('on 2,000 seeded random cost centers: the total never changes and every bound holds', () => {
    const rnd = prng(20261207);
    const cents = (max: number) => BigInt(Math.floor(rnd() * max)) * cent;
    for (let run = 0; run < 2000; run++) {
      const n = 2 + Math.floor(rnd() * 6);
      const candidates: Candidate[] = [];
      for (let i = 0; i < n; i++) {
        const limit = cents(5000);
        const periods = 1 + Math.floor(rnd() * 8);
        candidates.push(
          candidate({
            projectId: `p${i}`,
            limit,
            usedNow: limit === 0n ? 0n : cents(Number(limit / cent) + 1),
            periods,
            hits: Math.floor(rnd() * (periods + 1)),
            usedInPeriods: cents(Number((limit * BigInt(periods)) / cent) + 1),
            spend: rnd() < 0.2 ? 0n : cents(10_000) + 1n,
            completed: Math.floor(rnd() * 10),
          }),
        );
      }
      const min = cents(500);
      const max = rnd() < 0.5 ? null : min + cents(6000);
      const s = settings({ maxStepPercent: 1 + Math.floor(rnd() * 50), minAllocation: min, maxAllocation: max });
      const plan = planMoves(candidates, s, 'x');
      const after = new Map(candidates.map((c) => [c.projectId, c.limit]));
      const given = new Map<string, bigint>();
      const taken = new Map<string, bigint>();
      for (const m of plan.moves) {
        assert.ok(m.amount > 0n && m.amount % cent === 0n, `run ${run}: amount ${m.amount}`);
        assert.notEqual(m.from.role, 'receiver');
        assert.equal(m.to.role, 'receiver');
        after.set(m.from.projectId, after.get(m.from.projectId)! - m.amount);
        after.set(m.to.projectId, after.get(m.to.projectId)! + m.amount);
        given.set(m.from.projectId, (given.get(m.from.projectId) ?? 0n) + m.amount);
        taken.set(m.to.projectId, (taken.get(m.to.projectId) ?? 0n) + m.amount);
      }
      const total = (xs: Iterable<bigint>) => [...xs].reduce((a, b) => a + b, 0n);
      assert.equal(total(after.values()), total(candidates.map((c) => c.limit)), `run ${run}: the total changed`);
      for (const c of candidates) {
        const step = (c.limit * BigInt(s.maxStepPercent)) / 100n;
        const limit = after.get(c.projectId)!;
        if (given.has(c.projectId)) {
          assert.ok(given.get(c.projectId)! <= step, `run ${run}: ${c.projectId} gave more than a step`);
          assert.ok(limit >= c.usedNow && limit >= min, `run ${run}: ${c.projectId} below its use or the minimum`);
        }
        if (taken.has(c.projectId)) {
          assert.ok(taken.get(c.projectId)! <= step, `run ${run}: ${c.projectId} took more than a step`);
          assert.ok(max === null || limit <= max, `run ${run}: ${c.projectId} above the maximum`);
        }
      }
    }
  });
});

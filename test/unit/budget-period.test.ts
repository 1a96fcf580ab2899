import assert from 'node:assert/strict';
import { BUDGET_PERIODS, windowEnd, windowStart, type BudgetPeriod } from '../../domain/budget.js';

const at = (iso: string) => new Date(iso);

function window(period: BudgetPeriod, now: string): [string, string | null] {
  const start = windowStart(period, at(now));
  const end = windowEnd(period, start);
  return [start.toISOString(), end ? end.toISOString() : null];
}

describe('domain/budget periods', function () {
  describe('daily', function () {
    it('starts at UTC midnight and ends at the next one', function () {
      assert.deepEqual(window('daily', '2026-03-15T13:45:12.345Z'), ['2026-03-15T00:00:00.000Z', '2026-03-16T00:00:00.000Z']);
      assert.deepEqual(window('daily', '2026-03-15T00:00:00.000Z'), ['2026-03-15T00:00:00.000Z', '2026-03-16T00:00:00.000Z']);
      assert.deepEqual(window('daily', '2026-03-15T23:59:59.999Z'), ['2026-03-15T00:00:00.000Z', '2026-03-16T00:00:00.000Z']);
    });

    it('rolls over months, years and leap days', function () {
      assert.deepEqual(window('daily', '2026-12-31T23:59:59.999Z'), ['2026-12-31T00:00:00.000Z', '2027-01-01T00:00:00.000Z']);
      assert.deepEqual(window('daily', '2028-02-28T08:00:00.000Z'), ['2028-02-28T00:00:00.000Z', '2028-02-29T00:00:00.000Z']);
      assert.deepEqual(window('daily', '2028-02-29T08:00:00.000Z'), ['2028-02-29T00:00:00.000Z', '2028-03-01T00:00:00.000Z']);
      assert.deepEqual(window('daily', '2027-02-28T08:00:00.000Z'), ['2027-02-28T00:00:00.000Z', '2027-03-01T00:00:00.000Z']);
    });
  });

  describe('weekly', function () {
    it('puts Sunday 23:59 in the week that started the Monday before', function () {
      // 2026-03-15 is a Sunday.
      assert.deepEqual(window('weekly', '2026-03-15T23:59:00.000Z'), ['2026-03-09T00:00:00.000Z', '2026-03-16T00:00:00.000Z']);
      assert.deepEqual(window('weekly', '2026-03-15T23:59:59.999Z'), ['2026-03-09T00:00:00.000Z', '2026-03-16T00:00:00.000Z']);
    });

    it('starts a new week on Monday 00:00 UTC', function () {
      // 2026-03-16 is a Monday.
      assert.deepEqual(window('weekly', '2026-03-16T00:00:00.000Z'), ['2026-03-16T00:00:00.000Z', '2026-03-23T00:00:00.000Z']);
      assert.deepEqual(window('weekly', '2026-03-18T12:00:00.000Z'), ['2026-03-16T00:00:00.000Z', '2026-03-23T00:00:00.000Z']);
    });

    it('crosses month and year boundaries', function () {
      // 2026-01-01 is a Thursday; its week started Monday 2025-12-29.
      assert.deepEqual(window('weekly', '2026-01-01T10:00:00.000Z'), ['2025-12-29T00:00:00.000Z', '2026-01-05T00:00:00.000Z']);
      // 2028-02-29 is a Tuesday (leap year).
      assert.deepEqual(window('weekly', '2028-02-29T10:00:00.000Z'), ['2028-02-28T00:00:00.000Z', '2028-03-06T00:00:00.000Z']);
    });
  });

  describe('monthly', function () {
    it('starts on the 1st and ends on the 1st of the next month', function () {
      assert.deepEqual(window('monthly', '2026-03-15T13:45:00.000Z'), ['2026-03-01T00:00:00.000Z', '2026-04-01T00:00:00.000Z']);
      assert.deepEqual(window('monthly', '2026-03-01T00:00:00.000Z'), ['2026-03-01T00:00:00.000Z', '2026-04-01T00:00:00.000Z']);
      assert.deepEqual(window('monthly', '2026-03-31T23:59:59.999Z'), ['2026-03-01T00:00:00.000Z', '2026-04-01T00:00:00.000Z']);
    });

    it('rolls December over to January of the next year', function () {
      assert.deepEqual(window('monthly', '2026-12-31T23:59:59.999Z'), ['2026-12-01T00:00:00.000Z', '2027-01-01T00:00:00.000Z']);
      assert.deepEqual(window('monthly', '2027-01-01T00:00:00.000Z'), ['2027-01-01T00:00:00.000Z', '2027-02-01T00:00:00.000Z']);
    });

    it('handles February in leap and common years', function () {
      assert.deepEqual(window('monthly', '2028-02-29T12:00:00.000Z'), ['2028-02-01T00:00:00.000Z', '2028-03-01T00:00:00.000Z']);
      assert.deepEqual(window('monthly', '2027-02-28T23:59:59.999Z'), ['2027-02-01T00:00:00.000Z', '2027-03-01T00:00:00.000Z']);
    });
  });

  describe('total', function () {
    it('has one window from the epoch with no end', function () {
      for (const now of ['1970-01-01T00:00:00.000Z', '2026-03-15T13:45:12.345Z', '2099-12-31T23:59:59.999Z']) {
        assert.deepEqual(window('total', now), ['1970-01-01T00:00:00.000Z', null]);
      }
    });
  });

  describe('properties', function () {
    const lengths: Record<Exclude<BudgetPeriod, 'total'>, number[]> = {
      daily: [1],
      weekly: [7],
      monthly: [28, 29, 30, 31],
    };

    it('every instant lies in [start, end), windows tile time, and starts are UTC midnights', function () {
      let seed = 12345;
      const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
      const from = Date.UTC(1999, 0, 1);
      const to = Date.UTC(2101, 0, 1);
      for (let i = 0; i < 3000; i++) {
        const now = new Date(from + Math.floor(rand() * (to - from)));
        for (const period of ['daily', 'weekly', 'monthly'] as const) {
          const start = windowStart(period, now);
          const end = windowEnd(period, start);
          assert.ok(end, `${period} has an end`);
          assert.ok(start <= now && now < end, `${period}: ${now.toISOString()} not in [${start.toISOString()}, ${end.toISOString()})`);
          assert.equal(start.getTime() % 86_400_000, 0, 'starts at UTC midnight');
          assert.equal(windowStart(period, end).getTime(), end.getTime(), 'the next window starts where this one ends');
          assert.equal(windowStart(period, new Date(end.getTime() - 1)).getTime(), start.getTime(), 'the last ms belongs to this window');
          const days = (end.getTime() - start.getTime()) / 86_400_000;
          assert.ok(lengths[period].includes(days), `${period} lasts ${days} days`);
          if (period === 'weekly') assert.equal(start.getUTCDay(), 1, 'weeks start on Monday');
          if (period === 'monthly') assert.equal(start.getUTCDate(), 1, 'months start on the 1st');
        }
      }
    });

    it('does not depend on the process time zone', function () {
      const saved = process.env.TZ;
      const samples = ['2026-03-15T23:59:00.000Z', '2026-03-16T00:00:00.000Z', '2026-12-31T23:30:00.000Z', '2028-02-29T00:30:00.000Z'];
      const expected = samples.map((s) => BUDGET_PERIODS.map((p) => window(p, s)));
      try {
        for (const tz of ['Pacific/Kiritimati', 'America/Los_Angeles', 'Asia/Kolkata']) {
          process.env.TZ = tz;
          if (tz === 'Pacific/Kiritimati') {
            // Sanity check that the zone change took effect (UTC+14: already Monday locally).
            assert.equal(at('2026-03-15T23:59:00.000Z').getDate(), 16);
          }
          assert.deepEqual(
            samples.map((s) => BUDGET_PERIODS.map((p) => window(p, s))),
            expected,
            `windows differ under TZ=${tz}`,
          );
        }
      } finally {
        if (saved === undefined) delete process.env.TZ;
        else process.env.TZ = saved;
      }
    });
  });
});

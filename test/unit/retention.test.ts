import assert from 'node:assert/strict';
import { chunkEnds, DEFAULT_CHUNKING } from '../../domain/chunking.js';
import { bucketOf, decideRetention, DEFAULT_RETENTION_GRID, type RetentionCheckpoint } from '../../domain/retention.js';

const NOW = Date.parse('2026-11-27T12:00:00Z');
const DAY = 86_400_000;
const ago = (days: number, hours = 0) => new Date(NOW - days * DAY - hours * 3_600_000).toISOString();

function cp(id: string, parentId: string | null, createdAt: string, extra: Partial<RetentionCheckpoint> = {}): RetentionCheckpoint {
  return { id, parentId, createdAt, milestone: false, ...extra };
}

function decide(checkpoints: RetentionCheckpoint[], referenced: string[] = []) {
  const d = decideRetention(checkpoints, { now: NOW, referenced: new Set(referenced) });
  const reasons = new Map(d.keep.map((k) => [k.id, k.reasons]));
  return { ...d, reasons };
}

describe('retention grid (pure, fixed clock)', () => {
  it('keeps everything younger than 7 days', () => {
    const cps = [cp('root', null, ago(10)), cp('a', 'root', ago(6, 23)), cp('b', 'a', ago(0, 1)), cp('c', 'a', ago(3))];
    const d = decide(cps);
    assert.deepEqual(d.prune, []);
    assert.deepEqual(d.reasons.get('a'), ['recent']);
    assert.deepEqual(d.reasons.get('root'), ['root', 'day']);
  });

  it('keeps one a day between 7 and 30 days, the newest of each day', () => {
    // Three on one day (10 days ago), two on another (20 days ago).
    const cps = [
      cp('root', null, ago(400)),
      cp('d10-early', 'root', ago(10, 10)),
      cp('d10-mid', 'd10-early', ago(10, 5)),
      cp('d10-late', 'd10-mid', ago(10, 1)),
      cp('d20-a', 'root', ago(20, 6)),
      cp('d20-b', 'd20-a', ago(20, 2)),
    ];
    const d = decide(cps);
    assert.deepEqual(d.prune.sort(), ['d10-early', 'd10-mid', 'd20-a']);
    assert.deepEqual(d.reasons.get('d10-late'), ['day']);
    assert.deepEqual(d.reasons.get('d20-b'), ['day']);
  });

  it('keeps one a week between 30 days and 6 months, and nothing by age beyond', () => {
    // Two in the same ISO week ~60 days ago, one ~300 days ago on an unused branch.
    const weekStart = Date.parse('2026-09-28T00:00:00Z'); // a Monday
    const cps = [
      cp('root', null, ago(500)),
      cp('w-mon', 'root', new Date(weekStart + 3_600_000).toISOString()),
      cp('w-sun', 'w-mon', new Date(weekStart + 6 * DAY + 3_600_000).toISOString()),
      cp('next-mon', 'w-sun', new Date(weekStart + 7 * DAY + 3_600_000).toISOString()),
      cp('old', 'root', ago(300)),
    ];
    const d = decide(cps);
    assert.equal(bucketOf(Date.parse(cps[1]!.createdAt), 'week'), bucketOf(Date.parse(cps[2]!.createdAt), 'week'));
    assert.notEqual(bucketOf(Date.parse(cps[2]!.createdAt), 'week'), bucketOf(Date.parse(cps[3]!.createdAt), 'week'));
    assert.deepEqual(d.prune.sort(), ['old', 'w-mon']);
    assert.deepEqual(d.reasons.get('w-sun'), ['week']);
    assert.deepEqual(d.reasons.get('next-mon'), ['week']);
    assert.deepEqual(d.reasons.get('root'), ['root']);
  });

  it('prunes an unused branch older than the grid, and keeps what something still needs', () => {
    //            root (500 d)
    //           /      \
    //   main-1 (400)   dead-1 (390) → dead-2 (380)        unused branch: pruned
    //     |
    //   main-2 (300) ← a live machine's parent
    //     |
    //   obj (250)    ← an objective's result
    //     |
    //   mile (200)   ← milestone
    //     |
    //   pipe (190)   ← a pipeline step's checkpoint
    const cps = [
      cp('root', null, ago(500)),
      cp('main-1', 'root', ago(400)),
      cp('dead-1', 'root', ago(390)),
      cp('dead-2', 'dead-1', ago(380)),
      cp('main-2', 'main-1', ago(300)),
      cp('obj', 'main-2', ago(250)),
      cp('mile', 'obj', ago(200), { milestone: true }),
      cp('pipe', 'mile', ago(190)),
    ];
    const d = decide(cps, ['main-2', 'obj', 'pipe', 'not-in-this-project']);
    assert.deepEqual(d.prune.sort(), ['dead-1', 'dead-2', 'main-1']);
    assert.deepEqual(d.reasons.get('main-2'), ['referenced']);
    assert.deepEqual(d.reasons.get('mile'), ['milestone']);
    assert.deepEqual(d.reasons.get('root'), ['root']);
    assert.equal(d.keep.length + d.prune.length, cps.length, 'every checkpoint is decided once');
  });

  it('keeps the ancestors a kept delta snapshot needs for restore, up to a complete one', () => {
    const cps = [
      cp('root', null, ago(500)),
      cp('full', 'root', ago(400)),
      cp('delta-1', 'full', ago(390), { deltaOnParent: true }),
      cp('delta-2', 'delta-1', ago(380), { deltaOnParent: true }),
      cp('other', 'root', ago(370)),
    ];
    const d = decide(cps, ['delta-2']);
    assert.deepEqual(d.prune, ['other']);
    assert.deepEqual(d.reasons.get('delta-1'), ['ancestor']);
    assert.deepEqual(d.reasons.get('full'), ['ancestor']);
    // Without the reference, the whole chain goes.
    assert.deepEqual(decide(cps).prune.sort(), ['delta-1', 'delta-2', 'full', 'other']);
  });

  it('is the same decision whatever the input order, and moves with the clock', () => {
    const cps = [cp('root', null, ago(100)), cp('a', 'root', ago(8, 5)), cp('b', 'a', ago(8, 1)), cp('c', 'b', ago(1))];
    const forward = decide(cps);
    const backward = decide([...cps].reverse());
    assert.deepEqual(forward.prune.sort(), backward.prune.sort());
    assert.deepEqual(forward.prune, ['a']);
    // 200 days later only the root is left (c is just outside the weekly tier).
    const later = decideRetention(cps, { now: NOW + 200 * DAY, referenced: new Set() });
    assert.deepEqual(later.prune.sort(), ['a', 'b', 'c']);
  });

  it('refuses a grid whose tiers do not grow, and exports the documented default', () => {
    assert.throws(
      () =>
        decideRetention([], {
          now: NOW,
          referenced: new Set(),
          grid: [
            { maxAgeDays: 30, keep: 'day' },
            { maxAgeDays: 7, keep: 'all' },
          ],
        }),
      /increase/,
    );
    assert.deepEqual(
      DEFAULT_RETENTION_GRID.map((t) => [t.maxAgeDays, t.keep]),
      [
        [7, 'all'],
        [30, 'day'],
        [183, 'week'],
      ],
    );
  });
});

describe('content-defined chunking (pure)', () => {
  /** Deterministic pseudo-random bytes. */
  function bytes(n: number, seed: number): Uint8Array {
    const out = new Uint8Array(n);
    let x = seed >>> 0 || 1;
    for (let i = 0; i < n; i++) {
      x ^= x << 13;
      x >>>= 0;
      x ^= x >>> 17;
      x ^= x << 5;
      x >>>= 0;
      out[i] = x & 0xff;
    }
    return out;
  }

  it('cuts within the size bounds and covers the data exactly', () => {
    const data = bytes(1_000_000, 7);
    const ends = chunkEnds(data);
    assert.equal(ends.at(-1), data.length);
    let start = 0;
    for (const [i, end] of ends.entries()) {
      const size = end - start;
      assert.ok(size <= DEFAULT_CHUNKING.maxSize, `chunk ${i} is ${size} bytes`);
      if (i < ends.length - 1) assert.ok(size >= DEFAULT_CHUNKING.minSize, `chunk ${i} is ${size} bytes`);
      start = end;
    }
    const avg = data.length / ends.length;
    assert.ok(avg > 4096 && avg < 20_000, `average chunk ${avg} bytes`);
    assert.deepEqual(chunkEnds(new Uint8Array(0)), []);
    assert.deepEqual(chunkEnds(new Uint8Array(100_000)), [65536, 100000]);
  });

  it('an insertion near the start changes only the chunks around it', () => {
    const data = bytes(500_000, 11);
    const edited = new Uint8Array(data.length + 5);
    edited.set(data.subarray(0, 1000));
    edited.set([1, 2, 3, 4, 5], 1000);
    edited.set(data.subarray(1000), 1005);
    const key = (d: Uint8Array) => {
      const set = new Set<string>();
      let s = 0;
      for (const e of chunkEnds(d)) {
        set.add(Buffer.from(d.subarray(s, e)).toString('base64'));
        s = e;
      }
      return set;
    };
    const a = key(data);
    const b = key(edited);
    const changed = [...b].filter((c) => !a.has(c)).length;
    assert.ok(changed <= 2, `${changed} of ${b.size} chunks changed`);
    assert.ok(b.size > 20);
  });
});

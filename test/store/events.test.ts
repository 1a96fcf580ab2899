import assert from 'node:assert/strict';
import pg from 'pg';
import { createDb, migrateLatest, type Db } from '../../store/db.js';
import { appendEvents, EVENTS_CHANNEL } from '../../store/events.js';
import { freshDatabase } from '../support/platform.js';

/**
 * The event feed's append (one statement under the feed's lock): rows in the order given with
 * their fields exact, the notification at commit only, and rows committed in seq order under
 * concurrent writers, so a reader resuming "after N" never finds a row below N later.
 */
describe('store/events append (real PostgreSQL)', function () {
  this.timeout(60_000);
  let db: Db;
  let url: string;

  before(async () => {
    url = await freshDatabase('events');
    db = await createDb({ databaseUrl: url, pool: { min: 2, max: 24 } });
    await migrateLatest(db);
  });
  after(async () => {
    await db?.destroy();
  });

  it('appends several events in the order given, fields exact, and notifies the last seq at commit, never on a rollback', async () => {
    const listener = new pg.Client({ connectionString: url });
    await listener.connect();
    const heard: string[] = [];
    listener.on('notification', (n) => {
      if (n.channel === EVENTS_CHANNEL) heard.push(n.payload!);
    });
    await listener.query(`LISTEN ${EVENTS_CHANNEL}`);
    try {
      const data = { text: `it's "quoted" — ünïcode`, nested: { n: 1, list: [1, 'two', null] } };
      await db.transaction((trx) =>
        appendEvents(trx, [
          { kind: 'test.first', projectId: 'p-events', subjectId: 's-1', data },
          { kind: 'test.second', projectId: null, subjectId: 's-2' },
          { kind: 'test.third', projectId: 'p-events', subjectId: 's-3', data: { k: 'v' } },
        ]),
      );
      const rows = await db('events').whereIn('subject_id', ['s-1', 's-2', 's-3']).orderBy('seq');
      assert.deepEqual(
        rows.map((r) => [r.kind, r.project_id, r.subject_id, r.data]),
        [
          ['test.first', 'p-events', 's-1', data],
          ['test.second', null, 's-2', {}],
          ['test.third', 'p-events', 's-3', { k: 'v' }],
        ],
      );
      const seqs = rows.map((r) => Number(r.seq));
      assert.deepEqual(seqs, [seqs[0]!, seqs[0]! + 1, seqs[0]! + 2]);

      await assert.rejects(
        db.transaction(async (trx) => {
          await appendEvents(trx, [{ kind: 'test.rolled-back', projectId: null, subjectId: 's-rb' }]);
          throw new Error('roll back');
        }),
        /roll back/,
      );
      await db.transaction((trx) => appendEvents(trx, [{ kind: 'test.after', projectId: null, subjectId: 's-after' }]));
      const after = await db('events').where({ subject_id: 's-after' }).first();
      for (let i = 0; i < 100 && !heard.includes(String(after.seq)); i++) await new Promise((r) => setTimeout(r, 20));
      assert.deepEqual(heard, [String(seqs[2]), String(after.seq)], 'one notification per committed append, with its last seq');
      assert.equal(await db('events').where({ subject_id: 's-rb' }).first(), undefined);
    } finally {
      await listener.end();
    }
  });

  it('commits in seq order under 20 concurrent writers: a reader never sees a row appear below one it has seen', async () => {
    const start = Number((await db('events').max('seq as m').first())?.m ?? 0);
    const observed = new Set<number>();
    let high = start;
    const late: number[] = [];
    let writing = true;
    // Each pass reads every row so far: one it had not seen, below the highest it had, committed late.
    const reader = (async () => {
      while (writing) {
        const rows = await db('events').where('seq', '>', start).orderBy('seq').select('seq');
        const seqs = rows.map((r) => Number(r.seq));
        for (const s of seqs) if (!observed.has(s) && s < high) late.push(s);
        for (const s of seqs) observed.add(s);
        if (seqs.length) high = Math.max(high, seqs.at(-1)!);
        await new Promise((r) => setImmediate(r));
      }
    })();
    await Promise.all(
      Array.from({ length: 20 }, (_, w) =>
        (async () => {
          for (let i = 0; i < 10; i++) {
            await db.transaction(async (trx) => {
              await appendEvents(trx, [
                { kind: 'test.concurrent', projectId: 'p-concurrent', subjectId: `w${w}-${i}-a` },
                { kind: 'test.concurrent', projectId: 'p-concurrent', subjectId: `w${w}-${i}-b` },
              ]);
              // Hold the transaction open a little after the append, as a ledger write does.
              await trx.raw('SELECT pg_sleep(0.002)');
            });
          }
        })(),
      ),
    );
    writing = false;
    await reader;
    const rows = await db('events').where({ project_id: 'p-concurrent' }).orderBy('seq').select('seq', 'subject_id');
    assert.equal(rows.length, 400);
    for (let i = 0; i < rows.length; i += 2) {
      const [a, b] = [rows[i]!, rows[i + 1]!];
      assert.equal(Number(b.seq), Number(a.seq) + 1, "one append's events are consecutive");
      assert.equal(a.subject_id.replace(/-a$/, ''), b.subject_id.replace(/-b$/, ''));
    }
    assert.deepEqual(late, [], 'rows committed below a seq already seen');
  });
});

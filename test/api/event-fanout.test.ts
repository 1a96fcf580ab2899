import assert from 'node:assert/strict';
import { EventBatch, EventCursor } from '../../api/event-stream.js';
import { createDb, migrateLatest, type Db } from '../../store/db.js';
import { eventFeedOf, stopEventFeed, type EventFeed } from '../../store/event-feed.js';
import { appendEvents, eventsAfter, type EventFilter, type NewEvent } from '../../store/events.js';
import { freshDatabase } from '../support/platform.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A subscriber following the feed from `from`; `slow` makes some of its takes wait. */
function subscriber(db: Db, feed: EventFeed, filter: EventFilter, from: number, slow = false) {
  const gone = new AbortController();
  const seqs: number[] = [];
  const batches: EventBatch[] = [];
  let takes = 0;
  const done = new EventCursor(db, feed, filter, from).follow(gone.signal, (batch) => {
    batches.push(batch);
    seqs.push(...batch.events.map((e) => e.seq));
    // A full socket, every other batch: the subscriber leaves the fan-out for a while.
    return slow && takes++ % 2 === 0 ? sleep(30) : true;
  });
  return { seqs, batches, stop: () => (gone.abort(), done) };
}

async function waitFor(what: string, ok: () => boolean) {
  for (let i = 0; !ok(); i++) {
    if (i > 500) assert.fail(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

describe('event fan-out: live subscribers pushed by the feed (real PostgreSQL, LISTEN)', function () {
  this.timeout(60_000);
  let db: Db;
  let feed: EventFeed;

  before(async () => {
    db = await createDb({ databaseUrl: await freshDatabase('event-fanout') });
    await migrateLatest(db);
    feed = eventFeedOf(db);
    await feed.ready();
  });
  after(async () => {
    await stopEventFeed(db);
    await db?.destroy();
  });

  const append = (events: NewEvent[]) => db.transaction((trx) => appendEvents(trx, events));
  const scoped = (projectIds: string[] | null, extra: Partial<EventFilter> = {}): EventFilter => ({ projectIds, kinds: [], readable: null, ...extra });

  it('gives every subscriber each of its events once, in order — fast, slow (leaving and rejoining) and differently filtered alike', async () => {
    const start = feed.last;
    const p1 = scoped(['p1']);
    const machinesOfP1 = scoped(['p1'], { kinds: ['machine.*'] });
    const everything = scoped(null);
    const fast = subscriber(db, feed, p1, start);
    const fastToo = subscriber(db, feed, p1, start);
    const slow = subscriber(db, feed, p1, start, true);
    const machines = subscriber(db, feed, machinesOfP1, start);
    const admin = subscriber(db, feed, everything, start);
    await sleep(50);

    for (let i = 0; i < 40; i++) {
      const project = i % 3 === 0 ? 'p2' : 'p1';
      const kind = i % 2 === 0 ? 'machine.status' : 'budget.set';
      // Some changes write two events in one transaction (they arrive as one batch).
      await append(
        i % 5 === 0
          ? [
              { kind, projectId: project, subjectId: `s${i}` },
              { kind: 'machine.status', projectId: 'p1', subjectId: `t${i}` },
            ]
          : [{ kind, projectId: project, subjectId: `s${i}` }],
      );
      if (i % 7 === 0) await sleep(5);
    }
    const expected = async (f: EventFilter) => (await eventsAfter(db, start, f, 1000)).map((e) => e.seq);
    const want = { p1: await expected(p1), machines: await expected(machinesOfP1), all: await expected(everything) };
    assert.ok(want.p1.length > 20 && want.machines.length > 10 && want.all.length > want.p1.length);

    await waitFor(
      'every subscriber to catch up',
      () =>
        [fast, fastToo, slow].every((s) => s.seqs.length >= want.p1.length) &&
        machines.seqs.length >= want.machines.length &&
        admin.seqs.length >= want.all.length,
    );
    await sleep(100); // nothing more (no duplicate) arrives
    assert.deepEqual(fast.seqs, want.p1);
    assert.deepEqual(fastToo.seqs, want.p1);
    assert.deepEqual(slow.seqs, want.p1);
    assert.deepEqual(machines.seqs, want.machines);
    assert.deepEqual(admin.seqs, want.all);
    // The slow one took its events in more, smaller steps than it was offered, yet lost none.
    assert.ok(slow.batches.length > 1);
    // Subscribers with the same filter are handed the same batch (filtered and serialized once).
    const shared = fast.batches.filter((b) => fastToo.batches.includes(b));
    assert.ok(shared.length >= fast.batches.length - 1, `${shared.length} of ${fast.batches.length} batches shared`);
    await Promise.all([fast, fastToo, slow, machines, admin].map((s) => s.stop()));
  });

  it('a resume point ahead of the feed waits for the feed to pass it, then goes on from there', async () => {
    const last = feed.last;
    const ahead = subscriber(db, feed, scoped(null), last + 2);
    await append([{ kind: 'budget.set', projectId: 'p1', subjectId: 'a1' }]);
    await append([{ kind: 'budget.set', projectId: 'p1', subjectId: 'a2' }]);
    await append([{ kind: 'budget.set', projectId: 'p1', subjectId: 'a3' }]);
    await waitFor('the third event', () => ahead.seqs.length >= 1);
    await sleep(100);
    assert.deepEqual(ahead.seqs, [last + 3]);
    await ahead.stop();
  });

  it('a stopped subscriber leaves the fan-out: its follow ends and it is handed nothing more', async () => {
    const s = subscriber(db, feed, scoped(null), feed.last);
    await sleep(20);
    await append([{ kind: 'budget.set', projectId: 'p1', subjectId: 'b1' }]);
    await waitFor('the event', () => s.seqs.length === 1);
    await s.stop();
    await append([{ kind: 'budget.set', projectId: 'p1', subjectId: 'b2' }]);
    await sleep(200);
    assert.equal(s.seqs.length, 1);
  });
});

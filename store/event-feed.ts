import type { Db } from './db.js';
import { isEmbedded } from './db.js';
import { allEventsAfter, EVENTS_CHANNEL, lastEventSeq, type EventRecord } from './events.js';

/** Recent events kept in memory, so a thousand live subscribers do not each query the database. */
const BUFFER_EVENTS = 10_000;
/** PGlite has no second connection to LISTEN on: it is polled this often. */
const EMBEDDED_POLL_MS = 200;
/** Real Postgres: a safety read this often, in case a notification was missed (a reconnect). */
const SAFETY_POLL_MS = 2_000;
const PAGE = 1_000;

interface RawPgClient {
  query(sql: string): Promise<unknown>;
  on(event: 'notification' | 'error' | 'end', fn: (...args: unknown[]) => void): void;
  removeAllListeners(): void;
  end(): Promise<void>;
  connection?: { stream?: { unref?: () => void } };
}

/**
 * One process's view of the `events` table: it reads new rows as they commit (woken by Postgres
 * LISTEN/NOTIFY, or a short poll on PGlite), keeps the most recent in memory, and tells
 * subscribers that the feed moved on. Readers behind the memory window read the table instead.
 */
export class EventFeed {
  /** Every event with floor < seq <= last is in `buffer`, in order. */
  floor = 0;
  last = 0;
  private buffer: EventRecord[] = [];
  private readonly listeners = new Set<() => void>();
  private started: Promise<void> | null = null;
  private stopped = false;
  private pulling: Promise<void> | null = null;
  private again = false;
  private timer: NodeJS.Timeout | null = null;
  private listener: RawPgClient | null = null;

  constructor(private readonly db: Db) {}

  /** Starts reading (once); resolves when the feed knows the current last seq. */
  ready(): Promise<void> {
    this.started ??= this.start();
    return this.started;
  }

  private async start() {
    this.last = this.floor = await lastEventSeq(this.db);
    const embedded = isEmbedded(this.db);
    if (!embedded) await this.listen().catch(() => this.reconnectLater());
    this.timer = setInterval(() => void this.pull(), embedded ? EMBEDDED_POLL_MS : SAFETY_POLL_MS);
    this.timer.unref();
  }

  private async listen() {
    if (this.stopped) return;
    const client = (await (this.db.client as { acquireRawConnection(): Promise<RawPgClient> }).acquireRawConnection()) as RawPgClient;
    if (this.stopped) return void (await client.end().catch(() => undefined));
    client.connection?.stream?.unref?.();
    client.on('notification', () => void this.pull());
    const lost = () => {
      if (this.listener !== client) return;
      this.listener = null;
      client.removeAllListeners();
      client.on('error', () => undefined);
      void client.end().catch(() => undefined);
      this.reconnectLater();
    };
    client.on('error', lost);
    client.on('end', lost);
    await client.query(`LISTEN ${EVENTS_CHANNEL}`);
    this.listener = client;
    void this.pull(); // whatever committed while (re)connecting
  }

  private reconnectLater() {
    if (this.stopped) return;
    setTimeout(() => void this.listen().catch(() => this.reconnectLater()), 1_000).unref();
  }

  /** Reads what committed since `last`; concurrent calls coalesce into one more read. */
  pull(): Promise<void> {
    if (this.pulling) {
      this.again = true;
      return this.pulling;
    }
    this.pulling = (async () => {
      try {
        do {
          this.again = false;
          for (;;) {
            const rows = await allEventsAfter(this.db, this.last, PAGE);
            if (!rows.length) break;
            this.buffer.push(...rows);
            this.last = rows.at(-1)!.seq;
            if (this.buffer.length > BUFFER_EVENTS) {
              const dropped = this.buffer.splice(0, this.buffer.length - BUFFER_EVENTS);
              this.floor = dropped.at(-1)!.seq;
            }
            for (const fn of this.listeners) fn();
            if (rows.length < PAGE) break;
          }
        } while (this.again && !this.stopped);
      } catch {
        // The next notification or poll tries again; nothing is skipped (reads resume at `last`).
      } finally {
        this.pulling = null;
      }
    })();
    return this.pulling;
  }

  /** The buffered events after `seq` (requires seq >= floor). */
  after(seq: number): EventRecord[] {
    if (seq < this.floor) throw new Error(`event ${seq} is older than the feed's memory (${this.floor})`);
    let lo = 0;
    let hi = this.buffer.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.buffer[mid]!.seq <= seq) lo = mid + 1;
      else hi = mid;
    }
    return this.buffer.slice(lo);
  }

  /** Calls `fn` whenever new events arrived; returns the unsubscribe. */
  subscribe(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    const client = this.listener;
    this.listener = null;
    if (client) {
      client.removeAllListeners();
      client.on('error', () => undefined);
      await client.end().catch(() => undefined);
    }
    this.listeners.clear();
  }
}

const feeds = new WeakMap<Db, EventFeed>();

/** The process's feed of this database (one LISTEN connection however many subscribers). */
export function eventFeedOf(db: Db): EventFeed {
  let feed = feeds.get(db);
  if (!feed) feeds.set(db, (feed = new EventFeed(db)));
  return feed;
}

/** Stops the feed of `db` if one was made (at server close). */
export async function stopEventFeed(db: Db): Promise<void> {
  const feed = feeds.get(db);
  feeds.delete(db);
  await feed?.stop();
}

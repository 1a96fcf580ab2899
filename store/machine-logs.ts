import type { Db } from './db.js';

/**
 * A machine's output in Postgres, so the api can serve it from any host. Chunks are keyed by the
 * run that wrote them (workflow run id + activity id) and its attempt: a retried attempt writes
 * under a higher attempt number, and readers show each run's latest attempt only — an attempt's
 * lines are never shown twice, and a run that started over shows its fresh output.
 */
export type LogStream = 'stdout' | 'stderr' | 'agent' | 'system';
export const LOG_STREAMS: readonly LogStream[] = ['stdout', 'stderr', 'agent', 'system'];

export interface LogChunk {
  seq: number;
  stream: LogStream;
  text: string;
  at: string;
  attempt: number;
}

export interface NewLogChunk {
  machineId: string;
  run: string;
  attempt: number;
  stream: LogStream;
  text: string;
  bytes: number;
  at: Date;
}

export async function insertLogChunks(db: Db, chunks: NewLogChunk[]): Promise<void> {
  if (!chunks.length) return;
  await db('machine_logs').insert(
    chunks.map((c) => ({ machine_id: c.machineId, run: c.run, attempt: c.attempt, stream: c.stream, text: c.text, bytes: c.bytes, at: c.at })),
  );
}

/** Bytes already stored for the machine by other runs (and earlier attempts of this run are not counted). */
export async function storedLogBytes(db: Db, machineId: string, run: string): Promise<number> {
  const row = await db('machine_logs').where({ machine_id: machineId }).whereNot({ run }).sum({ n: 'bytes' }).first();
  return Number(row?.n ?? 0);
}

/** The machine's chunks after `after` (each run's latest attempt only), oldest first. */
export async function readLogChunks(db: Db, f: { machineId: string; after: number; streams?: readonly LogStream[]; limit: number }): Promise<LogChunk[]> {
  const q = db('machine_logs as l')
    .where('l.machine_id', f.machineId)
    .where('l.seq', '>', f.after)
    .whereRaw('l.attempt = (select max(x.attempt) from machine_logs x where x.machine_id = l.machine_id and x.run = l.run)')
    .orderBy('l.seq')
    .limit(f.limit)
    .select('l.seq', 'l.stream', 'l.text', 'l.at', 'l.attempt');
  if (f.streams?.length) q.whereIn('l.stream', [...f.streams]);
  return (await q).map((r) => ({ seq: Number(r.seq), stream: r.stream, text: r.text, at: new Date(r.at).toISOString(), attempt: r.attempt }));
}

/** The end of the machine's output on `streams` (each run's latest attempt only): at most `maxChars`, or null when there is none. */
export async function lastLogText(db: Db, machineId: string, streams: readonly LogStream[], maxChars: number): Promise<string | null> {
  const rows = await db('machine_logs as l')
    .where('l.machine_id', machineId)
    .whereIn('l.stream', [...streams])
    .whereRaw('l.attempt = (select max(x.attempt) from machine_logs x where x.machine_id = l.machine_id and x.run = l.run)')
    .orderBy('l.seq', 'desc')
    .limit(50)
    .select('l.text');
  let text = '';
  for (const r of rows) {
    text = r.text + text;
    if (text.length >= maxChars) break;
  }
  text = text.trim();
  return text ? text.slice(-maxChars) : null;
}

/**
 * Event delivery with 1,000 connected clients: the time from a state change to its event at every
 * subscribed client, and whether any client missed an event or got one twice.
 *
 * 1,000 subscribers (half SSE on GET /v1/events, half WebSocket on /v1/events/ws) of one project,
 * with a viewer key bound to it, run in their own process (scripts/bench/event-clients.ts). The
 * state changes are budget changes through the API (PUT /v1/projects/:id/budget with the admin
 * key), one after another at a fixed pace, in two phases: a trickle (2 a second) and 10 a second
 * (10,000 deliveries a second); each writes one `budget.set` event in its transaction.
 * The change's time is the wall clock just before the PUT is sent: an upper bound of its commit,
 * so the figures include the PUT's own handling (its round trip is reported alongside). Both
 * processes read the same wall clock.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { lastEventSeq } from '../../store/events.js';
import { startBenchPlatform, type BenchPlatform } from './bench-platform.js';
import { percentile, sleep, summarize, type BenchOptions, type BenchOutput, type Row } from './common.js';

const CLIENTS_FILE = fileURLToPath(new URL('./event-clients.ts', import.meta.url));
const TARGET_P99_MS = 250;

interface Report {
  kind: 'sse' | 'ws';
  events: Array<[number, number]>;
}

export async function eventDelivery(opts: BenchOptions): Promise<BenchOutput> {
  const clients = opts.quick ? 200 : 1000;
  let bench: BenchPlatform | undefined;
  let child: ChildProcess | undefined;
  try {
    // 1,000 connections from one key in well under a minute: the per-key limiter must not refuse them.
    bench = await startBenchPlatform(opts, { label: 'events', env: { AUTOVIBE_RATE_LIMIT: '100000' } });
    const { api, projectId, platform } = bench;
    const key = await api('POST', '/v1/keys', { name: 'bench watcher', role: 'viewer', projectIds: [projectId] });
    if (key.status !== 201) throw new Error(`POST /v1/keys: ${key.status} ${JSON.stringify(key.body)}`);

    opts.log(`connecting ${clients} subscribers (half SSE, half WebSocket) from a separate process`);
    // Run under `node --cpu-prof`, the benchmark profiles its subscribers' process too.
    const profiling = process.execArgv.filter((a) => a.startsWith('--cpu-prof'));
    const proc = spawn(process.execPath, [...profiling, '--import', 'tsx', CLIENTS_FILE], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: { ...process.env, EVENT_CLIENTS: JSON.stringify({ apiUrl: platform.apiUrl, key: key.body.key, projectId, count: clients }) },
    });
    child = proc;
    const messages: Array<Record<string, unknown>> = [];
    const waiters: Array<() => void> = [];
    proc.on('message', (m: Record<string, unknown>) => {
      messages.push(m);
      for (const w of waiters.splice(0)) w();
    });
    proc.on('exit', () => {
      for (const w of waiters.splice(0)) w();
    });
    const message = async (field: string, timeoutMs: number): Promise<Record<string, unknown>> => {
      const until = Date.now() + timeoutMs;
      for (;;) {
        const m = messages.find((x) => field in x || 'error' in x);
        if (m && 'error' in m) throw new Error(`event clients: ${String(m.error)}`);
        if (m) return m;
        if (proc.exitCode !== null) throw new Error(`event clients exited (${proc.exitCode}) before sending ${field}`);
        if (Date.now() > until) throw new Error(`event clients: no ${field} within ${timeoutMs / 1000}s`);
        await Promise.race([new Promise<void>((r) => waiters.push(r)), sleep(1000)]);
      }
    };
    const t = performance.now();
    await message('ready', 300_000);
    opts.log(`${clients} subscribed in ${((performance.now() - t) / 1000).toFixed(1)} s`);
    await sleep(1000);

    const messagesTaken = () => messages.splice(0);
    const phase = async (changes: number, paceMs: number) => {
      messagesTaken();
      const startSeq = await lastEventSeq(platform.db);
      opts.log(`${changes} budget changes, one every ${paceMs} ms`);
      // The api runs in this process: its CPU time over the changes and their delivery, per delivery.
      const cpuBefore = process.cpuUsage();
      const sent: number[] = [];
      const answered: number[] = [];
      for (let i = 0; i < changes; i++) {
        const before = performance.timeOrigin + performance.now();
        const res = await api('PUT', `/v1/projects/${projectId}/budget`, { amount: `${1000 + i}.00`, currency: 'USD', period: 'total' });
        const after = performance.timeOrigin + performance.now();
        if (res.status !== 200) throw new Error(`PUT budget: ${res.status} ${JSON.stringify(res.body)}`);
        sent.push(before);
        answered.push(after);
        await sleep(Math.max(0, paceMs - (after - before)));
      }
      // Deliveries still under way get a few seconds; a late one counts late, a lost one missed.
      await sleep(3000);
      const cpu = process.cpuUsage(cpuBefore);
      proc.send({ report: true });
      const reports = (await message('report', 120_000)).report as Report[];

      // The changes ran one after another, so their events' seq order is their order.
      const rows: Array<{ seq: string | number; kind: string; at_ms: string | number }> = await platform
        .db('events')
        .where('project_id', projectId)
        .where('seq', '>', startSeq)
        .orderBy('seq')
        .select('seq', 'kind', platform.db.raw('extract(epoch from at) * 1000 as at_ms'));
      if (rows.length !== changes || rows.some((r) => r.kind !== 'budget.set')) {
        throw new Error(`expected ${changes} budget.set events after seq ${startSeq}, found ${rows.map((r) => r.kind).join(', ')}`);
      }
      const changeOf = new Map(rows.map((r, i) => [Number(r.seq), i]));
      const latency: number[] = [];
      const latencyFromAnswer: number[] = [];
      const latencyFromTx: number[] = [];
      const txAt = rows.map((r) => Number(r.at_ms));
      const byKind: Record<'sse' | 'ws', number[]> = { sse: [], ws: [] };
      let missed = 0;
      let duplicated = 0;
      let unexpected = 0;
      for (const r of reports) {
        const seen = new Set<number>();
        for (const [seq, at] of r.events) {
          const i = changeOf.get(seq);
          if (i === undefined) {
            unexpected += 1;
            continue;
          }
          if (seen.has(seq)) {
            duplicated += 1;
            continue;
          }
          seen.add(seq);
          latency.push(at - sent[i]!);
          latencyFromAnswer.push(at - answered[i]!);
          latencyFromTx.push(at - txAt[i]!);
          byKind[r.kind].push(at - sent[i]!);
        }
        missed += changes - seen.size;
      }
      const p99Of = (xs: number[]) =>
        percentile(
          [...xs].sort((a, b) => a - b),
          0.99,
        );
      const put = answered.map((a, i) => a - sent[i]!);
      const p99 = p99Of(latency);
      const tag = `${changes} changes, 1 per ${paceMs} ms`;
      const rows_: Row[] = [
        { label: `change → event at client, ${clients} clients, ${tag}`, unit: 'ms', stats: summarize(latency) },
        { label: `  p99 (target < ${TARGET_P99_MS})`, unit: 'ms', value: p99 },
        { label: '  p99, SSE clients', unit: 'ms', value: p99Of(byKind.sse) },
        { label: '  p99, WebSocket clients', unit: 'ms', value: p99Of(byKind.ws) },
        { label: '  p99 from the change’s transaction start (events.at; before its commit)', unit: 'ms', value: p99Of(latencyFromTx) },
        { label: '  p99 from the PUT’s answer (after its commit)', unit: 'ms', value: p99Of(latencyFromAnswer) },
        { label: '  PUT budget round trip (included above)', unit: 'ms', stats: summarize(put) },
        { label: '  api process CPU per delivery (user + system)', unit: 'µs', value: (cpu.user + cpu.system) / latency.length, decimals: 1 },
        { label: '  deliveries', unit: 'events', value: latency.length, decimals: 0 },
        { label: '  missed', unit: 'events', value: missed, decimals: 0 },
        { label: '  duplicated', unit: 'events', value: duplicated, decimals: 0 },
        { label: '  unexpected (not one of the changes)', unit: 'events', value: unexpected, decimals: 0 },
      ];
      const note =
        `${tag}: p99 ${p99.toFixed(1)} ms — ${p99 < TARGET_P99_MS ? 'within' : 'MISSES'} the ${TARGET_P99_MS} ms target; ` +
        `${missed} missed, ${duplicated} duplicated.`;
      return { rows: rows_, note, details: { changes, paceMs, p99, missed, duplicated, unexpected, putMs: put, cpuMicros: cpu } };
    };

    // A steady trickle, then ten changes a second (10,000 deliveries a second at 1,000 clients).
    const phases = opts.quick
      ? [
          { changes: 10, paceMs: 500 },
          { changes: 20, paceMs: 200 },
        ]
      : [
          { changes: 40, paceMs: 500 },
          { changes: 100, paceMs: 100 },
        ];
    const results = [];
    for (const ph of phases) results.push(await phase(ph.changes, ph.paceMs));
    return {
      rows: results.flatMap((r) => r.rows),
      notes: [
        `event-delivery: ${clients} subscribers of one project (half SSE, half WebSocket, a viewer key) in a separate process; ` +
          `PUT budget changes one after another; latency from just before each PUT to the event's arrival. ` +
          results.map((r) => r.note).join(' '),
      ],
      details: { clients, phases: results.map((r) => r.details) },
    };
  } finally {
    if (child && child.exitCode === null) {
      child.send({ stop: true });
      await Promise.race([new Promise((r) => child!.once('exit', r)), sleep(5000)]);
      if (child.exitCode === null) child.kill('SIGTERM');
    }
    await bench?.stop();
  }
}

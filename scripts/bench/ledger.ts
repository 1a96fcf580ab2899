/**
 * Budget ledger throughput: reserve+settle pairs per second on real PostgreSQL with 16
 * concurrent reservers (a knex pool of 16), all on one hot budget and spread over 100 budgets,
 * next to pgbench on the same server in the same run. The absolute figures depend on the
 * machine; the ratios ledger/pgbench are what to compare between runs.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fromNumeric, parseAmount, type CurrencyCode } from '../../domain/money.js';
import { reserve, setBudget, settle, type Budget } from '../../store/budgets.js';
import { createDb, migrateLatest, type Db } from '../../store/db.js';
import { createDatabase, startPostgres, type PostgresServer } from '../services/postgres.js';
import { summarize, type BenchOptions, type BenchOutput, type Stats } from './common.js';

const CONCURRENCY = 16;
const SPREAD_BUDGETS = 100;
const CURRENCY: CurrencyCode = 'USD';
const RESERVE = parseAmount('0.01', CURRENCY);
/** Settled below the reservation, as a machine that ends early is (0.004: below a cent, in ledger units). */
const SETTLE = (RESERVE * 2n) / 5n;
/** Far more than any run can reserve: nothing is ever refused. */
const LIMIT = parseAmount('1000000000', CURRENCY);

interface PhaseResult {
  pairs: number;
  seconds: number;
  pairsPerSecond: number;
  /** Milliseconds per reserve+settle pair, as one reserver sees it. */
  latency: Stats;
  /** This process's CPU (user + system) per pair, in ms: the client's share of a pair's cost. */
  cpuMsPerPair: number;
}

interface PgbenchResult {
  tps: number;
  latencyAvgMs: number | null;
  transactions: number | null;
  failed: number | null;
}

/**
 * `CONCURRENCY` reservers, each reserving then settling under a fresh key in a loop until
 * `durationMs` has passed; the n-th pair overall goes to budget n mod budgets.length. Pairs
 * under way at the end are finished and counted, over the time until the last one finished.
 */
async function runPairs(db: Db, budgets: Budget[], durationMs: number, label: string): Promise<PhaseResult> {
  const now = new Date();
  const latencies: number[] = [];
  let next = 0;
  const begin = performance.now();
  const cpu = process.cpuUsage();
  const end = begin + durationMs;
  const reserver = async (w: number) => {
    for (let i = 0; performance.now() < end; i++) {
      const budget = budgets[next++ % budgets.length]!;
      const key = `bench-${label}-${w}-${i}`;
      const t = performance.now();
      const outcome = await reserve(db, { key, budgetIds: [budget.id], projectId: 'bench-project', amount: RESERVE, now });
      if (!outcome.ok) throw new Error(`reservation ${key} refused (remaining ${outcome.remaining}): the bench budgets are meant never to refuse`);
      await settle(db, key, SETTLE);
      latencies.push(performance.now() - t);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, (_, w) => reserver(w)));
  const seconds = (performance.now() - begin) / 1000;
  const used = process.cpuUsage(cpu);
  return {
    pairs: latencies.length,
    seconds,
    pairsPerSecond: latencies.length / seconds,
    latency: summarize(latencies),
    cpuMsPerPair: (used.user + used.system) / 1000 / Math.max(1, latencies.length),
  };
}

/** The ledger must add up: every pair settled, nothing left reserved. */
async function checkBooks(db: Db, budgets: Budget[], pairs: number): Promise<void> {
  const rows: Array<{ spent: string; reserved: string }> = await db('budget_windows')
    .whereIn(
      'budget_id',
      budgets.map((b) => b.id),
    )
    .select('spent', 'reserved');
  const spent = rows.reduce((s, r) => s + fromNumeric(r.spent), 0n);
  const reserved = rows.reduce((s, r) => s + fromNumeric(r.reserved), 0n);
  if (reserved !== 0n || spent !== SETTLE * BigInt(pairs)) {
    throw new Error(`ledger books do not add up after ${pairs} pairs: spent ${spent} (expected ${SETTLE * BigInt(pairs)}), reserved ${reserved}`);
  }
}

function findPgbench(): string {
  const dirs: string[] = [];
  if (process.env.PG_BIN) dirs.push(process.env.PG_BIN);
  const base = '/usr/lib/postgresql';
  let versions: string[] = [];
  try {
    versions = fs.readdirSync(base).filter((v) => /^\d+(\.\d+)?$/.test(v));
  } catch {
    // not installed there
  }
  // Newest first, as scripts/services/postgres.ts picks the server.
  versions.sort((a, b) => Number.parseFloat(b) - Number.parseFloat(a));
  dirs.push(...versions.map((v) => path.join(base, v, 'bin')));
  for (const dir of dirs) {
    const candidate = path.join(dir, 'pgbench');
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      return candidate;
    } catch {
      // try the next
    }
  }
  throw new Error(`pgbench not found (looked in ${dirs.join(', ') || base + '/*/bin'}); it ships with the PostgreSQL server packages`);
}

function run(command: string, args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      command,
      args,
      { encoding: 'utf8', timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024, env: { ...process.env, PGCONNECT_TIMEOUT: '10' } },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`${path.basename(command)} ${args.join(' ')}: ${err.message}\n${stderr}`.trim(), { cause: err }));
        else resolve(`${stdout}\n${stderr}`);
      },
    );
  });
}

function parsePgbench(output: string): PgbenchResult {
  // PostgreSQL 14+: "tps = N (without initial connection time)"; older: "(excluding connections establishing)".
  const tps = output.match(/^tps = ([\d.]+) \((?:without initial connection time|excluding connections establishing)\)/m) ?? output.match(/^tps = ([\d.]+)/m);
  if (!tps) throw new Error(`no tps line in pgbench output:\n${output}`);
  const latency = output.match(/^latency average = ([\d.]+) ms/m);
  const processed = output.match(/^number of transactions actually processed: (\d+)/m);
  const failed = output.match(/^number of failed transactions: (\d+)/m);
  return {
    tps: Number.parseFloat(tps[1]!),
    latencyAvgMs: latency ? Number.parseFloat(latency[1]!) : null,
    transactions: processed ? Number.parseInt(processed[1]!, 10) : null,
    failed: failed ? Number.parseInt(failed[1]!, 10) : null,
  };
}

export async function ledger(opts: BenchOptions): Promise<BenchOutput> {
  const seconds = opts.quick ? 3 : 10;
  const warmupMs = opts.quick ? 1_000 : 2_000;
  let postgres: PostgresServer | undefined;
  let db: Db | undefined;
  try {
    opts.log('starting PostgreSQL');
    postgres = await startPostgres();
    const ledgerUrl = await createDatabase(postgres.url, 'bench_ledger');
    const pgbenchUrl = await createDatabase(postgres.url, 'bench_pgbench');

    db = await createDb({ databaseUrl: ledgerUrl, pool: { min: CONCURRENCY, max: CONCURRENCY } });
    await migrateLatest(db);
    const serverVersion: string = (await db.raw('SHOW server_version')).rows[0].server_version;
    const budget = (scopeId: string) => setBudget(db!, { scopeType: 'project', scopeId, period: 'total', limit: LIMIT, currency: CURRENCY });
    const hot = [await budget('bench-hot')];
    const spread: Budget[] = [];
    for (let i = 0; i < SPREAD_BUDGETS; i++) spread.push(await budget(`bench-spread-${i}`));
    const warm = [await budget('bench-warmup')];

    opts.log(`ledger warm-up (${warmupMs / 1000}s, not counted)`);
    await runPairs(db, warm, warmupMs, 'warmup');
    opts.log(`ledger: ${CONCURRENCY} reservers on one hot budget for ${seconds}s`);
    const hotResult = await runPairs(db, hot, seconds * 1000, 'hot');
    await checkBooks(db, hot, hotResult.pairs);
    opts.log(`ledger: ${CONCURRENCY} reservers over ${SPREAD_BUDGETS} budgets for ${seconds}s`);
    const spreadResult = await runPairs(db, spread, seconds * 1000, 'spread');
    await checkBooks(db, spread, spreadResult.pairs);
    await db.destroy();
    db = undefined;

    const pgbench = findPgbench();
    const u = new URL(pgbenchUrl);
    const conn = ['-h', u.hostname, '-p', u.port, '-U', decodeURIComponent(u.username) || 'postgres'];
    const dbName = u.pathname.slice(1);
    const timeoutMs = (seconds + 120) * 1000;
    const pgbenchVersion = (await run(pgbench, ['--version'], 10_000)).trim();
    opts.log('pgbench -i -s 1');
    await run(pgbench, ['-i', '-s', '1', '-q', ...conn, dbName], 120_000);
    const load = ['-c', String(CONCURRENCY), '-j', '2', '-T', String(seconds)];
    opts.log(`pgbench TPC-B-like, ${load.join(' ')}`);
    const tpcb = parsePgbench(await run(pgbench, [...load, ...conn, dbName], timeoutMs));
    opts.log(`pgbench select-only, -S ${load.join(' ')}`);
    const select = parsePgbench(await run(pgbench, ['-S', ...load, ...conn, dbName], timeoutMs));

    const ratio = (a: number, b: number) => a / b;
    return {
      rows: [
        { label: `reserve+settle pairs/s, 1 hot budget, ${CONCURRENCY} reservers`, unit: 'pairs/s', value: hotResult.pairsPerSecond },
        { label: `reserve+settle pairs/s, ${SPREAD_BUDGETS} budgets, ${CONCURRENCY} reservers`, unit: 'pairs/s', value: spreadResult.pairsPerSecond },
        { label: `  pair latency, 1 hot budget`, unit: 'ms', stats: hotResult.latency, decimals: 2 },
        { label: `  pair latency, ${SPREAD_BUDGETS} budgets`, unit: 'ms', stats: spreadResult.latency, decimals: 2 },
        { label: '  client CPU per pair (this Node process), 1 hot budget', unit: 'ms', value: hotResult.cpuMsPerPair, decimals: 2 },
        { label: `  client CPU per pair (this Node process), ${SPREAD_BUDGETS} budgets`, unit: 'ms', value: spreadResult.cpuMsPerPair, decimals: 2 },
        { label: `pgbench TPC-B-like (-c ${CONCURRENCY} -j 2 -T ${seconds})`, unit: 'tps', value: tpcb.tps },
        { label: `pgbench select-only (-S -c ${CONCURRENCY} -j 2 -T ${seconds})`, unit: 'tps', value: select.tps },
        { label: 'ratio hot pairs/s / pgbench TPC-B tps', unit: 'ratio', value: ratio(hotResult.pairsPerSecond, tpcb.tps), decimals: 3 },
        { label: 'ratio spread pairs/s / pgbench TPC-B tps', unit: 'ratio', value: ratio(spreadResult.pairsPerSecond, tpcb.tps), decimals: 3 },
        { label: 'ratio hot pairs/s / pgbench select-only tps', unit: 'ratio', value: ratio(hotResult.pairsPerSecond, select.tps), decimals: 3 },
        { label: 'ratio spread pairs/s / pgbench select-only tps', unit: 'ratio', value: ratio(spreadResult.pairsPerSecond, select.tps), decimals: 3 },
      ],
      notes: [
        `target (issue 18): reserve+settle pairs/s at least half of pgbench TPC-B tps: hot ${ratio(hotResult.pairsPerSecond, tpcb.tps).toFixed(3)}, ` +
          `spread ${ratio(spreadResult.pairsPerSecond, tpcb.tps).toFixed(3)}: ` +
          (Math.min(hotResult.pairsPerSecond, spreadResult.pairsPerSecond) >= tpcb.tps / 2 ? 'met' : 'not met') +
          '.',
        `ledger: a pair is reserve (lookup + transaction of 4 statements) then settle (transaction of 3 statements), ` +
          `about 12 round trips, against 7 for a pgbench TPC-B transaction (BEGIN, 5 statements, END); ${CONCURRENCY}-connection knex pool in one Node ` +
          `process vs pgbench's C client on 2 threads; server: fsync=off, synchronous_commit=off (scripts/services/postgres.ts).`,
      ],
      details: {
        seconds,
        warmupMs,
        concurrency: CONCURRENCY,
        spreadBudgets: SPREAD_BUDGETS,
        reserveAmount: '0.01',
        settleAmount: '0.004',
        serverVersion,
        pgbenchVersion,
        hot: hotResult,
        spread: spreadResult,
        pgbench: { tpcb, selectOnly: select },
      },
    };
  } finally {
    await db?.destroy().catch(() => {});
    try {
      await postgres?.stop();
    } catch (err) {
      opts.log(`stopping postgres failed: ${(err as Error).message}`);
    }
  }
}

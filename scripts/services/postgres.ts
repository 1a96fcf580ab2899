/**
 * A throwaway real PostgreSQL server for tests and benchmarks: initdb into a
 * scratch directory, run `postgres` as our child (never daemonised, so it dies
 * with us), and remove everything on stop().
 */
import { execFile, type ExecFileOptions } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { assertPortFree, freePort } from './ports.js';
import { describeExit, sleep, spawnServiceProcess } from './process.js';

const READY_TIMEOUT_MS = 30_000;
const STOP_KILL_AFTER_MS = 10_000;
const PORT_ATTEMPTS = 3;
const TEST_DATABASE = 'autovibe_test';

export interface PostgresServer {
  /** postgres://postgres@127.0.0.1:PORT/autovibe_test */
  url: string;
  /** Scratch root: holds the cluster (dir/data), the unix socket and postgres.log. */
  dir: string;
  stop(): Promise<void>;
}

export interface StartPostgresOptions {
  /**
   * Scratch root to use instead of a fresh mkdtemp under os.tmpdir(). It is created
   * if missing; it is removed on stop() only when this function created it.
   * It must be reachable by the `postgres` OS user when running as root.
   */
  dir?: string;
  /** TCP port on 127.0.0.1; 0 or undefined picks a free one. */
  port?: number;
}

interface PgBinaries {
  initdb: string;
  postgres: string;
}

interface RunningServer {
  adminUrl: string;
  hasExited(): boolean;
  stop(): Promise<void>;
}

interface RunAs {
  uid: number;
  gid: number;
}

export async function startPostgres(opts: StartPostgresOptions = {}): Promise<PostgresServer> {
  const bins = findPgBinaries();
  const runAs = process.getuid?.() === 0 ? await postgresUser() : undefined;

  let createdDir = false;
  let dir: string;
  if (opts.dir !== undefined) {
    dir = path.resolve(opts.dir);
    if (!fs.existsSync(dir)) {
      await fsp.mkdir(dir, { recursive: true });
      createdDir = true;
    }
  } else {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'autovibe-pg-'));
    createdDir = true;
  }
  const dataDir = path.join(dir, 'data');
  const logFile = path.join(dir, 'postgres.log');

  // Handle of the running server, once there is one.
  let server: RunningServer | undefined;
  // If we exit while postgres is still running, its watchdog stops it and removes the
  // directory. If postgres has already stopped, nothing else will: remove it here.
  const removeOnExit = (): void => {
    if (server === undefined || server.hasExited()) fs.rmSync(dir, { recursive: true, force: true });
  };
  if (createdDir) process.on('exit', removeOnExit);
  const cleanupDir = async (): Promise<void> => {
    if (!createdDir) return;
    await fsp.rm(dir, { recursive: true, force: true });
    process.off('exit', removeOnExit);
  };

  try {
    if (runAs) {
      await fsp.chmod(dir, 0o700);
      await fsp.chown(dir, runAs.uid, runAs.gid);
    }
    if (!fs.existsSync(path.join(dataDir, 'PG_VERSION'))) {
      await initdb(bins, dataDir, runAs);
    }

    const fixedPort = opts.port !== undefined && opts.port !== 0;
    for (let attempt = 1; server === undefined; attempt++) {
      const port = fixedPort ? (opts.port as number) : await freePort();
      try {
        server = await startServer(bins, dir, dataDir, logFile, port, runAs, createdDir);
      } catch (err) {
        // Only a lost race for an auto-picked port is worth another try.
        const lostRace = /already in use|could not bind|could not create listen socket/i.test((err as Error).message);
        if (fixedPort || !lostRace || attempt >= PORT_ATTEMPTS) throw err;
      }
    }

    const running = server;
    const url = await createDatabase(running.adminUrl, TEST_DATABASE);
    return {
      url,
      dir,
      stop: async () => {
        await running.stop();
        await cleanupDir();
      },
    };
  } catch (err) {
    await server?.stop();
    await cleanupDir();
    throw err;
  }
}

/**
 * Creates a fresh database `name` (dropping any existing one of that name) on the
 * server that `url` points at, and returns `url` with its database replaced by `name`.
 */
export async function createDatabase(url: string, name: string): Promise<string> {
  if (!/^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(name)) {
    throw new Error(`createDatabase: ${JSON.stringify(name)} is not a plain identifier`);
  }
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    await client.query(`CREATE DATABASE "${name}"`);
  } finally {
    await client.end();
  }
  const result = new URL(url);
  result.pathname = `/${name}`;
  return result.toString();
}

function findPgBinaries(): PgBinaries {
  const candidates: string[] = [];
  const pgBin = process.env.PG_BIN;
  if (pgBin) {
    candidates.push(pgBin);
  } else {
    const base = '/usr/lib/postgresql';
    let versions: string[] = [];
    try {
      versions = fs.readdirSync(base).filter((v) => /^\d+(\.\d+)?$/.test(v));
    } catch {
      // not installed there
    }
    versions.sort((a, b) => Number.parseFloat(b) - Number.parseFloat(a));
    for (const v of versions) candidates.push(path.join(base, v, 'bin'));
    const initdbOnPath = whichSync('initdb');
    if (initdbOnPath) candidates.push(path.dirname(fs.realpathSync(initdbOnPath)));
  }
  for (const dir of candidates) {
    const initdbBin = path.join(dir, 'initdb');
    const postgresBin = path.join(dir, 'postgres');
    if (isExecutable(initdbBin) && isExecutable(postgresBin)) return { initdb: initdbBin, postgres: postgresBin };
  }
  throw new Error(
    pgBin
      ? `PG_BIN=${pgBin} does not contain executable initdb and postgres binaries`
      : 'PostgreSQL server binaries not found (looked in /usr/lib/postgresql/*/bin and for initdb on PATH). ' +
          'Install them with `apt-get install postgresql` (Debian/Ubuntu), or set PG_BIN to the directory holding initdb and postgres.',
  );
}

function whichSync(command: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, command);
    if (isExecutable(candidate)) return candidate;
  }
  return undefined;
}

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

async function postgresUser(): Promise<RunAs> {
  try {
    const [uid, gid] = await Promise.all([run('id', ['-u', 'postgres']), run('id', ['-g', 'postgres'])]);
    return { uid: Number.parseInt(uid, 10), gid: Number.parseInt(gid, 10) };
  } catch (err) {
    throw new Error(
      'Running as root, and PostgreSQL refuses to run as root, but there is no `postgres` OS user ' + '(`apt-get install postgresql` creates it).',
      { cause: err },
    );
  }
}

async function initdb(bins: PgBinaries, dataDir: string, runAs: RunAs | undefined): Promise<void> {
  const args = [
    '-D',
    dataDir,
    '-A',
    'trust',
    '-U',
    'postgres',
    '--no-sync',
    '-E',
    'UTF8',
    // Independent of whatever locales this machine has generated.
    '--locale=C',
  ];
  const [command, fullArgs] = runAs ? ['runuser', ['-u', 'postgres', '--', bins.initdb, ...args]] : [bins.initdb, args];
  try {
    await run(command, fullArgs, { cwd: path.dirname(dataDir) });
  } catch (err) {
    throw new Error(`initdb failed: ${(err as Error).message}`, { cause: err });
  }
}

async function startServer(
  bins: PgBinaries,
  dir: string,
  dataDir: string,
  logFile: string,
  port: number,
  runAs: RunAs | undefined,
  removeDirIfOrphaned: boolean,
): Promise<RunningServer> {
  // Otherwise the readiness probe could be answered by whatever already listens there.
  await assertPortFree(port, 'postgres port');
  const args = [
    '-D',
    dataDir,
    '-p',
    String(port),
    '-k',
    dir,
    '-h',
    '127.0.0.1',
    '-c',
    'fsync=off',
    '-c',
    'synchronous_commit=off',
    '-c',
    'full_page_writes=off',
    '-c',
    'max_connections=300',
  ];
  // As root, spawn postgres with the postgres user's uid/gid directly rather than via
  // runuser: runuser would sit between us and postgres and turn our SIGINT (fast
  // shutdown) into SIGTERM (smart shutdown, which waits for every client to leave).
  const proc = spawnServiceProcess({
    name: 'postgres',
    command: bins.postgres,
    args,
    cwd: dir,
    uid: runAs?.uid,
    gid: runAs?.gid,
    env: { ...process.env, LC_ALL: 'C' },
    logFile,
    stopSignal: 'SIGINT',
    killAfterMs: STOP_KILL_AFTER_MS,
    scratchPaths: removeDirIfOrphaned ? [dir] : [],
  });

  const adminUrl = `postgres://postgres@127.0.0.1:${port}/postgres`;
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let lastError: unknown;
  for (;;) {
    if (proc.hasExited()) {
      const info = await proc.exited;
      throw new Error(`postgres ${describeExit(info)} before accepting connections:\n${proc.recentOutput()}`);
    }
    const client = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 2_000 });
    client.on('error', () => {});
    try {
      await client.connect();
      await client.query('select 1');
      await client.end();
      if (!proc.hasExited()) break;
      continue; // it died meanwhile: report that, at the top of the loop
    } catch (err) {
      lastError = err;
      await client.end().catch(() => {});
    }
    if (Date.now() > deadline) {
      await proc.stop();
      throw new Error(`postgres on port ${port} not ready after ${READY_TIMEOUT_MS / 1000}s (last error: ${String(lastError)}):\n${proc.recentOutput()}`);
    }
    await Promise.race([sleep(100), proc.exited]);
  }
  return { adminUrl, hasExited: () => proc.hasExited(), stop: () => proc.stop() };
}

function run(command: string, args: string[], options: ExecFileOptions = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { ...options, encoding: 'utf8', maxBuffer: 4 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) {
        reject(new Error(`${command} ${args.join(' ')}: ${err.message}\n${String(stderr)}`.trim(), { cause: err }));
        return;
      }
      resolve(String(stdout).trim());
    });
  });
}

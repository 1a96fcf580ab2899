/**
 * Temporal CLI discovery and a throwaway `temporal server start-dev` for tests,
 * benchmarks and local development.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Connection } from '@temporalio/client';
import { SEARCH_ATTRIBUTE_NAMES } from '../../domain/search-attributes.js';
import { assertPortFree, freePort } from './ports.js';
import { describeExit, sleep, spawnServiceProcess } from './process.js';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const ENSURE_SCRIPT = path.join(REPO_ROOT, 'scripts', 'ensure-temporal');

const READY_TIMEOUT_MS = 60_000;
const STOP_KILL_AFTER_MS = 10_000;
const PORT_ATTEMPTS = 3;

/**
 * Runs scripts/ensure-temporal (which may build the CLI with Go; that can take
 * minutes the first time) and returns the absolute path of the binary.
 */
export async function ensureTemporalBinary(): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const child = execFile(ENSURE_SCRIPT, [], { cwd: REPO_ROOT, maxBuffer: 1024 * 1024, encoding: 'utf8' }, (err, stdout) => {
      const binary = stdout.trim().split('\n').pop()?.trim() ?? '';
      if (err) {
        reject(
          new Error(
            `scripts/ensure-temporal failed (${err.message.split('\n')[0] ?? ''}); ` +
              'its messages are above on stderr. Set TEMPORAL_CLI to a Temporal CLI binary to skip the build.',
            { cause: err },
          ),
        );
        return;
      }
      if (!binary.startsWith('/')) {
        reject(new Error(`scripts/ensure-temporal printed no absolute path (got ${JSON.stringify(stdout)})`));
        return;
      }
      resolve(binary);
    });
    // Build progress goes straight through to our stderr.
    child.stderr?.pipe(process.stderr, { end: false });
  });
}

export interface TemporalDevServerOptions {
  /** Temporal CLI binary; defaults to ensureTemporalBinary(). */
  binary?: string;
  /** Frontend gRPC port; 0 or undefined picks a free loopback port. */
  port?: number;
  /** Web UI port; null runs headless; 0 or undefined picks a free port. */
  uiPort?: number | null;
  /** SQLite file for persistent state; absent means in-memory. */
  dbFile?: string;
  /** Append the server's output here (otherwise the tail is kept in memory for errors). */
  logFile?: string;
}

export interface TemporalDevServer {
  /** host:port of the frontend gRPC service. */
  address: string;
  uiUrl: string | null;
  stop(): Promise<void>;
}

export async function startTemporalDevServer(opts: TemporalDevServerOptions = {}): Promise<TemporalDevServer> {
  const binary = opts.binary ?? (await ensureTemporalBinary());
  const fixedPort = opts.port !== undefined && opts.port !== 0;
  const attempts = fixedPort ? 1 : PORT_ATTEMPTS;

  let lastError: Error | undefined;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    const port = fixedPort ? (opts.port as number) : await freePort();
    const uiPort = opts.uiPort === null ? null : opts.uiPort !== undefined && opts.uiPort !== 0 ? opts.uiPort : await freePort();
    try {
      return await startOnce(binary, port, uiPort, opts);
    } catch (err) {
      lastError = err as Error;
      // Only a lost race for an auto-picked port is worth another try.
      if (!/address already in use|bind/i.test(lastError.message)) break;
    }
  }
  throw lastError ?? new Error('temporal dev server did not start');
}

async function startOnce(binary: string, port: number, uiPort: number | null, opts: TemporalDevServerOptions): Promise<TemporalDevServer> {
  const host = '127.0.0.1';
  const address = `${host}:${port}`;
  // Otherwise the readiness probe could be answered by whatever already listens there.
  await assertPortFree(port, 'temporal frontend port');
  if (uiPort !== null) await assertPortFree(uiPort, 'temporal UI port');
  const args = ['server', 'start-dev', '--ip', host, '--port', String(port)];
  if (uiPort === null) args.push('--headless');
  else args.push('--ui-port', String(uiPort));
  if (opts.dbFile !== undefined) args.push('--db-filename', opts.dbFile);
  // Update-with-start and worker-versioning APIs need no --dynamic-config-value:
  // frontend.enableUpdateWorkflowExecution and frontend.workerVersioningWorkflowAPIs
  // both default to true in the server (1.29) bundled with CLI v1.5.1.
  args.push('--log-level', 'warn');
  // AutoVibe's search attributes (domain/search-attributes.ts), so runs are found by project and status.
  for (const name of SEARCH_ATTRIBUTE_NAMES) args.push('--search-attribute', `${name}=Keyword`);

  const proc = spawnServiceProcess({
    name: 'temporal dev server',
    command: binary,
    args,
    logFile: opts.logFile,
    stopSignal: 'SIGTERM',
    killAfterMs: STOP_KILL_AFTER_MS,
  });

  const deadline = Date.now() + READY_TIMEOUT_MS;
  let lastError: unknown;
  for (;;) {
    if (proc.hasExited()) {
      const info = await proc.exited;
      throw new Error(`temporal dev server (${binary} ${args.join(' ')}) ${describeExit(info)} before it became ready:\n${proc.recentOutput()}`);
    }
    try {
      await probe(address);
      if (!proc.hasExited()) break;
      continue; // it died meanwhile: report that, at the top of the loop
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      await proc.stop();
      throw new Error(
        `temporal dev server at ${address} not ready after ${READY_TIMEOUT_MS / 1000}s ` + `(last error: ${String(lastError)}):\n${proc.recentOutput()}`,
      );
    }
    await Promise.race([sleep(200), proc.exited]);
  }

  return {
    address,
    uiUrl: uiPort === null ? null : `http://${host}:${uiPort}`,
    stop: () => proc.stop(),
  };
}

async function probe(address: string): Promise<void> {
  const connection = await Connection.connect({ address, connectTimeout: 2_000 });
  try {
    await connection.workflowService.getSystemInfo({});
  } finally {
    await connection.close();
  }
}

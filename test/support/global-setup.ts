/**
 * Mocha global fixtures (loaded through .mocharc.json "require").
 *
 * Starts the real services the test suites need, unless the environment already
 * points at them:
 *   TEST_DATABASE_URL      PostgreSQL URL (a throwaway server is started if unset)
 *   TEST_TEMPORAL_ADDRESS  host:port of a Temporal frontend (a headless in-memory
 *                          dev server is started if unset; TEMPORAL_CLI_PATH is set too)
 *
 * Spec files are loaded before this runs, so tests must read these variables in
 * hooks or tests, not at module top level.
 */
import { startPostgres, type PostgresServer } from '../../scripts/services/postgres.js';
import { ensureTemporalBinary, startTemporalDevServer, type TemporalDevServer } from '../../scripts/services/temporal.js';

let postgres: PostgresServer | undefined;
let temporal: TemporalDevServer | undefined;

function log(message: string): void {
  process.stderr.write(`[test services] ${message}\n`);
}

export async function mochaGlobalSetup(): Promise<void> {
  try {
    await Promise.all([
      (async () => {
        if (process.env.TEST_DATABASE_URL) return;
        const started = Date.now();
        postgres = await startPostgres();
        process.env.TEST_DATABASE_URL = postgres.url;
        log(`postgres ${postgres.url} (${Date.now() - started} ms)`);
      })(),
      (async () => {
        if (process.env.TEST_TEMPORAL_ADDRESS) return;
        const binary = await ensureTemporalBinary();
        const started = Date.now();
        temporal = await startTemporalDevServer({ binary, uiPort: null });
        process.env.TEST_TEMPORAL_ADDRESS = temporal.address;
        process.env.TEMPORAL_CLI_PATH = binary;
        log(`temporal dev server ${temporal.address} (${Date.now() - started} ms)`);
      })(),
    ]);
  } catch (err) {
    // Whatever did start must not linger; then fail the run.
    await mochaGlobalTeardown();
    throw err;
  }
}

export async function mochaGlobalTeardown(): Promise<void> {
  const stopping: Promise<void>[] = [];
  if (temporal) stopping.push(temporal.stop());
  if (postgres) stopping.push(postgres.stop());
  temporal = undefined;
  postgres = undefined;
  await Promise.all(stopping);
}

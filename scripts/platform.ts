import fs from 'node:fs';
import type { Server } from 'node:http';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, type WorkflowBundle } from '@temporalio/worker';
import { installTemporalRuntime } from '../workers/runtime.js';
import type { Logger } from 'pino';
import { createApp } from '../api/app.js';
import { attachEventSocket } from '../api/events-socket.js';
import { graphqlSocket } from '../api/graphql/socket.js';
import type { Config } from '../config/index.js';
import { temporalConnectionOptions, type TemporalConnectionOptions } from '../config/temporal.js';
import { bootstrapAdminKey } from '../api/bootstrap.js';
import { createDb, migrateLatest, type Db } from '../store/db.js';
import { startSecretStore } from '../store/secrets.js';
import { secretKeysOf } from '../config/secrets-key.js';
import { createLogger } from '../workers/logger.js';
import { createProviders } from '../activities/compute/index.js';
import { diskSnapshotReader } from '../activities/instance-snapshots.js';
import { createWorker } from '../workers/worker.js';
import {
  ensureAlertSchedule,
  ensureBackupSchedule,
  ensureForecastSchedule,
  ensureReallocationSchedule,
  ensureReconcileSchedule,
  ensureSnapshotSchedules,
} from '../workers/schedules.js';
import { checkSearchAttributes } from '../workers/search-attributes.js';
import { startTemporalDevServer, type TemporalDevServer } from './services/temporal.js';

export interface Platform {
  apiUrl: string;
  temporalAddress: string;
  temporalUiUrl: string | null;
  adminKey: string;
  db: Db;
  temporal: Client;
  log: Logger;
  stop(): Promise<void>;
}

export interface PlatformOptions {
  config: Config;
  /** Start a worker in this process (the embedded default). */
  worker?: boolean;
  workflowBundle?: WorkflowBundle;
  /** Ports of the embedded Temporal dev server (defaults 7233 and Web UI 8233). */
  temporalPort?: number;
  temporalUiPort?: number | null;
}

/**
 * Brings up the whole platform in one process: Postgres (given or embedded PGlite), Temporal
 * (given or an embedded dev server), a worker and the REST api. `stop()` takes it all down.
 */
export async function startPlatform(opts: PlatformOptions): Promise<Platform> {
  const { config } = opts;
  const log = createLogger(config.logLevel, 'autovibe');
  installTemporalRuntime(config.logLevel, { metricsAddress: config.temporalMetricsAddress });
  fs.mkdirSync(config.home, { recursive: true });
  const cleanups: Array<() => Promise<void>> = [];
  const stop = async () => {
    for (const cleanup of cleanups.reverse()) {
      await cleanup().catch((err: Error) => log.warn({ err: err.message }, 'shutdown step failed'));
    }
  };
  try {
    const db = await createDb({ databaseUrl: config.databaseUrl, home: config.home });
    cleanups.push(() => db.destroy());
    await migrateLatest(db);
    await startSecretStore(db, secretKeysOf(config));
    const adminKey = (await bootstrapAdminKey(db, config, { always: true })).key!;

    let temporalAddress = config.temporalAddress;
    // An external server: its TLS/mTLS/API key settings (checked before anything starts); the embedded one: plain.
    let temporalOptions: TemporalConnectionOptions | undefined = temporalAddress ? temporalConnectionOptions(config) : undefined;
    let temporalUiUrl: string | null = null;
    if (!temporalAddress) {
      const server: TemporalDevServer = await startTemporalDevServer({
        port: opts.temporalPort ?? 7233,
        uiPort: opts.temporalUiPort === undefined ? 8233 : opts.temporalUiPort,
        dbFile: path.join(config.home, 'temporal.sqlite'),
        logFile: path.join(config.home, 'temporal.log'),
      });
      cleanups.push(() => server.stop());
      temporalAddress = server.address;
      temporalOptions = { address: server.address };
      temporalUiUrl = server.uiUrl;
    }

    // One set of compute providers for the worker and the api (which reads disk snapshot replicas through them).
    const providers = createProviders(config);
    if (opts.worker ?? true) {
      const workerConnection = await NativeConnection.connect(temporalOptions!);
      cleanups.push(() => workerConnection.close());
      const worker = await createWorker({
        config,
        db,
        log,
        connection: workerConnection,
        providers,
        ...(opts.workflowBundle ? { workflowBundle: opts.workflowBundle } : {}),
      });
      const running = worker.run();
      cleanups.push(async () => {
        if (worker.getState() === 'RUNNING') worker.shutdown();
        await running;
      });
    }

    const connection = await Connection.connect(temporalOptions!);
    cleanups.push(() => connection.close());
    await checkSearchAttributes(connection, config);
    const temporal = new Client({ connection, namespace: config.temporalNamespace });
    if (opts.worker ?? true) {
      const schedule = await ensureReconcileSchedule(temporal, config);
      if (schedule) cleanups.push(() => schedule.delete());
      const forecasts = await ensureForecastSchedule(temporal, config);
      if (forecasts) cleanups.push(() => forecasts.delete());
      const reallocation = await ensureReallocationSchedule(temporal, config);
      if (reallocation) cleanups.push(() => reallocation.delete());
      const alerts = await ensureAlertSchedule(temporal, config);
      if (alerts) cleanups.push(() => alerts.delete());
    }
    await ensureSnapshotSchedules(temporal, config);
    await ensureBackupSchedule(temporal, config);
    // The dashboard links runs to the embedded Web UI unless AUTOVIBE_TEMPORAL_UI_URL names another.
    // (The same config object: the api and the worker must see one configuration.)
    config.temporalUiUrl ??= temporalUiUrl ?? undefined;
    const apiContext = { db, temporal, config, log, diskSnapshots: diskSnapshotReader(providers) };
    const app = createApp(apiContext);
    const server: Server = await new Promise((resolve, reject) => {
      const s = app.listen(config.port, config.host, () => resolve(s));
      s.on('error', reject);
    });
    const events = attachEventSocket(server, { db, log, routes: [graphqlSocket(apiContext)] });
    cleanups.push(
      () =>
        new Promise<void>((resolve) => {
          void events.close().then(() => {
            server.closeAllConnections();
            server.close(() => resolve());
          });
        }),
    );
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : config.port;
    return { apiUrl: `http://${config.host}:${port}`, temporalAddress, temporalUiUrl, adminKey, db, temporal, log, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

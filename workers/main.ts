import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { loadConfig } from '../config/index.js';
import { describeTemporalConnection, temporalConnectionOptions } from '../config/temporal.js';
import { createDb, isEmbedded } from '../store/db.js';
import { startSecretStore } from '../store/secrets.js';
import { secretKeysOf } from '../config/secrets-key.js';
import { createLogger } from './logger.js';
import { installTemporalRuntime } from './runtime.js';
import {
  ensureAlertSchedule,
  ensureBackupSchedule,
  ensureForecastSchedule,
  ensureReallocationSchedule,
  ensureReconcileSchedule,
  ensureSnapshotSchedules,
} from './schedules.js';
import { createWorker } from './worker.js';
import { checkSearchAttributes } from './search-attributes.js';

/** A standalone worker process (production: DATABASE_URL and TEMPORAL_ADDRESS are required). */
async function main() {
  const config = loadConfig();
  const log = createLogger(config.logLevel, 'worker');
  installTemporalRuntime(config.logLevel, { metricsAddress: config.temporalMetricsAddress });
  if (!config.temporalAddress) throw new Error('TEMPORAL_ADDRESS is required for a standalone worker (npm start runs an embedded one)');
  if (!config.databaseUrl) throw new Error('DATABASE_URL is required for a standalone worker (embedded Postgres belongs to npm start)');
  const temporalOptions = temporalConnectionOptions(config);
  const db = await createDb({ databaseUrl: config.databaseUrl });
  if (isEmbedded(db)) throw new Error('a standalone worker needs real Postgres');
  await startSecretStore(db, secretKeysOf(config));
  const clientConnection = await Connection.connect(temporalOptions);
  await checkSearchAttributes(clientConnection, config);
  const connection = await NativeConnection.connect(temporalOptions);
  const worker = await createWorker({ config, db, log, connection });
  if (worker.servesControl) {
    // The platform's schedules (reconciliation; snapshot backup and pruning; forecast refresh; budget reallocation; alert evaluation); creating them again is harmless.
    const schedulesClient = new Client({ connection: clientConnection, namespace: config.temporalNamespace });
    await ensureReconcileSchedule(schedulesClient, config);
    await ensureSnapshotSchedules(schedulesClient, config);
    await ensureBackupSchedule(schedulesClient, config);
    await ensureForecastSchedule(schedulesClient, config);
    await ensureReallocationSchedule(schedulesClient, config);
    await ensureAlertSchedule(schedulesClient, config);
  }
  await clientConnection.close();
  log.info(
    {
      roles: config.worker.roles,
      host: config.worker.host,
      queues: worker.queues.map((q) => q.name),
      temporal: describeTemporalConnection(temporalOptions),
    },
    'worker started',
  );
  // The Temporal runtime turns SIGTERM/SIGINT into worker.shutdown(): no new tasks, and each running
  // machine is handed over to another worker (see createWorker); run() resolves once drained.
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => log.info({ signal, graceSeconds: config.shutdownGraceSeconds }, 'worker stopping: handing running machines over'));
  }
  await worker.run();
  await connection.close();
  await db.destroy();
  log.info('worker stopped');
  process.exit(0);
}

main().catch((err) => {
  console.error(`worker: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});

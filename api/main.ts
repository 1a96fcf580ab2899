import { Client, Connection } from '@temporalio/client';
import { loadConfig } from '../config/index.js';
import { describeTemporalConnection, temporalConnectionOptions } from '../config/temporal.js';
import { createDb, migrateLatest } from '../store/db.js';
import { startSecretStore } from '../store/secrets.js';
import { secretKeysOf } from '../config/secrets-key.js';
import { bootstrapAdminKey } from './bootstrap.js';
import { createLogger } from '../workers/logger.js';
import { checkSearchAttributes } from '../workers/search-attributes.js';
import { createApp } from './app.js';
import { attachEventSocket } from './events-socket.js';
import { graphqlSocket } from './graphql/socket.js';

/** A standalone api process (production): needs DATABASE_URL and TEMPORAL_ADDRESS. */
async function main() {
  const config = loadConfig();
  const log = createLogger(config.logLevel, 'api');
  if (!config.databaseUrl || !config.temporalAddress) {
    throw new Error('DATABASE_URL and TEMPORAL_ADDRESS are required for a standalone api (npm start runs the embedded platform)');
  }
  // Read the TLS material first: a bad certificate path stops the api before anything starts.
  const temporalOptions = temporalConnectionOptions(config);
  const db = await createDb({ databaseUrl: config.databaseUrl });
  await migrateLatest(db);
  const resealed = await startSecretStore(db, secretKeysOf(config));
  if (resealed) log.info({ resealed }, 'secrets sealed with the current key');
  const bootstrap = await bootstrapAdminKey(db, config);
  if (bootstrap.file) log.warn({ file: bootstrap.file }, 'admin key kept in this file (mode 0600); make per-team keys with POST /v1/keys');
  if (bootstrap.revoked.length) log.warn({ revoked: bootstrap.revoked }, 'AUTOVIBE_ADMIN_KEY changed: the key it replaced is revoked');
  const connection = await Connection.connect(temporalOptions);
  log.info(describeTemporalConnection(temporalOptions), 'connected to Temporal');
  await checkSearchAttributes(connection, config);
  const temporal = new Client({ connection, namespace: config.temporalNamespace });
  const app = createApp({ db, temporal, config, log });
  const server = app.listen(config.port, config.host, () => log.info({ port: config.port }, 'api listening'));
  const events = attachEventSocket(server, { db, log, routes: [graphqlSocket({ db, temporal, config, log })] });
  const stop = () => void events.close().then(() => server.close(() => void Promise.all([db.destroy(), connection.close()]).then(() => process.exit(0))));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((err) => {
  console.error(`api: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});

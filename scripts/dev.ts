import { loadConfig } from '../config/index.js';
import { startPlatform } from './platform.js';

/** `npm start`: the whole platform on one machine with embedded defaults. */
async function main() {
  const config = loadConfig();
  const platform = await startPlatform({ config });
  const lines = [
    '',
    'AutoVibe is running.',
    `  Dashboard       ${platform.apiUrl}/   (log in with the admin API key below)`,
    `  REST API        ${platform.apiUrl}/v1   (ready: ${platform.apiUrl}/readyz, metrics: ${platform.apiUrl}/metrics)`,
    `  Temporal        ${platform.temporalAddress}${platform.temporalUiUrl ? `   Web UI: ${platform.temporalUiUrl}` : ''}`,
    `  Postgres        ${config.databaseUrl ? 'DATABASE_URL' : `embedded PGlite in ${config.home}/pgdata`}`,
    `  Admin API key   ${platform.adminKey}`,
    '',
    `  try: curl -H "Authorization: Bearer ${platform.adminKey}" ${platform.apiUrl}/v1/projects`,
    '  Ctrl-C stops everything.',
    '',
  ];
  process.stdout.write(lines.join('\n') + '\n');
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    process.stdout.write(
      `\n${signal}: shutting down (running machines are checkpointed and handed over: they go on at the next start or on another worker)...\n`,
    );
    platform
      .stop()
      .then(() => process.exit(0))
      .catch(() => process.exit(1));
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
}

main().catch((err) => {
  console.error(`autovibe: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});

import { loadConfig } from '../config/index.js';
import { createDb, migrateLatest } from '../store/db.js';

/** `npm run migrate`: applies pending migrations to DATABASE_URL (or the embedded database). */
async function main() {
  const config = loadConfig();
  const db = await createDb({ databaseUrl: config.databaseUrl, home: config.home });
  try {
    const applied = await migrateLatest(db);
    console.log(applied.length ? `applied: ${applied.join(', ')}` : 'database is up to date');
  } finally {
    await db.destroy();
  }
}

main().catch((err) => {
  console.error(`migrate: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});

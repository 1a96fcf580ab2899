import fs from 'node:fs';
import path from 'node:path';
import knex, { type Knex } from 'knex';
import { migrationSource } from '../migrations/index.js';

export type Db = Knex;

/** Marks an embedded (PGlite) database: one connection, one owning process. */
export function isEmbedded(db: Db): boolean {
  return db.client.config.client !== 'pg';
}

/**
 * A knex instance for real Postgres (`DATABASE_URL`) or, without one, embedded PGlite with its
 * data under `<home>/pgdata`.
 */
export async function createDb(opts: { databaseUrl?: string | undefined; home?: string; pool?: { min: number; max: number } }): Promise<Db> {
  if (opts.databaseUrl) {
    return knex({ client: 'pg', connection: opts.databaseUrl, pool: opts.pool ?? { min: 0, max: 20 } });
  }
  if (!opts.home) throw new Error('createDb needs DATABASE_URL or a home directory for embedded Postgres');
  const dataDir = path.join(opts.home, 'pgdata');
  fs.mkdirSync(dataDir, { recursive: true });
  const { default: ClientPgLite } = await import('knex-pglite');
  return knex({ client: ClientPgLite, dialect: 'postgres', connection: { connectionString: `file://${dataDir}` } });
}

/** Applies every pending migration; safe to call at each start. */
export async function migrateLatest(db: Db): Promise<string[]> {
  const [, applied] = (await db.migrate.latest({ migrationSource })) as [number, string[]];
  return applied;
}

/** Answers when the database does (readiness checks). */
export async function pingDatabase(db: Db): Promise<void> {
  await db.raw('select 1');
}

import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import readline from 'node:readline';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import type { Knex } from 'knex';
import type { Db } from './db.js';
import { migrationSource } from '../migrations/index.js';

/**
 * Backups of the platform's committed state, restorable on a new host: a logical dump of every
 * table (one consistent read-only transaction), a git bundle of every project repository, and the
 * checkpoint snapshots' chunk files. Written to a primary directory and copied, verified, to a
 * replica (another disk, mount or region). A backup is complete only once its manifest exists: it
 * is written last, so a crash mid-backup leaves nothing a restore would take for a backup.
 *
 * Rows are dumped as PostgreSQL's own text form of the row (`row::text`) and read back with a cast
 * to the table's row type, so every type (bigint money, bytea, jsonb, microsecond timestamps)
 * round-trips exactly, on real Postgres and on embedded PGlite alike.
 */

const run = promisify(execFile);
export const BACKUP_FORMAT = 1;
const PAGE_ROWS = 2000;
const MIGRATION_TABLES = new Set(['knex_migrations', 'knex_migrations_lock']);

export interface BackupTable {
  name: string;
  rows: number;
  file: string;
  sha256: string;
}

export interface BackupSequence {
  name: string;
  lastValue: string;
  isCalled: boolean;
}

export interface BackupRepository {
  /** The repository's directory name under the projects directory (`<projectId>.git`). */
  name: string;
  /** Null for a repository without refs (nothing to bundle). */
  file: string | null;
  sha256: string | null;
  head: string | null;
}

export interface BackupManifest {
  format: number;
  id: string;
  createdAt: string;
  /** The migrations applied when the dump was taken, in order: a restore migrates to exactly these first. */
  migrations: string[];
  tables: BackupTable[];
  sequences: BackupSequence[];
  repositories: BackupRepository[];
  chunks: { files: number; bytes: number };
}

export interface BackupPaths {
  projectsDir: string;
  /** The snapshot chunk store of the primary region (its `chunks/` tree is backed up). */
  snapshotsDir: string;
}

export class BackupError extends Error {
  override name = 'BackupError';
}

async function sha256File(file: string): Promise<string> {
  const hash = crypto.createHash('sha256');
  await pipeline(createReadStream(file), hash);
  return hash.digest('hex');
}

async function exists(p: string): Promise<boolean> {
  return fs.access(p).then(
    () => true,
    () => false,
  );
}

async function userTables(db: Db | Knex.Transaction): Promise<string[]> {
  const rows = await db.raw(
    `select table_name as name from information_schema.tables where table_schema = 'public' and table_type = 'BASE TABLE' order by table_name`,
  );
  return (rows.rows as Array<{ name: string }>).map((r) => r.name).filter((n) => !MIGRATION_TABLES.has(n));
}

async function userSequences(db: Db | Knex.Transaction): Promise<string[]> {
  const rows = await db.raw(`select sequence_name as name from information_schema.sequences where sequence_schema = 'public' order by sequence_name`);
  return (rows.rows as Array<{ name: string }>).map((r) => r.name);
}

const ident = (name: string) => `"${name.replace(/"/g, '""')}"`;

/** Every row of every table, in one repeatable-read snapshot, as gzip'd JSON lines of row text. */
async function dumpDatabase(db: Db, dir: string): Promise<Pick<BackupManifest, 'migrations' | 'tables' | 'sequences'>> {
  await fs.mkdir(path.join(dir, 'db'), { recursive: true });
  return db.transaction(async (trx) => {
    await trx.raw('set transaction isolation level repeatable read, read only');
    const migrations = ((await trx('knex_migrations').select('name').orderBy('id')) as Array<{ name: string }>).map((r) => r.name);
    const tables: BackupTable[] = [];
    for (const name of await userTables(trx)) {
      const file = path.join('db', `${name}.jsonl.gz`);
      const out = zlib.createGzip();
      const written = pipeline(out, createWriteStream(path.join(dir, file)));
      let rows = 0;
      let after: string | null = null;
      // Paged by ctid: stable inside the snapshot, and needs no key every table may lack.
      for (;;) {
        const page = await trx.raw(
          `select ctid::text as tid, x::text as r from ${ident(name)} x ${after ? 'where ctid > ?::tid' : ''} order by ctid limit ${PAGE_ROWS}`,
          after ? [after] : [],
        );
        const items = page.rows as Array<{ tid: string; r: string }>;
        for (const item of items) out.write(`${JSON.stringify(item.r)}\n`);
        rows += items.length;
        if (items.length < PAGE_ROWS) break;
        after = items.at(-1)!.tid;
      }
      out.end();
      await written;
      tables.push({ name, rows, file, sha256: await sha256File(path.join(dir, file)) });
    }
    const sequences: BackupSequence[] = [];
    for (const name of await userSequences(trx)) {
      const [row] = (await trx.raw(`select last_value::text as v, is_called as c from ${ident(name)}`)).rows as Array<{ v: string; c: boolean }>;
      sequences.push({ name, lastValue: row!.v, isCalled: row!.c });
    }
    return { migrations, tables, sequences };
  });
}

async function git(args: string[], cwd?: string): Promise<string> {
  try {
    const { stdout } = await run('git', args, { cwd, maxBuffer: 64 * 1024 * 1024, env: { ...process.env, GIT_TERMINAL_PROMPT: '0' } });
    return stdout;
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new BackupError(`git ${args[0]} failed: ${(err.stderr || err.message).trim()}`);
  }
}

/** A bundle of all refs of each bare repository in the projects directory. */
async function bundleRepositories(projectsDir: string, dir: string): Promise<BackupRepository[]> {
  await fs.mkdir(path.join(dir, 'repos'), { recursive: true });
  const names = (await exists(projectsDir)) ? (await fs.readdir(projectsDir)).filter((n) => n.endsWith('.git')).sort() : [];
  const repos: BackupRepository[] = [];
  for (const name of names) {
    const repo = path.join(projectsDir, name);
    const refs = (await git(['--git-dir', repo, 'for-each-ref', '--format=%(refname)'])).trim();
    const head = (await git(['--git-dir', repo, 'symbolic-ref', '-q', 'HEAD']).catch(() => '')).trim() || null;
    if (!refs) {
      repos.push({ name, file: null, sha256: null, head });
      continue;
    }
    const file = path.join('repos', `${name}.bundle`);
    await git(['--git-dir', repo, 'bundle', 'create', '--quiet', path.join(dir, file), '--all']);
    repos.push({ name, file, sha256: await sha256File(path.join(dir, file)), head });
  }
  return repos;
}

/** Copies every file under `from` missing (or of another size) under `to`; returns what `to` holds. */
async function mirrorTree(from: string, to: string): Promise<{ files: number; bytes: number }> {
  let files = 0;
  let bytes = 0;
  if (!(await exists(from))) return { files, bytes };
  for (const entry of await fs.readdir(from, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile() || entry.name.endsWith('.tmp')) continue;
    const source = path.join(entry.parentPath, entry.name);
    const target = path.join(to, path.relative(from, source));
    const size = (await fs.stat(source)).size;
    const have = await fs.stat(target).catch(() => null);
    if (!have || have.size !== size) {
      await fs.mkdir(path.dirname(target), { recursive: true });
      const tmp = `${target}.${process.pid}.tmp`;
      await fs.copyFile(source, tmp);
      await fs.rename(tmp, target);
    }
    files++;
    bytes += size;
  }
  return { files, bytes };
}

/**
 * Takes a backup into `<root>/<id>/` (the chunk files go to `<root>/chunks/`, shared by every
 * backup: they are content-addressed). The database is read first, then repositories and chunks,
 * so every commit and chunk a dumped row names is in the backup (both only ever grow).
 */
export async function createBackup(db: Db, paths: BackupPaths, root: string, id: string, now: Date): Promise<BackupManifest> {
  const dir = path.join(root, id);
  if (await exists(path.join(dir, 'manifest.json'))) return readManifest(root, id);
  await fs.rm(dir, { recursive: true, force: true });
  await fs.mkdir(dir, { recursive: true });
  const dumped = await dumpDatabase(db, dir);
  const repositories = await bundleRepositories(paths.projectsDir, dir);
  const chunks = await mirrorTree(path.join(paths.snapshotsDir, 'chunks'), path.join(root, 'chunks'));
  const manifest: BackupManifest = { format: BACKUP_FORMAT, id, createdAt: now.toISOString(), ...dumped, repositories, chunks };
  await writeManifest(dir, manifest);
  return manifest;
}

async function writeManifest(dir: string, manifest: BackupManifest): Promise<void> {
  const tmp = path.join(dir, 'manifest.json.tmp');
  await fs.writeFile(tmp, JSON.stringify(manifest, null, 2));
  await fs.rename(tmp, path.join(dir, 'manifest.json'));
}

export async function readManifest(root: string, id: string): Promise<BackupManifest> {
  const file = path.join(root, id, 'manifest.json');
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch {
    throw new BackupError(`no complete backup ${id} in ${root} (${file} is missing)`);
  }
  const manifest = JSON.parse(text) as BackupManifest;
  if (manifest.format !== BACKUP_FORMAT) throw new BackupError(`backup ${id} has format ${manifest.format}; this version reads ${BACKUP_FORMAT}`);
  return manifest;
}

/** The complete backups under `root`, newest first. */
export async function listBackups(root: string): Promise<BackupManifest[]> {
  if (!(await exists(root))) return [];
  const ids = (await fs.readdir(root))
    .filter((n) => n.startsWith('backup-'))
    .sort()
    .reverse();
  const found: BackupManifest[] = [];
  for (const id of ids) {
    if (await exists(path.join(root, id, 'manifest.json'))) found.push(await readManifest(root, id));
  }
  return found;
}

/** Checks every file the manifest names against its hash, and that every chunk file is present. */
export async function verifyBackup(root: string, id: string): Promise<BackupManifest> {
  const manifest = await readManifest(root, id);
  const dir = path.join(root, id);
  const files = [...manifest.tables.map((t) => ({ file: t.file, sha256: t.sha256 })), ...manifest.repositories.filter((r) => r.file)];
  for (const f of files) {
    const actual = await sha256File(path.join(dir, f.file!)).catch(() => null);
    if (actual !== f.sha256) throw new BackupError(`backup ${id} in ${root}: ${f.file} is ${actual ? 'corrupt' : 'missing'}`);
  }
  const chunks = await countTree(path.join(root, 'chunks'));
  if (chunks < manifest.chunks.files) throw new BackupError(`backup ${id} in ${root}: ${manifest.chunks.files - chunks} snapshot chunk files are missing`);
  return manifest;
}

async function countTree(dir: string): Promise<number> {
  if (!(await exists(dir))) return 0;
  return (await fs.readdir(dir, { withFileTypes: true, recursive: true })).filter((e) => e.isFile() && !e.name.endsWith('.tmp')).length;
}

/** Copies a complete backup to the replica root and verifies the copy (the manifest goes last). */
export async function replicateBackup(root: string, replicaRoot: string, id: string): Promise<BackupManifest> {
  const manifest = await verifyBackup(root, id);
  const to = path.join(replicaRoot, id);
  if (await exists(path.join(to, 'manifest.json'))) return verifyBackup(replicaRoot, id);
  await fs.rm(to, { recursive: true, force: true });
  for (const f of [...manifest.tables.map((t) => t.file), ...manifest.repositories.flatMap((r) => (r.file ? [r.file] : []))]) {
    await fs.mkdir(path.dirname(path.join(to, f)), { recursive: true });
    await fs.copyFile(path.join(root, id, f), path.join(to, f));
  }
  await mirrorTree(path.join(root, 'chunks'), path.join(replicaRoot, 'chunks'));
  await writeManifest(to, manifest);
  return verifyBackup(replicaRoot, id);
}

/** Removes all but the newest `keep` complete backups (and unfinished ones older than the newest). Chunk files stay. */
export async function pruneBackups(root: string, keep: number): Promise<string[]> {
  if (!(await exists(root))) return [];
  const complete = (await listBackups(root)).map((m) => m.id);
  const all = (await fs.readdir(root)).filter((n) => n.startsWith('backup-')).sort();
  const newest = complete[0];
  const removed: string[] = [];
  for (const id of all) {
    const stale = complete.includes(id) ? complete.indexOf(id) >= keep : newest !== undefined && id < newest;
    if (stale) {
      await fs.rm(path.join(root, id), { recursive: true, force: true });
      removed.push(id);
    }
  }
  return removed;
}

export interface RestoreResult {
  manifest: BackupManifest;
  rows: number;
  repositories: number;
  chunks: number;
  /** Migrations newer than the backup, applied after its rows were loaded. */
  migratedAfter: string[];
}

/**
 * Restores a backup onto an empty database and empty data directories: files first (chunks,
 * repositories), then the database migrated to exactly the backup's migrations, its rows loaded
 * with triggers and foreign-key checks off (they were checked when written; `replica` mode also
 * keeps the audit chain's insert trigger from re-hashing restored records), sequences set to their
 * dumped values, and finally any newer migrations applied. Refuses a database the platform ran on.
 */
export async function restoreBackup(db: Db, paths: BackupPaths, root: string, id: string): Promise<RestoreResult> {
  const manifest = await verifyBackup(root, id);
  const dir = path.join(root, id);
  await migrateTo(db, manifest.migrations);
  // A database the platform ever ran on has keys, projects or audit records: never overwrite one.
  for (const table of ['projects', 'api_keys', 'audit_log']) {
    if (!(await db.schema.hasTable(table))) continue;
    const n = ((await db.raw(`select count(*)::int as n from ${ident(table)}`)).rows as Array<{ n: number }>)[0]?.n ?? 0;
    if (n > 0) throw new BackupError(`the database already holds ${n} rows of ${table}: restore into an empty database`);
  }
  const chunks = await mirrorTree(path.join(root, 'chunks'), path.join(paths.snapshotsDir, 'chunks'));
  await fs.mkdir(paths.projectsDir, { recursive: true });
  for (const repo of manifest.repositories) {
    const target = path.join(paths.projectsDir, repo.name);
    if (await exists(target)) throw new BackupError(`repository ${target} already exists: restore into an empty projects directory`);
    await git(['init', '--quiet', '--bare', target]);
    if (repo.file) await git(['--git-dir', target, 'fetch', '--quiet', path.join(dir, repo.file), '+refs/*:refs/*']);
    if (repo.head) await git(['--git-dir', target, 'symbolic-ref', 'HEAD', repo.head]);
  }
  let rows = 0;
  await db.transaction(async (trx) => {
    await trx.raw('set local session_replication_role = replica');
    const tables = await userTables(trx);
    const missing = manifest.tables.filter((t) => !tables.includes(t.name));
    if (missing.length) throw new BackupError(`tables ${missing.map((t) => t.name).join(', ')} are not in the migrated schema`);
    // Rows the migrations themselves seeded are replaced by the backup's.
    if (tables.length) await trx.raw(`truncate ${tables.map(ident).join(', ')}`);
    for (const table of manifest.tables) rows += await loadTable(trx, table.name, path.join(dir, table.file));
    for (const seq of manifest.sequences) await trx.raw(`select setval(?::regclass, ?::bigint, ?)`, [ident(seq.name), seq.lastValue, seq.isCalled]);
  });
  const [, migratedAfter] = (await db.migrate.latest({ migrationSource })) as [number, string[]];
  return { manifest, rows, repositories: manifest.repositories.length, chunks: chunks.files, migratedAfter };
}

async function loadTable(trx: Knex.Transaction, table: string, file: string): Promise<number> {
  const cols = (
    await trx.raw(
      `select column_name as c from information_schema.columns where table_schema = 'public' and table_name = ? and is_generated = 'NEVER' order by ordinal_position`,
      [table],
    )
  ).rows as Array<{ c: string }>;
  const list = cols.map((c) => ident(c.c)).join(', ');
  const picks = cols.map((c) => `(x.r::${ident(table)}).${ident(c.c)}`).join(', ');
  const insert = `insert into ${ident(table)} (${list}) overriding system value select ${picks} from unnest(?::text[]) as x(r)`;
  const lines = readline.createInterface({ input: createReadStream(file).pipe(zlib.createGunzip()), crlfDelay: Infinity });
  let batch: string[] = [];
  let count = 0;
  for await (const line of lines) {
    if (!line) continue;
    batch.push(JSON.parse(line) as string);
    if (batch.length >= 500) {
      await trx.raw(insert, [batch]);
      count += batch.length;
      batch = [];
    }
  }
  if (batch.length) {
    await trx.raw(insert, [batch]);
    count += batch.length;
  }
  return count;
}

/** Migrates an empty database to exactly `names` (the backup's migrations), refusing unknown ones. */
async function migrateTo(db: Db, names: string[]): Promise<void> {
  const all = await migrationSource.getMigrations([]);
  const known = new Set(all.map((m) => migrationSource.getMigrationName(m)));
  const unknown = names.filter((n) => !known.has(n));
  if (unknown.length)
    throw new BackupError(`the backup was taken by a newer version (migrations ${unknown.join(', ')} are unknown here): restore with that version`);
  const wanted = new Set(names);
  const subset: typeof migrationSource = {
    getMigrations: async () => all.filter((m) => wanted.has(migrationSource.getMigrationName(m))),
    getMigrationName: (m) => migrationSource.getMigrationName(m),
    getMigration: (m) => migrationSource.getMigration(m),
  };
  await db.migrate.latest({ migrationSource: subset });
  const applied = ((await db('knex_migrations').select('name').orderBy('id')) as Array<{ name: string }>).map((r) => r.name);
  const extra = applied.filter((n) => !wanted.has(n));
  if (extra.length) throw new BackupError(`the database already has migrations newer than the backup (${extra.join(', ')}): restore into an empty database`);
}

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { migrationSource } from '../../migrations/index.js';
import { createDb, migrateLatest, type Db } from '../../store/db.js';
import { freshDatabase } from '../support/platform.js';

/**
 * The hash of the schema the migrations produce. If this test fails, the schema changed: a change
 * to the database must come as a new migration (never an edit of an applied one), and then this
 * constant is updated to the value the failure prints.
 */
const EXPECTED_SCHEMA_HASH = 'f0f4567d3d71e316e4ac03bbd0d5e843baab451be6da879bb969e97a69efc892';

const OUR_TABLES = [
  'alerts',
  'alert_rules',
  'rate_limit_samples',
  'resource_samples',
  'api_keys',
  'artifact_blobs',
  'api_key_projects',
  'audit_log',
  'auto_topups',
  'budget_windows',
  'budgets',
  'checkpoints',
  'compute_providers',
  'cost_centers',
  'cost_events',
  'events',
  'failure_patterns',
  'forecasts',
  'fx_rates',
  'idempotent_requests',
  'machine_artifacts',
  'machine_logs',
  'machine_cache',
  'machine_failure_summaries',
  'machine_feedback',
  'machines',
  'objective_links',
  'objective_progress',
  'objective_ticket_requests',
  'objectives',
  'pipeline_steps',
  'pipelines',
  'placement_policies',
  'projects',
  'reservations',
  'snapshot_chunks',
  'snapshot_replicas',
  'snapshots',
  'users',
  'warm_instances',
  'payment_methods',
  'payments',
  'payment_attempts',
  'credits',
  'credit_uses',
  'crypto_invoices',
  'balance_entries',
  'instance_snapshots',
  'webhook_endpoints',
  'webhook_deliveries',
  'webhook_attempts',
  'project_git_remotes',
  'project_integrations',
  'integration_links',
  'integration_deliveries',
  'integration_comments',
  'merge_resolutions',
  'routing_arms',
  'routing_decisions',
  'machine_predictions',
  'prediction_settings',
  'routing_settings',
  'project_history',
  'project_history_horizon',
  'task_queues',
  'reallocation_settings',
  'reallocation_runs',
  'reallocation_moves',
];
const KNEX_TABLES = ['knex_migrations', 'knex_migrations_lock'];

async function tables(db: Db): Promise<string[]> {
  const rows = await db('information_schema.tables').where({ table_schema: 'public' }).orderBy('table_name').pluck('table_name');
  return rows as string[];
}

async function functions(db: Db): Promise<string[]> {
  const { rows } = await db.raw(`SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'public' ORDER BY 1`);
  return rows.map((r: { proname: string }) => r.proname);
}

/** Columns of our tables (not knex's bookkeeping), one canonical line each, in a fixed order. */
async function schemaLines(db: Db): Promise<string[]> {
  const rows = await db('information_schema.columns')
    .where({ table_schema: 'public' })
    .whereNotIn('table_name', KNEX_TABLES)
    .orderBy([{ column: 'table_name' }, { column: 'column_name' }])
    .select('table_name', 'column_name', 'data_type', 'is_nullable', 'numeric_precision', 'numeric_scale');
  return rows.map(
    (r) =>
      `${r.table_name}.${r.column_name} ${r.data_type}${r.numeric_scale !== null && r.data_type === 'numeric' ? `(${r.numeric_precision},${r.numeric_scale})` : ''} ${r.is_nullable === 'YES' ? 'null' : 'not null'}`,
  );
}

async function allMigrationNames(): Promise<string[]> {
  const list = await migrationSource.getMigrations([]);
  return list.map((m) => migrationSource.getMigrationName(m));
}

function hashOf(lines: string[]): string {
  return crypto.createHash('sha256').update(lines.join('\n')).digest('hex');
}

describe('migrations (real PostgreSQL)', function () {
  let db: Db;

  before(async function () {
    db = await createDb({ databaseUrl: await freshDatabase('migrations') });
  });

  after(async function () {
    await db?.destroy();
  });

  it('migrates a fresh database to the latest schema, once', async function () {
    assert.deepEqual(await tables(db), []);
    const names = await allMigrationNames();
    assert.ok(names.includes('20261127_001_core'));
    assert.deepEqual(await migrateLatest(db), names);
    assert.deepEqual(await migrateLatest(db), [], 'a second run applies nothing');
    assert.deepEqual(await tables(db), [...OUR_TABLES, ...KNEX_TABLES].sort());
    assert.deepEqual(await functions(db), ['audit_log_append_only', 'events_append_only', 'project_history_record']);
  });

  it('matches the committed schema hash', async function () {
    const lines = await schemaLines(db);
    const actual = hashOf(lines);
    assert.equal(actual, EXPECTED_SCHEMA_HASH, `schema changed: add a migration and update the expected hash (now ${actual})\n${lines.join('\n')}`);
  });

  it('rolls everything back, leaving none of our tables or functions', async function () {
    await db.migrate.rollback({ migrationSource }, true);
    assert.deepEqual(await tables(db), KNEX_TABLES, 'only knex bookkeeping is left');
    assert.deepEqual(await functions(db), []);
    assert.equal((await db('knex_migrations').count<{ count: string }[]>('* as count'))[0]?.count, '0');
  });

  it('migrates to latest again after a full rollback, with the same schema and working trigger', async function () {
    assert.deepEqual(await migrateLatest(db), await allMigrationNames());
    assert.deepEqual(await tables(db), [...OUR_TABLES, ...KNEX_TABLES].sort());
    assert.equal(hashOf(await schemaLines(db)), EXPECTED_SCHEMA_HASH, 'schema changed: add a migration and update the expected hash');
    await db('audit_log').insert({ actor: 'a', action: 'b', subject_type: 'c', subject_id: 'd', prev_hash: 'x', hash: 'y' });
    await assert.rejects(db('audit_log').delete(), /append-only/);
  });
});

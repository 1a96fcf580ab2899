import type { Knex } from 'knex';

/** The core model: who may call, projects, the evolution tree, machines, the budget ledger, costs, audit. */
export async function up(db: Knex): Promise<void> {
  await db.schema.createTable('users', (t) => {
    t.text('id').primary();
    t.text('name').notNullable();
    t.text('role').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
  });
  await db.schema.createTable('api_keys', (t) => {
    t.text('id').primary();
    t.text('user_id').notNullable().references('users.id');
    t.text('key_hash').notNullable().unique();
    t.text('label').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
    t.timestamp('revoked_at', { useTz: true });
  });
  await db.schema.createTable('projects', (t) => {
    t.text('id').primary();
    t.text('name').notNullable();
    t.text('repo_url');
    t.text('repo_path').notNullable();
    t.text('currency').notNullable();
    t.decimal('greediness', 4, 3).notNullable().defaultTo(0.5);
    t.decimal('default_machine_money', 38, 18).notNullable();
    t.text('root_checkpoint_id');
    t.text('created_by').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
  });
  await db.schema.createTable('checkpoints', (t) => {
    t.text('id').primary();
    t.text('project_id').notNullable().references('projects.id');
    t.text('parent_id').references('checkpoints.id');
    t.text('machine_id');
    t.text('commit').notNullable();
    t.text('kind').notNullable();
    t.text('trigger').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
    t.index(['project_id', 'created_at']);
    t.index(['machine_id']);
  });
  await db.schema.createTable('objectives', (t) => {
    t.text('id').primary();
    t.text('project_id').notNullable().references('projects.id');
    t.text('title').notNullable();
    t.text('status').notNullable();
    t.integer('priority').notNullable().defaultTo(0);
    t.text('machine_type').notNullable();
    t.text('command');
    t.text('prompt');
    t.text('workflow_id').notNullable();
    t.text('error');
    t.text('created_by').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
    t.timestamp('completed_at', { useTz: true });
    t.index(['project_id']);
  });
  await db.schema.createTable('objective_links', (t) => {
    t.text('objective_id').notNullable().references('objectives.id');
    t.text('depends_on_id').notNullable().references('objectives.id');
    t.primary(['objective_id', 'depends_on_id']);
  });
  await db.schema.createTable('machines', (t) => {
    t.text('id').primary();
    t.text('project_id').notNullable().references('projects.id');
    t.text('objective_id').references('objectives.id');
    t.text('type').notNullable();
    t.text('provider').notNullable();
    t.text('profile').notNullable();
    t.text('status').notNullable();
    t.text('command');
    t.text('prompt');
    t.text('parent_checkpoint_id').notNullable().references('checkpoints.id');
    t.jsonb('limits').notNullable();
    t.text('workflow_id').notNullable();
    t.text('instance_ref');
    t.text('stop_reason');
    t.text('error');
    t.integer('exit_code');
    t.jsonb('usage').notNullable().defaultTo('{}');
    t.text('created_by').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
    t.timestamp('started_at', { useTz: true });
    t.timestamp('ended_at', { useTz: true });
    t.index(['project_id', 'created_at']);
  });
  await db.schema.createTable('budgets', (t) => {
    t.text('id').primary();
    t.text('scope_type').notNullable();
    t.text('scope_id').notNullable();
    t.text('period').notNullable();
    t.decimal('limit_amount', 38, 18).notNullable();
    t.text('currency').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
    t.unique(['scope_type', 'scope_id']);
  });
  // One row per budget and period window: the hot row that reservations update conditionally.
  await db.schema.createTable('budget_windows', (t) => {
    t.text('budget_id').notNullable().references('budgets.id');
    t.timestamp('window_start', { useTz: true }).notNullable();
    t.decimal('spent', 38, 18).notNullable().defaultTo(0);
    t.decimal('reserved', 38, 18).notNullable().defaultTo(0);
    t.primary(['budget_id', 'window_start']);
  });
  await db.raw('ALTER TABLE budget_windows ADD CONSTRAINT budget_windows_non_negative CHECK (spent >= 0 AND reserved >= 0)');
  // The append-only ledger: reserve → settle or release, keyed by the caller's idempotency key.
  await db.schema.createTable('reservations', (t) => {
    t.text('id').notNullable();
    t.text('budget_id').notNullable().references('budgets.id');
    t.timestamp('window_start', { useTz: true }).notNullable();
    t.text('project_id').notNullable();
    t.text('machine_id');
    t.decimal('amount', 38, 18).notNullable();
    t.text('status').notNullable();
    t.decimal('settled_amount', 38, 18);
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
    t.timestamp('closed_at', { useTz: true });
    t.primary(['id', 'budget_id']);
  });
  await db.schema.createTable('cost_events', (t) => {
    t.bigIncrements('seq').primary();
    t.text('idempotency_key').notNullable().unique();
    t.text('project_id').notNullable().references('projects.id');
    t.text('machine_id');
    t.text('category').notNullable();
    t.decimal('amount', 38, 18).notNullable();
    t.text('currency').notNullable();
    t.decimal('project_amount', 38, 18).notNullable();
    t.text('project_currency').notNullable();
    t.jsonb('details').notNullable().defaultTo('{}');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
    t.index(['project_id', 'created_at']);
    t.index(['machine_id']);
  });
  // Append-only and hash-chained: each row's hash covers its content and the previous row's hash.
  await db.schema.createTable('audit_log', (t) => {
    t.bigIncrements('seq').primary();
    t.text('idempotency_key').unique();
    t.timestamp('at', { useTz: true }).notNullable().defaultTo(db.fn.now());
    t.text('actor').notNullable();
    t.text('action').notNullable();
    t.text('subject_type').notNullable();
    t.text('subject_id').notNullable();
    t.text('project_id');
    t.jsonb('details').notNullable().defaultTo('{}');
    t.text('prev_hash').notNullable();
    t.text('hash').notNullable();
    t.index(['project_id', 'seq']);
    t.index(['subject_type', 'subject_id']);
  });
  await db.raw(`CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$`);
  await db.raw(`CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()`);
  await db.schema.createTable('idempotent_requests', (t) => {
    t.text('api_key_id').notNullable();
    t.text('key').notNullable();
    t.text('method').notNullable();
    t.text('path').notNullable();
    t.text('request_hash').notNullable();
    t.integer('status').notNullable();
    t.jsonb('body').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
    t.primary(['api_key_id', 'key']);
  });
}

export async function down(db: Knex): Promise<void> {
  await db.raw('DROP TRIGGER IF EXISTS audit_log_no_change ON audit_log');
  await db.raw('DROP FUNCTION IF EXISTS audit_log_append_only()');
  for (const table of [
    'idempotent_requests',
    'audit_log',
    'cost_events',
    'reservations',
    'budget_windows',
    'budgets',
    'machines',
    'objective_links',
    'objectives',
    'checkpoints',
    'projects',
    'api_keys',
    'users',
  ]) {
    await db.schema.dropTableIfExists(table);
  }
}

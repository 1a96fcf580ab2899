import type { Knex } from 'knex';

/**
 * Watching work. `machine_logs`: a machine's output as ordered chunks, written by the worker while
 * the command runs and read by the api (which may run on another host). Each chunk names the run
 * (workflow run + activity) and the activity attempt that wrote it: readers show, per run, only
 * its latest attempt, so a retried attempt never duplicates the lines of an earlier one.
 * `events`: an append-only feed of state changes, written in the transaction of the change; `seq`
 * is allocated under an advisory lock held to commit (the audit log's), so seq order is commit order and a reader
 * resuming after a seq never skips a row that commits later.
 */
export async function up(db: Knex): Promise<void> {
  await db.schema.createTable('machine_logs', (t) => {
    t.bigIncrements('seq').primary();
    t.text('machine_id').notNullable();
    t.text('run').notNullable();
    t.integer('attempt').notNullable();
    t.text('stream').notNullable();
    t.text('text').notNullable();
    t.integer('bytes').notNullable();
    t.timestamp('at', { useTz: true }).notNullable().defaultTo(db.fn.now());
    t.index(['machine_id', 'seq']);
  });
  await db.raw(`ALTER TABLE machine_logs ADD CONSTRAINT machine_logs_stream CHECK (stream IN ('stdout', 'stderr', 'agent', 'system'))`);
  await db.schema.createTable('events', (t) => {
    t.bigIncrements('seq').primary();
    t.timestamp('at', { useTz: true }).notNullable().defaultTo(db.fn.now());
    t.text('kind').notNullable();
    t.text('project_id');
    t.text('subject_id').notNullable();
    t.jsonb('data').notNullable().defaultTo('{}');
    t.index(['project_id', 'seq']);
    t.index(['subject_id', 'seq']);
  });
  // Subscribers resume by seq: a row that changed or vanished would break "every event exactly once".
  await db.raw(`CREATE FUNCTION events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN RAISE EXCEPTION 'events is append-only'; END $$`);
  await db.raw(`CREATE TRIGGER events_no_change BEFORE UPDATE OR DELETE ON events FOR EACH ROW EXECUTE FUNCTION events_append_only()`);
}

export async function down(db: Knex): Promise<void> {
  await db.schema.dropTable('events');
  await db.raw('DROP FUNCTION IF EXISTS events_append_only()');
  await db.schema.dropTable('machine_logs');
}

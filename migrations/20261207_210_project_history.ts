import type { Knex } from 'knex';

/**
 * The change journal behind point-in-time recovery of one project (README "Point-in-time recovery
 * of a project"): every insert, update and delete of a project's rows in the journaled tables is
 * recorded by an AFTER ROW trigger with the transaction's time (`now()`) and the row's images before
 * and after (`to_jsonb`). Rows are attributed to their project by their own `project_id`, or through
 * their parent (budgets by scope, budget windows and reservations through their budget, objective
 * links through their objective, pipeline steps through their pipeline). `project_history_horizon`
 * holds the earliest moment the journal reaches back to: when it was installed, then the pruning
 * cut-off (AUTOVIBE_PROJECT_HISTORY_DAYS).
 */
export const JOURNALED_TABLES = [
  'projects',
  'budgets',
  'budget_windows',
  'reservations',
  'cost_events',
  'checkpoints',
  'objectives',
  'objective_links',
  'machines',
  'pipelines',
  'pipeline_steps',
  'placement_policies',
  'prediction_settings',
  'routing_settings',
] as const;

export async function up(db: Knex): Promise<void> {
  await db.schema.createTable('project_history', (t) => {
    t.bigIncrements('seq').primary();
    t.timestamp('at', { useTz: true }).notNullable().defaultTo(db.fn.now());
    t.text('project_id').notNullable();
    t.text('table_name').notNullable();
    t.text('op').notNullable();
    t.jsonb('old_row');
    t.jsonb('new_row');
    t.index(['project_id', 'at']);
    t.index(['at']);
  });
  await db.raw(`ALTER TABLE project_history ADD CONSTRAINT project_history_op CHECK (op IN ('insert', 'update', 'delete'))`);
  await db.schema.createTable('project_history_horizon', (t) => {
    t.integer('id').primary();
    t.timestamp('since', { useTz: true }).notNullable();
  });
  await db.raw(`ALTER TABLE project_history_horizon ADD CONSTRAINT project_history_horizon_one CHECK (id = 1)`);
  await db.raw(`INSERT INTO project_history_horizon (id, since) VALUES (1, now())`);
  await db.raw(`CREATE FUNCTION project_history_record() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
      img jsonb := CASE WHEN TG_OP = 'DELETE' THEN to_jsonb(OLD) ELSE to_jsonb(NEW) END;
      pid text;
    BEGIN
      IF TG_OP = 'UPDATE' AND to_jsonb(OLD) = img THEN RETURN NULL; END IF;
      pid := CASE TG_TABLE_NAME
        WHEN 'projects' THEN img->>'id'
        WHEN 'budgets' THEN CASE img->>'scope_type'
          WHEN 'project' THEN img->>'scope_id'
          WHEN 'machine-type' THEN split_part(img->>'scope_id', ':', 1) END
        WHEN 'budget_windows' THEN (SELECT CASE b.scope_type WHEN 'project' THEN b.scope_id
          WHEN 'machine-type' THEN split_part(b.scope_id, ':', 1) END FROM budgets b WHERE b.id = img->>'budget_id')
        WHEN 'reservations' THEN (SELECT CASE b.scope_type WHEN 'project' THEN b.scope_id
          WHEN 'machine-type' THEN split_part(b.scope_id, ':', 1) END FROM budgets b WHERE b.id = img->>'budget_id')
        WHEN 'objective_links' THEN (SELECT o.project_id FROM objectives o WHERE o.id = img->>'objective_id')
        WHEN 'pipeline_steps' THEN (SELECT p.project_id FROM pipelines p WHERE p.id = img->>'pipeline_id')
        ELSE img->>'project_id' END;
      IF pid IS NULL THEN RETURN NULL; END IF;
      INSERT INTO project_history (project_id, table_name, op, old_row, new_row)
        VALUES (pid, TG_TABLE_NAME, lower(TG_OP),
          CASE WHEN TG_OP = 'INSERT' THEN NULL ELSE to_jsonb(OLD) END,
          CASE WHEN TG_OP = 'DELETE' THEN NULL ELSE img END);
      RETURN NULL;
    END $$`);
  for (const table of JOURNALED_TABLES) {
    await db.raw(`CREATE TRIGGER ${table}_project_history AFTER INSERT OR UPDATE OR DELETE ON ${table}
      FOR EACH ROW EXECUTE FUNCTION project_history_record()`);
  }
}

export async function down(db: Knex): Promise<void> {
  for (const table of JOURNALED_TABLES) await db.raw(`DROP TRIGGER IF EXISTS ${table}_project_history ON ${table}`);
  await db.raw('DROP FUNCTION IF EXISTS project_history_record()');
  await db.schema.dropTableIfExists('project_history_horizon');
  await db.schema.dropTableIfExists('project_history');
}

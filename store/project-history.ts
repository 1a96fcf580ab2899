import type { Knex } from 'knex';
import type { Db } from './db.js';
import { JOURNALED_TABLES } from '../migrations/20261207_210_project_history.js';

/**
 * The project change journal (migration 210) read back: a project's rows of the journaled tables
 * as of a moment. The state as of `at` is today's rows, with every row changed after `at` replaced
 * by the image it had before its first change after `at` (absent when that change inserted it).
 * Images travel as jsonb text, never parsed into JS numbers, so numeric money and bigints are
 * written back exactly (`jsonb_populate_recordset`).
 */
export type JournaledTable = (typeof JOURNALED_TABLES)[number];
export { JOURNALED_TABLES };

/** Parents first: the order rows are written in (deleted in reverse). */
export const WRITE_ORDER: readonly JournaledTable[] = [
  'projects',
  'budgets',
  'budget_windows',
  'reservations',
  'checkpoints',
  'objectives',
  'objective_links',
  'machines',
  'pipelines',
  'pipeline_steps',
  'cost_events',
  'placement_policies',
  'prediction_settings',
  'routing_settings',
];

const PRIMARY_KEYS: Record<JournaledTable, readonly string[]> = {
  projects: ['id'],
  budgets: ['id'],
  budget_windows: ['budget_id', 'window_start'],
  reservations: ['id', 'budget_id'],
  cost_events: ['seq'],
  checkpoints: ['id'],
  objectives: ['id'],
  objective_links: ['objective_id', 'depends_on_id'],
  machines: ['id'],
  pipelines: ['id'],
  pipeline_steps: ['pipeline_id', 'step_id'],
  placement_policies: ['project_id'],
  prediction_settings: ['project_id'],
  routing_settings: ['project_id'],
};

export const primaryKeyOf = (table: JournaledTable): readonly string[] => PRIMARY_KEYS[table];

const BUDGETS_OF = `(select b.id from budgets b where (b.scope_type = 'project' and b.scope_id = :p)
  or (b.scope_type = 'machine-type' and b.scope_id like :pLike))`;

/** The rows of `table` that belong to the project now (alias `t`). */
function currentPredicate(table: JournaledTable): string {
  switch (table) {
    case 'projects':
      return 't.id = :p';
    case 'budgets':
      return `t.id in ${BUDGETS_OF}`;
    case 'budget_windows':
    case 'reservations':
      return `t.budget_id in ${BUDGETS_OF}`;
    case 'objective_links':
      return 't.objective_id in (select o.id from objectives o where o.project_id = :p)';
    case 'pipeline_steps':
      return 't.pipeline_id in (select x.id from pipelines x where x.project_id = :p)';
    default:
      return 't.project_id = :p';
  }
}

const keyExpr = (table: JournaledTable, img: string) => `jsonb_build_array(${PRIMARY_KEYS[table].map((c) => `${img}->'${c}'`).join(', ')})`;

/** One row of a table, now and as of the moment (jsonb text; null when absent). */
export interface RowAt {
  key: string;
  now: string | null;
  asOf: string | null;
}

/** Every row of the project in `table` that exists now or existed at `at`. */
export async function rowsAt(db: Db | Knex.Transaction, table: JournaledTable, projectId: string, at: Date): Promise<RowAt[]> {
  const p = { p: projectId, pLike: `${projectId.replace(/[\\%_]/g, '\\$&')}:%`, table, at: at.toISOString() };
  const { rows } = await db.raw(
    `with cur as (select ${keyExpr(table, 'x.img')} as k, x.img from (select to_jsonb(t) as img from ${table} t where ${currentPredicate(table)}) x),
     later as (
       select distinct on (k) k, old_row from (
         select ${keyExpr(table, 'coalesce(h.old_row, h.new_row)')} as k, h.old_row, h.seq
           from project_history h where h.project_id = :p and h.table_name = :table and h.at > :at::timestamptz) y
       order by k, seq)
     select coalesce(c.k, l.k)::text as key, c.img::text as now, (case when l.k is null then c.img else l.old_row end)::text as as_of
       from cur c full outer join later l on c.k = l.k`,
    p,
  );
  return (rows as Array<{ key: string; now: string | null; as_of: string | null }>)
    .filter((r) => r.now !== null || r.as_of !== null)
    .map((r) => ({ key: r.key, now: r.now, asOf: r.as_of }))
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

/** The earliest moment the journal reaches back to (installation, then the pruning cut-off). */
export async function historyHorizon(db: Db | Knex.Transaction): Promise<Date> {
  const row = await db('project_history_horizon').where({ id: 1 }).first('since');
  return new Date(row.since);
}

/** Drops journal entries older than `before` and moves the horizon there. Returns how many were dropped. */
export async function pruneProjectHistory(db: Db, before: Date): Promise<number> {
  return db.transaction(async (trx) => {
    const { rows } = await trx.raw(`with d as (delete from project_history where at < ?::timestamptz returning 1) select count(*)::int as n from d`, [
      before.toISOString(),
    ]);
    await trx('project_history_horizon')
      .where({ id: 1 })
      .update({ since: trx.raw('greatest(since, ?::timestamptz)', [before.toISOString()]) });
    return Number(rows[0].n);
  });
}

/** The columns of a table, in order. */
export async function columnsOf(db: Db | Knex.Transaction, table: string): Promise<string[]> {
  const { rows } = await db.raw(
    `select column_name from information_schema.columns where table_schema = current_schema() and table_name = ? order by ordinal_position`,
    [table],
  );
  return (rows as Array<{ column_name: string }>).map((r) => r.column_name);
}

const q = (name: string) => `"${name.replace(/"/g, '""')}"`;

/**
 * Writes row images (jsonb text) into `table`: inserted, or updated in place when the key exists.
 * `omit`: columns left to their defaults (a serial key of a copied row).
 */
export async function upsertImages(trx: Knex.Transaction, table: JournaledTable, images: readonly string[], omit: readonly string[] = []): Promise<void> {
  if (!images.length) return;
  const cols = (await columnsOf(trx, table)).filter((c) => !omit.includes(c));
  const pk = PRIMARY_KEYS[table];
  const updates = cols.filter((c) => !pk.includes(c));
  const conflict = pk.every((c) => cols.includes(c))
    ? ` on conflict (${pk.map(q).join(', ')}) do ${updates.length ? `update set ${updates.map((c) => `${q(c)} = excluded.${q(c)}`).join(', ')}` : 'nothing'}`
    : '';
  for (let i = 0; i < images.length; i += 500) {
    const batch = `[${images.slice(i, i + 500).join(',')}]`;
    await trx.raw(
      `insert into ${table} (${cols.map(q).join(', ')}) select ${cols.map(q).join(', ')} from jsonb_populate_recordset(null::${table}, ?::jsonb)${conflict}`,
      [batch],
    );
  }
}

/** Deletes the rows these images (jsonb text) are of, matched on the primary key. */
export async function deleteImages(trx: Knex.Transaction, table: JournaledTable, images: readonly string[]): Promise<void> {
  if (!images.length) return;
  const pk = PRIMARY_KEYS[table];
  for (let i = 0; i < images.length; i += 500) {
    const batch = `[${images.slice(i, i + 500).join(',')}]`;
    await trx.raw(
      `delete from ${table} t using jsonb_populate_recordset(null::${table}, ?::jsonb) d where ${pk.map((c) => `t.${q(c)} = d.${q(c)}`).join(' and ')}`,
      [batch],
    );
  }
}

/**
 * Rows of tables that are not journaled but point at machines, checkpoints or objectives an
 * in-place recovery removes: they go with them (their history is in the journal-less past).
 */
export async function deleteDependents(trx: Knex.Transaction, ids: { machines: string[]; checkpoints: string[]; objectives: string[] }): Promise<void> {
  const { machines, checkpoints, objectives } = ids;
  if (checkpoints.length) {
    await trx('snapshot_replicas').whereIn('checkpoint_id', checkpoints).delete();
    await trx('snapshots').whereIn('checkpoint_id', checkpoints).delete();
    await trx('instance_snapshots').whereIn('checkpoint_id', checkpoints).delete();
    await trx('machine_artifacts').whereIn('checkpoint_id', checkpoints).delete();
    await trx('integration_links').whereIn('checkpoint_id', checkpoints).delete();
    await trx('merge_resolutions').whereIn('conflict_checkpoint_id', checkpoints).delete();
  }
  if (machines.length) {
    await trx('instance_snapshots').whereIn('machine_id', machines).delete();
    await trx('machine_artifacts').whereIn('machine_id', machines).delete();
    await trx('machine_cache').whereIn('machine_id', machines).delete();
  }
  if (objectives.length) {
    await trx('integration_links').whereIn('objective_id', objectives).delete();
    await trx('objective_progress').whereIn('objective_id', objectives).delete();
  }
}

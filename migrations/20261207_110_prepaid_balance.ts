import type { Knex } from 'knex';

/**
 * A prepaid balance per project, apart from its budget limit.
 *
 * - `projects.billing`: `postpaid` (spend is capped by the budgets only; the default) or
 *   `prepaid` (spend must also fit the balance). A project becomes prepaid at its first credited
 *   top-up.
 * - The balance is a ledger account: a `budgets` row of scope `balance` (id `balance-<project>`,
 *   period `total`, the project's currency, no alert thresholds) whose limit is everything ever
 *   credited and whose one window's `spent` is everything drawn from it, so a reservation is held
 *   on it by the same conditional UPDATE as on a budget.
 * - `balance_entries` keep what each top-up credited in the project's currency and the rate used.
 * - `auto_topups`: a project's automatic top-up (amount, currency, and the balance threshold below
 *   which it fires).
 * - `machines.compute_price`: the compute price a machine is charged at (provider, region, profile,
 *   market, hourly price and its source: price list, profile default or reported spot price), so
 *   its bill can be explained. Null for machines from before it (charged the flat profile price).
 *
 * Existing data: top-ups used to raise the project budget's limit (when in the budget's currency).
 * For each project with credited top-ups:
 *   - the limit goes back to the amount of the last `budget.set` audit record when it is exactly
 *     that amount plus the top-ups credited after it in the budget's currency (the raise is then
 *     known for sure); otherwise (the limit was set again through other means) it is left alone;
 *   - the balance is credited with the past top-ups in the project's currency (top-ups in another
 *     currency had no recorded rate: they stay listed, credit nothing, and are noted in
 *     `balance_entries.project_amount` as null), and is drawn down by what the project spent since
 *     its first top-up (never below zero);
 *   - the project becomes prepaid.
 */
export async function up(db: Knex): Promise<void> {
  await db.raw(`ALTER TABLE projects ADD COLUMN billing text NOT NULL DEFAULT 'postpaid' CHECK (billing IN ('prepaid', 'postpaid'))`);
  await db.schema.alterTable('balance_entries', (t) => {
    t.specificType('project_amount', 'numeric(38,18)');
    t.text('project_currency');
    t.jsonb('fx');
  });
  await db.schema.alterTable('machines', (t) => t.jsonb('compute_price'));
  await db.schema.createTable('auto_topups', (t) => {
    t.text('project_id').primary().references('id').inTable('projects').onDelete('CASCADE');
    t.specificType('amount', 'numeric(38,18)').notNullable();
    t.text('currency').notNullable();
    t.specificType('threshold', 'numeric(38,18)').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
  });

  await db.raw(`UPDATE balance_entries e SET project_amount = e.amount, project_currency = p.currency
                  FROM projects p WHERE p.id = e.project_id AND p.currency = e.currency`);

  // Limits raised by top-ups go back to what was last set, when that is certain.
  await db.raw(`
    WITH last_set AS (
      SELECT DISTINCT ON (a.subject_id) a.subject_id AS project_id, a.at, (a.details->>'amount')::numeric AS amount, a.details->>'currency' AS currency
        FROM audit_log a
       WHERE a.action = 'budget.set' AND a.subject_type = 'project' AND (a.details->>'machineType') IS NULL
       ORDER BY a.subject_id, a.seq DESC
    ), raised AS (
      SELECT s.project_id, s.amount AS set_amount, COALESCE(SUM(e.amount), 0) AS topped_up
        FROM last_set s
        JOIN budgets b ON b.scope_type = 'project' AND b.scope_id = s.project_id AND b.currency = s.currency
        LEFT JOIN balance_entries e ON e.project_id = s.project_id AND e.currency = b.currency AND e.at > s.at
       GROUP BY s.project_id, s.amount
    )
    UPDATE budgets b SET limit_amount = r.set_amount, updated_at = now()
      FROM raised r
     WHERE b.scope_type = 'project' AND b.scope_id = r.project_id AND r.topped_up > 0
       AND b.limit_amount = r.set_amount + r.topped_up`);

  // The opening balance: past top-ups in the project's currency, less what was spent since the first.
  await db.raw(`
    INSERT INTO budgets (id, scope_type, scope_id, period, limit_amount, currency, alert_percents)
    SELECT 'balance-' || p.id, 'balance', p.id, 'total', COALESCE(SUM(e.project_amount), 0), p.currency, '{}'
      FROM projects p JOIN balance_entries e ON e.project_id = p.id
     GROUP BY p.id, p.currency`);
  await db.raw(`
    INSERT INTO budget_windows (budget_id, window_start, spent, reserved)
    SELECT b.id, to_timestamp(0), LEAST(b.limit_amount, COALESCE((
             SELECT SUM(c.project_amount) FROM cost_events c
              WHERE c.project_id = b.scope_id
                AND c.created_at >= (SELECT MIN(e.at) FROM balance_entries e WHERE e.project_id = b.scope_id)), 0)), 0
      FROM budgets b WHERE b.scope_type = 'balance'`);
  await db.raw(`UPDATE projects SET billing = 'prepaid' WHERE id IN (SELECT DISTINCT project_id FROM balance_entries)`);
}

export async function down(db: Knex): Promise<void> {
  await db.raw(`DELETE FROM budget_windows WHERE budget_id IN (SELECT id FROM budgets WHERE scope_type = 'balance')`);
  await db.raw(`DELETE FROM reservations WHERE budget_id IN (SELECT id FROM budgets WHERE scope_type = 'balance')`);
  await db.raw(`DELETE FROM budgets WHERE scope_type = 'balance'`);
  await db.schema.dropTable('auto_topups');
  await db.schema.alterTable('machines', (t) => t.dropColumn('compute_price'));
  await db.schema.alterTable('balance_entries', (t) => t.dropColumns('project_amount', 'project_currency', 'fx'));
  await db.schema.alterTable('projects', (t) => t.dropColumn('billing'));
}

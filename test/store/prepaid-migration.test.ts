import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { balanceAccountId } from '../../domain/budget.js';
import { formatAmount, parseAmount, toNumeric } from '../../domain/money.js';
import { migrationSource } from '../../migrations/index.js';
import { appendAudit } from '../../store/audit.js';
import { findBudget, setBudget } from '../../store/budgets.js';
import { createDb, migrateLatest, type Db } from '../../store/db.js';
import { balanceStatus, insertPayment } from '../../store/payments.js';
import { getProject } from '../../store/projects.js';
import { freshDatabase } from '../support/platform.js';
import { insertBareProject } from '../support/bare-project.js';

const usd = (t: string) => parseAmount(t, 'USD');

/**
 * Migration 20261207_110_prepaid_balance on data written the old way (top-ups raised the project
 * budget's limit): the raise comes off the limit when it is certain, past top-ups become the
 * balance, drawn down by the spend since the first of them.
 */
describe('migration 110: past top-ups move from budget limits into the prepaid balance (real PostgreSQL)', function () {
  this.timeout(60_000);
  let db: Db;

  before(async () => {
    db = await createDb({ databaseUrl: await freshDatabase('prepaid-migration') });
    await migrateLatest(db);
    // Back to the schema before migration 110 (the later ones undone first, newest first).
    const undone: string[] = [];
    while (!undone.includes('20261207_110_prepaid_balance')) {
      const [, names] = (await db.migrate.down({ migrationSource })) as [number, string[]];
      assert.ok(names.length, `migration 110 was never undone (undone: ${undone.join(', ')})`);
      undone.push(...names);
    }
    assert.equal(undone.at(-1), '20261207_110_prepaid_balance');
  });
  after(async () => {
    await db?.destroy();
  });

  /** A project whose budget was set to `set` and then raised by each top-up in `topups` (as before), its limit now `limitNow`. */
  async function oldProject(set: string, topups: string[], limitNow: string, spentAfter = '0'): Promise<string> {
    const id = `project-${crypto.randomUUID()}`;
    await insertBareProject(db, { id: id, name: 'old' });
    await setBudget(db, { scopeType: 'project', scopeId: id, period: 'daily', limit: usd(limitNow), currency: 'USD' });
    await appendAudit(db, {
      actor: 'test',
      action: 'budget.set',
      subjectType: 'project',
      subjectId: id,
      projectId: id,
      details: { amount: set, currency: 'USD', period: 'daily' },
    });
    for (const amount of topups) {
      const paymentId = `payment-${crypto.randomUUID()}`;
      await insertPayment(db, {
        id: paymentId,
        projectId: id,
        amount: usd(amount),
        currency: 'USD',
        reason: 'old',
        methods: [{ kind: 'credits' }],
        createdBy: 'test',
      });
      await db('balance_entries').insert({ project_id: id, payment_id: paymentId, amount: toNumeric(usd(amount)), currency: 'USD', method: 'credits' });
    }
    if (spentAfter !== '0') {
      await db('cost_events').insert({
        idempotency_key: `cost-${crypto.randomUUID()}`,
        project_id: id,
        category: 'infra',
        amount: toNumeric(usd(spentAfter)),
        currency: 'USD',
        project_amount: toNumeric(usd(spentAfter)),
        project_currency: 'USD',
      });
    }
    return id;
  }

  it('restores limits raised by top-ups when certain, credits past top-ups less later spend, and leaves never-topped-up projects postpaid', async () => {
    const raised = await oldProject('10.00', ['5.00', '3.00'], '18.00', '2.00');
    const setElsewise = await oldProject('4.00', ['5.00'], '20.00');
    const overspent = await oldProject('1.00', ['1.00'], '2.00', '7.00');
    const never = await oldProject('6.00', [], '6.00');
    await migrateLatest(db);

    const limit = async (id: string) => formatAmount((await findBudget(db, 'project', id))!.limit, 'USD');
    const balance = async (id: string) => {
      const b = await balanceStatus(db, (await getProject(db, id))!);
      return [b.billing, formatAmount(b.credited, 'USD'), formatAmount(b.spent, 'USD'), formatAmount(b.balance, 'USD')];
    };
    assert.equal(await limit(raised), '10.00', 'the 8.00 of top-ups came off the limit');
    assert.deepEqual(await balance(raised), ['prepaid', '8.00', '2.00', '6.00']);
    assert.equal(await limit(setElsewise), '20.00', 'not exactly the last set amount plus top-ups: left alone');
    assert.deepEqual(await balance(setElsewise), ['prepaid', '5.00', '0.00', '5.00']);
    assert.equal(await limit(overspent), '1.00');
    assert.deepEqual(await balance(overspent), ['prepaid', '1.00', '1.00', '0.00'], 'never below zero');
    assert.equal(await limit(never), '6.00');
    assert.deepEqual(await balance(never), ['postpaid', '0.00', '0.00', '0.00']);
    assert.equal(
      await db('budgets')
        .where({ id: balanceAccountId(never) })
        .first(),
      undefined,
    );
    const entry = await db('balance_entries').where({ project_id: raised }).first();
    assert.equal(entry.project_currency, 'USD');
  });
});

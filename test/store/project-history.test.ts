import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseAmount } from '../../domain/money.js';
import { setBudget } from '../../store/budgets.js';
import { createDb, migrateLatest, type Db } from '../../store/db.js';
import { insertProject } from '../../store/projects.js';
import { historyHorizon, pruneProjectHistory, rowsAt } from '../../store/project-history.js';
import { freshDatabase } from '../support/platform.js';

const usd = (text: string) => parseAmount(text, 'USD');

const pause = () => new Promise((resolve) => setTimeout(resolve, 5));

/**
 * The database's clock, a few milliseconds apart from the writes either side: PGlite's clock ticks
 * in milliseconds, and a JS Date drops Postgres's microseconds.
 */
async function clock(db: Db): Promise<Date> {
  await pause();
  const { rows } = await db.raw('select clock_timestamp() as t');
  await pause();
  return new Date(rows[0].t);
}

async function project(db: Db, id: string): Promise<void> {
  await insertProject(db, {
    id,
    name: id,
    repoUrl: null,
    repoPath: `/nowhere/${id}.git`,
    currency: 'USD',
    greediness: 1,
    defaultMachineMoney: usd('0.50'),
    rootCheckpointId: null,
    limitPolicy: 'stop',
    pauseMinutes: 0,
    createdBy: 'tester',
  });
}

/** The same journal behaviour on both engines the platform runs on. */
function journalSuite(engine: string, open: () => Promise<{ db: Db; done: () => Promise<void> }>) {
  describe(`project change journal (${engine})`, function () {
    this.timeout(120_000);
    let db: Db;
    let done: () => Promise<void>;

    before(async function () {
      ({ db, done } = await open());
      await migrateLatest(db);
    });

    after(async function () {
      await done?.();
    });

    it('records inserts, updates and deletes with row images, and reconstructs a project as of a moment', async function () {
      await project(db, 'project-a');
      await project(db, 'project-b');
      await setBudget(db, { scopeType: 'project', scopeId: 'project-a', period: 'daily', limit: usd('5.00'), currency: 'USD' });
      await setBudget(db, { scopeType: 'project', scopeId: 'project-b', period: 'daily', limit: usd('7.00'), currency: 'USD' });
      const t1 = await clock(db);
      await setBudget(db, { scopeType: 'project', scopeId: 'project-a', period: 'daily', limit: usd('9.00'), currency: 'USD' });
      await db('checkpoints').insert({ id: 'checkpoint-a1', project_id: 'project-a', commit: 'c'.repeat(40), kind: 'root', trigger: 't' });
      await db('projects').where({ id: 'project-a' }).update({ name: 'renamed' });
      const t2 = await clock(db);
      await db('checkpoints').where({ id: 'checkpoint-a1' }).delete();

      const journal = await db('project_history').where({ project_id: 'project-a' }).orderBy('seq').select('table_name', 'op');
      assert.deepEqual(journal, [
        { table_name: 'projects', op: 'insert' },
        { table_name: 'budgets', op: 'insert' },
        { table_name: 'budgets', op: 'update' },
        { table_name: 'checkpoints', op: 'insert' },
        { table_name: 'projects', op: 'update' },
        { table_name: 'checkpoints', op: 'delete' },
      ]);
      assert.equal(
        await db('project_history')
          .where({ project_id: 'project-b' })
          .count('* as n')
          .first()
          .then((r) => Number(r!.n)),
        2,
      );

      const budgetsAt1 = await rowsAt(db, 'budgets', 'project-a', t1);
      assert.equal(budgetsAt1.length, 1);
      assert.equal(JSON.parse(budgetsAt1[0]!.asOf!).limit_amount, 5);
      assert.equal(JSON.parse(budgetsAt1[0]!.now!).limit_amount, 9);
      const projectAt1 = await rowsAt(db, 'projects', 'project-a', t1);
      assert.equal(JSON.parse(projectAt1[0]!.asOf!).name, 'project-a');
      assert.deepEqual(await rowsAt(db, 'checkpoints', 'project-a', t1), []);
      const checkpointsAt2 = await rowsAt(db, 'checkpoints', 'project-a', t2);
      assert.equal(checkpointsAt2.length, 1);
      assert.equal(checkpointsAt2[0]!.now, null, 'deleted since');
      assert.equal(JSON.parse(checkpointsAt2[0]!.asOf!).id, 'checkpoint-a1');
      const projectAt2 = await rowsAt(db, 'projects', 'project-a', t2);
      assert.equal(projectAt2[0]!.asOf, projectAt2[0]!.now, 'unchanged since t2');
    });

    it('keeps numeric money exact through the row images', async function () {
      await db('projects').insert({
        id: 'project-eth',
        name: 'eth',
        repo_path: '/x',
        currency: 'ETH',
        greediness: 1,
        default_machine_money: '12345678901234567.123456789012345678',
        created_by: 't',
      });
      const before = await clock(db);
      await db('projects').where({ id: 'project-eth' }).update({ default_machine_money: '1' });
      const [row] = await rowsAt(db, 'projects', 'project-eth', before);
      assert.match(row!.asOf!, /"default_machine_money": 12345678901234567\.123456789012345678[,}]/);
    });

    it('prunes entries before the cut-off and moves the horizon there', async function () {
      const installed = await historyHorizon(db);
      const cut = await clock(db);
      assert.ok(installed <= cut);
      await project(db, 'project-c');
      const dropped = await pruneProjectHistory(db, cut);
      assert.ok(dropped >= 8, `dropped ${dropped}`);
      assert.equal((await historyHorizon(db)).getTime(), cut.getTime());
      const left = await db('project_history').select('project_id');
      assert.deepEqual(left, [{ project_id: 'project-c' }]);
    });
  });
}

journalSuite('real PostgreSQL', async () => {
  const db = await createDb({ databaseUrl: await freshDatabase('project_history') });
  return { db, done: () => db.destroy() };
});

journalSuite('embedded PGlite', async () => {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'autovibe-history-test-'));
  const db = await createDb({ home });
  return {
    db,
    done: async () => {
      await db.destroy();
      fs.rmSync(home, { recursive: true, force: true });
    },
  };
});

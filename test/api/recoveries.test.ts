import assert from 'node:assert/strict';
import fs from 'node:fs';
import { startTestPlatform, waitFor, waitForMachine, type TestPlatform } from '../support/platform.js';

const pause = (ms = 30) => new Promise((resolve) => setTimeout(resolve, ms));

/** What a project is, as its API shows it: the budget, the cost ledger, the checkpoint tree and the audit trail. */
async function stateOf(p: TestPlatform, projectId: string) {
  const project = (await p.api('GET', `/v1/projects/${projectId}`)).body;
  const costs = (await p.api('GET', `/v1/projects/${projectId}/costs?limit=200`)).body;
  const checkpoints = (await p.api('GET', `/v1/projects/${projectId}/checkpoints?limit=200`)).body.items as any[];
  const audit = (await p.api('GET', `/v1/audit?projectId=${projectId}&limit=500`)).body.items as any[];
  return {
    name: project.name as string,
    rootCheckpointId: project.rootCheckpointId as string,
    budget: { limit: project.budget.limit, spent: project.budget.spent, reserved: project.budget.reserved },
    costs: (costs.items as any[]).map((c) => ({ category: c.category, amount: c.amount, machineId: c.machineId, details: c.details })),
    total: costs.totals.total,
    checkpoints: checkpoints.map((c) => ({ id: c.id, commit: c.commit, kind: c.kind, machineId: c.machineId })),
    audit: audit.map((a) => ({ seq: a.seq, action: a.action, subjectId: a.subjectId, details: a.details })),
  };
}

async function runMachine(p: TestPlatform, projectId: string, command: string): Promise<any> {
  const m = await p.api('POST', '/v1/machines', { projectId, type: 'shell', command, cache: false, limits: { money: '0.20', minutes: 2 } });
  assert.equal(m.status, 202, JSON.stringify(m.body));
  const done = await waitForMachine(p, m.body.id);
  assert.equal(done.status, 'completed', JSON.stringify(done));
  // Settled: nothing held on the budget any more.
  await waitFor(async () => (await p.api('GET', `/v1/projects/${projectId}`)).body.budget.reserved === '0.00', 'the reservation to settle');
  return done;
}

/** A moment between two writes, clear of both by a few milliseconds. */
async function moment(): Promise<string> {
  await pause();
  const at = new Date().toISOString();
  await pause();
  return at;
}

describe('api: point-in-time recovery of one project (real Postgres and Temporal)', function () {
  this.timeout(600_000);
  let p: TestPlatform;
  let projectA: string;
  let projectB: string;
  let t1: string;
  let thenA: Awaited<ReturnType<typeof stateOf>>;
  let beforeA: Awaited<ReturnType<typeof stateOf>>;
  let beforeB: Awaited<ReturnType<typeof stateOf>>;
  let copyId: string;

  before(async () => {
    p = await startTestPlatform({ label: 'recoveries' });
    projectA = (await p.api('POST', '/v1/projects', { name: 'alpha' })).body.id;
    assert.equal((await p.api('PUT', `/v1/projects/${projectA}/budget`, { amount: '5.00', currency: 'USD', period: 'daily' })).status, 200);
    await runMachine(p, projectA, 'echo one > one.txt');
    t1 = await moment();
    thenA = await stateOf(p, projectA);
    // After the moment: the budget set again, another machine with its cost and checkpoint.
    assert.equal((await p.api('PUT', `/v1/projects/${projectA}/budget`, { amount: '8.00', currency: 'USD', period: 'daily' })).status, 200);
    await runMachine(p, projectA, 'echo two > two.txt');
    projectB = (await p.api('POST', '/v1/projects', { name: 'bravo' })).body.id;
    assert.equal((await p.api('PUT', `/v1/projects/${projectB}/budget`, { amount: '3.00', currency: 'USD', period: 'daily' })).status, 200);
    await runMachine(p, projectB, 'echo b > b.txt');
    beforeA = await stateOf(p, projectA);
    beforeB = await stateOf(p, projectB);
    // The history is what the test is about: each part of it must be there.
    assert.equal(thenA.budget.limit, '5.00');
    assert.equal(beforeA.budget.limit, '8.00');
    assert.ok(thenA.costs.length > 0, 'the first machine cost something');
    assert.ok(beforeA.costs.length > thenA.costs.length, 'the second machine cost more');
    assert.ok(beforeA.checkpoints.length > thenA.checkpoints.length, 'the second machine made checkpoints');
  });

  after(async () => {
    await p?.stop();
  });

  it('refuses a moment in the future, before the journal reaches back, or before the project existed, saying what to give', async () => {
    const future = await p.api('POST', `/v1/projects/${projectA}/recoveries`, { at: new Date(Date.now() + 3_600_000).toISOString() });
    assert.equal(future.status, 422, JSON.stringify(future.body));
    assert.match(future.body.error.message, /^at: .* is in the future \(now is .*\); give a moment up to now$/);
    const ancient = await p.api('POST', `/v1/projects/${projectA}/recoveries`, { at: '2020-01-01T00:00:00Z' });
    assert.equal(ancient.status, 422, JSON.stringify(ancient.body));
    assert.equal(ancient.body.error.code, 'before_retention');
    assert.match(
      ancient.body.error.message,
      /before the change journal reaches back \(.*AUTOVIBE_PROJECT_HISTORY_DAYS=30 days are kept\): give a moment at or after it/,
    );
    const unborn = await p.api('POST', `/v1/projects/${projectB}/recoveries`, { at: t1 });
    assert.equal(unborn.status, 422, JSON.stringify(unborn.body));
    assert.match(unborn.body.error.message, /did not exist yet at .*give a later moment/);
    const garbled = await p.api('POST', `/v1/projects/${projectA}/recoveries`, { at: 'yesterday' });
    assert.equal(garbled.status, 422, JSON.stringify(garbled.body));
    assert.match(garbled.body.error.message, /^at: "yesterday" is not an ISO 8601 time/);
    const mode = await p.api('POST', `/v1/projects/${projectA}/recoveries`, { at: t1, mode: 'sideways' });
    assert.ok(mode.status === 400 || mode.status === 422, JSON.stringify(mode.body));
  });

  it('a dry run counts the rows per table a copy would hold, and writes nothing', async () => {
    const dry = await p.api('POST', `/v1/projects/${projectA}/recoveries`, { at: t1, dryRun: true });
    assert.equal(dry.status, 200, JSON.stringify(dry.body));
    assert.equal(dry.body.projectId, null);
    assert.equal(dry.body.tables.projects.insert, 1);
    assert.equal(dry.body.tables.budgets.insert, 1);
    assert.equal(dry.body.tables.checkpoints.insert, thenA.checkpoints.length);
    assert.equal(dry.body.tables.cost_events.insert, thenA.costs.length);
    assert.equal(dry.body.tables.machines.insert, 1);
    assert.equal(dry.body.auditRecords, thenA.audit.length + 1);
    assert.deepEqual(await stateOf(p, projectA), beforeA);
    const projects = (await p.api('GET', '/v1/projects?limit=100')).body.items as any[];
    assert.equal(projects.length, 2);
  });

  it('copy mode makes a new project holding the budget, costs, checkpoints and audit as of the moment; the original and another project are untouched', async () => {
    const copy = await p.api('POST', `/v1/projects/${projectA}/recoveries`, { at: t1, mode: 'copy' });
    assert.equal(copy.status, 201, JSON.stringify(copy.body));
    copyId = copy.body.projectId;
    assert.notEqual(copyId, projectA);
    const c = await stateOf(p, copyId);
    assert.equal(c.name, `alpha (as of ${new Date(t1).toISOString()})`);
    assert.deepEqual(c.budget, thenA.budget);
    assert.deepEqual(c.total, thenA.total);
    assert.deepEqual(
      c.costs.map((x) => [x.category, x.amount]),
      thenA.costs.map((x) => [x.category, x.amount]),
    );
    // The same commits, under new checkpoint ids, in a repository of the copy's own.
    assert.deepEqual(
      c.checkpoints.map((x) => [x.commit, x.kind]),
      thenA.checkpoints.map((x) => [x.commit, x.kind]),
    );
    assert.ok(c.checkpoints.every((x) => !thenA.checkpoints.some((o) => o.id === x.id)));
    const machineCheckpoint = c.checkpoints.find((x) => x.machineId)!;
    const file = await p.api('GET', `/v1/checkpoints/${machineCheckpoint.id}/files/one.txt`);
    assert.equal(file.status, 200, JSON.stringify(file.body));
    assert.equal(String(file.body), 'one\n');
    assert.equal((await p.api('GET', `/v1/checkpoints/${machineCheckpoint.id}/files/two.txt`)).status, 404);
    // The audit trail as of then, re-recorded under the copy (each naming the original record), then the recovery.
    assert.deepEqual(
      c.audit.map((a) => a.action),
      [...thenA.audit.map((a) => a.action), 'project.recovered'],
    );
    assert.deepEqual(
      c.audit.slice(0, -1).map((a) => a.details.recoveredFrom.seq),
      thenA.audit.map((a) => a.seq),
    );
    assert.equal(c.audit.at(-1)!.details.sourceProjectId, projectA);
    // Nobody else's rows moved.
    assert.deepEqual(await stateOf(p, projectA), { ...beforeA, audit: beforeA.audit });
    assert.deepEqual(await stateOf(p, projectB), beforeB);
    const verify = await p.api('GET', '/v1/audit/verify');
    assert.deepEqual(verify.body, { intact: true, brokenAt: null });
  });

  it('the copy runs machines from its recovered checkpoints', async () => {
    const c = await stateOf(p, copyId);
    const from = c.checkpoints.find((x) => x.machineId)!;
    const m = await p.api('POST', '/v1/machines', {
      projectId: copyId,
      type: 'shell',
      checkpointId: from.id,
      command: 'cat one.txt > seen.txt',
      cache: false,
      limits: { money: '0.20', minutes: 2 },
    });
    assert.equal(m.status, 202, JSON.stringify(m.body));
    assert.equal((await waitForMachine(p, m.body.id)).status, 'completed');
  });

  it('a recovery whose audit record fails changes nothing, in either mode, and leaves no repository behind', async () => {
    await p.db.raw(
      `CREATE OR REPLACE FUNCTION refuse_recovered() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN IF NEW.action = 'project.recovered' THEN RAISE EXCEPTION 'audit refused in this test'; END IF; RETURN NEW; END $$`,
    );
    await p.db.raw(`CREATE TRIGGER refuse_recovered BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION refuse_recovered()`);
    try {
      const reposBefore = fs.readdirSync(p.config.projectsDir).sort();
      const projectsBefore = (await p.api('GET', '/v1/projects?limit=100')).body.items.length;
      assert.equal((await p.api('POST', `/v1/projects/${projectA}/recoveries`, { at: t1 })).status, 500);
      assert.equal((await p.api('POST', `/v1/projects/${projectA}/recoveries`, { at: t1, mode: 'in-place' })).status, 500);
      assert.deepEqual(fs.readdirSync(p.config.projectsDir).sort(), reposBefore);
      assert.equal((await p.api('GET', '/v1/projects?limit=100')).body.items.length, projectsBefore);
      assert.deepEqual(await stateOf(p, projectA), beforeA);
    } finally {
      await p.db.raw('DROP TRIGGER IF EXISTS refuse_recovered ON audit_log');
    }
  });

  it('in-place mode refuses while the project has work in flight, with a 409 naming it', async () => {
    const m = await p.api('POST', '/v1/machines', {
      projectId: projectB,
      type: 'shell',
      command: 'sleep 120',
      cache: false,
      limits: { money: '0.20', minutes: 5 },
    });
    assert.equal(m.status, 202, JSON.stringify(m.body));
    await waitFor(async () => ['running', 'provisioning'].includes((await p.api('GET', `/v1/machines/${m.body.id}`)).body.status), 'the machine to start');
    const busy = await p.api('POST', `/v1/projects/${projectB}/recoveries`, { at: await moment(), mode: 'in-place' });
    assert.equal(busy.status, 409, JSON.stringify(busy.body));
    assert.equal(busy.body.error.code, 'project_busy');
    assert.match(
      busy.body.error.message,
      new RegExp(`machine ${m.body.id} \\(\\w+\\).*terminate or wait for it before an in-place recovery, or recover a copy`),
    );
    assert.equal((await p.api('POST', `/v1/machines/${m.body.id}/terminate`)).status, 202);
    await waitForMachine(p, m.body.id);
    await waitFor(async () => (await p.api('GET', `/v1/projects/${projectB}`)).body.budget.reserved === '0.00', 'the reservation to settle');
  });

  it('in-place mode brings the project to the same state as the copy, keeps the later spend as adjustments, and the audit chain verifies', async () => {
    const dry = await p.api('POST', `/v1/projects/${projectA}/recoveries`, { at: t1, mode: 'in-place', dryRun: true });
    assert.equal(dry.status, 200, JSON.stringify(dry.body));
    const removedCheckpoints = beforeA.checkpoints.length - thenA.checkpoints.length;
    assert.deepEqual(dry.body.tables.checkpoints, { insert: 0, update: 0, delete: removedCheckpoints });
    assert.deepEqual(dry.body.tables.budgets, { insert: 0, update: 1, delete: 0 });
    assert.equal(dry.body.tables.machines.delete, 1);
    assert.equal(dry.body.tables.cost_events.delete, beforeA.costs.length - thenA.costs.length);
    assert.ok(dry.body.adjustments.length > 0);
    const beforeB2 = await stateOf(p, projectB);

    const done = await p.api('POST', `/v1/projects/${projectA}/recoveries`, { at: t1, mode: 'in-place' });
    assert.equal(done.status, 200, JSON.stringify(done.body));
    assert.deepEqual(done.body.tables, dry.body.tables);
    assert.equal(done.body.checkpoints.removed, removedCheckpoints);
    const a = await stateOf(p, projectA);
    const c = await stateOf(p, copyId);
    // The same state as the copy and as then: budget limit, checkpoints (same ids as then), costs as of then.
    assert.equal(a.budget.limit, '5.00');
    assert.deepEqual(a.checkpoints, thenA.checkpoints);
    assert.deepEqual(
      a.checkpoints.map((x) => x.commit),
      c.checkpoints.filter((x) => thenA.checkpoints.some((o) => o.commit === x.commit)).map((x) => x.commit),
    );
    const ordinary = a.costs.filter((x) => !x.details.adjustment);
    assert.deepEqual(ordinary, thenA.costs);
    // Money spent after the moment stays spent: the ledger's total is what it was, the difference as adjustments.
    assert.deepEqual(a.total, beforeA.total);
    const adjustments = a.costs.filter((x) => x.details.adjustment);
    assert.equal(adjustments.length, done.body.adjustments.length);
    assert.ok(adjustments.every((x) => x.machineId === null && x.details.recoveryId === done.body.id));
    assert.equal(a.budget.spent, beforeA.budget.spent, 'the budget still counts what was spent');
    // History is appended to, never rewritten.
    assert.deepEqual(
      a.audit.slice(0, beforeA.audit.length).map((x) => x.seq),
      beforeA.audit.map((x) => x.seq),
    );
    assert.equal(a.audit.at(-1)!.action, 'project.recovered');
    assert.equal(a.audit.at(-1)!.details.mode, 'in-place');
    assert.deepEqual(await stateOf(p, projectB), beforeB2);
    assert.deepEqual((await p.api('GET', '/v1/audit/verify')).body, { intact: true, brokenAt: null });
    // The removed checkpoints are gone from the tree, and the project runs a machine from one it kept.
    const removed = beforeA.checkpoints.find((x) => !thenA.checkpoints.some((o) => o.id === x.id))!;
    assert.equal((await p.api('GET', `/v1/checkpoints/${removed.id}`)).status, 404);
    const kept = thenA.checkpoints.find((x) => x.machineId)!;
    const m = await p.api('POST', '/v1/machines', {
      projectId: projectA,
      type: 'shell',
      checkpointId: kept.id,
      command: 'cat one.txt',
      cache: false,
      limits: { money: '0.20', minutes: 2 },
    });
    assert.equal(m.status, 202, JSON.stringify(m.body));
    assert.equal((await waitForMachine(p, m.body.id)).status, 'completed');
  });

  it('each platform backup prunes journal entries older than AUTOVIBE_PROJECT_HISTORY_DAYS and moves the horizon, after which older moments get 422', async () => {
    // A journal installed 60 days ago, with entries of a throwaway project aged past the retention window.
    await p.db('project_history_horizon').update({ since: p.db.raw(`now() - interval '60 days'`) });
    const old = (await p.api('POST', '/v1/projects', { name: 'aged' })).body.id;
    const aged = await p
      .db('project_history')
      .where({ project_id: old })
      .update({ at: p.db.raw(`at - interval '40 days'`) });
    assert.ok(aged > 0);
    const kept = Number((await p.db('project_history').whereNot({ project_id: old }).count('* as n'))[0]!.n);
    const backup = await p.api('POST', '/v1/backups');
    assert.equal(backup.status, 202, JSON.stringify(backup.body));
    await p.temporal.workflow.getHandle(backup.body.workflowId).result();
    assert.equal(Number((await p.db('project_history').where({ project_id: old }).count('* as n'))[0]!.n), 0);
    assert.equal(Number((await p.db('project_history').whereNot({ project_id: old }).count('* as n'))[0]!.n), kept, 'recent entries stay');
    const completed = (await p.api('GET', `/v1/audit?action=backup.completed`)).body.items.at(-1);
    assert.equal(completed.details.journalEntriesPruned, aged);
    const since = new Date((await p.db('project_history_horizon').first('since')).since);
    assert.ok(since.getTime() > Date.now() - 31 * 86_400_000 && since.getTime() < Date.now() - 29 * 86_400_000, since.toISOString());
    const tooOld = await p.api('POST', `/v1/projects/${projectA}/recoveries`, { at: new Date(since.getTime() - 60_000).toISOString() });
    assert.equal(tooOld.status, 422, JSON.stringify(tooOld.body));
    assert.equal(tooOld.body.error.code, 'before_retention');
    assert.equal(tooOld.body.error.details.journalSince, since.toISOString());
  });
});

describe('api: point-in-time recovery on embedded PGlite (what npm start runs)', function () {
  this.timeout(600_000);
  let p: TestPlatform;

  before(async () => {
    p = await startTestPlatform({ label: 'recoveries-embedded', embedded: true });
  });

  after(async () => {
    await p?.stop();
  });

  it('recovers a copy and in place to the moment between two budgets, with a machine run after it; the chain verifies', async () => {
    const id = (await p.api('POST', '/v1/projects', { name: 'embedded' })).body.id;
    assert.equal((await p.api('PUT', `/v1/projects/${id}/budget`, { amount: '5.00', currency: 'USD', period: 'daily' })).status, 200);
    const at = await moment();
    const then = await stateOf(p, id);
    assert.equal((await p.api('PUT', `/v1/projects/${id}/budget`, { amount: '8.00', currency: 'USD', period: 'daily' })).status, 200);
    await runMachine(p, id, 'echo later > later.txt');
    const before = await stateOf(p, id);
    assert.ok(before.costs.length > 0 && before.checkpoints.length > then.checkpoints.length);

    const copy = await p.api('POST', `/v1/projects/${id}/recoveries`, { at });
    assert.equal(copy.status, 201, JSON.stringify(copy.body));
    const c = await stateOf(p, copy.body.projectId);
    assert.deepEqual(c.budget, then.budget);
    assert.deepEqual(c.costs, []);
    assert.deepEqual(
      c.checkpoints.map((x) => x.commit),
      then.checkpoints.map((x) => x.commit),
    );

    const inPlace = await p.api('POST', `/v1/projects/${id}/recoveries`, { at, mode: 'in-place' });
    assert.equal(inPlace.status, 200, JSON.stringify(inPlace.body));
    const a = await stateOf(p, id);
    assert.equal(a.budget.limit, '5.00');
    assert.deepEqual(a.checkpoints, then.checkpoints);
    assert.deepEqual(a.total, before.total);
    assert.ok(a.costs.length > 0 && a.costs.every((x) => x.details.adjustment === true));
    assert.deepEqual((await p.api('GET', '/v1/audit/verify')).body, { intact: true, brokenAt: null });
  });
});

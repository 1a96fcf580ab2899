import assert from 'node:assert/strict';
import { gitFetchScheduleId } from '../../domain/git-remote.js';
import { SEARCH_ATTRIBUTES } from '../../domain/search-attributes.js';
import { startHttpGitServer, type HttpGitServer } from '../support/http-git-server.js';
import { projectWithBudget, startTestPlatform, waitFor, type TestPlatform } from '../support/platform.js';

const TOKEN = 'tok-5b1e9c3a7d2f4e60b8a1c9d7e5f3a2b1';

/**
 * The periodic fetch of a project's git remote: a Temporal Schedule per project that runs
 * scheduledGitFetch, against a real `git http-backend` on loopback with Basic auth. A commit pushed
 * to the remote becomes an imported checkpoint when the schedule fires (triggered here rather than
 * waited for); GET shows the next run and the last outcome; removing the fetch or the remote
 * removes the schedule.
 */
describe('api: scheduled fetch of a git remote (a Temporal Schedule per project, real git over http)', function () {
  this.timeout(300_000);
  let p: TestPlatform;
  let server: HttpGitServer;
  let project: string;

  const scheduleExists = (id: string) =>
    p.temporal.schedule
      .getHandle(gitFetchScheduleId(id))
      .describe()
      .then(
        () => true,
        (err: Error) => {
          if (err.name === 'ScheduleNotFoundError') return false;
          throw err;
        },
      );

  before(async () => {
    p = await startTestPlatform({ label: 'git-fetch-schedule', env: { AUTOVIBE_REPO_URL_SCHEMES: 'https,ssh,git,http', AUTOVIBE_CLONE_TIMEOUT_S: '10' } });
    server = await startHttpGitServer({ username: 'robot', token: TOKEN });
    server.addRepo('app', { 'README.md': 'remote readme\n' });
    project = await projectWithBudget(p, '5.00');
  });
  after(async () => {
    if (project)
      await p?.temporal.schedule
        .getHandle(gitFetchScheduleId(project))
        .delete()
        .catch(() => undefined);
    await server?.stop();
    await p?.stop();
  });

  it('refuses a bad fetch setting with a 400 naming the field', async () => {
    for (const [fetch, why] of [
      [{ branches: [], everyMinutes: 5 }, /^fetch\.branches: give at least one branch/],
      [{ branches: ['main'], everyMinutes: 0 }, /^fetch\.everyMinutes: at least 1 minute/],
      [{ branches: ['bad..name'], everyMinutes: 5 }, /^fetch\.branches\.0: /],
      [{ branches: ['main', 'main'], everyMinutes: 5 }, /^fetch\.branches: each branch once/],
    ] as const) {
      const res = await p.api('PUT', `/v1/projects/${project}/git-remote`, { url: server.url('app'), fetch });
      assert.equal(res.status, 400, JSON.stringify(res.body));
      assert.match(res.body.error.message, why);
    }
    assert.equal(await scheduleExists(project), false);
  });

  it('a commit pushed to the remote becomes an imported checkpoint when the schedule fires; GET shows the next run and the last result', async () => {
    const set = await p.api('PUT', `/v1/projects/${project}/git-remote`, {
      url: server.url('app'),
      username: 'robot',
      token: TOKEN,
      fetch: { branches: ['main', 'missing'], everyMinutes: 60 },
    });
    assert.equal(set.status, 200, JSON.stringify(set.body));
    assert.deepEqual(set.body.fetch.branches, ['main', 'missing']);
    assert.equal(set.body.fetch.everyMinutes, 60);
    assert.equal(set.body.fetch.scheduleId, gitFetchScheduleId(project));
    assert.ok(set.body.fetch.nextRunAt, 'the schedule has a next run');
    assert.ok(Date.parse(set.body.fetch.nextRunAt) > Date.now() - 1000);
    assert.equal(set.body.fetch.lastRunAt, null);
    assert.ok(!JSON.stringify(set.body).includes(TOKEN));

    const described = await p.temporal.schedule.getHandle(gitFetchScheduleId(project)).describe();
    assert.equal(described.action.type, 'startWorkflow');
    assert.equal(described.action.workflowType, 'scheduledGitFetch');
    assert.deepEqual(
      described.spec.intervals?.map((i) => i.every),
      [60 * 60 * 1000],
    );

    const commit = server.commitTo('app', 'main', { 'NEW.md': 'pushed after the remote was set\n' }, 'a new commit');
    await p.temporal.schedule.getHandle(gitFetchScheduleId(project)).trigger();
    const remote = await waitFor(async () => {
      const r = await p.api('GET', `/v1/projects/${project}/git-remote`);
      return r.body.fetch?.lastRunAt ? r.body : null;
    }, 'the scheduled fetch to run');
    const [main, missing] = remote.fetch.lastResult;
    assert.equal(main.branch, 'main');
    assert.equal(main.status, 'created', JSON.stringify(main));
    assert.equal(main.commit, commit);
    assert.equal(missing.branch, 'missing');
    assert.equal(missing.status, 'failed');
    assert.match(missing.error, /branch missing not found/);

    const imported = await p.api('GET', `/v1/checkpoints/${main.checkpointId}`);
    assert.equal(imported.status, 200);
    assert.equal(imported.body.kind, 'imported');
    assert.equal(imported.body.commit, commit);
    assert.ok(imported.body.files.some((f: { path: string }) => f.path === 'NEW.md'));
    const audit = await p.db('audit_log').where({ action: 'checkpoint.created', subject_id: main.checkpointId }).first();
    assert.equal(audit.actor, 'system:git-fetch-schedule');

    // The workflow is findable by its search attribute and carries its memo.
    const [run] = (await p.temporal.schedule.getHandle(gitFetchScheduleId(project)).describe()).info.recentActions;
    const execution = await p.temporal.workflow.getHandle(run!.action.workflow.workflowId).describe();
    assert.equal(execution.type, 'scheduledGitFetch');
    assert.deepEqual(execution.memo, { projectId: project, branches: ['main', 'missing'], everyMinutes: 60 });
    assert.equal(p.config.searchAttributes, true, 'the test platform registers the search attributes');
    assert.equal(execution.typedSearchAttributes.get(SEARCH_ATTRIBUTES.project), project);
  });

  it('changing the fetch updates the schedule; setting the remote without it, or deleting the remote, removes the schedule', async () => {
    const changed = await p.api('PUT', `/v1/projects/${project}/git-remote`, {
      url: server.url('app'),
      username: 'robot',
      token: TOKEN,
      fetch: { branches: ['main'], everyMinutes: 15 },
    });
    assert.equal(changed.status, 200, JSON.stringify(changed.body));
    const described = await p.temporal.schedule.getHandle(gitFetchScheduleId(project)).describe();
    assert.deepEqual(
      described.spec.intervals?.map((i) => i.every),
      [15 * 60 * 1000],
    );
    assert.deepEqual((described.action as { args: unknown[] }).args, [{ projectId: project, branches: ['main'] }]);

    const without = await p.api('PUT', `/v1/projects/${project}/git-remote`, { url: server.url('app'), username: 'robot', token: TOKEN });
    assert.equal(without.body.fetch, null);
    assert.equal(await scheduleExists(project), false);

    await p.api('PUT', `/v1/projects/${project}/git-remote`, {
      url: server.url('app'),
      username: 'robot',
      token: TOKEN,
      fetch: { branches: ['main'], everyMinutes: 5 },
    });
    assert.equal(await scheduleExists(project), true);
    const del = await p.api('DELETE', `/v1/projects/${project}/git-remote`);
    assert.equal(del.status, 204);
    assert.equal(await scheduleExists(project), false);
  });
});

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { createUserWithKey } from '../../store/auth.js';
import { getProject } from '../../store/projects.js';
import { startSilentServer } from '../support/git-server.js';
import { startHttpGitServer, type HttpGitServer } from '../support/http-git-server.js';
import { projectWithBudget, startTestPlatform, waitForMachine, type TestPlatform } from '../support/platform.js';

const TOKEN = 'tok-3f9a1c5e7b2d4f60a8c1e9d7b5a3f2e1';
/** git as a client of the test's server (async: the server runs in this process). */
const git = async (args: string[]) => (await promisify(execFile)('git', args, { env: { ...process.env, GIT_TERMINAL_PROMPT: '0' } })).stdout;

/**
 * A project's git remote against a real `git http-backend` on loopback that demands HTTP Basic
 * auth (test/support/http-git-server.ts): credentials kept and never shown, a machine's checkpoint
 * pushed as a branch and read back with git, non-fast-forward refused then forced, a wrong token
 * refused by the remote, and a branch's new commits fetched into the evolution tree.
 */
describe('api: git remotes (push checkpoints, fetch branches; real git over http on loopback)', function () {
  this.timeout(300_000);
  let p: TestPlatform;
  let server: HttpGitServer;
  let project: string;
  let other: string;
  let otherKey: string;
  let checkpoint: string;
  let root: string;
  let remoteUrl: string;

  before(async () => {
    p = await startTestPlatform({ label: 'git-remotes', env: { AUTOVIBE_REPO_URL_SCHEMES: 'https,ssh,git,http', AUTOVIBE_CLONE_TIMEOUT_S: '10' } });
    server = await startHttpGitServer({ username: 'robot', token: TOKEN });
    server.addRepo('app', { 'README.md': 'remote readme\n' });
    remoteUrl = server.url('app');
    project = await projectWithBudget(p, '5.00');
    other = await projectWithBudget(p, '5.00');
    otherKey = (await createUserWithKey(p.db, 'owner-of-other', 'owner', [other])).key;
    root = (await p.api('GET', `/v1/projects/${project}`)).body.rootCheckpointId;
    const m = await p.api('POST', '/v1/machines', {
      projectId: project,
      type: 'shell',
      command: 'echo made-by-a-machine > out.txt',
      cache: false,
      limits: { money: '0.05', minutes: 2 },
    });
    assert.equal(m.status, 202, JSON.stringify(m.body));
    const done = await waitForMachine(p, m.body.id);
    assert.equal(done.status, 'completed', JSON.stringify(done));
    checkpoint = done.checkpoints.at(-1);
  });
  after(async () => {
    await server?.stop();
    await p?.stop();
  });

  it('refuses a bad remote URL or branch with a 400 saying what to fix', async () => {
    for (const [url, why] of [
      ['file:///etc', /file:\/\//],
      ['/srv/repo.git', /not a local path/],
      ['https://robot:secret@example.com/x.git', /username and token fields/],
      ['ssh://git@example.com/x.git', /scheme ssh is not allowed/],
      ['ext::sh -c touch% /tmp/x', /transport helpers|spaces/],
    ] as const) {
      const res = await p.api('PUT', `/v1/projects/${project}/git-remote`, { url });
      assert.equal(res.status, 400, `${url}: ${JSON.stringify(res.body)}`);
      assert.match(res.body.error.message, why);
    }
    assert.equal((await p.api('POST', `/v1/checkpoints/${checkpoint}/push`, { branch: 'x' })).status, 404, 'no remote yet');
    for (const branch of ['bad..name', '-x', 'a b', 'x.lock', 'refs/heads/x', 'a:b']) {
      const res = await p.api('POST', `/v1/checkpoints/${checkpoint}/push`, { branch });
      assert.equal(res.status, 400, `${branch}: ${JSON.stringify(res.body)}`);
      assert.match(res.body.error.message, /^branch: /);
    }
  });

  it('keeps the token and never shows it: reads show hasToken and the url alone', async () => {
    const put = await p.api('PUT', `/v1/projects/${project}/git-remote`, { url: remoteUrl, username: 'robot', token: TOKEN });
    assert.equal(put.status, 200, JSON.stringify(put.body));
    assert.deepEqual([put.body.url, put.body.username, put.body.hasToken], [remoteUrl, 'robot', true]);
    const got = await p.api('GET', `/v1/projects/${project}/git-remote`);
    assert.equal(got.status, 200);
    assert.deepEqual([got.body.url, got.body.hasToken], [remoteUrl, true]);
    assert.ok(!JSON.stringify([put.body, got.body]).includes(TOKEN));
    // Another project's key sees none of it.
    assert.equal((await p.api('GET', `/v1/projects/${project}/git-remote`, undefined, { key: otherKey })).status, 404);
    assert.equal((await p.api('PUT', `/v1/projects/${project}/git-remote`, { url: remoteUrl }, { key: otherKey })).status, 404);
    assert.equal((await p.api('POST', `/v1/checkpoints/${checkpoint}/push`, { branch: 'stolen' }, { key: otherKey })).status, 404);
    assert.equal((await p.api('POST', `/v1/projects/${project}/git-remote/fetch`, { branch: 'main' }, { key: otherKey })).status, 404);
    assert.equal((await p.api('GET', `/v1/projects/${other}/git-remote`, undefined, { key: otherKey })).status, 404, 'the other project has none');
  });

  it("pushes a machine's checkpoint as a branch (idempotent with a key, audited), read back with git", async () => {
    const headers = { 'Idempotency-Key': 'push-once' };
    const before = server.authorizations.length;
    const res = await p.api('POST', `/v1/checkpoints/${checkpoint}/push`, { branch: 'autovibe/first' }, { headers });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const commit = (await p.api('GET', `/v1/checkpoints/${checkpoint}`)).body.commit;
    assert.deepEqual(
      [res.body.status, res.body.branch, res.body.commit, res.body.forced, res.body.previousCommit],
      ['pushed', 'autovibe/first', commit, false, null],
    );
    assert.ok(server.authorizations.length > before, 'the credentials went to the server');
    const again = await p.api('POST', `/v1/checkpoints/${checkpoint}/push`, { branch: 'autovibe/first' }, { headers });
    assert.deepEqual(again.body, res.body);

    const remote = await git(['ls-remote', server.url('app').replace('http://', `http://robot:${TOKEN}@`), 'refs/heads/autovibe/first']);
    assert.equal(remote.split('\t')[0], commit);
    assert.equal(server.git('app', ['show', 'refs/heads/autovibe/first:out.txt']), 'made-by-a-machine');

    const audit = await p.db('audit_log').where({ action: 'checkpoint.pushed', subject_id: checkpoint });
    assert.equal(audit.length, 1, 'one record for the push and its replay');
    const details = typeof audit[0].details === 'string' ? JSON.parse(audit[0].details) : audit[0].details;
    assert.deepEqual([details.remote, details.branch, details.commit], [remoteUrl, 'autovibe/first', commit]);

    // A push of what the branch already holds says so.
    const same = await p.api('POST', `/v1/checkpoints/${checkpoint}/push`, { branch: 'autovibe/first' });
    assert.equal(same.status, 200, JSON.stringify(same.body));
    assert.equal(same.body.status, 'up_to_date');
  });

  it('refuses a non-fast-forward push with 409 until force: true', async () => {
    // main holds the remote's own commit, which the root checkpoint (an empty commit) does not descend from.
    const remoteMain = server.git('app', ['rev-parse', 'refs/heads/main']);
    const refused = await p.api('POST', `/v1/checkpoints/${checkpoint}/push`, { branch: 'main' });
    assert.equal(refused.status, 409, JSON.stringify(refused.body));
    assert.equal(refused.body.error.code, 'non_fast_forward');
    assert.match(refused.body.error.message, /force: true/);
    assert.equal(server.git('app', ['rev-parse', 'refs/heads/main']), remoteMain, 'the branch is unchanged');
    const forced = await p.api('POST', `/v1/checkpoints/${checkpoint}/push`, { branch: 'main', force: true });
    assert.equal(forced.status, 200, JSON.stringify(forced.body));
    assert.deepEqual([forced.body.forced, forced.body.previousCommit], [true, remoteMain]);
    assert.equal(server.git('app', ['rev-parse', 'refs/heads/main']), forced.body.commit);
  });

  it('fetches a branch with new commits as an imported checkpoint whose files match, child of the checkpoint it descends from', async () => {
    const tip = server.commitTo('app', 'autovibe/first', { 'out.txt': 'changed on the remote\n', 'docs/new.md': 'new\n' });
    const res = await p.api('POST', `/v1/projects/${project}/git-remote/fetch`, { branch: 'autovibe/first' });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual([res.body.commit, res.body.created, res.body.checkpoint.kind, res.body.checkpoint.parentId], [tip, true, 'imported', checkpoint]);
    const id = res.body.checkpoint.id;
    const file = await p.api('GET', `/v1/checkpoints/${id}/files/docs/new.md`);
    assert.equal(file.status, 200);
    const detail = (await p.api('GET', `/v1/checkpoints/${id}`)).body;
    assert.deepEqual(detail.files.map((f: { path: string }) => f.path).sort(), ['docs/new.md', 'out.txt']);
    const tree = (await p.api('GET', `/v1/projects/${project}/checkpoints/tree`)).body;
    assert.ok(tree.nodes.some((n: { id: string; parentId: string }) => n.id === id && n.parentId === checkpoint));
    const audit = await p.db('audit_log').where({ action: 'checkpoint.created', subject_id: id });
    assert.equal(audit.length, 1);
    // Fetching again with nothing new records nothing.
    const again = await p.api('POST', `/v1/projects/${project}/git-remote/fetch`, { branch: 'autovibe/first' });
    assert.deepEqual([again.body.created, again.body.checkpoint.id], [false, id]);
    // A branch with no known ancestor hangs off the root.
    server.orphan('app', 'unrelated', { 'other.txt': 'unrelated history\n' });
    const orphan = await p.api('POST', `/v1/projects/${project}/git-remote/fetch`, { branch: 'unrelated' });
    assert.equal(orphan.status, 200, JSON.stringify(orphan.body));
    assert.equal(orphan.body.checkpoint.parentId, root);
    const missing = await p.api('POST', `/v1/projects/${project}/git-remote/fetch`, { branch: 'no-such-branch' });
    assert.equal(missing.status, 404);
    assert.match(missing.body.error.message, /branch no-such-branch not found at the remote/);
  });

  it('reports a wrong token as the remote refusing, without the token; it is never in an audit record or the repository config', async () => {
    const wrong = 'wrong-token-5d2c9e1a';
    assert.equal((await p.api('PUT', `/v1/projects/${project}/git-remote`, { url: remoteUrl, username: 'robot', token: wrong })).status, 200);
    const res = await p.api('POST', `/v1/checkpoints/${checkpoint}/push`, { branch: 'autovibe/denied' });
    assert.equal(res.status, 502, JSON.stringify(res.body));
    assert.equal(res.body.error.code, 'git_remote_error');
    assert.match(res.body.error.message, new RegExp(`the remote ${remoteUrl.replace(/[.]/g, '\\.')} refused the push: .*(Authentication failed|401)`));
    assert.ok(!JSON.stringify(res.body).includes(wrong));
    const fetch = await p.api('POST', `/v1/projects/${project}/git-remote/fetch`, { branch: 'main' });
    assert.equal(fetch.status, 502, JSON.stringify(fetch.body));
    assert.ok(!JSON.stringify(fetch.body).includes(wrong));

    const audit = JSON.stringify(await p.db('audit_log').where({ project_id: project }));
    assert.match(audit, /project\.git_remote_set/);
    for (const t of [TOKEN, wrong]) assert.ok(!audit.includes(t), 'a token in the audit log');
    const events = JSON.stringify(
      await p
        .db('events')
        .where({ project_id: project })
        .catch(() => []),
    );
    for (const t of [TOKEN, wrong]) assert.ok(!events.includes(t), 'a token in the event feed');
    const repoPath = (await getProject(p.db, project))!.repoPath;
    const config = fs.readFileSync(path.join(repoPath, 'config'), 'utf8');
    for (const t of [TOKEN, wrong, Buffer.from(`robot:${TOKEN}`).toString('base64')]) assert.ok(!config.includes(t), 'a token in the repository config');
    assert.doesNotMatch(config, /extraheader|remote "/i);

    const del = await p.api('DELETE', `/v1/projects/${project}/git-remote`);
    assert.equal(del.status, 204);
    assert.equal((await p.api('GET', `/v1/projects/${project}/git-remote`)).status, 404);
    assert.equal((await p.api('DELETE', `/v1/projects/${project}/git-remote`)).status, 404);
  });

  it('clones a private repository at project creation with repoCredentials, which become its git remote', async () => {
    server.addRepo('private', { 'secret-plan.md': 'plan\n' });
    const url = server.url('private');
    const refused = await p.api('POST', '/v1/projects', { name: 'no credentials', repoUrl: url });
    assert.equal(refused.status, 422, JSON.stringify(refused.body));
    assert.match(refused.body.error.message, /repoUrl could not be cloned: .*(Authentication failed|401)/s);
    const wrongKind = await p.api('POST', '/v1/projects', { name: 'git scheme', repoUrl: 'git://127.0.0.1:1/x.git', repoCredentials: { token: TOKEN } });
    assert.equal(wrongKind.status, 422);
    assert.match(wrongKind.body.error.message, /^repoCredentials: only for an https/);

    const made = await p.api('POST', '/v1/projects', { name: 'private', repoUrl: url, repoCredentials: { username: 'robot', token: TOKEN } });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    assert.ok(!JSON.stringify(made.body).includes(TOKEN));
    const files = (await p.api('GET', `/v1/checkpoints/${made.body.rootCheckpointId}`)).body.files.map((f: { path: string }) => f.path);
    assert.deepEqual(files, ['secret-plan.md']);
    const remote = await p.api('GET', `/v1/projects/${made.body.id}/git-remote`);
    assert.deepEqual([remote.body.url, remote.body.username, remote.body.hasToken], [url, 'robot', true]);
    const config = fs.readFileSync(path.join((await getProject(p.db, made.body.id))!.repoPath, 'config'), 'utf8');
    assert.ok(!config.includes(TOKEN) && !/extraheader/i.test(config), config);
    const audit = JSON.stringify(await p.db('audit_log').where({ project_id: made.body.id }));
    assert.ok(!audit.includes(TOKEN));
  });

  it('gives up on a remote that never answers (502 naming the wait), with every git process it started ended', async () => {
    const silent = await startSilentServer();
    try {
      const scratch = await projectWithBudget(p, '1.00');
      assert.equal((await p.api('PUT', `/v1/projects/${scratch}/git-remote`, { url: silent.url })).status, 200);
      const root = (await p.api('GET', `/v1/projects/${scratch}`)).body.rootCheckpointId;
      const res = await p.api('POST', `/v1/checkpoints/${root}/push`, { branch: 'x' });
      assert.equal(res.status, 502, JSON.stringify(res.body));
      assert.match(res.body.error.message, /refused the push: no answer within 10 s/);
      const repoPath = (await getProject(p.db, scratch))!.repoPath;
      const left = (await promisify(execFile)('ps', ['-eo', 'args'])).stdout.split('\n').filter((l) => l.includes(repoPath));
      assert.deepEqual(left, [], 'git processes left running');
    } finally {
      await silent.stop();
    }
  });

  it('sets a remote only together with its audit record', async () => {
    const scratch = await projectWithBudget(p, '1.00');
    assert.equal((await p.api('PUT', `/v1/projects/${scratch}/git-remote`, { url: server.url('app') })).status, 200);
    await p.db.raw(
      `CREATE OR REPLACE FUNCTION refuse_remote_audit() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN IF NEW.action = 'project.git_remote_set' THEN RAISE EXCEPTION 'audit refused in this test'; END IF; RETURN NEW; END $$`,
    );
    await p.db.raw('CREATE TRIGGER refuse_remote_audit BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION refuse_remote_audit()');
    try {
      const res = await p.api('PUT', `/v1/projects/${scratch}/git-remote`, { url: server.url('other'), username: 'robot', token: TOKEN });
      assert.equal(res.status, 500);
    } finally {
      await p.db.raw('DROP TRIGGER refuse_remote_audit ON audit_log');
    }
    const got = (await p.api('GET', `/v1/projects/${scratch}/git-remote`)).body;
    assert.deepEqual([got.url, got.hasToken], [server.url('app'), false]);
  });

  it("a pushed branch clones back with the machine's files", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'autovibe-clone-back-'));
    try {
      await git(['clone', '--quiet', '--branch', 'main', server.url('app').replace('http://', `http://robot:${TOKEN}@`), dir]);
      assert.equal(fs.readFileSync(path.join(dir, 'out.txt'), 'utf8'), 'made-by-a-machine\n');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { createUserWithKey } from '../../store/auth.js';
import { githubSignatureMatches } from '../../domain/integrations.js';
import { issuesDelivery, startGithubPeer, type GithubPeer } from '../support/github-peer.js';
import { startHttpGitServer, type HttpGitServer } from '../support/http-git-server.js';
import { projectWithBudget, startTestPlatform, waitFor, waitForMachine, type TestPlatform } from '../support/platform.js';

const GIT_TOKEN = 'git-tok-9c1e5a7b3d2f4e6081a9c7e5b3d1f2a4';
const GITHUB_TOKEN = 'ghp_peerToken0123456789abcdefABCDEF0123';
const HOOK_SECRET = 'hook-secret-5b0c8e2f7a194d36';
const PUBLIC = 'https://autovibe.example.com';

/**
 * The GitHub integration against a local peer that speaks GitHub's REST formats
 * (test/support/github-peer.ts) and a real `git http-backend` for the repository's git side
 * (test/support/http-git-server.ts): a checkpoint becomes a pull request (branch really pushed,
 * body with the machine's summary, exact cost and dashboard link), once; incoming hooks are
 * refused without the right signature, deduplicated by delivery id, and a labelled issue starts
 * a linked objective whose progress is commented on the issue and whose completion opens its
 * pull request.
 */
describe('api: GitHub integration (local GitHub REST peer, real git over http)', function () {
  this.timeout(300_000);
  let p: TestPlatform;
  let git: HttpGitServer;
  let gh: GithubPeer;
  let project: string;
  let checkpoint: string;
  let machine: any;
  let hookUrl: string;
  let viewerKey: string;
  let otherKey: string;

  before(async () => {
    git = await startHttpGitServer({ username: 'robot', token: GIT_TOKEN });
    git.addRepo('app', { 'README.md': 'remote readme\n' });
    gh = await startGithubPeer({
      owner: 'octo-org',
      repo: 'app',
      token: GITHUB_TOKEN,
      hasBranch: (branch) => {
        try {
          git.git('app', ['rev-parse', '--verify', `refs/heads/${branch}`]);
          return true;
        } catch {
          return false;
        }
      },
    });
    p = await startTestPlatform({
      label: 'github',
      env: {
        AUTOVIBE_REPO_URL_SCHEMES: 'https,ssh,git,http',
        AUTOVIBE_WEBHOOK_ALLOW_PRIVATE: '1',
        AUTOVIBE_WEBHOOK_MAX_ATTEMPTS: '5',
        AUTOVIBE_WEBHOOK_RETRY_INITIAL_MS: '100',
        AUTOVIBE_WEBHOOK_RETRY_MAX_S: '1',
        AUTOVIBE_PUBLIC_URL: `${PUBLIC}/`,
      },
    });
    project = await projectWithBudget(p, '5.00');
    const other = await projectWithBudget(p, '5.00');
    viewerKey = (await createUserWithKey(p.db, 'viewer-of-project', 'viewer', [project])).key;
    otherKey = (await createUserWithKey(p.db, 'owner-of-other', 'owner', [other])).key;
    const m = await p.api('POST', '/v1/machines', {
      projectId: project,
      type: 'shell',
      command: 'echo made-by-a-machine > out.txt; echo "all done: out.txt written"',
      cache: false,
      limits: { money: '0.05', minutes: 2 },
    });
    assert.equal(m.status, 202, JSON.stringify(m.body));
    machine = await waitForMachine(p, m.body.id);
    assert.equal(machine.status, 'completed', JSON.stringify(machine));
    checkpoint = machine.checkpoints.at(-1);
    const remote = await p.api('PUT', `/v1/projects/${project}/git-remote`, { url: git.url('app'), username: 'robot', token: GIT_TOKEN });
    assert.equal(remote.status, 200, JSON.stringify(remote.body));
  });
  after(async () => {
    await p?.stop();
    await gh?.stop();
    await git?.stop();
  });

  const put = (config: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
    p.api('PUT', `/v1/projects/${project}/integrations/github`, { config: { apiBase: gh.url, owner: 'octo-org', repo: 'app', ...config }, ...extra });
  const hook = async (h: { headers: Record<string, string>; body: string }, url = hookUrl) => {
    const res = await fetch(url.replace(PUBLIC, p.apiUrl), { method: 'POST', headers: h.headers, body: h.body });
    return { status: res.status, body: (await res.json()) as any };
  };

  it("signs as GitHub documents it (the documentation's test vector)", () => {
    // https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries#testing-the-webhook-payload-validation
    const body = Buffer.from('Hello, World!');
    const sig = 'sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17';
    assert.equal(githubSignatureMatches("It's a Secret to Everybody", body, sig), true);
    assert.equal(githubSignatureMatches("It's a Secret to Everybody", Buffer.from('Hello, World?'), sig), false);
    assert.equal(githubSignatureMatches('another secret', body, sig), false);
    assert.equal(githubSignatureMatches("It's a Secret to Everybody", body, undefined), false);
  });

  it('keeps the token and webhook secret, never shows them; readers see the config; bad settings are a 400 naming the field', async () => {
    for (const [config, field] of [
      [{ owner: 'a b' }, 'config.owner'],
      [{ apiBase: 'http://169.254.169.254/' }, 'config.apiBase'],
      [{ machineType: 'robot' }, 'config.machineType'],
      [{ surprise: 1 }, 'config'],
    ] as const) {
      const res = await put(config);
      assert.equal(res.status, 400, JSON.stringify(res.body));
      assert.match(res.body.error.message, new RegExp(`^${field.replace('.', '\\.')}`));
    }
    const unknown = await p.api('PUT', `/v1/projects/${project}/integrations/bitbucket`, { config: {} });
    assert.equal(unknown.status, 400);
    assert.match(unknown.body.error.message, /supported: github/);
    assert.equal((await p.api('GET', `/v1/projects/${project}/integrations/github`)).status, 404, 'none yet');

    const res = await put({ triggerLabel: 'autovibe', autoPullRequest: true }, { token: GITHUB_TOKEN, webhookSecret: HOOK_SECRET });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual([res.body.hasToken, res.body.hasWebhookSecret, res.body.config.owner, res.body.config.work], [true, true, 'octo-org', 'command']);
    hookUrl = res.body.hookUrl;
    assert.equal(hookUrl, `${PUBLIC}/hooks/github/${res.body.id}`);
    const read = await p.api('GET', `/v1/projects/${project}/integrations/github`, undefined, { key: viewerKey });
    assert.equal(read.status, 200, JSON.stringify(read.body));
    assert.equal(read.body.config.triggerLabel, 'autovibe');
    const text = JSON.stringify([res.body, read.body]);
    assert.ok(!text.includes(GITHUB_TOKEN) && !text.includes(HOOK_SECRET), 'no secret is shown');
    assert.equal((await put({}, {}).then(() => p.api('GET', `/v1/projects/${project}/integrations/github`))).body.hasToken, true, 'left out: kept');
    await put({ triggerLabel: 'autovibe', autoPullRequest: true });
    assert.equal((await p.api('PUT', `/v1/projects/${project}/integrations/github`, { config: { owner: 'x', repo: 'y' } }, { key: viewerKey })).status, 403);
    assert.equal((await p.api('GET', `/v1/projects/${project}/integrations/github`, undefined, { key: otherKey })).status, 404);
    const audit = await p.db('audit_log').where({ subject_type: 'integration' }).orderBy('seq');
    assert.deepEqual(
      audit.map((a) => a.action),
      ['integration.created', 'integration.updated', 'integration.updated'],
    );
    assert.ok(!JSON.stringify(audit).includes(GITHUB_TOKEN) && !JSON.stringify(audit).includes(HOOK_SECRET), 'nor in the audit log');
  });

  it("opens a pull request from a checkpoint: the branch really pushed, the body with the machine's summary, exact cost and link", async () => {
    const before = gh.requests.length;
    const res = await p.api('POST', `/v1/checkpoints/${checkpoint}/pull-request`, { title: 'Write out.txt' });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const branch = `autovibe/${checkpoint}`;
    assert.deepEqual([res.body.created, res.body.branch, res.body.checkpointId], [true, branch, checkpoint]);
    const commit = (await p.api('GET', `/v1/checkpoints/${checkpoint}`)).body.commit;
    assert.equal(git.git('app', ['rev-parse', `refs/heads/${branch}`]), commit, 'the branch is on the remote at the checkpoint');
    assert.equal(git.git('app', ['show', `refs/heads/${branch}:out.txt`]), 'made-by-a-machine');

    const calls = gh.requests.slice(before);
    assert.deepEqual(
      calls.map((r) => `${r.method} ${r.path}`),
      ['POST /repos/octo-org/app/pulls'],
    );
    const call = calls[0]!;
    assert.equal(call.headers.authorization, `Bearer ${GITHUB_TOKEN}`);
    assert.equal(call.headers.accept, 'application/vnd.github+json');
    assert.equal(call.headers['x-github-api-version'], '2022-11-28');
    assert.deepEqual([call.body.title, call.body.head, call.body.base], ['Write out.txt', branch, 'main']);
    const body: string = call.body.body;
    const cost = (await p.api('GET', `/v1/machines/${machine.id}`)).body.cost;
    assert.match(cost.amount, /^\d+\.\d+$/);
    assert.ok(body.includes(`**${cost.amount} ${cost.currency}**`), `exact cost ${cost.amount} in:\n${body}`);
    assert.ok(body.includes(`${PUBLIC}/#/projects/${project}/tree?checkpoint=${checkpoint}`), body);
    assert.ok(body.includes(machine.id) && body.includes('echo made-by-a-machine > out.txt'), 'what the machine was asked');
    assert.ok(body.includes('all done: out.txt written'), 'what it said last');
    assert.ok(body.includes('added `out.txt`'), 'its changes');
    assert.equal(res.body.url, gh.pulls[0]!.html_url);
    const audit = await p.db('audit_log').where({ action: 'checkpoint.pull_request_opened', subject_id: checkpoint });
    assert.equal(audit.length, 1);
  });

  it('answers the same pull request on a second call, without asking GitHub again', async () => {
    const first = (await p.db('integration_links').where({ checkpoint_id: checkpoint, kind: 'pull_request' }))[0];
    const before = gh.requests.length;
    const again = await p.api('POST', `/v1/checkpoints/${checkpoint}/pull-request`, {});
    assert.equal(again.status, 200, JSON.stringify(again.body));
    assert.deepEqual([again.body.created, again.body.number, again.body.url], [false, first.number, first.url]);
    assert.equal(gh.requests.length, before);
    assert.equal(gh.pulls.length, 1);
  });

  it('refuses a hook with a bad or missing signature (401) before acting; accepts a good one', async () => {
    const good = issuesDelivery(HOOK_SECRET, { action: 'edited', owner: 'octo-org', repo: 'app', number: 3, title: 'typo', body: 'fix it' });
    const bad = { ...good, headers: { ...good.headers, 'x-hub-signature-256': `sha256=${'0'.repeat(64)}` } };
    const { 'x-hub-signature-256': _, ...unsigned } = good.headers;
    const wrongSecret = issuesDelivery('not-the-secret', { action: 'edited', owner: 'octo-org', repo: 'app', number: 3, title: 'typo', body: 'fix it' });
    const tampered = { headers: good.headers, body: good.body.replace('fix it', 'rm -rf /') };
    for (const [what, h] of [
      ['bad', bad],
      ['missing', { headers: unsigned, body: good.body }],
      ['other secret', wrongSecret],
      ['body changed', tampered],
    ] as const) {
      const res = await hook(h);
      assert.equal(res.status, 401, `${what}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.error.code, 'unauthenticated');
    }
    assert.equal((await p.db('integration_deliveries')).length, 0, 'nothing recorded from a refused hook');
    const ok = await hook(good);
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.equal(ok.body.status, 'accepted');
    assert.match(ok.body.outcome, /^ignored/);
    assert.equal((await hook(good, `${PUBLIC}/hooks/github/integration-00000000-0000-0000-0000-000000000000`)).status, 404);
  });

  it('starts one linked objective from a labelled issue; a redelivery or a second trigger of the issue makes no second', async () => {
    const issue = { owner: 'octo-org', repo: 'app', number: 12, title: 'Write the fix file', body: 'echo fixed-by-issue > fix.txt' };
    const labeled = issuesDelivery(HOOK_SECRET, { ...issue, action: 'labeled', label: 'autovibe' }, crypto.randomUUID());
    const res = await hook(labeled);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.outcome, 'objective created');
    const objectiveId = res.body.objectiveId;
    const o = await p.api('GET', `/v1/objectives/${objectiveId}`);
    assert.equal(o.status, 200, JSON.stringify(o.body));
    assert.equal(o.body.title, '#12 Write the fix file');

    const redelivered = await hook(labeled);
    assert.deepEqual([redelivered.status, redelivered.body.status], [200, 'duplicate']);
    const opened = await hook(issuesDelivery(HOOK_SECRET, { ...issue, action: 'opened', labels: ['autovibe'] }));
    assert.deepEqual([opened.body.outcome, opened.body.objectiveId], ['already linked', objectiveId]);
    const unlabelled = await hook(issuesDelivery(HOOK_SECRET, { ...issue, number: 13, action: 'labeled', label: 'bug' }));
    assert.match(unlabelled.body.outcome, /^ignored/);

    assert.equal((await p.db('objectives').where({ project_id: project })).length, 1);
    const links = await p.db('integration_links').where({ kind: 'issue' });
    assert.deepEqual(
      links.map((l) => [l.external_id, l.objective_id, l.url]),
      [['12', objectiveId, 'https://github.com/octo-org/app/issues/12']],
    );
    const audit = await p.db('audit_log').where({ action: 'integration.hook_received' }).orderBy('seq');
    assert.equal(audit.length, 4, 'each accepted delivery once (the redelivery is not), the ignored ones too');
  });

  it('comments progress on the issue (through retries) and opens the pull request "Closes #12" when the objective completes', async () => {
    gh.failNext(2);
    const objectiveId = (await p.db('integration_links').where({ kind: 'issue', external_id: '12' }).first()).objective_id;
    const done = await waitFor(async () => {
      const o = await p.api('GET', `/v1/objectives/${objectiveId}`);
      return ['completed', 'failed'].includes(o.body.status) ? o.body : null;
    }, 'the objective to end');
    assert.equal(done.status, 'completed', JSON.stringify(done));
    const completed = await waitFor(async () => gh.comments.find((c) => c.issue === 12 && c.body.includes('**completed**')), 'a completed comment on #12');
    const pr = gh.pulls.find((x) => x.body?.startsWith('Closes #12'));
    assert.ok(pr, 'a pull request closing the issue');
    assert.equal(pr.title, '#12 Write the fix file');
    assert.equal(git.git('app', ['show', `refs/heads/${pr.head.ref}:fix.txt`]), 'fixed-by-issue');
    assert.ok(completed.body.includes(`Pull request: #${pr.number}`), completed.body);
    assert.match(completed.body, /Cost so far: \d+\.\d+ USD/);
    const checkpointId = (await p.db('integration_links').where({ kind: 'pull_request', objective_id: objectiveId }).first()).checkpoint_id;
    assert.ok(completed.body.includes(`${PUBLIC}/#/projects/${project}/tree?checkpoint=${checkpointId}`), completed.body);
    assert.ok(
      gh.comments.some((c) => c.issue === 12 && c.body.includes('**waiting**')),
      'the pick-up was told',
    );
    assert.ok(
      gh.comments.some((c) => c.issue === 12 && c.body.includes('**running**')),
      'the start was told too',
    );
    // Each status once, whatever the retries.
    const statuses = gh.comments.filter((c) => c.issue === 12).map((c) => /\*\*(\w+)\*\*\s*\(was/.exec(c.body)?.[1]);
    assert.deepEqual(statuses, [...new Set(statuses)]);
    assert.ok(gh.requests.some((r) => r.method === 'POST' && r.path.endsWith('/comments') && r.headers.authorization === `Bearer ${GITHUB_TOKEN}`));
  });

  it('forgets the integration on DELETE: its hooks answer 404', async () => {
    const res = await p.api('DELETE', `/v1/projects/${project}/integrations/github`);
    assert.equal(res.status, 204);
    const h = issuesDelivery(HOOK_SECRET, { action: 'opened', owner: 'octo-org', repo: 'app', number: 20, title: 't', body: 'true' });
    assert.equal((await hook(h)).status, 404);
    assert.equal((await p.api('GET', `/v1/projects/${project}/integrations/github`)).status, 404);
  });
});

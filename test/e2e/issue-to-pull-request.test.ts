import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { issuesDelivery, startGithubPeer, type GithubPeer } from '../support/github-peer.js';
import { startHttpGitServer, type HttpGitServer } from '../support/http-git-server.js';
import { installAgentClis, toolsDir } from '../support/llm/agent-clis.js';
import { shellScript, startScriptedEndpoint, type ScriptedEndpoint } from '../support/llm/endpoint.js';
import { startNpmRegistryPeer, type NpmRegistryPeer } from '../support/npm-registry-peer.js';
import { projectWithBudget, startTestPlatform, waitFor, type TestPlatform } from '../support/platform.js';
import { startSlackPeer } from '../support/slack-peer.js';

const GIT_TOKEN = 'git-tok-0d9f1c2b3a4e5f60718293a4b5c6d7e8';
const GITHUB_TOKEN = 'ghp_e2eToken0123456789abcdefABCDEF0123';
const HOOK_SECRET = 'hook-secret-e2e-7a194d365b0c8e2f';
const BOT_TOKEN = 'xoxb-2222-3333-e2ebottokenvalue';
const PUBLIC = 'https://autovibe.example.com';

/** A receiver of signed webhooks that verifies Standard Webhooks signatures itself (written from the spec). */
async function startSignedReceiver() {
  const got: Array<{ verified: boolean; type: string; body: any }> = [];
  let secret = '';
  const server = http.createServer((req, res) => {
    let raw = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (raw += c));
    req.on('end', () => {
      const [id, ts, sig = ''] = ['webhook-id', 'webhook-timestamp', 'webhook-signature'].map((h) => String(req.headers[h] ?? ''));
      const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
      const expected = crypto.createHmac('sha256', key).update(`${id}.${ts}.${raw}`).digest('base64');
      const verified = sig.split(' ').includes(`v1,${expected}`);
      const body = JSON.parse(raw);
      got.push({ verified, type: body.type, body });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`,
    got,
    setSecret: (s: string) => void (secret = s),
    stop: () => new Promise((r) => server.close(r)),
  };
}

/**
 * Issue 14's whole path, each part real or a named local peer: a labelled GitHub issue (a signed
 * hook to the platform; a badly signed one refused) starts an objective; its agent (the real Claude
 * Code CLI against a scripted model endpoint) installs a package from a registry through the
 * machine's egress proxy (project policy: an allowlist); the checkpoint is pushed to the project's
 * remote (real git over http) and a pull request "Closes #n" is opened on the GitHub REST peer; a
 * Slack bot (chat.postMessage peer) and a signed webhook endpoint are told.
 */
describe('e2e: from a GitHub issue to a pull request, through the network policy, told to Slack and a webhook', function () {
  this.timeout(900_000);
  let p: TestPlatform;
  let git: HttpGitServer;
  let gh: GithubPeer;
  let registry: NpmRegistryPeer;
  let llm: ScriptedEndpoint;
  let slack: Awaited<ReturnType<typeof startSlackPeer>>;
  let receiver: Awaited<ReturnType<typeof startSignedReceiver>>;

  before(async function () {
    this.timeout(1_800_000);
    await installAgentClis();
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
    registry = await startNpmRegistryPeer({ host: '127.0.0.2' });
    llm = await startScriptedEndpoint();
    slack = await startSlackPeer({ token: BOT_TOKEN, channels: ['#builds'] });
    receiver = await startSignedReceiver();
    p = await startTestPlatform({
      label: 'issue-to-pr',
      env: {
        AUTOVIBE_TOOLS_DIR: toolsDir(),
        ANTHROPIC_API_KEY: 'test-anthropic-key',
        ANTHROPIC_BASE_URL: llm.url,
        AUTOVIBE_NETWORK_ALLOW_PRIVATE: `${registry.host}:${registry.port}`,
        AUTOVIBE_REPO_URL_SCHEMES: 'https,ssh,git,http',
        AUTOVIBE_WEBHOOK_ALLOW_PRIVATE: '1',
        AUTOVIBE_WEBHOOK_RETRY_INITIAL_MS: '100',
        AUTOVIBE_WEBHOOK_RETRY_MAX_S: '1',
        AUTOVIBE_PUBLIC_URL: `${PUBLIC}/`,
      },
    });
  });
  after(async () => {
    await p?.stop();
    await Promise.all([gh?.stop(), git?.stop(), registry?.stop(), llm?.stop(), slack?.close(), receiver?.stop()]);
  });

  it('runs the labelled issue as an objective whose agent installs a package, and opens its pull request', async () => {
    const project = await projectWithBudget(p, '5.00');
    const ok = async (method: string, path: string, body: unknown, status = 200) => {
      const res = await p.api(method, path, body);
      assert.equal(res.status, status, `${method} ${path}: ${JSON.stringify(res.body)}`);
      return res.body;
    };
    await ok('PUT', `/v1/projects/${project}/network-policy`, { mode: 'allowlist', hosts: [`${registry.host}:${registry.port}`] });
    await ok('PUT', `/v1/projects/${project}/git-remote`, { url: git.url('app'), username: 'robot', token: GIT_TOKEN });
    const integration = await ok('PUT', `/v1/projects/${project}/integrations/github`, {
      config: { apiBase: gh.url, owner: 'octo-org', repo: 'app', triggerLabel: 'autovibe', autoPullRequest: true, machineType: 'claude-code' },
      token: GITHUB_TOKEN,
      webhookSecret: HOOK_SECRET,
    });
    const hook = await ok('POST', '/v1/webhooks', { projectId: project, url: receiver.url, events: ['objective.*', 'machine.status'] }, 201);
    receiver.setSecret(hook.secret);
    await ok(
      'POST',
      '/v1/webhooks',
      { projectId: project, kind: 'slack-bot', url: slack.url, channel: '#builds', token: BOT_TOKEN, events: ['machine.status'] },
      201,
    );

    llm.setScript(
      shellScript('claude', {
        command: `npm install --no-audit --no-fund --no-update-notifier --registry ${registry.url}/ ${registry.packageName} > npm.log 2>&1; node -e 'console.log(require("${registry.packageName}"))' > required.txt`,
      }),
    );
    const issue = { owner: 'octo-org', repo: 'app', number: 41, title: 'Add the greeting dependency', body: 'Install the package and show it works.' };
    const send = (h: { headers: Record<string, string>; body: string }) =>
      fetch(integration.hookUrl.replace(PUBLIC, p.apiUrl), { method: 'POST', headers: h.headers, body: h.body });
    // A badly signed delivery is refused and starts nothing.
    const forged = issuesDelivery('not-the-secret', { ...issue, action: 'labeled', label: 'autovibe' });
    assert.equal((await send(forged)).status, 401);
    assert.equal((await p.db('objectives').where({ project_id: project })).length, 0);

    const res = await send(issuesDelivery(HOOK_SECRET, { ...issue, action: 'labeled', label: 'autovibe' }));
    assert.equal(res.status, 200);
    const { objectiveId, outcome } = (await res.json()) as { objectiveId: string; outcome: string };
    assert.equal(outcome, 'objective created');

    const pr = await waitFor(async () => gh.pulls.find((x) => String(x.body ?? '').startsWith('Closes #41')), 'the pull request', 600_000);
    const objective = await ok('GET', `/v1/objectives/${objectiveId}`, undefined);
    assert.equal(objective.status, 'completed', JSON.stringify(objective));
    // The pushed branch holds the agent's work: the package installed from the registry and used.
    assert.equal(git.git('app', ['show', `refs/heads/${pr.head.ref}:required.txt`]), registry.packageText);
    assert.ok((registry.hits.get(`/${registry.packageName}`) ?? 0) > 0, 'the registry served the package');
    const machineId = (objective.machines as string[])[0]!;
    const machine = await ok('GET', `/v1/machines/${machineId}`, undefined);
    assert.equal(machine.type, 'claude-code');
    assert.equal(machine.network.mode, 'allowlist');
    assert.ok(machine.network.connections >= 1, JSON.stringify(machine.network));
    assert.match(pr.body, /\d+\.\d+ USD/, 'the cost is in the pull request');

    // Slack and the webhook endpoint were told that the machine completed.
    const posted = await waitFor(async () => slack.posts.find((x) => x.answer.ok === true && JSON.stringify(x.body).includes(machineId)), 'the Slack post');
    assert.equal(posted.headers.authorization, `Bearer ${BOT_TOKEN}`);
    const told = await waitFor(
      async () => receiver.got.find((g) => g.type === 'machine.status' && g.body.subjectId === machineId && g.body.data.status === 'completed'),
      'the webhook delivery',
    );
    assert.equal(told.verified, true, 'signed per Standard Webhooks');
    await waitFor(async () => receiver.got.find((g) => g.type === 'objective.status' && g.body.subjectId === objectiveId), 'the objective event');
    assert.ok(
      receiver.got.every((g) => g.verified),
      'every delivery verifies',
    );
  });
});

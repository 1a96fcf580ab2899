import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startJiraPeer, type JiraPeer } from '../support/jira-peer.js';
import { startLinearPeer, type LinearPeer } from '../support/linear-peer.js';
import { projectWithBudget, startTestPlatform, waitFor, type TestPlatform } from '../support/platform.js';
import { json, runCli, type Run } from './run.js';

/** `autovibe integrations set|get|delete` with kinds jira and linear, and `objectives create --ticket` (the real binary) against local tracker peers. */
describe('cli: autovibe integrations jira|linear and objectives create --ticket', function () {
  this.timeout(300_000);
  let p: TestPlatform;
  let jira: JiraPeer;
  let linear: LinearPeer;
  let env: Record<string, string>;
  const jiraToken = 'ATATT-cli-jira-token-5e2b';
  const linearKey = 'lin_api_cli_key_9d3f1a';
  const secret = 'cli-hook-secret-0c7e';
  const cli = (args: string[], input?: string, extra: Record<string, string> = {}) =>
    runCli(args, { env: { ...env, ...extra, XDG_CONFIG_HOME: fs.mkdtempSync(path.join(os.tmpdir(), 'autovibe-cli-tickets-')) }, ...(input ? { input } : {}) });
  const explain = (r: Run) => `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;

  before(async () => {
    jira = await startJiraPeer({ projectKey: 'CLI', email: 'cli@autovibe.example.com', token: jiraToken });
    linear = await startLinearPeer({ apiKey: linearKey });
    p = await startTestPlatform({ label: 'cli-tickets', env: { AUTOVIBE_WEBHOOK_ALLOW_PRIVATE: '1' } });
    env = { AUTOVIBE_API_URL: p.apiUrl, AUTOVIBE_API_KEY: p.adminKey };
  });
  after(async () => {
    await p?.stop();
    await jira?.stop();
    await linear?.stop();
  });

  it('sets a Jira and a Linear integration from flags (token on stdin, secret from the environment), makes a ticket with --ticket, deletes', async () => {
    const projectId = await projectWithBudget(p, '5.00');
    const set = await cli(
      [
        'integrations',
        'set',
        projectId,
        'jira',
        '--base-url',
        jira.url,
        '--project-key',
        'CLI',
        '--email',
        'cli@autovibe.example.com',
        '--trigger-label',
        'autovibe',
        '--token-stdin',
        '--json',
      ],
      `${jiraToken}\n`,
      { AUTOVIBE_INTEGRATION_WEBHOOK_SECRET: secret },
    );
    assert.equal(set.code, 0, explain(set));
    assert.deepEqual([json(set).kind, json(set).hasToken, json(set).hasWebhookSecret, json(set).config.triggerLabel], ['jira', true, true, 'autovibe']);
    const lin = await cli(['integrations', 'set', projectId, 'linear', '--api-url', linear.url, '--team-id', linear.teamId, '--json'], undefined, {
      AUTOVIBE_INTEGRATION_TOKEN: linearKey,
    });
    assert.equal(lin.code, 0, explain(lin));
    assert.equal(json(lin).config.teamId, linear.teamId);
    const got = await cli(['integrations', 'get', projectId, 'jira']);
    assert.equal(got.code, 0, explain(got));
    assert.match(got.stdout, /hookUrl\W+\S+\/hooks\/jira\//);
    assert.ok(
      ![set, lin, got].some((r) => `${r.stdout}${r.stderr}`.includes(jiraToken) || `${r.stdout}${r.stderr}`.includes(secret) || r.stdout.includes(linearKey)),
    );

    const bad = await cli(['integrations', 'set', projectId, 'jira', '--base-url', jira.url, '--project-key', 'lower']);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /config\.projectKey/);
    assert.doesNotMatch(bad.stderr, /\n\s+at /, 'no stack trace');

    const made = await cli(['objectives', 'create', projectId, '--title', 'From the CLI', '--command', 'echo cli', '--ticket', '--json']);
    assert.equal(made.code, 0, explain(made));
    await waitFor(async () => [...jira.issues.values()].some((i) => i.summary === 'From the CLI'), 'the Jira issue');
    await waitFor(async () => [...linear.issues.values()].some((i) => i.title === 'From the CLI'), 'the Linear issue');

    for (const kind of ['jira', 'linear']) {
      const del = await cli(['integrations', 'delete', projectId, kind]);
      assert.equal(del.code, 0, explain(del));
    }
    const gone = await cli(['integrations', 'get', projectId, 'linear']);
    assert.notEqual(gone.code, 0);
    assert.match(gone.stderr, /no linear integration/);
  });
});

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startHttpGitServer, type HttpGitServer } from '../support/http-git-server.js';
import { projectWithBudget, startTestPlatform, type TestPlatform } from '../support/platform.js';
import { json, runCli, type Run } from './run.js';

/** `autovibe remotes …` and `checkpoints push` (the real binary) against the platform and a real git http-backend. */
describe('cli: autovibe remotes and checkpoints push', function () {
  this.timeout(300_000);
  let p: TestPlatform;
  let server: HttpGitServer;
  let env: Record<string, string>;
  const token = 'cli-token-8e1f0a7d';
  const cli = (args: string[], input?: string) =>
    runCli(args, { env: { ...env, XDG_CONFIG_HOME: fs.mkdtempSync(path.join(os.tmpdir(), 'autovibe-cli-remotes-')) }, ...(input ? { input } : {}) });
  const explain = (r: Run) => `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;

  before(async () => {
    p = await startTestPlatform({ label: 'cli-remotes', env: { AUTOVIBE_REPO_URL_SCHEMES: 'https,ssh,git,http' } });
    env = { AUTOVIBE_API_URL: p.apiUrl, AUTOVIBE_API_KEY: p.adminKey };
    server = await startHttpGitServer({ username: 'bot', token });
    server.addRepo('cli', { 'a.txt': 'a\n' });
  });
  after(async () => {
    await server?.stop();
    await p?.stop();
  });

  it('sets a remote with the token from stdin, pushes a checkpoint, fetches a branch, refuses a non-fast-forward, deletes', async () => {
    const projectId = await projectWithBudget(p, '5.00');
    const root = (await p.api('GET', `/v1/projects/${projectId}`)).body.rootCheckpointId;
    const set = await cli(['remotes', 'set', projectId, server.url('cli'), '--username', 'bot', '--token-stdin', '--json'], `${token}\n`);
    assert.equal(set.code, 0, explain(set));
    assert.equal(json(set).hasToken, true);
    const got = await cli(['remotes', 'get', projectId]);
    assert.equal(got.code, 0, explain(got));
    assert.match(got.stdout, /hasToken\W+true/);
    assert.ok(!`${set.stdout}${got.stdout}${got.stderr}`.includes(token));

    const pushed = await cli(['checkpoints', 'push', root, '--branch', 'from-cli']);
    assert.equal(pushed.code, 0, explain(pushed));
    assert.match(pushed.stdout, /^pushed from-cli = [0-9a-f]{12} /);
    assert.equal(server.git('cli', ['rev-parse', 'refs/heads/from-cli']), (await p.api('GET', `/v1/checkpoints/${root}`)).body.commit);

    const refused = await cli(['checkpoints', 'push', root, '--branch', 'main']);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /force: true/);
    assert.doesNotMatch(refused.stderr, /\n\s+at /, 'no stack trace');

    const tip = server.commitTo('cli', 'from-cli', { 'new.txt': 'n\n' });
    const fetched = await cli(['remotes', 'fetch', projectId, '--branch', 'from-cli']);
    assert.equal(fetched.code, 0, explain(fetched));
    assert.match(fetched.stdout, new RegExp(`^new checkpoint \\S+ \\(from-cli at ${tip.slice(0, 12)}, parent ${root}\\)`));

    const del = await cli(['remotes', 'delete', projectId]);
    assert.equal(del.code, 0, explain(del));
    const gone = await cli(['remotes', 'get', projectId]);
    assert.notEqual(gone.code, 0);
    assert.match(gone.stderr, /has no git remote/);
  });
});

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { projectWithBudget, startTestPlatform, waitForMachine, type TestPlatform } from '../support/platform.js';
import { json, runCli, type Run } from './run.js';

/** `autovibe network …` and `machines run --network` (the real binary) against the platform. */
describe('cli: autovibe network and machines run --network', function () {
  this.timeout(300_000);
  let p: TestPlatform;
  let env: Record<string, string>;
  const cli = (args: string[]) => runCli(args, { env: { ...env, XDG_CONFIG_HOME: fs.mkdtempSync(path.join(os.tmpdir(), 'autovibe-cli-network-')) } });
  const explain = (r: Run) => `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;

  before(async () => {
    p = await startTestPlatform({ label: 'cli-network' });
    env = { AUTOVIBE_API_URL: p.apiUrl, AUTOVIBE_API_KEY: p.adminKey };
  });
  after(async () => {
    await p?.stop();
  });

  it('sets and shows a project policy, says what is wrong with a host, and starts a machine with a narrower one', async () => {
    const projectId = await projectWithBudget(p, '5.00');
    const first = await cli(['network', 'get', projectId]);
    assert.equal(first.code, 0, explain(first));
    assert.match(first.stdout, /mode\W+none/);

    const set = await cli(['network', 'set', projectId, '--host', 'registry.npmjs.org', '--host', '*.example.org:8443', '--json']);
    assert.equal(set.code, 0, explain(set));
    assert.deepEqual([json(set).mode, json(set).hosts], ['allowlist', ['registry.npmjs.org', '*.example.org:8443']]);
    const shown = await cli(['network', 'get', projectId]);
    assert.match(shown.stdout, /hosts\W+registry\.npmjs\.org, \*\.example\.org:8443/);

    const bad = await cli(['network', 'set', projectId, '--mode', 'allowlist', '--host', 'not a host']);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /"not a host" is not a host name/);
    assert.doesNotMatch(bad.stderr, /\n\s+at /, 'no stack trace');

    const run = await cli(['machines', 'run', '--project', projectId, '--command', 'true', '--allow-host', 'registry.npmjs.org:443', '--json']);
    assert.equal(run.code, 0, explain(run));
    const m = await waitForMachine(p, json(run).id);
    assert.deepEqual([m.network.mode, m.network.hosts], ['allowlist', ['registry.npmjs.org:443']]);

    const registries = await cli(['network', 'set', projectId, '--mode', 'registries']);
    assert.equal(registries.code, 0, explain(registries));
    assert.match(registries.stdout, /\(registries\) registry\.npmjs\.org/);
  });
});

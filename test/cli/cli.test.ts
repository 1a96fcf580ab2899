import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { startTestPlatform, type TestPlatform } from '../support/platform.js';
import { json, runCli, runInPty, type Run } from './run.js';

const ESC = '\x1b[';
/** ESC in a RegExp source (a literal control character in a regex literal is a lint error). */
const ESC_RE = '\\u001b\\[';

/** The real `autovibe` binary against the real platform (api + worker + Temporal + Postgres). */
describe('cli: autovibe against the running platform', function () {
  this.timeout(300_000);
  let p: TestPlatform;
  let configHome: string;
  let projectId: string;
  /** The admin key and URL through the environment (the override every profile yields to). */
  let admin: Record<string, string>;
  const cli = (args: string[], env: Record<string, string | undefined> = {}, input?: string) =>
    runCli(args, { env: { XDG_CONFIG_HOME: configHome, ...admin, ...env }, ...(input !== undefined ? { input } : {}) });
  const explain = (r: Run) => `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;

  before(async () => {
    p = await startTestPlatform({ label: 'cli' });
    configHome = fs.mkdtempSync(path.join(os.tmpdir(), 'autovibe-cli-config-'));
    admin = { AUTOVIBE_API_URL: p.apiUrl, AUTOVIBE_API_KEY: p.adminKey };
  });
  after(async () => {
    await p?.stop();
  });

  it('keeps profiles in $XDG_CONFIG_HOME/autovibe/config.yaml (0600); --profile picks one; the environment overrides', async () => {
    const bare = { AUTOVIBE_API_URL: undefined, AUTOVIBE_API_KEY: undefined };
    for (const args of [
      ['config', 'set', 'api-url', p.apiUrl, '--profile', 'local'],
      ['config', 'set', 'api-key', p.adminKey, '--profile', 'local'],
      ['config', 'set', 'api-url', 'http://127.0.0.1:9', '--profile', 'nowhere'],
      ['config', 'set', 'api-key', 'av_not-a-real-key-at-all', '--profile', 'nowhere'],
    ]) {
      const r = await cli(args, bare);
      assert.equal(r.code, 0, explain(r));
    }
    const file = path.join(configHome, 'autovibe', 'config.yaml');
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);

    const list = json(await cli(['config', 'list', '--json'], bare));
    assert.equal(list.current, 'local', 'the first profile set becomes the current one');
    assert.deepEqual(
      list.profiles.map((x: any) => [x.name, x.apiUrl, x.current]),
      [
        ['local', p.apiUrl, true],
        ['nowhere', 'http://127.0.0.1:9', false],
      ],
    );
    assert.ok(!JSON.stringify(list).includes(p.adminKey), 'config list never shows a whole key');
    assert.equal((await cli(['config', 'get', 'api-url', '--profile', 'nowhere'], bare)).stdout.trim(), 'http://127.0.0.1:9');

    const me = await cli(['whoami', '--json'], bare);
    assert.equal(me.code, 0, explain(me));
    assert.equal(json(me).role, 'admin');
    assert.equal(json(me).keySource, 'profile local');

    // The other profile: nothing listens there (exit 6: unreachable), with the URL in the message.
    const away = await cli(['whoami', '--profile', 'nowhere'], bare);
    assert.equal(away.code, 6, explain(away));
    assert.match(away.stderr, /cannot reach the api at http:\/\/127\.0\.0\.1:9/);
    assert.doesNotMatch(away.stderr, /\n\s+at /, 'no stack trace');
    // The environment wins over the profile.
    const env = json(await cli(['whoami', '--profile', 'nowhere', '--json'], { AUTOVIBE_API_URL: p.apiUrl, AUTOVIBE_API_KEY: p.adminKey }));
    assert.equal(env.keySource, 'AUTOVIBE_API_KEY');
    assert.equal(env.apiUrl, p.apiUrl);
    // A profile switched with `config use`.
    assert.equal((await cli(['config', 'use', 'nowhere'], bare)).code, 0);
    assert.equal((await cli(['whoami'], bare)).code, 6);
    assert.equal((await cli(['config', 'use', 'local'], bare)).code, 0);
    assert.equal((await cli(['config', 'use', 'missing'], bare)).code, 2);
  });

  it('creates and lists projects (--json), sets and reads a budget', async () => {
    const created = await cli(['projects', 'create', '--name', 'cli demo', '--json']);
    assert.equal(created.code, 0, explain(created));
    projectId = json(created).id;
    assert.match(projectId, /^project-/);

    const list = json(await cli(['projects', 'list', '--json']));
    assert.ok(list.items.some((x: any) => x.id === projectId && x.name === 'cli demo'));
    assert.ok('nextCursor' in list);

    const set = await cli(['budgets', 'set', projectId, '--amount', '5.00', '--period', 'daily', '--json']);
    assert.equal(set.code, 0, explain(set));
    const budget = json(await cli(['budgets', 'get', projectId, '--json']));
    assert.equal(Number(budget.limit), 5);
    assert.equal(budget.period, 'daily');

    // Paging: one project a page, then every page with --all.
    await cli(['projects', 'create', '--name', 'cli second']);
    const first = json(await cli(['projects', 'list', '--limit', '1', '--json']));
    assert.equal(first.items.length, 1);
    assert.ok(first.nextCursor);
    const all = json(await cli(['projects', 'list', '--limit', '1', '--all', '--json']));
    assert.ok(all.items.length >= 2);
    assert.equal(all.nextCursor, null);

    // The human form: a table with the project's name.
    const table = await cli(['projects', 'list']);
    assert.match(table.stdout, /cli demo/);
    assert.match(table.stdout, /┌/);
  });

  it('machines run --follow streams the output and exits 0 when the machine completed (plain status lines without a terminal)', async () => {
    const marker = `hello-${crypto.randomBytes(4).toString('hex')}`;
    const r = await cli([
      'machines',
      'run',
      '--project',
      projectId,
      '--type',
      'shell',
      '--command',
      `echo ${marker}; echo two-$((1+1))`,
      '--money',
      '0.10',
      '--follow',
    ]);
    assert.equal(r.code, 0, explain(r));
    assert.match(r.stdout, new RegExp(`${marker}\\ntwo-2\\n`));
    assert.match(r.stderr, /machine machine-\S+ completed \(exit 0\)/);
    // Not a terminal: no spinner, no carriage returns, no colour.
    assert.ok(!r.stderr.includes('\r') && !r.stderr.includes(ESC), JSON.stringify(r.stderr));
    const id = /machine (machine-\S+) completed/.exec(r.stderr)![1]!;

    // The same machine from the other commands: get (--json) and its log.
    const got = json(await cli(['machines', 'get', id, '--json']));
    assert.equal(got.status, 'completed');
    assert.equal(got.exitCode, 0);
    assert.match((await cli(['machines', 'logs', id])).stdout, new RegExp(marker));
    const checkpoints = json(await cli(['checkpoints', 'list', projectId, '--json']));
    assert.ok(checkpoints.items.some((c: any) => c.machineId === id));
  });

  it('a failing command: the output is still streamed, exit code 7 with the machine’s exit status', async () => {
    const r = await cli(['machines', 'run', '--project', projectId, '--command', `echo about-to-fail-${Date.now()}; exit 3`, '--money', '0.10', '--follow']);
    assert.equal(r.code, 7, explain(r));
    assert.match(r.stdout, /about-to-fail-/);
    assert.match(r.stderr, /machine machine-\S+ failed \(exit 3\)/);
  });

  it('tells error kinds apart: 404 → 4, bad input → 2, a viewer running work → 8 (forbidden), a revoked key → 3; each with the api’s message and no stack', async () => {
    const missing = await cli(['machines', 'get', 'machine-doesnotexist']);
    assert.equal(missing.code, 4, explain(missing));
    assert.match(missing.stderr, /machine machine-doesnotexist not found \(404 not_found\)/);
    assert.doesNotMatch(missing.stderr, /\n\s+at /);

    // Refused by the api (422) and by the CLI itself before any request.
    const badRepo = await cli(['projects', 'create', '--name', 'x', '--repo-url', 'file:///etc']);
    assert.equal(badRepo.code, 2, explain(badRepo));
    assert.match(badRepo.stderr, /file:\/\/ URLs are not allowed/);
    const badAmount = await cli(['budgets', 'set', projectId, '--amount', 'lots']);
    assert.equal(badAmount.code, 2, explain(badAmount));
    assert.match(badAmount.stderr, /--amount: must be a decimal amount/);
    const unknownOption = await cli(['projects', 'list', '--frobnicate']);
    assert.equal(unknownOption.code, 2);
    assert.match(unknownOption.stderr, /unknown option '--frobnicate'/);
    // No terminal: a missing required argument is a usage error, not a prompt.
    const noName = await cli(['projects', 'create']);
    assert.equal(noName.code, 2, explain(noName));
    assert.match(noName.stderr, /missing --name/);

    const viewer = json(await cli(['keys', 'create', '--name', 'cli viewer', '--role', 'viewer', '--project', projectId, '--json']));
    assert.equal(viewer.role, 'viewer');
    const denied = await cli(['machines', 'run', '--project', projectId, '--command', 'true'], { AUTOVIBE_API_KEY: viewer.key });
    assert.equal(denied.code, 8, explain(denied));
    assert.match(denied.stderr, /role "viewer" lacks the permission "machines.run"/);
    // The viewer still reads.
    assert.equal((await cli(['projects', 'get', projectId], { AUTOVIBE_API_KEY: viewer.key })).code, 0);
    // A revoked key: 401 → 3.
    assert.equal((await cli(['keys', 'revoke', viewer.id])).code, 0);
    assert.equal((await cli(['whoami'], { AUTOVIBE_API_KEY: viewer.key })).code, 3);
  });

  it('batch: operations of a YAML file in one POST /v1/batch; a failed operation sets the exit code', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'autovibe-cli-batch-'));
    const good = path.join(dir, 'good.yaml');
    fs.writeFileSync(
      good,
      `operations:
  - id: read
    method: GET
    path: /v1/projects/${projectId}
  - id: budget
    method: PUT
    path: /v1/projects/${projectId}/budget
    body: { amount: "6.00", currency: USD, period: daily }
  - id: create
    method: POST
    path: /v1/projects
    body:
      name: made by a batch file
`,
    );
    const r = await cli(['batch', good, '--json']);
    assert.equal(r.code, 0, explain(r));
    assert.deepEqual(
      json(r).results.map((x: any) => [x.id, x.status]),
      [
        ['read', 200],
        ['budget', 200],
        ['create', 201],
      ],
    );
    assert.equal(Number(json(await cli(['budgets', 'get', projectId, '--json'])).limit), 6);

    const bad = path.join(dir, 'bad.yaml');
    fs.writeFileSync(bad, `- { id: ok, method: GET, path: /v1/projects/${projectId} }\n- { id: gone, method: GET, path: /v1/machines/machine-nope }\n`);
    const failed = await cli(['batch', bad]);
    assert.equal(failed.code, 4, explain(failed));
    assert.match(failed.stdout, /GET \/v1\/machines\/machine-nope/);
    assert.match(failed.stderr, /operation gone failed: machine machine-nope not found \(404\)/);
    assert.equal((await cli(['batch', path.join(dir, 'absent.yaml')])).code, 2);
  });

  it('honours NO_COLOR (and --no-color) even where colour is forced', async () => {
    const forced = await cli(['projects', 'list'], { FORCE_COLOR: '1' });
    assert.ok(forced.stdout.includes(ESC), 'FORCE_COLOR colours the table head');
    const none = await cli(['projects', 'list'], { FORCE_COLOR: '1', NO_COLOR: '1' });
    assert.equal(none.code, 0);
    assert.ok(!none.stdout.includes(ESC) && !none.stderr.includes(ESC), JSON.stringify(none.stdout));
    const flag = await cli(['projects', 'list', '--no-color'], { FORCE_COLOR: '1' });
    assert.ok(!flag.stdout.includes(ESC));
    const err = await cli(['machines', 'get', 'machine-nope'], { FORCE_COLOR: '1', NO_COLOR: '1' });
    assert.ok(!err.stderr.includes(ESC));
    // Into a pipe nothing is coloured, even on a CI runner (CI set), unless colour is forced.
    const piped = await cli(['projects', 'list'], { CI: 'true' });
    assert.ok(!piped.stdout.includes(ESC) && !piped.stderr.includes(ESC), JSON.stringify(piped.stdout));
  });

  it('completion bash: the script completes commands and their subcommands and options', async () => {
    const script = (await cli(['completion', 'bash'])).stdout;
    const complete = async (words: string[]) => {
      const file = path.join(configHome, 'completion.bash');
      fs.writeFileSync(file, script);
      const cmd = `source ${file}; COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _autovibe_complete; echo "\${COMPREPLY[*]}"`;
      return (await promisify(execFile)('bash', ['-c', cmd])).stdout.trim().split(' ');
    };
    assert.deepEqual(await complete(['autovibe', 'pay']), ['payments']);
    assert.deepEqual((await complete(['autovibe', 'mach'])).sort(), ['machine-types', 'machines']);
    const machineWords = await complete(['autovibe', 'machines', '']);
    for (const sub of ['checkpoint', 'extend', 'get', 'list', 'logs', 'run', 'terminate']) assert.ok(machineWords.includes(sub), sub);
    assert.ok((await complete(['autovibe', 'machines', 'run', '--f'])).includes('--follow'));
    assert.deepEqual(await complete(['autovibe', '--json', 'machines', 'get', 'machine-1', '--js']), ['--json']);
    const zsh = await cli(['completion', 'zsh']);
    assert.match(zsh.stdout, /^#compdef autovibe\n/);
    assert.equal((await cli(['completion', 'fish'])).code, 2);
  });

  it('on a terminal: prompts for what is missing, and shows a live status line while following', async () => {
    const env = { XDG_CONFIG_HOME: configHome, ...admin };
    // An input prompt for the name.
    const name = `typed ${crypto.randomBytes(3).toString('hex')}`;
    const created = await runInPty(['projects', 'create'], { env, steps: [[/Project name/, `${name}\r`]] });
    assert.deepEqual(created.pending, [], created.output);
    assert.equal(created.code, 0, created.output);
    const made = /(project-[0-9a-f-]{36})/.exec(created.output)?.[1];
    assert.ok(made, created.output);
    assert.equal((await p.api('GET', `/v1/projects/${made}`)).body.name, name);

    // A choice list of the key's projects; Enter takes the highlighted one.
    const chosen = await runInPty(['budgets', 'get'], { env, steps: [[/Project/, '\r']] });
    assert.equal(chosen.code, 0, chosen.output);
    assert.match(chosen.output, /cli demo \(project-/, 'the projects are offered by name');

    // The command asked for, then the log streamed under a spinner line redrawn in place.
    const marker = `pty-${crypto.randomBytes(4).toString('hex')}`;
    const run = await runInPty(['machines', 'run', '--project', projectId, '--money', '0.10', '--follow'], {
      env,
      steps: [[/Command/, `echo ${marker}\r`]],
    });
    assert.equal(run.code, 0, run.output);
    assert.match(run.output, new RegExp(`${marker}\r?\n`));
    assert.match(run.output, new RegExp(`\r${ESC_RE}K[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] machine machine-\\S+ (pending|provisioning|running)`), 'a spinner status line');
    assert.match(run.output, /machine machine-\S+ .*completed.* \(exit 0\)/);
    // On a terminal (no NO_COLOR) the outcome is coloured; with NO_COLOR it is not.
    assert.ok(run.output.includes('\x1b[32mcompleted'), 'green on a terminal');
    const plain = await runInPty(['machines', 'list', '--project', projectId], { env: { ...env, NO_COLOR: '1' } });
    assert.equal(plain.code, 0, plain.output);
    assert.match(plain.output, /completed/);
    assert.ok(!new RegExp(`${ESC_RE}\\d+m`).test(plain.output), JSON.stringify(plain.output));
  });

  it('walks the evolution tree, runs a pipeline from YAML, and reads events, audit and keys', async () => {
    const made = await cli(['machines', 'run', '--project', projectId, '--command', 'mkdir -p docs && echo tree-walk > docs/notes.txt', '--follow', '--json']);
    assert.equal(made.code, 0, explain(made));
    const machine = json(made);
    assert.equal(machine.status, 'completed');
    const final = machine.checkpoints.at(-1) as string;

    const diff = await cli(['checkpoints', 'diff', final]);
    assert.equal(diff.code, 0, explain(diff));
    assert.match(diff.stdout, /^A docs\/notes\.txt$/m);
    const files = json(await cli(['checkpoints', 'files', final, '--json']));
    assert.ok(files.some((f: any) => f.path === 'docs/notes.txt'));
    const content = await cli(['checkpoints', 'files', final, 'docs/notes.txt']);
    assert.equal(content.code, 0, explain(content));
    assert.equal(content.stdout, 'tree-walk\n');
    assert.equal((await cli(['checkpoints', 'files', final, 'no/such.txt'])).code, 4);

    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'autovibe-cli-pipeline-'));
    const file = path.join(dir, 'pipeline.yaml');
    fs.writeFileSync(
      file,
      `steps:
  - { id: build, type: shell, command: "echo built > out.txt", limits: { money: "0.05" } }
  - { id: check, type: shell, command: "grep built out.txt", dependsOn: [build], limits: { money: "0.05" } }
`,
    );
    const pipeline = await cli(['pipelines', 'create', '--file', file, '--project', projectId, '--follow']);
    assert.equal(pipeline.code, 0, explain(pipeline));
    assert.match(pipeline.stdout, /pipeline pipeline-\S+ completed/);
    assert.match(pipeline.stdout, /check .*completed/);
    const listed = json(await cli(['pipelines', 'list', projectId, '--json']));
    assert.equal(listed.items[0].id, /pipeline (pipeline-\S+) completed/.exec(pipeline.stdout)![1], 'the newest pipeline first');
    assert.match((await cli(['pipelines', 'list', projectId])).stdout, /completed .*2\/2 completed/);

    const events = json(await cli(['events', 'list', '--project', projectId, '--kinds', 'pipeline.status', '--json']));
    assert.ok(events.items.some((e: any) => e.data.status === 'completed'));
    const audit = json(await cli(['audit', 'list', '--subject', machine.id, '--json']));
    assert.ok(audit.items.length > 0 && audit.items.every((a: any) => a.subjectId === machine.id));

    const key = json(await cli(['keys', 'create', '--name', 'rotating', '--role', 'operator', '--project', projectId, '--json']));
    const rotated = json(await cli(['keys', 'rotate', key.id, '--json']));
    assert.notEqual(rotated.key, key.key);
    assert.equal((await cli(['whoami'], { AUTOVIBE_API_KEY: key.key })).code, 3, 'the old secret stops working');
    assert.equal(json(await cli(['whoami', '--json'], { AUTOVIBE_API_KEY: rotated.key })).role, 'operator');
  });
});

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { installAgentClis, toolsDir } from '../support/llm/agent-clis.js';
import { startScriptedEndpoint, writeFileScript, type ScriptedEndpoint } from '../support/llm/endpoint.js';
import { startTestPlatform, type TestPlatform } from '../support/platform.js';
import { BIN, json, runArgvInPty, runCli, startCli, type Run } from './run.js';

/**
 * The real `autovibe` binary against the real platform, for the commands cli.test.ts leaves out:
 * objectives, payments, cost centers, the live event feed, machine control, project settings,
 * zsh completion, a batch that partly fails, and the exit code of each error kind.
 */
describe('cli: objectives, payments, cost centers, events, machine control and exit codes', function () {
  this.timeout(300_000);
  let p: TestPlatform;
  let llm: ScriptedEndpoint;
  let projectId: string;
  let work: string;
  let admin: Record<string, string>;
  const cli = (args: string[], env: Record<string, string | undefined> = {}) =>
    runCli(args, { env: { XDG_CONFIG_HOME: path.join(work, 'config'), ...admin, ...env } });
  const explain = (r: Run) => `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;
  /** Runs a command that must succeed with --json and returns its parsed output. */
  const ok = async (args: string[], env: Record<string, string | undefined> = {}) => {
    const r = await cli([...args, '--json'], env);
    assert.equal(r.code, 0, `${args.join(' ')}: ${explain(r)}`);
    return json(r);
  };
  /** `get --wait…` answers after at most 60 s: asks again until the status is one of `statuses`. */
  const waitStatus = async (kind: 'machines' | 'objectives', id: string, statuses: string) => {
    for (let i = 0; i < 5; i++) {
      const x = await ok([kind, 'get', id, '--wait-for', statuses]);
      if (statuses.split(',').includes(x.status)) return x;
    }
    assert.fail(`${kind} ${id} never reached ${statuses}`);
  };

  before(async function () {
    this.timeout(1_800_000);
    await installAgentClis();
    llm = await startScriptedEndpoint();
    p = await startTestPlatform({
      label: 'cli-commands',
      env: { AUTOVIBE_TOOLS_DIR: toolsDir(), ANTHROPIC_API_KEY: 'test-anthropic-key', ANTHROPIC_BASE_URL: llm.url },
    });
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'autovibe-cli-commands-'));
    admin = { AUTOVIBE_API_URL: p.apiUrl, AUTOVIBE_API_KEY: p.adminKey };
    projectId = (await ok(['projects', 'create', '--name', 'cli commands'])).id;
    await ok(['budgets', 'set', projectId, '--amount', '20.00', '--period', 'daily']);
  });
  after(async () => {
    await p?.stop();
    await llm?.stop();
  });

  it('every REST operation of the OpenAPI document is reached by some command', async () => {
    // The paths the CLI's commands call, read from its source (each call names its path literally).
    const source = fs
      .readdirSync(path.join(path.dirname(BIN), 'commands'))
      .map((f) => fs.readFileSync(path.join(path.dirname(BIN), 'commands', f), 'utf8'))
      .join('\n');
    const called = new Set<string>();
    for (const m of source.matchAll(/api\.(GET|POST|PUT|PATCH|DELETE)\(\s*[`'](\/[^`']*)[`']/g)) called.add(`${m[1]} ${m[2]!.replace(/\$\{verb\}/, '{verb}')}`);
    for (const verb of ['pause', 'resume', 'cancel']) called.add(`POST /objectives/{id}/${verb}`);
    const doc = json(await cli(['openapi']));
    // The same feed as GET /events (which `events follow` streams), over WebSocket.
    const elsewhere = new Set(['GET /events/ws', 'GET /graphql']);
    const missing: string[] = [];
    for (const [p, ops] of Object.entries<Record<string, unknown>>(doc.paths))
      for (const method of Object.keys(ops).filter((m) => ['get', 'post', 'put', 'patch', 'delete'].includes(m))) {
        const op = `${method.toUpperCase()} ${p}`;
        if (!called.has(op) && !elsewhere.has(op)) missing.push(op);
      }
    assert.deepEqual(missing, [], 'operations without a command');
  });

  it('objectives: create with a dependency, list, pause, resume, update, tick sub-tasks, link, the DAG, cancel', async () => {
    const first = await ok(['objectives', 'create', projectId, '--title', 'long first', '--command', 'sleep 300', '--money', '0.20']);
    const second = await ok([
      'objectives',
      'create',
      projectId,
      '--title',
      'after first',
      '--command',
      'echo second',
      '--depends-on',
      first.id,
      '--money',
      '0.20',
    ]);
    assert.deepEqual(second.dependsOn, [first.id]);
    const third = await ok(['objectives', 'create', projectId, '--title', 'third', '--command', 'echo third', '--depends-on', second.id, '--money', '0.20']);

    const list = await ok(['objectives', 'list', projectId]);
    assert.deepEqual(
      [first.id, second.id, third.id].map((id) => list.items.find((o: any) => o.id === id)?.title),
      ['long first', 'after first', 'third'],
    );
    const table = await cli(['objectives', 'list', projectId]);
    assert.match(table.stdout, /after first/);

    // The second waits for the first: it can be held and let go again.
    assert.equal((await ok(['objectives', 'pause', second.id])).id, second.id);
    assert.equal((await waitStatus('objectives', second.id, 'paused')).status, 'paused');
    await ok(['objectives', 'resume', second.id]);
    assert.equal((await waitStatus('objectives', second.id, 'waiting')).status, 'waiting');

    const updated = await ok(['objectives', 'update', second.id, '--title', 'after the first', '--subtask', 'write', '--subtask', 'check']);
    assert.equal(updated.title, 'after the first');
    const ticked = await ok(['objectives', 'done', second.id, 'write']);
    assert.equal(ticked.progress, 0.5);
    const progress = await ok(['objectives', 'progress', second.id]);
    assert.equal(progress.items.at(-1).progress, 0.5);

    const linked = await ok(['objectives', 'link', third.id, first.id]);
    assert.deepEqual([...linked.dependsOn].sort(), [first.id, second.id].sort());
    // A link that closes a cycle: the api's 400 (or 422) with the path, exit 2.
    const cycle = await cli(['objectives', 'link', first.id, third.id]);
    assert.equal(cycle.code, 2, explain(cycle));
    assert.match(cycle.stderr, /would close a cycle/);

    const dag = await ok(['objectives', 'dag', projectId]);
    const depth = (id: string) => dag.nodes.find((n: any) => n.id === id)?.depth;
    assert.deepEqual([depth(first.id), depth(second.id), depth(third.id)], [0, 1, 2]);

    for (const o of [third, second, first]) assert.equal((await ok(['objectives', 'cancel', o.id])).id, o.id);
    for (const o of [third, second, first]) assert.equal((await waitStatus('objectives', o.id, 'cancelled')).status, 'cancelled');
    // Cancelled is final: pausing it now is a conflict (5).
    const late = await cli(['objectives', 'pause', first.id]);
    assert.equal(late.code, 5, explain(late));
    assert.match(late.stderr, /already ended \(cancelled\) \(409 objective_ended\)/);
  });

  it('payments: methods, free credits, a top-up paid by credits, one waiting for manual approval, the balance, auto top-up', async () => {
    const methods = await ok(['payments', 'methods', 'set', projectId, '--method', 'credits', '--method', 'manual:timeoutSeconds=600']);
    assert.deepEqual(methods.methods, [{ kind: 'credits' }, { kind: 'manual', timeoutSeconds: 600 }]);
    assert.deepEqual((await ok(['payments', 'methods', 'get', projectId])).methods, methods.methods);

    const credit = await ok(['payments', 'credits', 'grant', projectId, '--amount', '10.00', '--expires-at', '2099-01-01T00:00:00Z']);
    assert.equal(credit.remaining, '10.00');

    const small = await ok(['payments', 'topup', projectId, '--amount', '4.00']);
    assert.equal(small.status, 'running');
    const paid = await ok(['payments', 'get', small.paymentId, '--wait']);
    assert.equal(paid.status, 'succeeded', JSON.stringify(paid));
    assert.equal(paid.paidBy, 'credits');
    assert.equal((await ok(['payments', 'credits', 'list', projectId])).items[0].remaining, '6.00');

    // More than the credits left: the credits attempt is declined, then it waits for a person.
    const big = await ok(['payments', 'topup', projectId, '--amount', '50.00']);
    const waiting = await ok(['payments', 'get', big.paymentId, '--wait']);
    assert.equal(waiting.status, 'manual_required', JSON.stringify(waiting));
    const table = await cli(['payments', 'get', big.paymentId]);
    assert.match(table.stdout, /credits .*declined/);
    assert.match(table.stdout, /manual .*waiting/);
    assert.equal((await ok(['payments', 'approve', big.paymentId])).status, 'approving');
    const approved = await ok(['payments', 'get', big.paymentId, '--wait']);
    assert.equal(approved.status, 'succeeded', JSON.stringify(approved));
    assert.equal(approved.paidBy, 'manual');
    // Approving it again: a conflict, exit 5.
    const again = await cli(['payments', 'approve', big.paymentId]);
    assert.equal(again.code, 5, explain(again));

    const listed = await ok(['payments', 'list', projectId]);
    assert.deepEqual(
      listed.items.slice(0, 2).map((x: any) => [x.id, x.status, x.attempts.length]),
      [
        [big.paymentId, 'succeeded', approved.attempts.length],
        [small.paymentId, 'succeeded', paid.attempts.length],
      ],
      'newest first, with their attempts',
    );
    assert.match((await cli(['payments', 'list', projectId])).stdout, new RegExp(`${big.paymentId} .*50\\.00 USD .*succeeded .*manual`));

    const balance = await ok(['payments', 'balance', projectId]);
    assert.match(JSON.stringify(balance), /54\.00/);

    const auto = await ok(['payments', 'auto-topup', 'set', projectId, '--amount', '3.00']);
    assert.equal(auto.amount, '3.00');
    assert.equal(auto.period, 'daily');
    const off = await cli(['payments', 'auto-topup', 'off', projectId]);
    assert.equal(off.code, 0, explain(off));
    assert.match(off.stderr, /automatic top-up of project-\S+ stopped/);
  });

  it('cost centers and departments: create, list, get, budgets, allocate a project, costs', async () => {
    const department = `Research ${crypto.randomBytes(3).toString('hex')}`;
    const cc = await ok(['cost-centers', 'create', '--name', 'cli cc', '--kind', 'development', '--department', department]);
    assert.match(cc.id, /^cost-center-/);
    const listed = await ok(['cost-centers', 'list', '--department', department]);
    assert.deepEqual(
      listed.items.map((c: any) => [c.id, c.name, c.kind]),
      [[cc.id, 'cli cc', 'development']],
    );
    const budget = await ok(['cost-centers', 'budget', cc.id, '--amount', '100.00', '--period', 'monthly']);
    assert.equal(budget.limit, '100.00');
    assert.equal((await ok(['cost-centers', 'get', cc.id])).budget.limit, '100.00');

    const assigned = await ok(['cost-centers', 'assign', projectId, cc.id]);
    assert.equal(assigned.costCenterId, cc.id);
    // A machine of the project now costs the cost center (and its department) something.
    const run = await cli(['machines', 'run', '--project', projectId, '--command', 'echo costed', '--money', '0.10', '--follow']);
    assert.equal(run.code, 0, explain(run));
    const costs = await ok(['cost-centers', 'costs', cc.id]);
    assert.ok(costs.totals.length > 0, JSON.stringify(costs));
    const projectCosts = await ok(['projects', 'costs', projectId]);
    assert.ok(
      projectCosts.items.some((x: any) => x.costCenterId === cc.id),
      JSON.stringify(projectCosts),
    );
    assert.match((await cli(['projects', 'costs', projectId])).stdout, /total/);

    const deptBudget = await ok(['departments', 'budget', department, '--amount', '500.00']);
    assert.equal(deptBudget.limit, '500.00');
    const deptCosts = await ok(['departments', 'costs', department]);
    assert.deepEqual(
      deptCosts.costCenters.map((c: any) => c.id),
      [cc.id],
    );
    const table = await cli(['departments', 'costs', department]);
    assert.match(table.stdout, /cli cc/);
    assert.equal((await ok(['cost-centers', 'assign', projectId, 'none'])).costCenterId, null);
  });

  it('events follow: streams what happens while it runs, one JSON object a line, until interrupted', async () => {
    const follow = startCli(['events', 'follow', '--project', projectId, '--kinds', 'budget.*', '--cursor', '0', '--json'], { env: admin });
    // The past budget events arrive first: the stream is open.
    await follow.waitFor(/"kind":"budget\.set"/);
    const amount = `${10 + crypto.randomInt(80)}.25`;
    await ok(['budgets', 'set', projectId, '--amount', amount]);
    await follow.waitFor(new RegExp(`"limit":"${amount.replace('.', '\\.')}"`));
    const ended = await follow.stop('SIGINT');
    assert.ok(ended.signal === 'SIGINT' || ended.code === 130, JSON.stringify(ended));
    const lines = follow.out.stdout.trim().split('\n');
    for (const line of lines) assert.match(JSON.parse(line).kind, /^budget\./);
    assert.equal(JSON.parse(lines.find((l) => l.includes(amount))!).projectId, projectId);
    assert.doesNotMatch(follow.out.stderr, /\n\s+at /);
  });

  it('machines checkpoint, extend and terminate a real running machine; milestones', async () => {
    const started = await ok(['machines', 'run', '--project', projectId, '--command', 'echo started > s.txt; echo started; sleep 120', '--money', '0.50']);
    const id = started.id;
    await waitStatus('machines', id, 'running');
    for (let i = 0; !/started/.test((await cli(['machines', 'logs', id])).stdout); i++) {
      assert.ok(i < 300, 'the machine never wrote its first line');
      await new Promise((r) => setTimeout(r, 200));
    }
    const cp = await ok(['machines', 'checkpoint', id]);
    assert.equal(cp.id, id);
    let manual: any;
    for (let i = 0; !manual; i++) {
      assert.ok(i < 300, 'no manual checkpoint appeared');
      manual = (await ok(['checkpoints', 'list', projectId, '--all'])).items.find((c: any) => c.machineId === id && c.kind === 'manual');
      if (!manual) await new Promise((r) => setTimeout(r, 200));
    }
    assert.equal((await cli(['checkpoints', 'files', manual.id, 's.txt'])).stdout, 'started\n');
    assert.equal((await ok(['checkpoints', 'milestone', manual.id])).milestone, true);
    assert.equal((await ok(['checkpoints', 'get', manual.id])).milestone, true);
    assert.equal((await ok(['checkpoints', 'milestone', manual.id, '--unset'])).milestone, false);

    // A running machine is not paused: nothing to extend (409 → 5).
    const extend = await cli(['machines', 'extend', id, '--money', '1.00']);
    assert.equal(extend.code, 5, explain(extend));
    assert.match(extend.stderr, /machine_not_paused/);

    assert.equal((await ok(['machines', 'terminate', id])).status, 'terminating');
    const ended = await waitStatus('machines', id, 'terminated,completed,failed');
    assert.equal(ended.status, 'terminated');
    assert.equal(ended.stopReason, 'terminated by request');
  });

  it('machines extend: an agent machine paused at its API-call limit goes on when extended; its artifacts; the alert', async () => {
    const pausing = (await ok(['projects', 'create', '--name', 'cli pausing'])).id;
    await ok(['budgets', 'set', pausing, '--amount', '20.00']);
    const policy = await ok(['limit-policy', 'set', pausing, '--policy', 'pause', '--pause-minutes', '10']);
    assert.deepEqual(policy, { policy: 'pause', pauseMinutes: 10 });
    assert.deepEqual(await ok(['limit-policy', 'get', pausing]), policy);

    llm.reset();
    llm.setScript(writeFileScript('claude', { path: '/workspace/hello.txt', content: 'before pause\n' }));
    const { id } = await ok(['machines', 'run', '--project', pausing, '--type', 'claude-code', '--prompt', 'go', '--money', '2.00', '--api-calls', '1']);
    const paused = await waitStatus('machines', id, 'paused,completed,failed,terminated');
    assert.equal(paused.status, 'paused', JSON.stringify(paused));
    const alerts = await ok(['alerts', 'list', '--project', pausing]);
    assert.ok(
      alerts.items.some((a: any) => a.kind === 'machine_paused' && a.subjectId === id),
      JSON.stringify(alerts),
    );

    llm.setScript(writeFileScript('claude', { path: '/workspace/after.txt', content: 'after resume\n' }));
    assert.equal((await ok(['machines', 'extend', id, '--money', '1.00', '--api-calls', '10'])).status, 'resuming');
    const done = await waitStatus('machines', id, 'completed,failed,terminated');
    assert.equal(done.status, 'completed', JSON.stringify(done));
    const files = (await ok(['checkpoints', 'files', done.checkpoints.at(-1)])).map((f: any) => f.path).sort();
    assert.deepEqual(files, ['after.txt', 'hello.txt']);

    const artifacts = await ok(['machines', 'artifacts', id]);
    assert.ok(
      artifacts.items.some((a: any) => a.name === 'conversation.jsonl'),
      JSON.stringify(artifacts),
    );
    const saved = path.join(work, 'conversation.jsonl');
    const download = await cli(['machines', 'artifacts', id, 'conversation.jsonl', '-o', saved]);
    assert.equal(download.code, 0, explain(download));
    assert.ok(fs.readFileSync(saved, 'utf8').trim().split('\n').length >= 2, 'a model call of each run');
    assert.equal((await cli(['machines', 'artifacts', id, 'no-such-artifact'])).code, 4);
  });

  it('alerts rules add, list, delete; a wrong metric exits 2 naming it; alerts list filters by status and kind', async () => {
    const rule = await ok([
      'alerts',
      'rules',
      'add',
      projectId,
      '--metric',
      'machines_running',
      '--comparator',
      '>=',
      '--threshold',
      '100',
      '--severity',
      'info',
      '--name',
      'busy',
    ]);
    assert.deepEqual(
      { metric: rule.metric, comparator: rule.comparator, threshold: rule.threshold, severity: rule.severity, name: rule.name },
      { metric: 'machines_running', comparator: '>=', threshold: '100', severity: 'info', name: 'busy' },
    );
    assert.deepEqual(
      (await ok(['alerts', 'rules', 'list', projectId])).items.map((r: any) => r.id),
      [rule.id],
    );
    const table = await cli(['alerts', 'rules', 'list', projectId]);
    assert.match(table.stdout, /machines_running >= 100/);
    const bad = await cli(['alerts', 'rules', 'add', projectId, '--metric', 'cpu', '--comparator', '>', '--threshold', '1']);
    assert.equal(bad.code, 2, explain(bad));
    assert.match(bad.stderr, /metric: "cpu" is not a metric; use one of spend_today/);
    assert.doesNotMatch(bad.stderr, /\n\s+at /, 'no stack trace');
    await ok(['alerts', 'rules', 'delete', projectId, rule.id]);
    assert.deepEqual((await ok(['alerts', 'rules', 'list', projectId])).items, []);
    const open = await ok(['alerts', 'list', '--project', projectId, '--status', 'open', '--kind', 'alert_rule']);
    assert.deepEqual(open.items, []);
  });

  it('project settings and the catalogue: scheduling, placement, a type budget, machine types, providers, fx, keys, graphql', async () => {
    const scheduling = await ok(['scheduling', 'set', projectId, '--max-machines', '3', '--greediness', '0.5', '--resource', 'gpu=1']);
    assert.equal(scheduling.maxConcurrentMachines, 3);
    assert.equal(scheduling.greediness, 0.5);
    assert.deepEqual(scheduling.resources, { gpu: 1 });
    assert.equal((await ok(['scheduling', 'get', projectId])).maxConcurrentMachines, 3);
    assert.equal((await cli(['scheduling', 'set', projectId, '--resource', 'gpu'])).code, 2, 'name=count is required');
    assert.equal((await ok(['routing', 'set', projectId, '--quality', '0.8'])).quality, 0.8);
    const routing = await ok(['routing', 'show', '--project', projectId]);
    assert.deepEqual(routing.settings, { quality: 0.8, exploration: 0.1, refinement: 0.5, source: 'project' });
    assert.deepEqual(routing.refinement, { arms: [], patterns: [] });
    assert.deepEqual(await ok(['routing', 'set', projectId, '--refinement', '0.25']), { quality: 0.8, exploration: 0.1, refinement: 0.25, source: 'project' });
    assert.equal((await cli(['routing', 'set', projectId, '--refinement', 'half'])).code, 2, 'a number is required');
    assert.equal(routing.arms.length, 7 * 6);
    assert.equal((await cli(['routing', 'set', projectId])).code, 2, 'a setting is required');
    assert.deepEqual(await ok(['predictions', 'accuracy', '--project', projectId]), { minimumRuns: 5, items: [] });
    assert.deepEqual(await ok(['predictions', 'set', projectId, '--no-refuse-if-over']), { refuseIfPredictedOver: false });
    assert.equal((await cli(['predictions', 'set', projectId])).code, 2, 'a choice is required');

    const rules = path.join(work, 'placement.yaml');
    fs.writeFileSync(rules, 'rules:\n  - name: shell here\n    match: { types: [shell] }\n    providers: [local]\n');
    const placement = await ok(['placement', 'set', projectId, '--file', rules]);
    assert.deepEqual(
      placement.rules.map((r: any) => [r.name, r.providers]),
      [['shell here', ['local']]],
    );
    assert.equal((await ok(['placement', 'get', projectId])).rules[0].name, 'shell here');

    const typeBudget = await ok(['budgets', 'set-type', projectId, '--type', 'claude-code', '--amount', '2.00']);
    assert.deepEqual([typeBudget.machineType, typeBudget.limit], ['claude-code', '2.00']);

    const types = await ok(['machine-types']);
    assert.equal(types.items.find((t: any) => t.id === 'shell')?.available, true);
    const providers = await ok(['providers']);
    assert.equal(providers.items.find((x: any) => x.id === 'local')?.available, true);
    const fx = await cli(['fx', 'rates', '--base', 'USD', '--json']);
    // Live rates may be unreachable here (no network): then the api says so, and the CLI exits 6.
    assert.ok(fx.code === 0 || fx.code === 6, explain(fx));
    if (fx.code === 0) assert.equal(json(fx).base, 'USD');

    const key = await ok(['keys', 'create', '--name', 'expiring', '--role', 'viewer', '--project', projectId]);
    assert.equal(Date.parse((await ok(['keys', 'expire', key.id, '2098-01-01T00:00:00Z'])).expiresAt), Date.parse('2098-01-01T00:00:00Z'));
    assert.equal((await ok(['keys', 'get', key.id])).name, 'expiring');
    assert.equal((await ok(['keys', 'expire', key.id, 'never'])).expiresAt, null);

    const gql = await cli(['graphql', '{ viewer { role } project(id: $id) { id name } }'.replace('$id', `"${projectId}"`)]);
    assert.equal(gql.code, 0, explain(gql));
    assert.deepEqual(JSON.parse(gql.stdout), { viewer: { role: 'admin' }, project: { id: projectId, name: 'cli commands' } });
    const badGql = await cli(['graphql', '{ nope }']);
    assert.notEqual(badGql.code, 0, explain(badGql));
    assert.match(badGql.stderr, /nope/);

    const verify = await ok(['audit', 'verify']);
    assert.equal(verify.intact, true);

    // A backup now, listed once its workflow wrote the manifest.
    const backup = await ok(['backups', 'create']);
    assert.match(backup.id, /^backup-/);
    await p.temporal.workflow.getHandle(backup.workflowId).result();
    const listed = await ok(['backups', 'list']);
    assert.deepEqual(listed.find((b: any) => b.id === backup.id)?.locations, ['primary', 'replica']);

    // The human forms: a table (or record) with the data in it.
    for (const [args, shown] of [
      [['scheduling', 'get', projectId], /gpu=1/],
      [['placement', 'get', projectId], /shell here/],
      [['limit-policy', 'get', projectId], /stop/],
      [['machine-types'], /shell/],
      [['providers'], /local/],
      [['payments', 'methods', 'get', projectId], /manual .*timeoutSeconds/],
      [['payments', 'credits', 'list', projectId], /10\.00 USD/],
      [['keys', 'get', key.id], /expiring/],
      [['objectives', 'dag', projectId], /long first/],
      [['audit', 'verify'], /intact/],
      [['backups', 'list'], /backup-.*primary\+replica/],
    ] as Array<[string[], RegExp]>) {
      const r = await cli(args);
      assert.equal(r.code, 0, `${args.join(' ')}: ${explain(r)}`);
      assert.match(r.stdout, shown, args.join(' '));
    }
  });

  it('projects recover: a dry run, a copy, and a moment in the future refused with what to fix (no stack trace)', async () => {
    const own = (await ok(['projects', 'create', '--name', 'cli recover'])).id;
    await new Promise((resolve) => setTimeout(resolve, 20));
    const at = new Date().toISOString();
    const dry = await ok(['projects', 'recover', own, '--at', at, '--dry-run']);
    assert.equal(dry.dryRun, true);
    assert.equal(dry.projectId, null);
    assert.equal(dry.tables.checkpoints.insert, 1);
    const copy = await ok(['projects', 'recover', own, '--at', at]);
    assert.equal(copy.projectName, `cli recover (as of ${at})`);
    assert.equal((await ok(['projects', 'get', copy.projectId])).name, copy.projectName);
    const human = await cli(['projects', 'recover', own, '--at', at, '--in-place', '--dry-run']);
    assert.equal(human.code, 0, explain(human));
    assert.match(human.stdout, /│ checkpoints +│ 0 +│ 0 +│ 0 +│/);
    const future = await cli(['projects', 'recover', own, '--at', '2999-01-01T00:00:00Z']);
    assert.notEqual(future.code, 0);
    assert.match(future.stderr, /at: 2999-01-01T00:00:00.000Z is in the future/);
    assert.doesNotMatch(future.stderr, /\n\s+at /);
  });

  it('batch with a partial failure: every operation is answered in its own row; the exit code is the first failure’s', async () => {
    const file = path.join(work, 'partial.yaml');
    const name = `batch ${crypto.randomBytes(3).toString('hex')}`;
    fs.writeFileSync(
      file,
      `operations:
  - { id: create, method: POST, path: /v1/projects, body: { name: "${name}" } }
  - { id: bad-budget, method: PUT, path: /v1/projects/${projectId}/budget, body: { amount: lots, currency: USD, period: daily } }
  - { id: missing, method: GET, path: /v1/machines/machine-nope }
  - { id: read, method: GET, path: /v1/projects/${projectId} }
`,
    );
    const r = await cli(['batch', file]);
    assert.equal(r.code, 2, explain(r));
    const rows = r.stdout.split('\n').filter((l) => l.startsWith('│'));
    const row = (id: string) => rows.find((l) => l.includes(` ${id} `)) ?? '';
    assert.match(row('create'), /POST \/v1\/projects .*201 .*project-/);
    assert.match(row('bad-budget'), /PUT .*40\d .*amount/);
    assert.match(row('missing'), /GET \/v1\/machines\/machine-nope .*404 .*not found/);
    assert.match(row('read'), /GET \/v1\/projects\/project-\S+ .*200/);
    assert.match(r.stderr, /operation bad-budget failed: .*\(40\d\)/);
    // The operations before and after the failures were carried out.
    const projects = await ok(['projects', 'list', '--all']);
    assert.equal(projects.items.filter((x: any) => x.name === name).length, 1);
    const asJson = await cli(['batch', file, '--json']);
    assert.equal(asJson.code, 2);
    assert.deepEqual(
      json(asJson).results.map((x: any) => [x.id, Math.floor(x.status / 100)]),
      [
        ['create', 2],
        ['bad-budget', 4],
        ['missing', 4],
        ['read', 2],
      ],
    );
  });

  it('a distinct exit code for each error kind: 400 → 2, 401 → 3, 403 → 8, 404 → 4, 409 → 5, unreachable → 6 (documented in --help)', async () => {
    const noStack = (r: Run) => assert.doesNotMatch(r.stderr, /\n\s+at /, r.stderr);

    const badInput = await cli(['payments', 'methods', 'set', projectId, '--method', 'cheque']);
    assert.equal(badInput.code, 2, explain(badInput));
    assert.match(badInput.stderr, /methods\.0\.kind.*\(400/);
    noStack(badInput);

    const badKey = await cli(['whoami'], { AUTOVIBE_API_KEY: 'av_not-a-real-key-at-all' });
    assert.equal(badKey.code, 3, explain(badKey));
    assert.match(badKey.stderr, /\(401/);
    const noKey = await cli(['projects', 'list'], { AUTOVIBE_API_KEY: undefined });
    assert.equal(noKey.code, 3, explain(noKey));
    noStack(noKey);

    const viewer = await ok(['keys', 'create', '--name', 'exit-code viewer', '--role', 'viewer', '--project', projectId]);
    const forbidden = await cli(['cost-centers', 'create', '--name', 'x', '--kind', 'testing', '--department', 'X'], { AUTOVIBE_API_KEY: viewer.key });
    assert.equal(forbidden.code, 8, explain(forbidden));
    assert.match(forbidden.stderr, /\(403/);
    noStack(forbidden);

    const missing = await cli(['objectives', 'get', `objective-${crypto.randomUUID()}`]);
    assert.equal(missing.code, 4, explain(missing));
    assert.match(missing.stderr, /not found \(404/);

    const conflict = await cli(['machines', 'run', '--project', projectId, '--command', 'true', '--money', '999.00']);
    assert.equal(conflict.code, 5, explain(conflict));
    assert.match(conflict.stderr, /\(409 budget_exceeded\)/);

    const unreachable = await cli(['whoami'], { AUTOVIBE_API_URL: 'http://127.0.0.1:9' });
    assert.equal(unreachable.code, 6, explain(unreachable));
    assert.match(unreachable.stderr, /cannot reach the api at http:\/\/127\.0\.0\.1:9/);
    noStack(unreachable);

    const help = (await cli(['--help'])).stdout;
    for (const [code, what] of [
      ['2', /HTTP 400/],
      ['3', /HTTP 401/],
      ['4', /HTTP 404/],
      ['5', /HTTP 409/],
      ['6', /unreachable/],
      ['8', /HTTP 403/],
    ] as const)
      assert.match(help.split('\n').find((l) => l.trim().startsWith(`${code} `)) ?? '', what, `exit ${code} in --help`);
    const readme = fs.readFileSync(path.join(path.dirname(BIN), '..', 'README.md'), 'utf8');
    assert.match(readme, /`8` forbidden/);
  });

  it('completion zsh: the script parses (zsh -n) and completes commands, subcommands and options in a real zsh', async () => {
    const script = path.join(work, '_autovibe');
    fs.writeFileSync(script, (await cli(['completion', 'zsh'])).stdout);
    await promisify(execFile)('zsh', ['-n', script]);
    // An interactive zsh in a terminal with the script loaded; Tab completes what is typed.
    const bin = path.join(work, 'bin');
    fs.mkdirSync(bin, { recursive: true });
    fs.writeFileSync(path.join(bin, 'autovibe'), '#!/bin/sh\nexit 0\n', { mode: 0o755 });
    const r = await runArgvInPty(['zsh', '-f', '-i'], {
      env: { PATH: `${bin}:/usr/bin:/bin`, HOME: work, TERM: 'xterm-256color', PS1: '%% ' },
      cwd: work,
      timeout: 60,
      steps: [
        [/% /, `autoload -U compinit && compinit -u && source ${script} && echo READY\r`],
        [/READY\r?\n/, 'autovibe pay\t'],
        [/autovibe payments/, '\x15autovibe machines ter\t'],
        [/autovibe machines terminate/, '\x15autovibe machines run --fol\t'],
        [/--follow/, '\x15exit\r'],
      ],
    });
    assert.deepEqual(r.pending, [], JSON.stringify(r.output));
    assert.equal(r.code, 0, r.output);
  });
});

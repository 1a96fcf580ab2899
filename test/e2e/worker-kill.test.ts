import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { liveSandboxPids } from '../../activities/compute/local-sandbox.js';
import { installAgentClis, toolsDir } from '../support/llm/agent-clis.js';
import { shellScript, startScriptedEndpoint, type ScriptedEndpoint } from '../support/llm/endpoint.js';
import { projectWithBudget, startTestPlatform, waitFor, waitForMachine, type TestPlatform } from '../support/platform.js';

const workers: ChildProcess[] = [];

/** A real worker process (the production entry point), so it can be SIGKILLed. */
function startWorkerProcess(p: TestPlatform, extraEnv: Record<string, string> = {}): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', 'workers/main.ts'], {
    env: {
      ...process.env,
      ...extraEnv,
      AUTOVIBE_HOME: p.config.home,
      DATABASE_URL: p.databaseUrl!,
      TEMPORAL_ADDRESS: p.temporalAddress,
      TEMPORAL_TASK_QUEUE: p.config.taskQueue,
      LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  workers.push(child);
  return child;
}

function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', () => resolve())));
}

describe('a worker killed while a machine runs', function () {
  this.timeout(240_000);
  let p: TestPlatform;
  let worker: ChildProcess | undefined;

  before(async () => {
    // The api runs here; the worker is a separate process we can kill.
    p = await startTestPlatform({ label: 'kill', worker: false, heartbeatTimeoutSeconds: 3 });
  });
  // Every worker a test started dies with it, so the next test's workers are the only ones polling.
  afterEach(async () => {
    for (const w of workers.splice(0)) {
      w.kill('SIGKILL');
      await exited(w);
    }
  });
  after(async () => {
    await p?.stop();
  });

  it('finishes after a restart with exactly one checkpoint, one settled cost and no leaked sandbox', async () => {
    worker = startWorkerProcess(p);
    const projectId = await projectWithBudget(p, '2.00');
    const start = await p.api('POST', '/v1/machines', {
      projectId,
      type: 'shell',
      command: 'echo attempt >> attempts.txt; sleep 5; echo done > done.txt',
      limits: { money: '0.50', minutes: 10 },
    });
    assert.equal(start.status, 202, JSON.stringify(start.body));
    const id = start.body.id;
    await waitFor(async () => liveSandboxPids(id).length > 0, 'the sandbox to run', 60_000);

    worker.kill('SIGKILL');
    await exited(worker);
    // --die-with-parent: the sandbox does not outlive its worker.
    await waitFor(async () => liveSandboxPids(id).length === 0, 'the orphaned sandbox to die', 10_000);
    assert.equal((await p.api('GET', `/v1/machines/${id}`)).body.status, 'running');

    worker = startWorkerProcess(p);
    const m = await waitForMachine(p, id, 120_000);
    assert.equal(m.status, 'completed', JSON.stringify(m));
    assert.equal(m.checkpoints.length, 1);
    const files = (await p.api('GET', `/v1/checkpoints/${m.checkpoints[0]}`)).body.files.map((f: any) => f.path).sort();
    assert.deepEqual(files, ['attempts.txt', 'done.txt']);
    // The retry started over from the checkpoint, so the work of the killed attempt is not in it.
    assert.equal((await p.api('GET', `/v1/checkpoints/${m.checkpoints[0]}/files/attempts.txt`)).body, 'attempt\n');

    const checkpointRows = await p.db('checkpoints').where({ machine_id: id });
    assert.equal(checkpointRows.length, 1);
    const costRows = await p.db('cost_events').where({ machine_id: id });
    assert.equal(costRows.length, 1);
    const reservations = await p.db('reservations').where({ machine_id: id });
    assert.equal(reservations.length, 1);
    assert.equal(reservations[0].status, 'settled');
    const project = (await p.api('GET', `/v1/projects/${projectId}`)).body;
    assert.equal(project.budget.reserved, '0.00');
    assert.equal(project.budget.spent, m.cost.amount);
    assert.deepEqual(liveSandboxPids(id), []);
    assert.equal(fs.existsSync(path.join(p.config.workspacesDir, id)), false);
  });

  it('ends an agent machine cleanly after a restart: its model calls counted once, its work checkpointed', async function () {
    this.timeout(1_800_000);
    await installAgentClis();
    const llm: ScriptedEndpoint = await startScriptedEndpoint();
    const env = { AUTOVIBE_TOOLS_DIR: toolsDir(), ANTHROPIC_API_KEY: 'test-key', ANTHROPIC_BASE_URL: llm.url };
    try {
      // The api checks availability with its own configuration.
      Object.assign(p.config, { toolsDir: toolsDir(), env: { ...p.config.env, ...env } });
      worker = startWorkerProcess(p, env);
      const projectId = await projectWithBudget(p, '5.00');
      llm.setScript(shellScript('claude', { command: 'echo started > started.txt; sleep 8; echo late > late.txt' }));
      const start = await p.api('POST', '/v1/machines', { projectId, type: 'claude-code', prompt: 'go', limits: { money: '2.00' } });
      assert.equal(start.status, 202, JSON.stringify(start.body));
      const id = start.body.id;
      // Kill the worker while the agent's tool is running (after its first model call).
      await waitFor(async () => liveSandboxPids(id).length > 0 && llm.totals({ kind: 'main' }).calls >= 1, 'the agent to be at work', 120_000);
      await new Promise((r) => setTimeout(r, 1500));
      worker.kill('SIGKILL');
      await exited(worker);
      await waitFor(async () => liveSandboxPids(id).length === 0, 'the orphaned sandbox to die', 10_000);
      const callsBeforeRestart = llm.totals().calls;

      worker = startWorkerProcess(p, env);
      const m = await waitForMachine(p, id, 120_000);
      assert.equal(m.status, 'terminated', JSON.stringify(m));
      assert.match(m.stopReason, /worker lost/);
      assert.equal(llm.totals().calls, callsBeforeRestart, 'no model call was repeated after the restart');
      const costRows = await p.db('cost_events').where({ machine_id: id });
      assert.equal(costRows.filter((r) => r.category === 'api').length, callsBeforeRestart, 'each model call counted once');
      assert.equal(costRows.filter((r) => r.category === 'infra').length, 1);
      const final = (await p.api('GET', `/v1/checkpoints/${m.checkpoints.at(-1)}`)).body;
      assert.equal(final.kind, 'final');
      assert.ok(final.files.some((f: any) => f.path === 'started.txt'), 'the work done before the crash is kept');
      const reservations = await p.db('reservations').where({ machine_id: id });
      assert.deepEqual(reservations.map((r) => r.status), ['settled']);
      assert.equal((await p.api('GET', `/v1/projects/${projectId}`)).body.budget.reserved, '0.00');
      assert.deepEqual(liveSandboxPids(id), []);
    } finally {
      await llm.stop();
    }
  });
});

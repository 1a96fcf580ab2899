import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { liveSandboxPids } from '../../activities/compute/local-sandbox.js';
import { installAgentClis, toolsDir } from '../support/llm/agent-clis.js';
import { shellScript, startScriptedEndpoint, type ScriptedEndpoint } from '../support/llm/endpoint.js';
import { projectWithBudget, startTestPlatform, waitFor, waitForMachine, type TestPlatform } from '../support/platform.js';
import { exited, WorkerProcesses } from '../support/worker-processes.js';

const workers = new WorkerProcesses();
/** A real worker process (the production entry point), so it can be SIGKILLed. */
const startWorkerProcess = (p: TestPlatform, extraEnv: Record<string, string> = {}): ChildProcess => workers.start(p, extraEnv);

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
    await workers.killAll();
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
      assert.ok(
        final.files.some((f: any) => f.path === 'started.txt'),
        'the work done before the crash is kept',
      );
      const reservations = await p.db('reservations').where({ machine_id: id });
      assert.deepEqual(
        reservations.map((r) => r.status),
        ['settled'],
      );
      assert.equal((await p.api('GET', `/v1/projects/${projectId}`)).body.budget.reserved, '0.00');
      assert.deepEqual(liveSandboxPids(id), []);
    } finally {
      await llm.stop();
    }
  });

  it('finishes a pipeline after its worker is killed mid-way, each step run once', async () => {
    worker = startWorkerProcess(p);
    const projectId = await projectWithBudget(p, '5.00');
    const steps = ['one', 'two', 'three'].map((id, i, all) => ({
      id,
      type: 'shell',
      command: `${i ? `test -f ${all[i - 1]}.txt && ` : ''}sleep 3 && echo ${id} > ${id}.txt`,
      dependsOn: i ? [all[i - 1]] : [],
    }));
    const start = await p.api('POST', '/v1/pipelines', { projectId, steps });
    assert.equal(start.status, 202, JSON.stringify(start.body));
    const id = start.body.id;
    // Kill the worker while the second step's sandbox runs.
    const two = await waitFor(
      async () => {
        const s = (await p.api('GET', `/v1/pipelines/${id}`)).body.steps.find((x: any) => x.id === 'two');
        return s.machineId && liveSandboxPids(s.machineId).length ? s : null;
      },
      'step two to run',
      120_000,
    );
    worker.kill('SIGKILL');
    await exited(worker);
    worker = startWorkerProcess(p);
    const done = await waitFor(
      async () => {
        const b = (await p.api('GET', `/v1/pipelines/${id}`)).body;
        return ['completed', 'failed', 'cancelled'].includes(b.status) ? b : null;
      },
      'the pipeline to end',
      180_000,
    );
    assert.equal(done.status, 'completed', JSON.stringify(done));
    const last = done.steps.find((x: any) => x.id === 'three');
    const files = (await p.api('GET', `/v1/checkpoints/${last.checkpointId}`)).body.files.map((f: any) => f.path).sort();
    assert.deepEqual(files, ['one.txt', 'three.txt', 'two.txt']);
    assert.equal(done.steps.find((x: any) => x.id === 'two').machineId, two.machineId, 'step two kept its machine');
    for (const step of done.steps) {
      assert.equal((await p.db('checkpoints').where({ machine_id: step.machineId })).length, 1, `${step.id}: one checkpoint`);
      assert.equal((await p.db('cost_events').where({ machine_id: step.machineId })).length, 1, `${step.id}: one cost`);
    }
    assert.equal(
      (
        await p.db('machines').whereIn(
          'id',
          done.steps.map((x: any) => x.machineId),
        )
      ).length,
      3,
    );
    assert.equal((await p.db('machines').where({ project_id: projectId })).length, 3, 'no step started a second machine');
  });

  it('finishes a 3-objective chain after its worker is killed mid-way, each building on the one before', async () => {
    worker = startWorkerProcess(p);
    const projectId = await projectWithBudget(p, '5.00');
    const names = ['first', 'second', 'third'];
    const ids: string[] = [];
    for (const [i, name] of names.entries()) {
      const r = await p.api('POST', `/v1/projects/${projectId}/objectives`, {
        title: name,
        command: `${i ? `test -f ${names[i - 1]}.txt && ` : ''}sleep 3 && echo ${name} > ${name}.txt`,
        dependsOn: i ? [ids[i - 1]] : [],
      });
      assert.equal(r.status, 201, JSON.stringify(r.body));
      ids.push(r.body.id);
    }
    const second = await waitFor(
      async () => {
        const o = (await p.api('GET', `/v1/objectives/${ids[1]}`)).body;
        return o.machines.length && liveSandboxPids(o.machines[0]).length ? o : null;
      },
      'the second objective to run',
      120_000,
    );
    worker.kill('SIGKILL');
    await exited(worker);
    worker = startWorkerProcess(p);
    const third = await waitFor(
      async () => {
        const o = (await p.api('GET', `/v1/objectives/${ids[2]}`)).body;
        return ['completed', 'failed', 'cancelled'].includes(o.status) ? o : null;
      },
      'the chain to end',
      180_000,
    );
    assert.equal(third.status, 'completed', JSON.stringify(third));
    for (const id of ids) assert.equal((await p.api('GET', `/v1/objectives/${id}`)).body.machines.length, 1, 'each objective ran one machine');
    assert.equal((await p.api('GET', `/v1/objectives/${ids[1]}`)).body.machines[0], second.machines[0]);
    const m = (await p.api('GET', `/v1/machines/${third.machines[0]}`)).body;
    const files = (await p.api('GET', `/v1/checkpoints/${m.checkpoints.at(-1)}`)).body.files.map((f: any) => f.path).sort();
    assert.deepEqual(files, ['first.txt', 'second.txt', 'third.txt'], 'each objective started from the checkpoint its dependency ended with');
  });
});

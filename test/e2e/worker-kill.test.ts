import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { liveSandboxPids } from '../../activities/compute/local-sandbox.js';
import { projectWithBudget, startTestPlatform, waitFor, waitForMachine, type TestPlatform } from '../support/platform.js';

/** A real worker process (the production entry point), so it can be SIGKILLed. */
function startWorkerProcess(p: TestPlatform): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', 'workers/main.ts'], {
    env: {
      ...process.env,
      AUTOVIBE_HOME: p.config.home,
      DATABASE_URL: p.databaseUrl!,
      TEMPORAL_ADDRESS: p.temporalAddress,
      TEMPORAL_TASK_QUEUE: p.config.taskQueue,
      LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
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
  after(async () => {
    worker?.kill('SIGKILL');
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
});

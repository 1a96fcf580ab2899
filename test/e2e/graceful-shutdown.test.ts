/**
 * A worker stopped for a deploy (SIGTERM) while a machine runs on it hands the machine over: it
 * stops polling, stops the machine's sandbox, checkpoints an agent's workspace, records
 * `machine.handed_over`, and exits; the workflow re-provisions the machine on the other worker
 * from that checkpoint at once (no heartbeat timeout, no retry of the same run), and it completes.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { liveSandboxPids } from '../../activities/compute/local-sandbox.js';
import { installAgentClis, toolsDir } from '../support/llm/agent-clis.js';
import { startScriptedEndpoint, type ScriptedEndpoint } from '../support/llm/endpoint.js';
import { createDb } from '../../store/db.js';
import type { MachineRunResult } from '../../workflows/machine.js';
import { projectWithBudget, startTestPlatform, waitFor, waitForMachine, type TestPlatform } from '../support/platform.js';
import { WorkerProcesses } from '../support/worker-processes.js';

/** The grace period worker A is given (AUTOVIBE_SHUTDOWN_GRACE_S); it must be gone well within it. */
const GRACE_S = 30;

describe('a worker stopped with SIGTERM while a machine runs', function () {
  this.timeout(600_000);
  const workers = new WorkerProcesses();
  let p: TestPlatform;

  before(async () => {
    // A long heartbeat timeout: a machine that waited for it (the behaviour before handover) would
    // be retried only after a minute, and an agent's retry ends it ("worker lost").
    p = await startTestPlatform({ label: 'shutdown', worker: false, heartbeatTimeoutSeconds: 60 });
  });
  afterEach(async () => {
    await workers.killAll();
  });
  after(async () => {
    await p?.stop();
  });

  /** Each start of the given activity in the machine's workflow history: which worker, which attempt. */
  async function activityStarts(machineId: string, activity: string): Promise<Array<{ identity: string; attempt: number }>> {
    const history = await p.temporal.workflow.getHandle(machineId).fetchHistory();
    const scheduled = new Set<string>();
    const starts: Array<{ identity: string; attempt: number }> = [];
    for (const e of history.events ?? []) {
      if (e.activityTaskScheduledEventAttributes?.activityType?.name === activity) scheduled.add(String(e.eventId));
      const started = e.activityTaskStartedEventAttributes;
      if (started && scheduled.has(String(started.scheduledEventId))) starts.push({ identity: started.identity ?? '', attempt: started.attempt ?? 0 });
    }
    return starts;
  }

  /** Nothing waited out a timeout: no activity (heartbeat) timed out, no workflow task sat on the stopped worker's sticky queue. */
  async function assertNoTimeouts(machineId: string) {
    const events = (await p.temporal.workflow.getHandle(machineId).fetchHistory()).events ?? [];
    assert.deepEqual(
      events.filter((e) => e.activityTaskTimedOutEventAttributes || e.workflowTaskTimedOutEventAttributes).map((e) => String(e.eventId)),
      [],
      'timed-out tasks in the history',
    );
  }

  async function eventsOf(machineId: string): Promise<Array<{ action: string; details: any }>> {
    return (await p.api('GET', `/v1/machines/${machineId}`)).body.events;
  }

  /** One reservation, settled; one compute cost; the budget holds nothing back. */
  async function assertChargedOnce(m: any, projectId: string, apiCalls: number) {
    const reservations = await p.db('reservations').where({ machine_id: m.id });
    assert.deepEqual(
      reservations.map((r) => r.status),
      ['settled'],
      'one reservation, settled',
    );
    const costs = await p.db('cost_events').where({ machine_id: m.id });
    assert.equal(costs.filter((r) => r.category === 'infra').length, 1, 'one compute cost');
    assert.equal(costs.filter((r) => r.category === 'api').length, apiCalls, 'each model call counted once');
    assert.equal(new Set(costs.map((r) => r.idempotency_key)).size, costs.length);
    const project = (await p.api('GET', `/v1/projects/${projectId}`)).body;
    assert.equal(project.budget.reserved, '0.00');
    assert.equal(project.budget.spent, m.cost.amount);
  }

  it('an agent machine goes on on the other worker from the checkpoint of its work, and completes', async function () {
    this.timeout(1_800_000);
    await installAgentClis();
    const llm: ScriptedEndpoint = await startScriptedEndpoint();
    const env = { AUTOVIBE_TOOLS_DIR: toolsDir(), ANTHROPIC_API_KEY: 'test-key', ANTHROPIC_BASE_URL: llm.url };
    try {
      Object.assign(p.config, { toolsDir: toolsDir(), env: { ...p.config.env, ...env } });
      const a = workers.start(p, { ...env, AUTOVIBE_SHUTDOWN_GRACE_S: String(GRACE_S) });
      const projectId = await projectWithBudget(p, '5.00');
      // Turn 1 (on A): write before.txt, then work on for a long time (stopped by the handover).
      // Turn 2 (the agent again, on B): copy before.txt, which exists only if the handover kept it.
      llm.setScript([
        { kind: 'tool', name: 'Bash', args: { command: 'echo before > before.txt; sleep 120; echo late > late.txt', description: 'Work' } },
        { kind: 'tool', name: 'Bash', args: { command: 'cp before.txt after.txt', description: 'Go on' } },
        { kind: 'text', text: 'Done.' },
      ]);
      const start = await p.api('POST', '/v1/machines', { projectId, type: 'claude-code', prompt: 'go', limits: { money: '2.00' } });
      assert.equal(start.status, 202, JSON.stringify(start.body));
      const id = start.body.id;
      const workspace = path.join(p.config.workspacesDir, id);
      await waitFor(async () => liveSandboxPids(id).length > 0 && fs.existsSync(path.join(workspace, 'before.txt')), 'the agent to be at work on A', 180_000);
      const b: ChildProcess = workers.start(p, env);

      const exit = await workers.stop(a, GRACE_S * 1000);
      assert.deepEqual(exit, { code: 0, signal: null }, 'A drained and exited by itself (not forced at the end of its grace period)');
      const handedOver = (await eventsOf(id)).filter((e) => e.action === 'machine.handed_over');
      assert.equal(handedOver.length, 1, 'A recorded the handover before it exited');
      assert.equal(handedOver[0]!.details.restart, 'agent');
      assert.equal(handedOver[0]!.details.worker, WorkerProcesses.identity(a));
      const status = (await p.api('GET', `/v1/machines/${id}`)).body.status;
      assert.ok(!['terminated', 'failed'].includes(status), `the machine goes on (${status})`);

      const m = await waitForMachine(p, id, 300_000);
      assert.equal(m.status, 'completed', JSON.stringify(m));
      assert.equal(m.stopReason, null);

      // The handover checkpoint holds the work done on A; the run on B started from it.
      const resumeFrom = handedOver[0]!.details.resumeFrom;
      const handoverRow = await p.db('checkpoints').where({ id: resumeFrom }).first();
      // Taken at the handover ('worker shutting down'), or, when the files had not changed since, the turn checkpoint before it.
      assert.equal(handoverRow.kind, 'turn');
      assert.equal(handoverRow.machine_id, id);
      assert.equal((await p.api('GET', `/v1/checkpoints/${resumeFrom}/files/before.txt`)).body, 'before\n');
      assert.ok(m.checkpoints.includes(resumeFrom));
      const final = (await p.api('GET', `/v1/checkpoints/${m.checkpoints.at(-1)}`)).body;
      assert.equal(final.kind, 'final');
      assert.deepEqual(final.files.map((f: any) => f.path).sort(), ['after.txt', 'before.txt'], 'the stopped command never finished (no late.txt)');
      assert.equal((await p.api('GET', `/v1/checkpoints/${m.checkpoints.at(-1)}/files/after.txt`)).body, 'before\n');

      // The agent ran once on A and once, anew (attempt 1, not a retry), on B.
      assert.deepEqual(await activityStarts(id, 'runAgent'), [
        { identity: WorkerProcesses.identity(a), attempt: 1 },
        { identity: WorkerProcesses.identity(b), attempt: 1 },
      ]);
      await assertNoTimeouts(id);
      // Every scripted turn answered once: nothing was asked again.
      assert.equal(llm.remaining(), 0);
      const actions = (await eventsOf(id)).map((e) => e.action);
      assert.ok(!actions.includes('machine.terminated') && !actions.includes('machine.failed'), actions.join(', '));
      assert.equal(actions.filter((x) => x === 'machine.handed_over').length, 1);
      assert.equal(actions.filter((x) => x === 'machine.interrupted').length, 0, 'a handover is not an interruption');
      await assertChargedOnce(m, projectId, llm.totals().calls);
      assert.deepEqual(liveSandboxPids(id), []);
      assert.equal(fs.existsSync(workspace), false);
    } finally {
      await llm.stop();
    }
  });

  it('a shell machine starts its command over on the other worker from its clean start checkpoint', async () => {
    const a = workers.start(p, { AUTOVIBE_SHUTDOWN_GRACE_S: String(GRACE_S) });
    const projectId = await projectWithBudget(p, '2.00');
    const start = await p.api('POST', '/v1/machines', {
      projectId,
      type: 'shell',
      command: 'echo attempt >> attempts.txt; sleep 8; echo done > done.txt',
      limits: { money: '0.50', minutes: 10 },
    });
    assert.equal(start.status, 202, JSON.stringify(start.body));
    const id = start.body.id;
    await waitFor(
      async () => liveSandboxPids(id).length > 0 && fs.existsSync(path.join(p.config.workspacesDir, id, 'attempts.txt')),
      'the command to run on A',
      120_000,
    );
    const b = workers.start(p);
    assert.deepEqual(await workers.stop(a, GRACE_S * 1000), { code: 0, signal: null });
    const handedOver = (await eventsOf(id)).filter((e) => e.action === 'machine.handed_over');
    assert.equal(handedOver.length, 1);
    assert.equal(handedOver[0]!.details.restart, 'command');

    const m = await waitForMachine(p, id, 180_000);
    assert.equal(m.status, 'completed', JSON.stringify(m));
    assert.equal(m.checkpoints.length, 1);
    const files = (await p.api('GET', `/v1/checkpoints/${m.checkpoints[0]}`)).body.files.map((f: any) => f.path).sort();
    assert.deepEqual(files, ['attempts.txt', 'done.txt']);
    // Started over from the clean start checkpoint: A's partial output is not in it.
    assert.equal((await p.api('GET', `/v1/checkpoints/${m.checkpoints[0]}/files/attempts.txt`)).body, 'attempt\n');
    assert.deepEqual(await activityStarts(id, 'runCommand'), [
      { identity: WorkerProcesses.identity(a), attempt: 1 },
      { identity: WorkerProcesses.identity(b), attempt: 1 },
    ]);
    await assertNoTimeouts(id);
    assert.equal((await p.db('checkpoints').where({ machine_id: id })).length, 1);
    await assertChargedOnce(m, projectId, 0);
    assert.deepEqual(liveSandboxPids(id), []);
  });

  it('npm start stopping (its in-process worker) hands a machine over too: it goes on at the next start', async () => {
    // A whole platform in one process, as `npm start` runs it, on its own database and task queue.
    const q = await startTestPlatform({ label: 'shutdown-dev', worker: true, heartbeatTimeoutSeconds: 60 });
    try {
      const projectId = await projectWithBudget(q, '2.00');
      const start = await q.api('POST', '/v1/machines', {
        projectId,
        type: 'shell',
        command: 'echo attempt >> attempts.txt; sleep 8; echo done > done.txt',
        limits: { money: '0.50', minutes: 10 },
      });
      assert.equal(start.status, 202, JSON.stringify(start.body));
      const id = start.body.id;
      await waitFor(async () => fs.existsSync(path.join(q.config.workspacesDir, id, 'attempts.txt')), 'the command to run', 120_000);
      // What scripts/dev.ts does on SIGTERM/SIGINT.
      await q.halt();
      assert.equal((await p.temporal.workflow.getHandle(id).describe()).status.name, 'RUNNING', 'the machine was not ended');

      // The next start (a worker on the same home, database and task queue) goes on with it.
      workers.start(q);
      const result: MachineRunResult = await p.temporal.workflow.getHandle(id).result();
      assert.equal(result.status, 'completed', JSON.stringify(result));
      assert.equal(result.checkpoints.length, 1);
      const db = await createDb({ databaseUrl: q.databaseUrl });
      try {
        const audit = await db('audit_log').where({ subject_id: id }).orderBy('seq');
        const actions = audit.map((r) => r.action as string);
        assert.equal(actions.filter((x) => x === 'machine.handed_over').length, 1, actions.join(', '));
        assert.ok(!actions.includes('machine.terminated') && !actions.includes('machine.failed'), actions.join(', '));
        assert.deepEqual(
          (await db('reservations').where({ machine_id: id })).map((r) => r.status),
          ['settled'],
        );
        assert.equal((await db('cost_events').where({ machine_id: id })).length, 1);
        assert.equal((await db('machines').where({ id }).first()).status, 'completed');
      } finally {
        await db.destroy();
      }
      await assertNoTimeouts(id);
    } finally {
      await workers.killAll();
      fs.rmSync(q.home, { recursive: true, force: true });
    }
  });
});

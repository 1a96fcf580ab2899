/**
 * Task queues (README "Task queues and workers"): real worker processes on two separate homes (two
 * hosts) against one Postgres and one Temporal. Machines of one project run on both; one host is
 * killed mid-run and its machines move to the other; control work goes on while the machine queue
 * is full. Every host, and the api, share one object store (a directory here; S3 in production)
 * for repositories and snapshots: a machine on one host continues from a checkpoint another host
 * made after that host and its data directory are gone.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { liveSandboxPids } from '../../activities/compute/local-sandbox.js';
import { fromNumeric } from '../../domain/money.js';
import { hostQueue, machineQueue } from '../../domain/queues.js';
import { projectWithBudget, startTestPlatform, waitFor, waitForMachine, type TestPlatform } from '../support/platform.js';
import { exited, onHome, WorkerProcesses } from '../support/worker-processes.js';

describe('task queues: control apart from machines, machines on two hosts', function () {
  this.timeout(600_000);
  const workers = new WorkerProcesses();
  const homes: string[] = [];
  let p: TestPlatform;
  const objectStore = fs.mkdtempSync(path.join(os.tmpdir(), 'autovibe-queues-store-'));
  const shared = { AUTOVIBE_OBJECT_STORE: `dir:${objectStore}` };

  before(async () => {
    // The api runs here; every worker is a process of its own, on a home of its own.
    p = await startTestPlatform({ label: 'queues', worker: false, heartbeatTimeoutSeconds: 3, env: shared });
  });
  afterEach(async () => {
    await workers.killAll();
  });
  after(async () => {
    await p?.stop();
    for (const home of homes) fs.rmSync(home, { recursive: true, force: true });
    fs.rmSync(objectStore, { recursive: true, force: true });
  });

  /** A worker process on a fresh home, as host `host`, sharing the api's object store. */
  function workerOn(host: string, env: Record<string, string> = {}): ChildProcess {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), `autovibe-queues-${host}-`));
    homes.push(home);
    return workers.start(onHome(p, home), { AUTOVIBE_WORKER_HOST: host, AUTOVIBE_WORKER_PROVIDERS: 'local', ...shared, ...env });
  }

  /** Each scheduling of the activity in the machine's history: on which queue, and whether (and by whom) it was started. */
  async function scheduled(machineId: string, activity: string): Promise<Array<{ queue: string; startedBy: string | null }>> {
    const events = (await p.temporal.workflow.getHandle(machineId).fetchHistory()).events ?? [];
    const out = new Map<string, { queue: string; startedBy: string | null }>();
    for (const e of events) {
      const s = e.activityTaskScheduledEventAttributes;
      if (s?.activityType?.name === activity) out.set(String(e.eventId), { queue: s.taskQueue?.name ?? '', startedBy: null });
      const started = e.activityTaskStartedEventAttributes;
      const entry = started && out.get(String(started.scheduledEventId));
      if (entry) entry.startedBy = started.identity ?? '';
    }
    return [...out.values()];
  }

  const spawn = async (projectId: string, command: string, money = '0.20') => {
    const r = await p.api('POST', '/v1/machines', { projectId, type: 'shell', provider: 'local', command, limits: { money, minutes: 10 } });
    assert.equal(r.status, 202, JSON.stringify(r.body));
    return r.body.id as string;
  };

  /** One reservation per machine, settled once; one compute cost each; the budget holds nothing back and spent what was charged. */
  async function assertChargedOnce(projectId: string, machines: any[]) {
    for (const m of machines) {
      const reservations = await p.db('reservations').where({ machine_id: m.id });
      assert.deepEqual(
        reservations.map((r) => r.status),
        ['settled'],
        `${m.id}: one reservation, settled`,
      );
      const costs = await p.db('cost_events').where({ machine_id: m.id });
      assert.equal(costs.length, 1, `${m.id}: one cost`);
      assert.equal(costs[0].category, 'infra');
    }
    const costs = await p.db('cost_events').where({ project_id: projectId });
    assert.equal(costs.length, machines.length, 'no cost recorded twice');
    const charged = machines.reduce((sum, m) => sum + fromNumeric(m.cost.amount), 0n);
    assert.equal(
      costs.reduce((sum, c) => sum + fromNumeric(c.amount), 0n),
      charged,
    );
    const project = (await p.api('GET', `/v1/projects/${projectId}`)).body;
    assert.equal(fromNumeric(project.budget.reserved), 0n);
    assert.equal(fromNumeric(project.budget.spent), charged);
  }

  it("runs one project's machines on two hosts; a host killed mid-run loses nothing and charges nothing twice", async () => {
    const queue = p.config.taskQueue;
    // A host whose queue takes nothing for 5 s is taken for gone.
    const env = { AUTOVIBE_HOST_QUEUE_WAIT_S: '5' };
    const hosts = { 'host-a': workerOn('host-a', env), 'host-b': workerOn('host-b', env) };
    await waitFor(async () => (await p.db('task_queues').whereIn('host', Object.keys(hosts))).length === 2, 'both hosts to serve their queues', 60_000);
    const projectId = await projectWithBudget(p, '5.00');
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) ids.push(await spawn(projectId, 'echo start > start.txt; sleep 20; echo done > done.txt'));
    await waitFor(async () => ids.every((id) => liveSandboxPids(id).length > 0), 'the machines to run', 120_000);

    // Where each runs: the host queue its run was sent to, once provisioned there.
    const hostOf = new Map<string, string>();
    for (const id of ids) {
      const runs = await scheduled(id, 'runCommand');
      assert.equal(runs.length, 1);
      hostOf.set(id, runs[0]!.queue.split('@')[1]!);
    }
    // The host with more of them (three at least) is killed; the other goes on.
    const count = (h: string) => ids.filter((id) => hostOf.get(id) === h).length;
    const [killed, survivor] = count('host-a') >= count('host-b') ? (['host-a', 'host-b'] as const) : (['host-b', 'host-a'] as const);
    const moved = ids.filter((id) => hostOf.get(id) === killed);
    hosts[killed].kill('SIGKILL');
    await exited(hosts[killed]);

    const ended = [];
    for (const id of ids) ended.push(await waitForMachine(p, id, 240_000));
    for (const m of ended) {
      assert.equal(m.status, 'completed', JSON.stringify(m));
      assert.equal(m.checkpoints.length, 1, `${m.id}: one checkpoint`);
      const files = (await p.api('GET', `/v1/checkpoints/${m.checkpoints[0]}`)).body.files.map((f: any) => f.path).sort();
      assert.deepEqual(files, ['done.txt', 'start.txt'], `${m.id}: its work is in its checkpoint`);
      // Provisioned from the provider's machine queue, never from the control queue.
      assert.ok((await scheduled(m.id, 'provisionSandbox')).every((s) => s.queue === machineQueue(queue, 'local')));
    }
    // The killed host's machines went on on the other host, from their checkpoint, as interruptions.
    for (const id of moved) {
      const runs = await scheduled(id, 'runCommand');
      assert.deepEqual(
        runs.map((r) => r.queue),
        [hostQueue(queue, 'local', killed), hostQueue(queue, 'local', survivor)],
      );
      assert.equal(runs[1]!.startedBy, WorkerProcesses.identity(hosts[survivor]));
      const events = (await p.api('GET', `/v1/machines/${id}`)).body.events;
      const interrupted = events.filter((e: any) => e.action === 'machine.interrupted');
      assert.equal(interrupted.length, 1, JSON.stringify(events));
      assert.match(interrupted[0].details.instanceRef, new RegExp(`its host stopped taking work: ${killed}`));
    }
    await assertChargedOnce(projectId, ended);
    assert.deepEqual(
      ended.flatMap((m) => liveSandboxPids(m.id)),
      [],
    );
  });

  it('settles, reserves and pays while the only machine host is full', async () => {
    const queue = p.config.taskQueue;
    // One machine at a time on host-m; the bookkeeping on a control worker of its own.
    workerOn('host-m', { AUTOVIBE_WORKER_ROLES: 'machines', AUTOVIBE_WORKER_MACHINE_CONCURRENCY: '1', AUTOVIBE_HOST_QUEUE_WAIT_S: '600' });
    workerOn('control', { AUTOVIBE_WORKER_ROLES: 'control', AUTOVIBE_WORKER_CONTROL_CONCURRENCY: '4' });
    const projectId = await projectWithBudget(p, '5.00');
    const busy = await spawn(projectId, 'sleep 300');
    await waitFor(async () => liveSandboxPids(busy).length > 0, 'the busy machine to run', 120_000);

    // The next machine is provisioned, and its run waits for the host's only slot.
    const waiting = await spawn(projectId, 'echo two > two.txt');
    const hostQ = hostQueue(queue, 'local', 'host-m');
    const scrape = async () => (await fetch(`${p.apiUrl}/metrics`)).text();
    const backlogLine = new RegExp(`^autovibe_task_queue_backlog\\{queue="${hostQ.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}",kind="activity"\\} (\\d+)`, 'm');
    await waitFor(async () => Number((await scrape()).match(backlogLine)?.[1] ?? 0) >= 1, 'the host queue to show a backlog', 60_000);
    assert.equal((await scheduled(waiting, 'runCommand'))[0]?.startedBy, null, 'the run waits');

    // Control work meanwhile: a reservation (a machine accepted, 202 after its reservation)...
    const third = await spawn(projectId, 'echo three > three.txt');
    assert.deepEqual(
      (await p.db('reservations').where({ machine_id: third })).map((r) => r.status),
      ['reserved'],
    );
    // ...and a top-up paid from credits by the payment cascade's activities, in a project of its own.
    const payer = await projectWithBudget(p, '1.00');
    assert.equal((await p.api('PUT', `/v1/projects/${payer}/payment-methods`, [{ kind: 'credits' }])).status, 200);
    assert.equal((await p.api('POST', `/v1/projects/${payer}/credits`, { amount: '2.00', currency: 'USD', expiresAt: '2099-01-01T00:00:00Z' })).status, 201);
    const paymentId = (await p.api('POST', `/v1/projects/${payer}/topups`, { amount: '1.50', currency: 'USD' })).body.paymentId;
    const paid = await waitFor(
      async () => {
        const b = (await p.api('GET', `/v1/payments/${paymentId}`)).body;
        return ['succeeded', 'failed'].includes(b.status) ? b : null;
      },
      'the top-up',
      60_000,
    );
    assert.equal(paid.status, 'succeeded', JSON.stringify(paid));
    assert.equal((await scheduled(waiting, 'runCommand'))[0]?.startedBy, null, 'the host was still full while the control work was done');
    assert.ok(liveSandboxPids(busy).length > 0);

    // The busy machine ends; the others run in turn, and everything settles.
    assert.equal((await p.api('POST', `/v1/machines/${busy}/terminate`)).status, 202);
    const ended = [];
    for (const id of [busy, waiting, third]) ended.push(await waitForMachine(p, id, 180_000));
    assert.deepEqual(
      ended.map((m) => m.status),
      ['terminated', 'completed', 'completed'],
    );
    await assertChargedOnce(projectId, ended);
  });

  it('continues on one host from a checkpoint another host made, after that host and its data directory are gone', async () => {
    const queue = p.config.taskQueue;
    const first = workerOn('host-c');
    await waitFor(async () => (await p.db('task_queues').where({ host: 'host-c' })).length > 0, 'host-c to serve its queues', 60_000);
    const projectId = await projectWithBudget(p, '5.00');
    const made = await waitForMachine(
      p,
      await spawn(projectId, 'mkdir -p src && echo from-c > src/c.txt && head -c 4096 /dev/urandom > blob.bin && sha256sum blob.bin > blob.made'),
      120_000,
    );
    assert.equal(made.status, 'completed', JSON.stringify(made));
    assert.equal((await scheduled(made.id, 'runCommand'))[0]?.queue, hostQueue(queue, 'local', 'host-c'));
    const checkpointId = made.checkpoints[0] as string;
    const madeSum = (await p.api('GET', `/v1/checkpoints/${checkpointId}/files/blob.made`)).body as string;
    assert.match(madeSum, /^[0-9a-f]{64} /);

    // host-c goes away with everything on its disk.
    first.kill('SIGKILL');
    await exited(first);
    fs.rmSync(homes[homes.length - 1]!, { recursive: true, force: true });

    const second = workerOn('host-d');
    await waitFor(async () => (await p.db('task_queues').where({ host: 'host-d' })).length > 0, 'host-d to serve its queues', 60_000);
    const start = await p.api('POST', '/v1/machines', {
      projectId,
      type: 'shell',
      provider: 'local',
      checkpointId,
      command: 'cat src/c.txt > d.txt && sha256sum blob.bin > blob.sum',
      limits: { money: '0.20', minutes: 10 },
    });
    assert.equal(start.status, 202, JSON.stringify(start.body));
    const next = await waitForMachine(p, start.body.id, 120_000);
    assert.equal(next.status, 'completed', JSON.stringify(next));
    const run = (await scheduled(next.id, 'runCommand'))[0]!;
    assert.deepEqual([run.queue, run.startedBy], [hostQueue(queue, 'local', 'host-d'), WorkerProcesses.identity(second)]);
    const file = async (name: string) => (await p.api('GET', `/v1/checkpoints/${next.checkpoints[0]}/files/${name}`)).body;
    assert.equal(await file('d.txt'), 'from-c\n', "host-c's file reached host-d through the store");
    assert.equal(await file('src/c.txt'), 'from-c\n');
    assert.equal(await file('blob.sum'), madeSum, 'the binary file arrived byte-identical');
    // Both checkpoints are in the store as bundles; nothing was charged twice.
    const bundles = fs
      .readdirSync(objectStore, { recursive: true })
      .map(String)
      .filter((f) => f.endsWith('.bundle'));
    for (const id of [checkpointId, next.checkpoints[0]])
      assert.ok(
        bundles.some((b) => b.includes(id)),
        `${id} bundled in the store: ${bundles.join(', ')}`,
      );
    await assertChargedOnce(projectId, [made, next]);
  });
});

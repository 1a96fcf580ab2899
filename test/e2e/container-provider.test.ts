import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Docker from 'dockerode';
import { ContainerProvider } from '../../activities/compute/container.js';
import { startPodman, type PodmanService } from '../../scripts/services/podman.js';
import { listWarmInstances } from '../../store/compute.js';
import { insertMachine } from '../../store/machines.js';
import { reconcileScheduleId } from '../../workers/schedules.js';
import { projectWithBudget, startTestPlatform, waitFor, waitForMachine, type TestPlatform } from '../support/platform.js';

/**
 * The `container` provider end to end: the real platform (Temporal, Postgres, git) with a private
 * `podman system service` speaking the Docker Engine API, and an image imported from busybox.
 */
describe('container provider (real podman over the Docker API)', function () {
  this.timeout(240_000);
  let podman: PodmanService;
  let docker: Docker;
  let p: TestPlatform;
  let projectId: string;

  const containersOf = async (machineId: string) => docker.listContainers({ all: true, filters: { label: [`autovibe.machine=${machineId}`] } });
  const file = async (checkpointId: string, name: string) => (await p.api('GET', `/v1/checkpoints/${checkpointId}/files/${name}`)).body;

  before(async () => {
    podman = await startPodman();
    docker = new Docker({ socketPath: podman.socketPath });
    p = await startTestPlatform({
      label: 'container',
      env: {
        AUTOVIBE_CONTAINER_SOCKET: podman.socketPath,
        AUTOVIBE_CONTAINER_IMAGE: podman.image,
        // The schedule exists but never fires by itself here: the tests trigger it.
        AUTOVIBE_RECONCILE_EVERY_S: '3600',
        AUTOVIBE_RECONCILE_MIN_AGE_S: '1',
        AUTOVIBE_WARM_POOLS: 'container:lightweight=1..3',
      },
    });
    projectId = await projectWithBudget(p, '5.00');
  });
  after(async () => {
    await p?.stop();
    await podman?.stop();
  });

  it('reports the container provider available, with the reason for the ones that are not', async () => {
    const { body } = await p.api('GET', '/v1/providers');
    const byId = Object.fromEntries(body.items.map((i: any) => [i.id, i]));
    assert.equal(byId.container.available, true, JSON.stringify(byId.container));
    assert.equal(byId.local.available, true);
    assert.equal(byId['aws-ec2'].available, false);
    assert.match(byId['aws-ec2'].reason, /not configured/);
  });

  it('says why the container provider is unavailable: no socket, a dead socket, a missing image', async () => {
    const none = await new ContainerProvider({ socketPath: undefined, image: podman.image, deployment: 'x' }).availability();
    assert.equal(none.available, false);
    assert.match(none.reason!, /no Docker-compatible socket/);
    const dead = await new ContainerProvider({ socketPath: path.join(p.home, 'nothing.sock'), image: podman.image, deployment: 'x' }).availability();
    assert.equal(dead.available, false);
    assert.match(dead.reason!, /does not answer/);
    const noImage = await new ContainerProvider({ socketPath: podman.socketPath, image: 'localhost/not-built:1', deployment: 'x' }).availability();
    assert.equal(noImage.available, false);
    assert.match(noImage.reason!, /image localhost\/not-built:1 is missing/);
  });

  it('runs a shell machine in a container: files in the checkpoint, no network, cost, nothing left', async () => {
    const start = await p.api('POST', '/v1/machines', {
      projectId,
      type: 'shell',
      provider: 'container',
      command: [
        'echo "hello from $AUTOVIBE_MACHINE_ID" > hello.txt',
        'ls /sys/class/net > net.txt',
        '(wget -q -T 2 -O - http://127.0.0.1:1/ >/dev/null 2>&1 && echo reachable || echo unreachable) > wget.txt',
        'cat /sys/fs/cgroup/memory.max > memory.txt 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes > memory.txt',
        'hostname > host.txt',
      ].join('; '),
      limits: { money: '0.25', minutes: 5 },
    });
    assert.equal(start.status, 202, JSON.stringify(start.body));
    const m = await waitForMachine(p, start.body.id);
    assert.equal(m.status, 'completed', JSON.stringify(m));
    assert.equal(m.provider, 'container');
    assert.match(m.instanceRef, /^[0-9a-f]{64}$/);
    assert.equal(m.checkpoints.length, 1);

    const cp = m.checkpoints[0];
    assert.equal(await file(cp, 'hello.txt'), `hello from ${m.id}\n`);
    // Only the loopback interface exists: the container has no network at all.
    assert.equal(await file(cp, 'net.txt'), 'lo\n');
    assert.equal(await file(cp, 'wget.txt'), 'unreachable\n');
    // The profile's memory cap (lightweight: 2 GiB) is applied to the container.
    assert.equal(String(await file(cp, 'memory.txt')).trim(), String(2048 * 1024 * 1024));
    assert.equal(String(await file(cp, 'host.txt')).trim(), m.instanceRef.slice(0, 12));

    const costs = (await p.api('GET', `/v1/projects/${projectId}/costs`)).body;
    const events = costs.items.filter((e: any) => e.machineId === m.id);
    assert.equal(events.length, 1);
    assert.equal(events[0].details.provider, 'container');
    assert.ok(Number(events[0].amount) > 0, events[0].amount);
    assert.equal(m.cost.amount, events[0].amount);

    assert.deepEqual(await containersOf(m.id), [], 'the container was removed with the machine');
    await assert.rejects(docker.getContainer(m.instanceRef).inspect(), (e: any) => e.statusCode === 404);
    assert.equal(fs.existsSync(path.join(p.config.workspacesDir, m.id)), false, 'the workspace is gone');
  });

  it('re-provisions from the latest checkpoint when the container is removed from outside mid-command', async () => {
    // First run: count 1, then wait long. After the interruption it resumes from the checkpoint
    // (count 1 there), counts 2 and finishes without waiting.
    const command = 'n=$(cat runs.txt 2>/dev/null || echo 0); n=$((n+1)); echo $n > runs.txt; [ $n -ge 2 ] || sleep 120; echo done > done.txt';
    const start = await p.api('POST', '/v1/machines', { projectId, type: 'shell', provider: 'container', command, limits: { money: '0.25', minutes: 5 } });
    assert.equal(start.status, 202, JSON.stringify(start.body));
    const id = start.body.id;
    const runs = path.join(p.config.workspacesDir, id, 'runs.txt');
    await waitFor(async () => fs.existsSync(runs) && fs.readFileSync(runs, 'utf8') === '1\n', 'the first run to count');
    assert.equal((await p.api('POST', `/v1/machines/${id}/checkpoint`)).status, 202);
    const running = await waitFor(async () => {
      const { body } = await p.api('GET', `/v1/machines/${id}`);
      return body.checkpoints.length === 1 ? body : null;
    }, 'the manual checkpoint');
    const first = running.instanceRef as string;
    assert.match(first, /^[0-9a-f]{64}$/);
    assert.equal(await file(running.checkpoints[0], 'runs.txt'), '1\n');

    await podman.podman(['rm', '--force', '--time', '0', first]);

    const m = await waitForMachine(p, id, 120_000);
    assert.equal(m.status, 'completed', JSON.stringify(m));
    assert.notEqual(m.instanceRef, first, 'a new container was provisioned');
    const final = m.checkpoints.at(-1);
    assert.equal(await file(final, 'runs.txt'), '2\n', 'the second run started from the checkpoint');
    assert.equal(await file(final, 'done.txt'), 'done\n');
    const interrupted = m.events.filter((e: any) => e.action === 'machine.interrupted');
    assert.equal(interrupted.length, 1, JSON.stringify(m.events));
    assert.equal(interrupted[0].details.instanceRef, first);
    assert.equal(interrupted[0].details.resumeFrom, running.checkpoints[0]);
    assert.deepEqual(await containersOf(id), []);
  });

  it('gives up after a bounded number of interruptions, failing the machine with the reason', async () => {
    const start = await p.api('POST', '/v1/machines', {
      projectId,
      type: 'shell',
      provider: 'container',
      command: 'sleep 120',
      limits: { money: '0.25', minutes: 5 },
    });
    assert.equal(start.status, 202);
    const id = start.body.id;
    const removed: string[] = [];
    for (let i = 0; i < 4; i++) {
      const ref = await waitFor(
        async () => {
          const { body } = await p.api('GET', `/v1/machines/${id}`);
          if (body.status !== 'running' || !body.instanceRef || removed.includes(body.instanceRef)) return null;
          const [c] = await containersOf(id);
          return c?.State === 'running' && c.Id === body.instanceRef ? body.instanceRef : null;
        },
        `instance ${i + 1} to run`,
      );
      await new Promise((r) => setTimeout(r, 500)); // let the command start in it
      await podman.podman(['rm', '--force', '--time', '0', ref]);
      removed.push(ref);
    }
    const m = await waitForMachine(p, id);
    assert.equal(m.status, 'failed', JSON.stringify(m));
    assert.match(m.error, /interrupted 4 times; giving up after 3 re-provisions/);
    assert.equal(m.events.filter((e: any) => e.action === 'machine.interrupted').length, 3);
    assert.deepEqual(await containersOf(id), []);
  });

  it('reconciliation (Temporal Schedule) reclaims a leaked labelled container and leaves a live machine alone', async () => {
    const live = await p.api('POST', '/v1/machines', {
      projectId,
      type: 'shell',
      provider: 'container',
      command: 'sleep 120',
      limits: { money: '0.25', minutes: 5 },
    });
    assert.equal(live.status, 202);
    const liveMachine = await waitFor(async () => {
      const { body } = await p.api('GET', `/v1/machines/${live.body.id}`);
      return body.status === 'running' && body.instanceRef ? body : null;
    }, 'the live machine to run');

    const leakedWorkspace = fs.mkdtempSync(path.join(p.home, 'leak-'));
    const leak = (deployment: string) => ({
      Image: podman.image,
      Cmd: ['/bin/sleep', '600'],
      Labels: {
        'autovibe.managed': 'true',
        'autovibe.deployment': deployment,
        'autovibe.machine': `machine-${crypto.randomUUID()}`,
        'autovibe.project': projectId,
        'autovibe.created-at': new Date(Date.now() - 10_000).toISOString(),
      },
      HostConfig: { NetworkMode: 'none', Binds: [`${leakedWorkspace}:/workspace`] },
    });
    const leaked = await docker.createContainer(leak(p.config.taskQueue));
    await leaked.start();
    // Another deployment's container on the same host is not ours to reclaim.
    const foreign = await docker.createContainer(leak('another-deployment'));
    await foreign.start();

    await p.temporal.schedule.getHandle(reconcileScheduleId(p.config)).trigger();
    const audit = await waitFor(async () => {
      const { body } = await p.api('GET', `/v1/audit?action=instance.reclaimed&subjectId=${leaked.id}`);
      return body.items.length ? body.items : null;
    }, 'the reclaim audit record');
    assert.equal(audit.length, 1);
    assert.equal(audit[0].details.provider, 'container');
    await assert.rejects(leaked.inspect(), (e: any) => e.statusCode === 404, 'the leaked container is gone');
    const liveInfo = await docker.getContainer(liveMachine.instanceRef).inspect();
    assert.equal(liveInfo.State.Running, true, "the live machine's container is untouched");
    const reclaimed = (await p.api('GET', `/v1/audit?action=instance.reclaimed`)).body.items.map((a: any) => a.subjectId);
    assert.ok(!reclaimed.includes(liveMachine.instanceRef));
    assert.equal((await foreign.inspect()).State.Running, true, "another deployment's container is untouched");
    await foreign.remove({ force: true });

    assert.equal((await p.api('POST', `/v1/machines/${live.body.id}/terminate`)).status, 202);
    const ended = await waitForMachine(p, live.body.id);
    assert.equal(ended.status, 'terminated');
    assert.deepEqual(await containersOf(live.body.id), []);
  });

  it('hands a pre-started container from the warm pool to a new machine', async () => {
    // The schedule's run tops the pool up to its minimum (1) and keeps the pooled container.
    await p.temporal.schedule.getHandle(reconcileScheduleId(p.config)).trigger();
    const pooled = await waitFor(async () => {
      const free = await listWarmInstances(p.db, { provider: 'container', profile: 'lightweight', free: true });
      return free.length === 1 ? free[0] : null;
    }, 'a warm container');
    assert.equal((await docker.getContainer(pooled.instanceRef).inspect()).State.Running, true);

    const start = await p.api('POST', '/v1/machines', {
      projectId,
      type: 'shell',
      provider: 'container',
      command: 'echo warm > warm.txt; ls /sys/class/net > net.txt',
      limits: { money: '0.25', minutes: 5 },
    });
    assert.equal(start.status, 202);
    const m = await waitForMachine(p, start.body.id);
    assert.equal(m.status, 'completed', JSON.stringify(m));
    assert.equal(m.instanceRef, pooled.instanceRef, 'the machine ran in the pooled container');
    assert.equal(await file(m.checkpoints[0], 'warm.txt'), 'warm\n');
    assert.equal(await file(m.checkpoints[0], 'net.txt'), 'lo\n');
    await assert.rejects(docker.getContainer(pooled.instanceRef).inspect(), (e: any) => e.statusCode === 404, 'terminated after use');
    assert.equal(
      (await listWarmInstances(p.db, { provider: 'container' })).some((w) => w.instanceRef === pooled.instanceRef),
      false,
    );
  });

  it('scales the warm pool with the queue of waiting machines, within its maximum, and back down', async () => {
    const schedule = p.temporal.schedule.getHandle(reconcileScheduleId(p.config));
    const free = async () => (await listWarmInstances(p.db, { provider: 'container', profile: 'lightweight', free: true })).length;
    const project = (await p.api('GET', `/v1/projects/${projectId}`)).body;
    // Machines waiting for a container (rows only: no workflow picks them up).
    const waiting = Array.from({ length: 4 }, () => `machine-${crypto.randomUUID()}`);
    for (const id of waiting) {
      await insertMachine(p.db, {
        id,
        projectId,
        objectiveId: null,
        type: 'shell',
        provider: 'container',
        profile: 'lightweight',
        command: 'true',
        prompt: null,
        parentCheckpointId: project.rootCheckpointId,
        limits: { money: '0.10', minutes: 5 },
        workflowId: id,
        createdBy: 'test',
      });
    }
    await schedule.trigger();
    await waitFor(async () => (await free()) === 3, 'the pool to grow to its maximum (1 + 4 waiting, capped at 3)');
    assert.equal((await docker.listContainers({ filters: { label: ['autovibe.tag.pool=container/lightweight'] } })).length, 3);

    await p.db('machines').whereIn('id', waiting).update({ status: 'failed' });
    await schedule.trigger();
    await waitFor(async () => (await free()) === 1, 'the pool to shrink back to its minimum');
    await waitFor(
      async () => (await docker.listContainers({ all: true, filters: { label: ['autovibe.tag.pool=container/lightweight'] } })).length === 1,
      'surplus containers removed',
    );
  });

  it('refuses an unavailable provider with 422 and the reason', async () => {
    const res = await p.api('POST', '/v1/machines', { projectId, type: 'shell', provider: 'aws-ec2', command: 'true' });
    assert.equal(res.status, 422, JSON.stringify(res.body));
    assert.match(res.body.error.message, /^provider: provider aws-ec2 is unavailable: .*not configured/);
    // No model endpoint is configured here: the type is refused before placement (agents on container: agent-container.test.ts).
    const agent = await p.api('POST', '/v1/machines', { projectId, type: 'claude-code', provider: 'container', prompt: 'x' });
    assert.equal(agent.status, 409, JSON.stringify(agent.body));
    assert.equal(agent.body.error.code, 'machine_type_unavailable');
  });

  it('balances pipeline steps across providers: a full container provider spills the rest over to local', async () => {
    // A second platform on the same podman, with room for one container machine at a time.
    const q = await startTestPlatform({
      label: 'container-capacity',
      env: {
        AUTOVIBE_CONTAINER_SOCKET: podman.socketPath,
        AUTOVIBE_CONTAINER_IMAGE: podman.image,
        AUTOVIBE_RECONCILE_EVERY_S: '3600',
        AUTOVIBE_PROVIDER_CAPACITY: 'container=1',
      },
    });
    try {
      const project = await projectWithBudget(q, '5.00');
      await waitFor(
        async () => ((await q.api('GET', '/v1/providers')).body.items.find((i: any) => i.id === 'container')?.available ? true : null),
        'container reported',
        30_000,
      );
      const steps = ['a', 'b', 'c'].map((id) => ({ id, type: 'shell', command: `sleep 5; echo ${id} > ${id}.txt` }));
      const started = await q.api('POST', '/v1/pipelines', { projectId: project, steps });
      assert.equal(started.status, 202, JSON.stringify(started.body));
      const done = await waitFor(
        async () => {
          const b = (await q.api('GET', `/v1/pipelines/${started.body.id}`)).body;
          return b.status !== 'running' ? b : null;
        },
        'pipeline',
        120_000,
      );
      assert.equal(done.status, 'completed', JSON.stringify(done));
      const machines = await Promise.all(done.steps.map(async (s: any) => (await q.api('GET', `/v1/machines/${s.machineId}`)).body));
      const providers = machines.map((m: any) => m.provider).sort();
      assert.deepEqual(providers, ['container', 'local', 'local']);
      // They ran side by side: the spill-over did not wait for the container.
      const spans = machines.map((m: any) => [Date.parse(m.startedAt), Date.parse(m.endedAt)]);
      assert.ok(Math.max(...spans.map((x: number[]) => x[0]!)) < Math.min(...spans.map((x: number[]) => x[1]!)), JSON.stringify(spans));
    } finally {
      await q.stop();
    }
  });
});

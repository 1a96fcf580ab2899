import assert from 'node:assert/strict';
import Docker from 'dockerode';
import { ContainerProvider } from '../../activities/compute/container.js';
import { fillPool, forgetWarm } from '../../activities/compute/warm-pool.js';
import { startPodman, type PodmanService } from '../../scripts/services/podman.js';
import { AGENT_PROVIDER_REASON, listWarmInstances, saveProviderStatus } from '../../store/compute.js';
import { installAgentClis, toolsDir } from '../support/llm/agent-clis.js';
import { startScriptedEndpoint, writeFileScript, type ScriptedEndpoint, type Turn } from '../support/llm/endpoint.js';
import { projectWithBudget, startTestPlatform, waitFor, waitForMachine, type TestPlatform } from '../support/platform.js';

/**
 * A model-backed machine on the `container` provider: the real Claude Code CLI in a container of a
 * private `podman system service` (busybox image + the host's /usr read-only), its model calls going
 * through the metering proxy's unix socket to a scripted model endpoint.
 */
describe('agent machines in containers (real podman, real Claude Code CLI)', function () {
  this.timeout(300_000);
  let podman: PodmanService;
  let docker: Docker;
  let llm: ScriptedEndpoint;
  let p: TestPlatform;

  const containersOf = async (machineId: string) => docker.listContainers({ all: true, filters: { label: [`autovibe.machine=${machineId}`] } });
  const file = async (checkpointId: string, name: string) => (await p.api('GET', `/v1/checkpoints/${checkpointId}/files/${name}`)).body;

  before(async function () {
    this.timeout(1_200_000);
    await installAgentClis();
    podman = await startPodman();
    docker = new Docker({ socketPath: podman.socketPath });
    llm = await startScriptedEndpoint();
    p = await startTestPlatform({
      label: 'agent-container',
      env: {
        AUTOVIBE_TOOLS_DIR: toolsDir(),
        AUTOVIBE_CONTAINER_SOCKET: podman.socketPath,
        AUTOVIBE_CONTAINER_IMAGE: podman.image,
        AUTOVIBE_RECONCILE_EVERY_S: '3600',
        ANTHROPIC_API_KEY: 'test-anthropic-key',
        ANTHROPIC_BASE_URL: llm.url,
      },
    });
    // The worker reports the container provider before the api places machines on it.
    await waitFor(async () => (await p.api('GET', '/v1/providers')).body.items.find((i: any) => i.id === 'container')?.available, 'container provider up');
  });
  after(async () => {
    await p?.stop();
    await llm?.stop();
    await podman?.stop();
  });

  it('runs claude-code in its own container: metered, its files checkpointed, no warm container taken, nothing left', async () => {
    // A free pooled container: an agent machine must not take it (it lacks the agent's mounts).
    const provider = new ContainerProvider({ socketPath: podman.socketPath, image: podman.image, deployment: p.config.taskQueue });
    const [pooled] = await fillPool(p.db, p.config, provider, 'lightweight', 1);

    const projectId = await projectWithBudget(p, '20.00');
    const script: Turn[] = [
      {
        kind: 'tool',
        name: 'Bash',
        args: {
          command: `hostname > /workspace/where.txt; (test -e ${p.config.projectsDir} && echo visible || echo absent) > /workspace/host-path.txt`,
          description: 'Say where it runs',
        },
      },
      { kind: 'tool', name: 'Write', args: { file_path: '/workspace/hello.txt', content: 'hello from a container\n' } },
      { kind: 'text', text: 'Done.' },
    ];
    llm.reset();
    llm.setScript(script);
    const start = await p.api('POST', '/v1/machines', {
      projectId,
      type: 'claude-code',
      provider: 'container',
      prompt: 'Say where you run, then create hello.txt.',
      limits: { money: '5.00', minutes: 5 },
    });
    assert.equal(start.status, 202, JSON.stringify(start.body));
    const m = await waitForMachine(p, start.body.id, 240_000);
    assert.equal(m.status, 'completed', JSON.stringify(m));
    assert.equal(m.provider, 'container');
    assert.match(m.instanceRef, /^[0-9a-f]{64}$/);
    assert.notEqual(m.instanceRef, pooled!.instanceRef, 'the agent got a container of its own');

    // It ran inside that container: its hostname is the container's, and the host's files are not there.
    const final = m.checkpoints.at(-1);
    assert.equal(String(await file(final, 'where.txt')).trim(), m.instanceRef.slice(0, 12));
    assert.equal(await file(final, 'host-path.txt'), 'absent\n');
    assert.equal(await file(final, 'hello.txt'), 'hello from a container\n');

    // Every model call went through the metering proxy: usage and one api cost event per call.
    const reported = llm.requests.filter((r) => r.usage);
    const totals = llm.totals();
    assert.ok(totals.calls >= 3, `calls: ${totals.calls}`);
    assert.deepEqual(m.usage, { inputTokens: totals.inputTokens, outputTokens: totals.outputTokens, apiCalls: totals.calls });
    const costs = (await p.api('GET', `/v1/projects/${projectId}/costs`)).body.items.filter((e: any) => e.machineId === m.id);
    assert.equal(costs.filter((e: any) => e.category === 'api').length, reported.length);
    assert.equal(costs.filter((e: any) => e.category === 'infra').length, 1);
    assert.equal(costs.find((e: any) => e.category === 'infra').details.provider, 'container');

    assert.deepEqual(await containersOf(m.id), [], 'the container was removed with the machine');
    const free = await listWarmInstances(p.db, { provider: 'container', free: true });
    assert.ok(
      free.some((w) => w.instanceRef === pooled!.instanceRef),
      'the pooled container is still free',
    );
    await provider.terminate(pooled!);
    await forgetWarm(p.db, pooled!.instanceRef);
  });

  it('terminating an agent machine mid-run stops it and removes its container', async () => {
    const projectId = await projectWithBudget(p, '20.00');
    llm.reset();
    llm.setScript([
      { kind: 'tool', name: 'Bash', args: { command: 'touch /workspace/started.txt; sleep 100', description: 'Wait', timeout: 110_000 } },
      { kind: 'text', text: 'Done.' },
    ]);
    const start = await p.api('POST', '/v1/machines', {
      projectId,
      type: 'claude-code',
      provider: 'container',
      prompt: 'Wait.',
      limits: { money: '5.00', minutes: 5 },
    });
    assert.equal(start.status, 202, JSON.stringify(start.body));
    const id = start.body.id;
    // The agent is inside its tool call (the sleep runs in the container).
    const running = await waitFor(
      async () => {
        const [c] = await containersOf(id);
        if (!c) return null;
        const ps = await podman.podman(['top', c.Id, 'args']).catch(() => '');
        return ps.includes('sleep 100') ? c : null;
      },
      'the agent to run its command',
      120_000,
    );
    assert.equal((await p.api('POST', `/v1/machines/${id}/terminate`)).status, 202);
    const m = await waitForMachine(p, id, 60_000);
    assert.equal(m.status, 'terminated', JSON.stringify(m));
    assert.equal(m.instanceRef, running.Id);
    assert.deepEqual(await containersOf(id), []);
    await assert.rejects(docker.getContainer(running.Id).inspect(), (e: any) => e.statusCode === 404);
  });

  it('goes on in a new container from the last checkpoint when its container is removed from outside', async () => {
    const projectId = await projectWithBudget(p, '20.00');
    llm.reset();
    // First container: one file, then a long command during which the container disappears.
    // Second container: the agent, started again, is given the next turn and finishes.
    // (Claude Code refuses a command that is only a long sleep, hence the echo.)
    llm.setScript([
      { kind: 'tool', name: 'Write', args: { file_path: '/workspace/first.txt', content: 'first\n' } },
      { kind: 'tool', name: 'Bash', args: { command: 'echo waiting; sleep 100', description: 'Wait', timeout: 110_000 } },
      { kind: 'tool', name: 'Write', args: { file_path: '/workspace/second.txt', content: 'second\n' } },
      { kind: 'text', text: 'Done.' },
    ]);
    const start = await p.api('POST', '/v1/machines', {
      projectId,
      type: 'claude-code',
      provider: 'container',
      prompt: 'Go.',
      limits: { money: '5.00', minutes: 5 },
    });
    assert.equal(start.status, 202, JSON.stringify(start.body));
    const id = start.body.id;
    const first = await waitFor(
      async () => {
        const [c] = await containersOf(id);
        return c && (await podman.podman(['top', c.Id, 'args']).catch(() => '')).includes('sleep 100') ? c : null;
      },
      'the agent to run its long command',
      120_000,
    );
    await docker.getContainer(first.Id).remove({ force: true });

    const m = await waitForMachine(p, id, 240_000);
    assert.equal(m.status, 'completed', JSON.stringify(m));
    assert.notEqual(m.instanceRef, first.Id, 'it went on in a new container');
    const interrupted = m.events.filter((e: any) => e.action === 'machine.interrupted');
    assert.equal(interrupted.length, 1);
    assert.equal(interrupted[0].details.instanceRef, first.Id);
    const final = m.checkpoints.at(-1);
    assert.equal(await file(final, 'first.txt'), 'first\n', 'the work of the first container was kept');
    assert.equal(await file(final, 'second.txt'), 'second\n');
    // Model calls of both runs are metered, none twice.
    assert.equal(m.usage.apiCalls, llm.totals().calls);
    assert.deepEqual(await containersOf(id), []);
  });

  it("places agents on container by the project's rules; providers that cannot run agents refuse them with the reason", async () => {
    const projectId = await projectWithBudget(p, '20.00');
    // Fargate up as far as the api knows (no worker runs it here): still no place for an agent.
    await saveProviderStatus(p.db, { id: 'aws-ecs', available: true, reason: null, checkedAt: new Date() });
    try {
      const refused = await p.api('POST', '/v1/machines', { projectId, type: 'claude-code', provider: 'aws-ecs', prompt: 'x' });
      assert.equal(refused.status, 422, JSON.stringify(refused.body));
      assert.equal(refused.body.error.message, `provider: provider aws-ecs is unavailable: ${AGENT_PROVIDER_REASON}`);
      assert.equal(refused.body.error.details.field, 'provider');

      const rules = [{ name: 'agents in containers', match: { types: ['claude-code'] }, providers: ['aws-ecs', 'container', 'local'] }];
      assert.equal((await p.api('PUT', `/v1/projects/${projectId}/placement`, { rules })).status, 200);
      llm.reset();
      llm.setScript(writeFileScript('claude', { path: '/workspace/placed.txt', content: 'placed\n' }));
      const start = await p.api('POST', '/v1/machines', {
        projectId,
        type: 'claude-code',
        prompt: 'Create placed.txt.',
        limits: { money: '5.00', minutes: 5 },
      });
      assert.equal(start.status, 202, JSON.stringify(start.body));
      const m = await waitForMachine(p, start.body.id, 240_000);
      assert.equal(m.status, 'completed', JSON.stringify(m));
      assert.equal(m.provider, 'container');
      assert.equal(await file(m.checkpoints.at(-1), 'placed.txt'), 'placed\n');
      const requested = m.events.find((e: any) => e.action === 'machine.requested');
      assert.equal(requested.details.placement.rule, 'agents in containers');
      assert.deepEqual(requested.details.placement.skipped, [{ provider: 'aws-ecs', reason: AGENT_PROVIDER_REASON }]);
    } finally {
      await saveProviderStatus(p.db, { id: 'aws-ecs', available: false, reason: 'not configured', checkedAt: new Date() });
    }
  });
});

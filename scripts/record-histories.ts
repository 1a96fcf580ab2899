import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadConfig } from '../config/index.js';
import { startPlatform, type Platform } from './platform.js';
import { call as apiCall, until as pollUntil } from './recording.js';
import { startPodman, type PodmanService } from './services/podman.js';
import { startPostgres } from './services/postgres.js';
import { ensureTemporalBinary, startTemporalDevServer } from './services/temporal.js';
import { installAgentClis, toolsDir } from '../test/support/llm/agent-clis.js';
import { startScriptedEndpoint, writeFileScript } from '../test/support/llm/endpoint.js';
import { WorkerProcesses } from '../test/support/worker-processes.js';
import { liveSandboxPids } from '../activities/compute/local-sandbox.js';
import { issuesDelivery, startGithubPeer } from '../test/support/github-peer.js';
import { startHttpGitServer } from '../test/support/http-git-server.js';
import { gitFetchScheduleId } from '../domain/git-remote.js';
import { backupScheduleId } from '../workers/schedules.js';

/**
 * Records workflow histories for the replay test (test/workflows/replay.test.ts). Run it after an
 * intended, compatible workflow change: `npm run record-histories`. Each scenario's history is
 * written to test/workflows/histories/<scenario>.json. Name scenarios to record only those
 * (`npm run record-histories -- pipeline-diamond`): keep the histories of older workflow versions,
 * they are what running executions replay.
 */
const OUT = path.resolve('test/workflows/histories');

// Scenarios that expect a refusal (409 budget_exceeded) go on with its body.
const call = (p: Platform, method: string, url: string, body?: unknown) => apiCall(p, method, url, body, { tolerate: [409] });
const until = (p: Platform, url: string, done: (b: any) => boolean) => pollUntil(p, url, done, { tolerate: [409] });

const machineEnded = (b: any) => ['completed', 'failed', 'terminated', 'refused'].includes(b.status);

/** A machine's checkpoint snapshot lifecycle, then one run each of the scheduled backup and prune. */
async function recordSnapshotScenarios(p: Platform, queue: string, recorded: Array<[string, string]>): Promise<void> {
  const project = await call(p, 'POST', '/v1/projects', { name: 'snapshot histories' });
  await call(p, 'PUT', `/v1/projects/${project.id}/budget`, { amount: '1.00', currency: 'USD', period: 'total' });
  const m = await call(p, 'POST', '/v1/machines', { projectId: project.id, type: 'shell', command: 'echo s > s.txt', checkpointId: project.rootCheckpointId });
  const ended = await until(p, `/v1/machines/${m.id}`, machineEnded);
  await until(p, `/v1/checkpoints/${ended.checkpoints[0]}`, (b) => b.snapshot?.status === 'replicated');
  recorded.push(['snapshot-lifecycle', `snapshot-${ended.checkpoints[0]}`]);
  await p.temporal.workflow.execute('snapshotBackup', { workflowId: 'snapshot-backup-recorded', taskQueue: queue, args: [{}] });
  recorded.push(['snapshot-backup', 'snapshot-backup-recorded']);
  await p.temporal.workflow.execute('snapshotPrune', { workflowId: 'snapshot-prune-recorded', taskQueue: queue, args: [{ graceMs: 0 }] });
  recorded.push(['snapshot-prune', 'snapshot-prune-recorded']);
}

/**
 * A machine whose worker is stopped for a deploy (SIGTERM) while it runs: handed over, it goes on
 * on a second worker. Both are real worker processes on a task queue of their own (the recording
 * platform's in-process worker must not take the run).
 */
async function recordHandover(base: ReturnType<typeof loadConfig>, projectId: string): Promise<string> {
  const taskQueue = `${base.taskQueue}-handover`;
  const api = await startPlatform({ config: { ...base, taskQueue }, worker: false });
  const workers = new WorkerProcesses();
  const target = { config: { home: base.home, taskQueue }, databaseUrl: base.databaseUrl, temporalAddress: base.temporalAddress! };
  try {
    const a = workers.start(target);
    const m = await call(api, 'POST', '/v1/machines', {
      projectId,
      type: 'shell',
      provider: 'local',
      command: 'echo before > before.txt; sleep 15; echo after > after.txt',
    });
    await until(api, `/v1/machines/${m.id}`, (b) => b.status === 'running');
    workers.start(target);
    await workers.stop(a, 60_000);
    const ended = await until(api, `/v1/machines/${m.id}`, machineEnded);
    if (!ended.events.some((e: { action: string }) => e.action === 'machine.handed_over')) throw new Error(`machine ${m.id} was not handed over`);
    return m.id as string;
  } finally {
    await workers.killAll();
    await api.stop();
  }
}

/**
 * Machine queues: a machine provisioned on one host (its own home) whose host is killed (SIGKILL)
 * while it runs; its host queue takes nothing more, so it is re-provisioned on the other host.
 */
async function recordHostLost(base: ReturnType<typeof loadConfig>, projectId: string): Promise<string> {
  const taskQueue = `${base.taskQueue}-host-lost`;
  const api = await startPlatform({ config: { ...base, taskQueue }, worker: false });
  const workers = new WorkerProcesses();
  const homes = ['lost-a', 'lost-b'].map((h) => fs.mkdtempSync(path.join(os.tmpdir(), `autovibe-record-${h}-`)));
  const start = (i: number) =>
    workers.start(
      { config: { home: homes[i]!, taskQueue }, databaseUrl: base.databaseUrl, temporalAddress: base.temporalAddress! },
      { AUTOVIBE_WORKER_HOST: i ? 'lost-b' : 'lost-a', AUTOVIBE_WORKER_PROVIDERS: 'local', AUTOVIBE_HOST_QUEUE_WAIT_S: '5' },
    );
  try {
    const a = start(0);
    const m = await call(api, 'POST', '/v1/machines', {
      projectId,
      type: 'shell',
      provider: 'local',
      command: 'echo before > before.txt; sleep 15; echo after > after.txt',
    });
    for (let i = 0; liveSandboxPids(m.id).length === 0; i++) {
      if (i > 600) throw new Error(`machine ${m.id} did not start`);
      await new Promise((r) => setTimeout(r, 200));
    }
    start(1);
    await workers.kill(a);
    const ended = await until(api, `/v1/machines/${m.id}`, machineEnded);
    if (!ended.events.some((e: { action: string }) => e.action === 'machine.interrupted')) throw new Error(`machine ${m.id} was not moved`);
    return m.id as string;
  } finally {
    await workers.killAll();
    await api.stop();
    for (const home of homes) fs.rmSync(home, { recursive: true, force: true });
  }
}

/** A webhook endpoint's dispatcher: a delivery retried twice, a redelivery, disable and re-enable, then deletion (the run ends). */
async function recordWebhookScenario(p: Platform, projectId: string, recorded: Array<[string, string]>): Promise<void> {
  const tries = new Map<string, number>();
  const server = http.createServer((req, res) => {
    req.resume();
    const id = String(req.headers['webhook-id']);
    const n = (tries.get(id) ?? 0) + 1;
    tries.set(id, n);
    res.writeHead(n <= 2 ? 503 : 204).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
    const hook = await call(p, 'POST', '/v1/webhooks', { projectId, url, events: ['budget.*'] });
    const deliveries = (n: number) =>
      until(p, `/v1/webhooks/${hook.id}/deliveries`, (b) => b.items.length >= n && b.items.every((d: any) => d.status !== 'pending'));
    await call(p, 'PUT', `/v1/projects/${projectId}/budget`, { amount: '1.50', currency: 'USD', period: 'total' });
    const first = (await deliveries(1)).items[0];
    await call(p, 'POST', `/v1/webhooks/${hook.id}/deliveries/${first.id}/redeliver`, {});
    await deliveries(2);
    await call(p, 'PATCH', `/v1/webhooks/${hook.id}`, { enabled: false });
    await new Promise((r) => setTimeout(r, 7_000)); // the dispatcher sees it disabled and waits
    await call(p, 'PATCH', `/v1/webhooks/${hook.id}`, { enabled: true });
    await call(p, 'PUT', `/v1/projects/${projectId}/budget`, { amount: '1.00', currency: 'USD', period: 'total' });
    await deliveries(3);
    await fetch(`${p.apiUrl}/v1/webhooks/${hook.id}`, { method: 'DELETE', headers: { authorization: `Bearer ${p.adminKey}` } });
    await p.temporal.workflow.getHandle(hook.id).result();
    recorded.push(['webhook-dispatcher', hook.id]);
  } finally {
    server.close();
  }
}

/**
 * A GitHub integration's dispatcher: an issue labelled for AutoVibe starts an objective; its status
 * changes are commented (one comment failing once, retried) and its completion opens the pull
 * request; then the integration is removed (the run ends). Against the local GitHub REST peer and
 * a real git http-backend.
 */
async function recordIntegrationScenario(p: Platform, recorded: Array<[string, string]>): Promise<void> {
  const git = await startHttpGitServer({ username: 'robot', token: 'git-token' });
  const gh = await startGithubPeer({ owner: 'octo-org', repo: 'app', token: 'gh-token' });
  try {
    git.addRepo('app', { 'README.md': 'readme\n' });
    const project = await call(p, 'POST', '/v1/projects', { name: 'integration history' });
    await call(p, 'PUT', `/v1/projects/${project.id}/budget`, { amount: '1.00', currency: 'USD', period: 'total' });
    await call(p, 'PUT', `/v1/projects/${project.id}/git-remote`, { url: git.url('app'), username: 'robot', token: 'git-token' });
    const secret = 'history-secret';
    const integration = await call(p, 'PUT', `/v1/projects/${project.id}/integrations/github`, {
      config: { apiBase: gh.url, owner: 'octo-org', repo: 'app', triggerLabel: 'autovibe', autoPullRequest: true },
      token: 'gh-token',
      webhookSecret: secret,
    });
    gh.failNext(1);
    const delivery = issuesDelivery(secret, {
      action: 'labeled',
      owner: 'octo-org',
      repo: 'app',
      number: 7,
      title: 'Add a file',
      body: 'echo from-issue > issue.txt',
      label: 'autovibe',
    });
    const res = await fetch(`${p.apiUrl}/hooks/github/${integration.id}`, { method: 'POST', headers: delivery.headers, body: delivery.body });
    const hook = (await res.json()) as { objectiveId: string };
    await until(p, `/v1/objectives/${hook.objectiveId}`, (b) => ['completed', 'failed'].includes(b.status));
    for (let i = 0; i < 600 && !gh.comments.some((c) => c.body.includes('**completed**')); i++) await new Promise((r) => setTimeout(r, 200));
    await fetch(`${p.apiUrl}/v1/projects/${project.id}/integrations/github`, { method: 'DELETE', headers: { authorization: `Bearer ${p.adminKey}` } });
    const workflowId = `integration-dispatcher-${integration.id}`;
    await p.temporal.workflow.getHandle(workflowId).result();
    recorded.push(['integration-dispatcher', workflowId]);
  } finally {
    await gh.stop();
    await git.stop();
  }
}

/** A project's scheduled git fetch: a commit pushed to a real `git http-backend` remote, the schedule triggered, one branch imported and one missing. */
async function recordGitFetchScenario(p: Platform, projectId: string, recorded: Array<[string, string]>): Promise<void> {
  const server = await startHttpGitServer({ username: 'robot', token: 'recording-token' });
  try {
    server.addRepo('app', { 'README.md': 'remote\n' });
    await call(p, 'PUT', `/v1/projects/${projectId}/git-remote`, {
      url: server.url('app'),
      username: 'robot',
      token: 'recording-token',
      fetch: { branches: ['main', 'missing'], everyMinutes: 60 },
    });
    server.commitTo('app', 'main', { 'NEW.md': 'new\n' });
    const schedule = p.temporal.schedule.getHandle(gitFetchScheduleId(projectId));
    await schedule.trigger();
    await until(p, `/v1/projects/${projectId}/git-remote`, (b) => Boolean(b.fetch?.lastRunAt));
    const [run] = (await schedule.describe()).info.recentActions;
    await p.temporal.workflow.getHandle(run!.action.workflow.workflowId).result();
    recorded.push(['git-fetch-scheduled', run!.action.workflow.workflowId]);
    await fetch(`${p.apiUrl}/v1/projects/${projectId}/git-remote`, { method: 'DELETE', headers: { authorization: `Bearer ${p.adminKey}` } });
  } finally {
    await server.stop();
  }
}

async function main() {
  const podman: PodmanService = await startPodman();
  const pg = await startPostgres();
  const temporal = await startTemporalDevServer({ uiPort: null });
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'autovibe-record-'));
  const llm = await startScriptedEndpoint();
  const config = loadConfig({
    AUTOVIBE_TOOLS_DIR: toolsDir(),
    ANTHROPIC_API_KEY: 'recording',
    ANTHROPIC_BASE_URL: llm.url,
    AUTOVIBE_HOME: home,
    DATABASE_URL: pg.url,
    TEMPORAL_ADDRESS: temporal.address,
    PORT: '0',
    LOG_LEVEL: 'warn',
    AUTOVIBE_HEARTBEAT_TIMEOUT_S: '5',
    AUTOVIBE_CONTAINER_SOCKET: podman.socketPath,
    AUTOVIBE_CONTAINER_IMAGE: podman.image,
    AUTOVIBE_RECONCILE_EVERY_S: '0',
    AUTOVIBE_WEBHOOK_ALLOW_PRIVATE: '1',
    AUTOVIBE_WEBHOOK_MAX_ATTEMPTS: '3',
    AUTOVIBE_WEBHOOK_RETRY_INITIAL_MS: '100',
    // The scheduled git fetch speaks to a `git http-backend` on loopback.
    AUTOVIBE_REPO_URL_SCHEMES: 'https,ssh,git,http',
  });
  const p = await startPlatform({ config });
  const recorded: Array<[string, string]> = [];
  // Scenario names as arguments, or RECORD_ONLY=a,b.
  const only = process.argv.slice(2).length ? process.argv.slice(2) : (process.env.RECORD_ONLY?.split(',') ?? []);
  const want = (...names: string[]) => !only.length || names.some((n) => only.includes(n));
  try {
    const project = await call(p, 'POST', '/v1/projects', { name: 'histories' });
    await call(p, 'PUT', `/v1/projects/${project.id}/budget`, { amount: '1.00', currency: 'USD', period: 'total' });
    const spawn = (body: object) => call(p, 'POST', '/v1/machines', { projectId: project.id, type: 'shell', provider: 'local', ...body });

    if (want('machine-cache-miss', 'machine-cache-hit')) {
      // Result cache: the first run misses and becomes the entry; the same command on the same files hits.
      const cacheMiss = await spawn({ command: 'echo cached > cached.txt', checkpointId: project.rootCheckpointId });
      await until(p, `/v1/machines/${cacheMiss.id}`, machineEnded);
      const cacheHit = await spawn({ command: 'echo cached > cached.txt', checkpointId: project.rootCheckpointId });
      await until(p, `/v1/machines/${cacheHit.id}`, machineEnded);
      recorded.push(['machine-cache-miss', cacheMiss.id], ['machine-cache-hit', cacheHit.id]);
    }

    if (want('machine-completed')) {
      const completed = await spawn({ command: 'echo done > done.txt' });
      await until(p, `/v1/machines/${completed.id}`, machineEnded);
      recorded.push(['machine-completed', completed.id]);
    }

    if (want('machine-failed')) {
      const failed = await spawn({ command: 'echo partial > p.txt; exit 2' });
      await until(p, `/v1/machines/${failed.id}`, machineEnded);
      recorded.push(['machine-failed', failed.id]);
    }

    if (want('machine-terminated-with-manual-checkpoint')) {
      const terminated = await spawn({ command: 'while true; do date >> t.txt; sleep 0.2; done' });
      await until(p, `/v1/machines/${terminated.id}`, (b) => b.status === 'running');
      await call(p, 'POST', `/v1/machines/${terminated.id}/checkpoint`);
      await until(p, `/v1/machines/${terminated.id}`, (b) => b.checkpoints.length === 1);
      await call(p, 'POST', `/v1/machines/${terminated.id}/terminate`);
      await until(p, `/v1/machines/${terminated.id}`, machineEnded);
      recorded.push(['machine-terminated-with-manual-checkpoint', terminated.id]);
    }

    if (want('machine-refused')) {
      const refused = await spawn({ command: 'true', limits: { money: '5.00' } });
      await until(p, `/v1/machines/${refused.error?.details?.machineId ?? refused.id}`, machineEnded);
      recorded.push(['machine-refused', refused.error.details.machineId]);
    }

    if (want('machine-claude-code-completed')) {
      await installAgentClis();
      llm.setScript(writeFileScript('claude', { path: '/workspace/notes.txt', content: 'recorded\n' }));
      const agent = await spawn({ type: 'claude-code', prompt: 'Write notes.txt' });
      await until(p, `/v1/machines/${agent.id}`, machineEnded);
      recorded.push(['machine-claude-code-completed', agent.id]);
    }

    if (want('objective-first', 'objective-second-with-dependency')) {
      const first = await call(p, 'POST', `/v1/projects/${project.id}/objectives`, { title: 'first', command: 'echo 1 > 1.txt' });
      const second = await call(p, 'POST', `/v1/projects/${project.id}/objectives`, { title: 'second', command: 'echo 2 > 2.txt', dependsOn: [first.id] });
      await until(p, `/v1/objectives/${second.id}`, (b) => b.status === 'completed');
      recorded.push(['objective-first', first.id], ['objective-second-with-dependency', second.id]);
    }

    if (want('objective-with-completion-check')) {
      const o = await call(p, 'POST', `/v1/projects/${project.id}/objectives`, {
        title: 'two passes',
        command: 'echo pass >> passes.txt',
        completion: { command: 'test "$(wc -l < passes.txt)" -ge 2' },
        maxMachines: 3,
        limits: { money: '0.05' },
      });
      await until(p, `/v1/objectives/${o.id}`, (b) => b.status === 'completed');
      recorded.push(['objective-with-completion-check', o.id]);
    }

    if (want('pipeline-diamond-with-resources', 'project-coordinator')) {
      await call(p, 'PUT', `/v1/projects/${project.id}/scheduling`, { maxConcurrentMachines: 2, resources: { db: 1 } });
      const step = (id: string, dependsOn: string[], resources: string[] = []) => ({
        id,
        type: 'shell',
        command: `echo ${id} > ${id}.txt`,
        dependsOn,
        resources,
        limits: { money: '0.05' },
      });
      const pl = await call(p, 'POST', '/v1/pipelines', {
        projectId: project.id,
        steps: [step('a', []), step('b', ['a'], ['db']), step('c', ['a'], ['db']), step('d', ['b', 'c'])],
      });
      await until(p, `/v1/pipelines/${pl.id}`, (b) => b.status !== 'running');
      recorded.push(['pipeline-diamond-with-resources', pl.id], ['project-coordinator', `coordinator-${project.id}`]);
    }

    if (want('pipeline-artifact-passing', 'machine-with-inputs-and-artifacts')) {
      // Artifact passing: step b starts with a file and a declared artifact of step a, and declares its own.
      const piped = await call(p, 'POST', '/v1/pipelines', {
        projectId: project.id,
        steps: [
          { id: 'a', type: 'shell', command: 'echo a > a.txt', artifacts: ['a.txt'] },
          {
            id: 'b',
            type: 'shell',
            dependsOn: ['a'],
            command: 'cat given.txt artifact.txt > b.txt',
            inputs: { files: [{ step: 'a', path: 'a.txt', as: 'given.txt' }], artifacts: [{ step: 'a', name: 'a.txt', as: 'artifact.txt' }] },
            artifacts: ['b.txt'],
          },
        ],
      });
      const pipedDone = await until(p, `/v1/pipelines/${piped.id}`, (b) => b.status !== 'running');
      recorded.push(['pipeline-artifact-passing', piped.id], ['machine-with-inputs-and-artifacts', pipedDone.steps[1].machineId]);
    }

    if (want('machine-completed-merged-marks', 'machine-refused-merged-marks', 'machine-cache-hit-local-bookkeeping')) {
      // Today's machine path (issue 18): bookkeeping as local activities, status marks merged into the calls next to them.
      const completed = await spawn({ command: 'echo merged > merged.txt', checkpointId: project.rootCheckpointId });
      await until(p, `/v1/machines/${completed.id}`, machineEnded);
      const hit = await spawn({ command: 'echo merged > merged.txt', checkpointId: project.rootCheckpointId });
      await until(p, `/v1/machines/${hit.id}`, machineEnded);
      const refused = await spawn({ command: 'true', limits: { money: '5.00' } });
      const refusedId = refused.error?.details?.machineId ?? refused.id;
      await until(p, `/v1/machines/${refusedId}`, machineEnded);
      recorded.push(
        ['machine-completed-merged-marks', completed.id],
        ['machine-cache-hit-local-bookkeeping', hit.id],
        ['machine-refused-merged-marks', refusedId],
      );
    }

    if (want('pipeline-diamond-local-bookkeeping', 'project-coordinator-local-limits')) {
      // Today's pipeline and coordinator (issue 18), in a project of its own so its coordinator starts on today's code.
      const own = await call(p, 'POST', '/v1/projects', { name: 'histories, local bookkeeping' });
      await call(p, 'PUT', `/v1/projects/${own.id}/budget`, { amount: '1.00', currency: 'USD', period: 'total' });
      await call(p, 'PUT', `/v1/projects/${own.id}/scheduling`, { maxConcurrentMachines: 2, resources: { db: 1 } });
      const step = (id: string, dependsOn: string[], resources: string[] = []) => ({
        id,
        type: 'shell',
        command: `echo ${id} > ${id}.txt`,
        dependsOn,
        resources,
        limits: { money: '0.05' },
      });
      const pl = await call(p, 'POST', '/v1/pipelines', {
        projectId: own.id,
        steps: [step('a', []), step('b', ['a'], ['db']), step('c', ['a'], ['db']), step('d', ['b', 'c'])],
      });
      await until(p, `/v1/pipelines/${pl.id}`, (b) => b.status !== 'running');
      recorded.push(['pipeline-diamond-local-bookkeeping', pl.id], ['project-coordinator-local-limits', `coordinator-${own.id}`]);
    }

    if (want('reconcile-reclaims-leak')) {
      // A leaked container (its machine does not exist) reclaimed by the reconciliation workflow.
      const Docker = (await import('dockerode')).default;
      const docker = new Docker({ socketPath: podman.socketPath });
      const leaked = await docker.createContainer({
        Image: podman.image,
        Cmd: ['/bin/sleep', '600'],
        Labels: {
          'autovibe.managed': 'true',
          'autovibe.deployment': config.taskQueue,
          'autovibe.machine': 'machine-00000000-0000-4000-8000-000000000000',
          'autovibe.created-at': '2026-01-01T00:00:00Z',
        },
        HostConfig: { NetworkMode: 'none' },
      });
      await leaked.start();
      const { reconcileInstances } = await import('../workflows/index.js');
      const workflowId = `reconcile-recorded-${Date.now()}`;
      await p.temporal.workflow.execute(reconcileInstances, { workflowId, taskQueue: config.taskQueue, args: [{ minAgeSeconds: 0 }] });
      recorded.push(['reconcile-reclaims-leak', workflowId]);
    }

    if (want('machine-handed-over')) recorded.push(['machine-handed-over', await recordHandover(config, project.id)]);
    if (want('machine-queues-completed', 'objective-completion-check-machine-queue')) {
      // Machine queues (README "Task queues and workers"): provisioned from the local machine queue, run on its host's queue.
      const m = await spawn({ command: 'echo queued > queued.txt', checkpointId: project.rootCheckpointId });
      await until(p, `/v1/machines/${m.id}`, machineEnded);
      const o = await call(p, 'POST', `/v1/projects/${project.id}/objectives`, {
        title: 'checked on the machine queue',
        command: 'echo checked > checked.txt',
        completion: { command: 'test -f checked.txt' },
        limits: { money: '0.05' },
      });
      await until(p, `/v1/objectives/${o.id}`, (b) => b.status === 'completed');
      recorded.push(['machine-queues-completed', m.id], ['objective-completion-check-machine-queue', o.id]);
    }
    if (want('machine-host-lost')) recorded.push(['machine-host-lost', await recordHostLost(config, project.id)]);

    if (want('snapshot-lifecycle', 'snapshot-backup', 'snapshot-prune')) await recordSnapshotScenarios(p, config.taskQueue, recorded);
    if (want('webhook-dispatcher')) await recordWebhookScenario(p, project.id, recorded);
    if (want('integration-dispatcher')) await recordIntegrationScenario(p, recorded);
    if (want('git-fetch-scheduled')) await recordGitFetchScenario(p, project.id, recorded);
    if (want('platform-backup')) {
      // The platform backup schedule, triggered: dump, replica copy, retention.
      const schedule = p.temporal.schedule.getHandle(backupScheduleId(config));
      await schedule.trigger();
      let run: string | undefined;
      for (let i = 0; i < 300 && !run; i++) {
        run = (await schedule.describe()).info.recentActions[0]?.action.workflow.workflowId;
        if (!run) await new Promise((r) => setTimeout(r, 200));
      }
      await p.temporal.workflow.getHandle(run!).result();
      recorded.push(['platform-backup', run!]);
    }

    if (want('forecast-refresh')) {
      // One run of the forecast-refresh schedule's workflow, labelled and with a memo as the schedule starts it.
      const { SEARCH_ATTRIBUTES } = await import('../domain/search-attributes.js');
      await p.temporal.workflow.execute('forecastRefresh', {
        workflowId: 'forecast-refresh-recorded',
        taskQueue: config.taskQueue,
        args: [{ trigger: 'recording' }],
        typedSearchAttributes: [{ key: SEARCH_ATTRIBUTES.status, value: 'running' }],
        memo: { description: 'recorded forecast refresh' },
      });
      recorded.push(['forecast-refresh', 'forecast-refresh-recorded']);
    }

    if (want('budget-reallocation')) {
      // One run of the daily budget-reallocation schedule's workflow over an enabled cost center with two projects.
      const { SEARCH_ATTRIBUTES } = await import('../domain/search-attributes.js');
      const center = await call(p, 'POST', '/v1/cost-centers', { name: 'reallocation history', kind: 'development', department: 'histories' });
      await call(p, 'PUT', `/v1/cost-centers/${center.id}/budget`, { amount: '100.00', currency: 'USD', period: 'daily' });
      for (const name of ['reallocation a', 'reallocation b']) {
        const pr = await call(p, 'POST', '/v1/projects', { name, costCenterId: center.id });
        await call(p, 'PUT', `/v1/projects/${pr.id}/budget`, { amount: '10.00', currency: 'USD', period: 'daily' });
      }
      await call(p, 'PUT', `/v1/cost-centers/${center.id}/reallocation`, { enabled: true });
      await p.temporal.workflow.execute('budgetReallocation', {
        workflowId: 'budget-reallocation-recorded',
        taskQueue: config.taskQueue,
        args: [{ trigger: 'recording' }],
        typedSearchAttributes: [{ key: SEARCH_ATTRIBUTES.status, value: 'running' }],
        memo: { description: 'recorded budget reallocation' },
      });
      recorded.push(['budget-reallocation', 'budget-reallocation-recorded']);
    }

    if (want('alert-evaluation')) {
      // One run of the alert-evaluation schedule's workflow, labelled and with a memo as the schedule starts it.
      const { SEARCH_ATTRIBUTES } = await import('../domain/search-attributes.js');
      await p.temporal.workflow.execute('alertEvaluation', {
        workflowId: 'alert-evaluation-recorded',
        taskQueue: config.taskQueue,
        args: [{ trigger: 'recording' }],
        typedSearchAttributes: [{ key: SEARCH_ATTRIBUTES.status, value: 'running' }],
        memo: { description: 'recorded alert evaluation' },
      });
      recorded.push(['alert-evaluation', 'alert-evaluation-recorded']);
    }

    await save(recorded);
  } finally {
    await p.stop();
    await temporal.stop();
    await llm.stop();
    await pg.stop();
    await podman.stop();
    fs.rmSync(home, { recursive: true, force: true });
  }

  async function save(recorded: Array<[string, string]>) {
    fs.mkdirSync(OUT, { recursive: true });
    const cli = await ensureTemporalBinary();
    for (const [name, workflowId] of recorded.filter(([n]) => want(n))) {
      // The CLI writes the history in the proto3 JSON form that historyFromJSON reads back.
      const json = execFileSync(cli, ['workflow', 'show', '--address', temporal.address, '-w', workflowId, '--output', 'json'], {
        encoding: 'utf8',
        maxBuffer: 64 * 1024 * 1024,
      });
      fs.writeFileSync(path.join(OUT, `${name}.json`), json);
      console.log(`recorded ${name} (${JSON.parse(json).events.length} events)`);
    }
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});

/**
 * The kubernetes provider through the real @kubernetes/client-node against a local replay server
 * (test/support/kube-replay.ts): no cluster can run here, so the server answers with Kubernetes
 * API responses in their real JSON shapes (test/fixtures/kubernetes/api-responses.json) and
 * records what the provider sent. This tests the requests and how the provider reads the answers,
 * not Kubernetes itself.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { KubernetesProvider, createKubernetesProvider } from '../../activities/compute/kubernetes.js';
import type { Instance, ProvisionRequest } from '../../activities/compute/provider.js';
import { buildMachineJob, buildNoEgressPolicy, buildProjectNamespace } from '../../domain/kubernetes.js';
import { KubeReplayServer } from '../support/kube-replay.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const R = JSON.parse(fs.readFileSync(path.join(here, '..', 'fixtures', 'kubernetes', 'api-responses.json'), 'utf8')) as Record<string, unknown> & {
  names: { namespace: string; machineId: string; projectId: string; pod: string };
};
const { namespace: NS, machineId: MACHINE, projectId: PROJECT, pod: POD } = R.names;
const JOB_PATH = `/apis/batch/v1/namespaces/${NS}/jobs/${MACHINE}`;
const PODS_PATH = `/api/v1/namespaces/${NS}/pods`;
const POLICIES_PATH = `/apis/networking.k8s.io/v1/namespaces/${NS}/networkpolicies`;
const POLICY_PATH = `${POLICIES_PATH}/${MACHINE}-no-egress`;
const ok = (body: unknown) => ({ status: 200, body });

describe('kubernetes provider (real client against replayed Kubernetes API responses)', function () {
  this.timeout(30_000);
  const server = new KubeReplayServer();
  let provider: KubernetesProvider;
  // The client refuses plain http unless TLS verification is off; the replay server is loopback http.
  const config = {
    image: 'registry.example/autovibe/machine:1',
    ttlSecondsAfterFinished: 600,
    activeDeadlineSeconds: 1800,
    pollIntervalMs: 20,
    skipTLSVerify: true,
  };
  const request: ProvisionRequest = {
    machineId: MACHINE,
    projectId: PROJECT,
    profile: 'lightweight',
    spot: false,
    workspace: '/nonexistent',
    tags: { 'autovibe:objective': 'objective-3' },
  };
  const instance: Instance = { provider: 'kubernetes', instanceRef: `${NS}/${MACHINE}`, machineId: MACHINE, projectId: PROJECT };

  before(async () => {
    await server.start();
    provider = createKubernetesProvider({ server: server.url, token: 'replay-token', ...config });
  });
  beforeEach(() => server.reset());
  after(() => server.stop());

  it('is available when the API server reports its version, and says why not when it cannot be reached', async () => {
    server.on('GET', '/version', ok(R.version));
    assert.deepEqual(await provider.availability(), { available: true });
    assert.equal(server.requests[0]?.path, '/version');
    const dead = createKubernetesProvider({ server: 'http://127.0.0.1:9', ...config });
    const result = await dead.availability();
    assert.equal(result.available, false);
    assert.match(result.reason ?? '', /http:\/\/127\.0\.0\.1:9 cannot be reached/);
  });

  it('provisions: creates the missing project namespace, then the machine Job it builds', async () => {
    server
      .on('GET', `/api/v1/namespaces/${NS}`, { status: 404, body: R.namespaceNotFound })
      .on('POST', '/api/v1/namespaces', { status: 201, body: R.namespaceCreated })
      .on('POST', `/apis/batch/v1/namespaces/${NS}/jobs`, { status: 201, body: R.jobCreated });
    const created = await provider.provision(request);
    assert.deepEqual(
      server.requests.map((r) => `${r.method} ${r.path}`),
      [`GET /api/v1/namespaces/${NS}`, 'POST /api/v1/namespaces', `POST /apis/batch/v1/namespaces/${NS}/jobs`],
    );
    assert.deepEqual(server.requests[1]?.body, buildProjectNamespace(PROJECT));
    const expectedJob = buildMachineJob({ ...request, image: config.image, ttlSecondsAfterFinished: 600, activeDeadlineSeconds: 1800 });
    assert.deepEqual(server.requests[2]?.body, expectedJob);
    assert.equal(server.requests[2]?.query.get('fieldManager'), null);
    assert.deepEqual(created, {
      provider: 'kubernetes',
      instanceRef: `${NS}/${MACHINE}`,
      machineId: MACHINE,
      projectId: PROJECT,
      details: { namespace: NS, uid: '5d6b1c1e-8a3f-4b0e-9c55-2f1d7e0a9b31' },
    });
  });

  it('provision is idempotent: an existing namespace is kept and AlreadyExists returns the existing Job', async () => {
    server
      .on('GET', `/api/v1/namespaces/${NS}`, ok(R.namespaceCreated))
      .on('POST', `/apis/batch/v1/namespaces/${NS}/jobs`, { status: 409, body: R.jobAlreadyExists })
      .on('GET', JOB_PATH, ok(R.jobRunning));
    const again = await provider.provision(request);
    assert.equal(again.instanceRef, `${NS}/${MACHINE}`);
    assert.deepEqual(
      server.requests.map((r) => `${r.method} ${r.path}`),
      [`GET /api/v1/namespaces/${NS}`, `POST /apis/batch/v1/namespaces/${NS}/jobs`, `GET ${JOB_PATH}`],
    );
  });

  it('re-provisioning after an interruption makes the next Job, leaving the failed one to its TTL', async () => {
    const secondName = `${MACHINE}-2`;
    // The same recorded Job, as the server returns it for the second name.
    const secondCreated = structuredClone(R.jobCreated) as { metadata: { name: string } };
    secondCreated.metadata.name = secondName;
    server
      .on('GET', `/api/v1/namespaces/${NS}`, ok(R.namespaceCreated))
      .on('POST', `/apis/batch/v1/namespaces/${NS}/jobs`, { status: 409, body: R.jobAlreadyExists }, { status: 201, body: secondCreated })
      .on('GET', JOB_PATH, ok(R.jobFailedDeadline));
    const next = await provider.provision(request);
    assert.equal(next.instanceRef, `${NS}/${secondName}`);
    assert.equal(next.machineId, MACHINE);
    const posts = server.requests.filter((r) => r.method === 'POST');
    assert.deepEqual(
      posts.map((r) => (r.body as { metadata: { name: string } }).metadata.name),
      [MACHINE, secondName],
    );
    assert.ok(!server.requests.some((r) => r.method === 'DELETE'), 'the failed Job is not deleted by hand');
  });

  it("provision waits for the pod and unpacks the checkpoint's files into /workspace through exec stdin", async () => {
    const workspace = fs.mkdtempSync(path.join(os.tmpdir(), 'autovibe-k8s-ws-'));
    const unpacked = fs.mkdtempSync(path.join(os.tmpdir(), 'autovibe-k8s-unpacked-'));
    try {
      fs.mkdirSync(path.join(workspace, 'src'));
      fs.writeFileSync(path.join(workspace, 'README.md'), '# project\n');
      fs.writeFileSync(path.join(workspace, 'src', 'main.ts'), 'export const x = 1;\n');
      fs.writeFileSync(path.join(workspace, '.git'), 'gitdir: /host/only/path\n');
      server
        .on('GET', `/api/v1/namespaces/${NS}`, ok(R.namespaceCreated))
        .on('POST', `/apis/batch/v1/namespaces/${NS}/jobs`, { status: 201, body: R.jobCreated })
        .on('GET', JOB_PATH, ok(R.jobRunning))
        .on('GET', PODS_PATH, ok(R.podsPending), ok(R.podsRunning))
        .onExec({ readStdin: true, status: R.execStatusSuccess });
      const created = await provider.provision({ ...request, workspace });
      assert.equal(created.instanceRef, `${NS}/${MACHINE}`);

      const exec = server.execRequests[0];
      assert.equal(exec?.path, `${PODS_PATH}/${POD}/exec`);
      assert.equal(exec?.query.get('stdin'), 'true');
      const script = exec?.query.getAll('command')[2] ?? '';
      assert.match(script, /head -c \d+ \| tar -xzf - -C \/workspace/);
      // What the pod's shell would unpack: the workspace's files, without the worktree's .git link.
      const archive = server.stdinReceived[0];
      assert.ok(archive, 'the archive arrived on stdin');
      assert.equal(String(archive.length), /head -c (\d+)/.exec(script)?.[1]);
      fs.writeFileSync(path.join(unpacked, 'ws.tar.gz'), archive);
      execFileSync('tar', ['-xzf', path.join(unpacked, 'ws.tar.gz'), '-C', unpacked]);
      fs.rmSync(path.join(unpacked, 'ws.tar.gz'));
      assert.equal(fs.readFileSync(path.join(unpacked, 'README.md'), 'utf8'), '# project\n');
      assert.equal(fs.readFileSync(path.join(unpacked, 'src', 'main.ts'), 'utf8'), 'export const x = 1;\n');
      assert.ok(!fs.existsSync(path.join(unpacked, '.git')));
    } finally {
      fs.rmSync(workspace, { recursive: true, force: true });
      fs.rmSync(unpacked, { recursive: true, force: true });
    }
  });

  it('provision fails with the reason when unpacking the workspace fails', async () => {
    const workspace = fs.mkdtempSync(path.join(os.tmpdir(), 'autovibe-k8s-ws-'));
    try {
      fs.writeFileSync(path.join(workspace, 'a.txt'), 'a');
      server
        .on('GET', `/api/v1/namespaces/${NS}`, ok(R.namespaceCreated))
        .on('POST', `/apis/batch/v1/namespaces/${NS}/jobs`, { status: 201, body: R.jobCreated })
        .on('GET', JOB_PATH, ok(R.jobRunning))
        .on('GET', PODS_PATH, ok(R.podsRunning))
        .onExec({ readStdin: true, stderr: 'tar: /workspace: Cannot open: Permission denied\n', status: R.execStatusNonZero });
      await assert.rejects(provider.provision({ ...request, workspace }), /unpacking the workspace .* failed \(exit 3\): tar: \/workspace: Cannot open/);
    } finally {
      fs.rmSync(workspace, { recursive: true, force: true });
    }
  });

  it("collects the pod's /workspace back into the host workspace, keeping the host's .git", async () => {
    const podFiles = fs.mkdtempSync(path.join(os.tmpdir(), 'autovibe-k8s-pod-'));
    const workspace = fs.mkdtempSync(path.join(os.tmpdir(), 'autovibe-k8s-host-'));
    try {
      // The pod's workspace after the machine worked: one file changed, one added, one deleted.
      fs.writeFileSync(path.join(podFiles, 'README.md'), '# changed in the pod\n');
      fs.mkdirSync(path.join(podFiles, 'new'));
      fs.writeFileSync(path.join(podFiles, 'new', 'file.txt'), 'made by the machine\n');
      const archive = execFileSync('tar', ['-czf', '-', '-C', podFiles, '.']);
      fs.writeFileSync(path.join(workspace, 'README.md'), '# original\n');
      fs.writeFileSync(path.join(workspace, 'deleted.txt'), 'removed in the pod\n');
      fs.writeFileSync(path.join(workspace, '.git'), 'gitdir: /host/repo/.git/worktrees/m\n');

      server.on('GET', JOB_PATH, ok(R.jobRunning)).on('GET', PODS_PATH, ok(R.podsRunning)).onExec({ stdout: archive, status: R.execStatusSuccess });
      await provider.collectWorkspace(instance, workspace, Date.now() + 10_000);
      assert.deepEqual(server.execRequests[0]?.query.getAll('command'), ['/bin/sh', '-c', 'tar -czf - -C /workspace .']);
      assert.equal(fs.readFileSync(path.join(workspace, 'README.md'), 'utf8'), '# changed in the pod\n');
      assert.equal(fs.readFileSync(path.join(workspace, 'new', 'file.txt'), 'utf8'), 'made by the machine\n');
      assert.ok(!fs.existsSync(path.join(workspace, 'deleted.txt')), 'a file deleted in the pod is deleted here');
      assert.equal(fs.readFileSync(path.join(workspace, '.git'), 'utf8'), 'gitdir: /host/repo/.git/worktrees/m\n');
    } finally {
      fs.rmSync(podFiles, { recursive: true, force: true });
      fs.rmSync(workspace, { recursive: true, force: true });
    }
  });

  it("deliverWorkspace (a retried command) empties the pod's /workspace and fills it with the host's files, delivered before or not", async () => {
    const workspace = fs.mkdtempSync(path.join(os.tmpdir(), 'autovibe-k8s-host-'));
    const pod = fs.mkdtempSync(path.join(os.tmpdir(), 'autovibe-k8s-pod-'));
    try {
      fs.writeFileSync(path.join(workspace, 'base.txt'), 'base\n');
      fs.writeFileSync(path.join(workspace, '.git'), 'gitdir: /host/repo/.git/worktrees/m\n');
      server.on('GET', JOB_PATH, ok(R.jobRunning)).on('GET', PODS_PATH, ok(R.podsRunning)).onExec({ readStdin: true, status: R.execStatusSuccess });
      await provider.deliverWorkspace(instance, workspace, Date.now() + 10_000);
      const script = server.execRequests[0]?.query.getAll('command')[2] ?? '';
      const archive = server.stdinReceived[0];
      assert.ok(archive, 'the archive arrived on stdin');
      // What the pod's shell does with it, run by a real sh on a stand-in /workspace that holds
      // a failed attempt's leftovers and the marker of an earlier delivery.
      fs.mkdirSync(path.join(pod, 'workspace', 'junk-dir'), { recursive: true });
      fs.writeFileSync(path.join(pod, 'workspace', 'junk.txt'), 'left by the failed attempt\n');
      fs.writeFileSync(path.join(pod, 'workspace', '.hidden-junk'), 'x\n');
      fs.writeFileSync(path.join(pod, 'delivered'), '');
      const local = script.replaceAll('/tmp/.autovibe-workspace-delivered', path.join(pod, 'delivered')).replaceAll('/workspace', path.join(pod, 'workspace'));
      execFileSync('/bin/sh', ['-c', local], { input: archive });
      assert.deepEqual(fs.readdirSync(path.join(pod, 'workspace')).sort(), ['base.txt']);
      assert.equal(fs.readFileSync(path.join(pod, 'workspace', 'base.txt'), 'utf8'), 'base\n');
    } finally {
      fs.rmSync(workspace, { recursive: true, force: true });
      fs.rmSync(pod, { recursive: true, force: true });
    }
  });

  it('lists running machine Jobs of every namespace by label, skipping finished ones', async () => {
    server.on('GET', '/apis/batch/v1/jobs', ok(R.jobsAllNamespaces));
    const listed = await provider.listInstances();
    assert.equal(server.requests[0]?.query.get('labelSelector'), 'autovibe/managed=true');
    assert.deepEqual(
      listed.map((i) => [i.instanceRef, i.machineId, i.projectId]),
      [
        [`${NS}/${MACHINE}`, MACHINE, PROJECT],
        ['autovibe-project-other/machine-9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d', 'machine-9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d', 'project-other'],
      ],
    );
  });

  it('terminate deletes the Job with its pods, and a Job already gone is fine', async () => {
    server
      .on('DELETE', JOB_PATH, ok(R.jobDeleted), { status: 404, body: R.jobNotFound })
      .on('DELETE', POLICY_PATH, ok(R.networkPolicyDeleted), { status: 404, body: R.networkPolicyNotFound });
    await provider.terminate(instance);
    await provider.terminate(instance);
    assert.deepEqual(
      server.requests.map((r) => `${r.method} ${r.path}`),
      [`DELETE ${JOB_PATH}`, `DELETE ${POLICY_PATH}`, `DELETE ${JOB_PATH}`, `DELETE ${POLICY_PATH}`],
    );
    assert.equal(server.requests[0]?.query.get('propagationPolicy'), 'Background');
  });

  it('exec waits for the pod to run, streams its output and returns the exit code', async () => {
    server
      .on('GET', JOB_PATH, ok(R.jobRunning))
      .on('GET', PODS_PATH, ok(R.podsPending), ok(R.podsRunning))
      .on('DELETE', POLICY_PATH, { status: 404, body: R.networkPolicyNotFound })
      .onExec({ stdout: 'hello from the pod\n', stderr: 'a warning\n', status: R.execStatusNonZero });
    const chunks: Array<[string, string]> = [];
    const result = await provider.exec(instance, {
      command: ['sh', '-c', 'echo hi; exit 3'],
      env: { MODE: 'test' },
      network: true,
      deadline: Date.now() + 10_000,
      onOutput: (chunk, stream) => chunks.push([stream, chunk.toString()]),
    });
    assert.deepEqual(result, { exitCode: 3, stopReason: null });
    assert.deepEqual(chunks, [
      ['stdout', 'hello from the pod\n'],
      ['stderr', 'a warning\n'],
    ]);
    const exec = server.execRequests[0];
    assert.equal(exec?.path, `${PODS_PATH}/${POD}/exec`);
    assert.equal(exec?.query.get('container'), 'machine');
    assert.deepEqual(exec?.query.getAll('command'), ['/bin/sh', '-c', "export MODE='test'\n'sh' '-c' 'echo hi; exit 3'"]);
    assert.equal(exec?.query.get('stdout'), 'true');
    assert.equal(exec?.query.get('stdin'), 'false');
    assert.equal(server.requests.find((r) => r.path === PODS_PATH)?.query.get('labelSelector'), `autovibe/machine=${MACHINE},job-name=${MACHINE}`);
  });

  it('a command without network runs while a NetworkPolicy denies the pod egress; with network it is removed', async () => {
    server
      .on('GET', JOB_PATH, ok(R.jobRunning))
      .on('GET', PODS_PATH, ok(R.podsRunning))
      .on('POST', POLICIES_PATH, { status: 201, body: R.networkPolicyCreated }, { status: 409, body: R.networkPolicyAlreadyExists })
      .on('DELETE', POLICY_PATH, ok(R.networkPolicyDeleted))
      .onExec({ status: R.execStatusSuccess }, { status: R.execStatusSuccess }, { status: R.execStatusSuccess });
    const run = (network: boolean) => provider.exec(instance, { command: 'true', network, deadline: Date.now() + 10_000 });
    assert.deepEqual(await run(false), { exitCode: 0, stopReason: null });
    assert.deepEqual(await run(false), { exitCode: 0, stopReason: null }, 'an existing policy is fine');
    assert.deepEqual(await run(true), { exitCode: 0, stopReason: null });
    const policyCalls = server.requests.filter((r) => r.path.startsWith(POLICIES_PATH));
    assert.deepEqual(
      policyCalls.map((r) => r.method),
      ['POST', 'POST', 'DELETE'],
    );
    assert.deepEqual(policyCalls[0]?.body, buildNoEgressPolicy({ machineId: MACHINE, projectId: PROJECT, jobName: MACHINE, namespace: NS }));
    // Each policy change happens before its command starts.
    const EXEC = `EXEC ${PODS_PATH}/${POD}/exec`;
    assert.deepEqual(
      server.log.filter((l) => l.includes('networkpolicies') || l.startsWith('EXEC')),
      [`POST ${POLICIES_PATH}`, EXEC, `POST ${POLICIES_PATH}`, EXEC, `DELETE ${POLICY_PATH}`, EXEC],
    );
  });

  it('exec reports success as exit code 0', async () => {
    server
      .on('GET', JOB_PATH, ok(R.jobRunning))
      .on('GET', PODS_PATH, ok(R.podsRunning))
      .on('DELETE', POLICY_PATH, { status: 404, body: R.networkPolicyNotFound })
      .onExec({ stdout: 'done\n', status: R.execStatusSuccess });
    assert.deepEqual(await provider.exec(instance, { command: 'true', network: true, deadline: Date.now() + 10_000 }), { exitCode: 0, stopReason: null });
  });

  it('exec stops at its deadline while the command still runs', async () => {
    server
      .on('GET', JOB_PATH, ok(R.jobRunning))
      .on('GET', PODS_PATH, ok(R.podsRunning))
      .on('DELETE', POLICY_PATH, { status: 404, body: R.networkPolicyNotFound })
      .onExec({ status: R.execStatusSuccess, delayMs: 5_000 });
    const started = Date.now();
    const result = await provider.exec(instance, { command: 'sleep 60', network: true, deadline: Date.now() + 300 });
    assert.deepEqual(result, { exitCode: null, stopReason: 'deadline' });
    assert.ok(Date.now() - started < 4_000, 'did not wait for the command');
  });

  it('reports an interruption: pod disrupted by node shutdown, Job failed, Job deleted from outside', async () => {
    server.on('GET', JOB_PATH, ok(R.jobRunning)).on('GET', PODS_PATH, ok(R.podsDisrupted));
    const disrupted = await provider.checkInterruption(instance);
    assert.equal(disrupted.interrupted, true);
    assert.match(disrupted.reason ?? '', /disrupted: TerminationByKubelet Pod was terminated in response to imminent node shutdown/);
    assert.deepEqual(await provider.exec(instance, { command: 'true', network: true, deadline: Date.now() + 10_000 }), {
      exitCode: null,
      stopReason: 'interrupted',
    });
    assert.equal(server.execRequests.length, 0, 'no command was started');

    server.reset();
    server.on('GET', JOB_PATH, ok(R.jobFailedDeadline));
    assert.match((await provider.checkInterruption(instance)).reason ?? '', /job failed: DeadlineExceeded/);

    server.reset();
    server.on('GET', JOB_PATH, { status: 404, body: R.jobNotFound });
    assert.deepEqual(await provider.checkInterruption(instance), { interrupted: true, reason: 'job no longer exists' });

    server.reset();
    server.on('GET', JOB_PATH, ok(R.jobRunning)).on('GET', PODS_PATH, ok(R.podsRunning));
    assert.deepEqual(await provider.checkInterruption(instance), { interrupted: false });
  });

  it('snapshot says the workspace is checkpointed with git', async () => {
    await assert.rejects(provider.snapshot(instance, { checkpointId: 'checkpoint-1' }), /checkpoint it with git/);
  });
});

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { checkpointFileRoute } from '../../activities/machines/checkpoint-files.js';
import { startMeteringProxy } from '../../activities/machines/metering-proxy.js';
import { putArtifact, saveArtifact } from '../../store/artifacts.js';
import { installAgentClis, toolsDir } from '../support/llm/agent-clis.js';
import { shellScript, startScriptedEndpoint, type ScriptedEndpoint } from '../support/llm/endpoint.js';
import { projectWithBudget, startTestPlatform, waitFor, waitForMachine, type TestPlatform } from '../support/platform.js';

const ENDED = ['completed', 'failed', 'cancelled'];

describe('artifact passing between machines (real Temporal, Postgres, git, bubblewrap)', function () {
  this.timeout(300_000);
  let p: TestPlatform;
  /** Project A: a checkpoint with `data/a.txt`, and the machine that made it. */
  let projectA: string;
  let machineA: any;
  /** Project B: another project's checkpoint with a file of the same name. */
  let projectB: string;
  let machineB: any;

  /**
   * Shell machines record no conversation; agent CLIs are not installed here. This stores the
   * conversation artifact an agent machine's run records (the same store call), and no file.
   */
  async function recordConversation(machineId: string, text: string): Promise<void> {
    await saveArtifact(p.db, { machineId, name: 'conversation.jsonl', content: Buffer.from(text), checkpointId: null }, p.config.artifactMaxBytes);
  }

  const waitForPipeline = (id: string) =>
    waitFor(
      async () => {
        const body = (await p.api('GET', `/v1/pipelines/${id}`)).body;
        return ENDED.includes(body.status) ? body : null;
      },
      `pipeline ${id}`,
      240_000,
    );

  async function machineWithFile(projectId: string, content: string) {
    const r = await p.api('POST', '/v1/machines', { projectId, type: 'shell', command: `mkdir -p data && echo ${content} > data/a.txt` });
    assert.equal(r.status, 202, JSON.stringify(r.body));
    const m = await waitForMachine(p, r.body.id);
    assert.equal(m.status, 'completed', JSON.stringify(m));
    return m;
  }

  before(async () => {
    p = await startTestPlatform({ label: 'artifacts' });
    [projectA, projectB] = await Promise.all([projectWithBudget(p, '10.00'), projectWithBudget(p, '10.00')]);
    [machineA, machineB] = await Promise.all([machineWithFile(projectA, 'from-project-a'), machineWithFile(projectB, 'from-project-b')]);
  });
  after(async () => {
    await p?.stop();
  });

  it("3-step pipeline: b gets a file of a's checkpoint and a's declared artifact, c gets b's conversation and a file of a that b deleted", async () => {
    const steps = [
      {
        id: 'a',
        type: 'shell',
        command: 'mkdir -p out && echo data-from-a > out/data.txt && echo report-of-a > report.txt',
        artifacts: ['report.txt', 'out/data.txt'],
      },
      {
        id: 'b',
        type: 'shell',
        dependsOn: ['a'],
        inputs: {
          files: [{ step: 'a', path: 'out/data.txt', as: 'copied/data.txt' }],
          artifacts: [{ step: 'a', name: 'report.txt', as: 'a-report.txt' }],
        },
        // b checks its inputs, removes a's file from its own tree, and runs long enough to be given a conversation.
        command: 'test "$(cat copied/data.txt)" = data-from-a && test "$(cat a-report.txt)" = report-of-a && rm out/data.txt && sleep 5 && echo b > b.txt',
      },
      {
        id: 'c',
        type: 'shell',
        dependsOn: ['b'],
        inputs: { conversations: [{ step: 'b' }], files: [{ step: 'a', path: 'out/data.txt', as: 'again.txt' }] },
        command: 'test ! -e out/data.txt && test "$(cat again.txt)" = data-from-a && cat .autovibe/context/*.conversation.jsonl > seen-conversation.txt',
      },
    ];
    const start = await p.api('POST', '/v1/pipelines', { projectId: projectA, steps });
    assert.equal(start.status, 202, JSON.stringify(start.body));

    // While b runs, its machine gets the conversation history an agent would have recorded.
    const conversation = '{"seq":1,"request":{"messages":[{"role":"user","content":"summarise out/data.txt"}]},"response":"it says data-from-a"}\n';
    const bMachine = await waitFor(async () => {
      const b = (await p.api('GET', `/v1/pipelines/${start.body.id}`)).body.steps.find((s: any) => s.id === 'b');
      return b.status === 'running' && b.machineId ? (b.machineId as string) : null;
    }, 'step b to run');
    await recordConversation(bMachine, conversation);

    const done = await waitForPipeline(start.body.id);
    const by = Object.fromEntries(done.steps.map((s: any) => [s.id, s]));
    for (const s of done.steps) assert.equal(s.status, 'completed', `${s.id}: ${s.error}`);
    assert.equal(done.status, 'completed');
    // The pipeline shows what each step was given and declared, as submitted.
    assert.deepEqual(by.a.artifacts, steps[0]!.artifacts);
    assert.equal(by.a.inputs, undefined);
    assert.deepEqual(by.b.inputs, steps[1]!.inputs);
    assert.deepEqual(by.c.inputs, steps[2]!.inputs);

    // Nothing of it is on this host's disk: an api on another host than the worker serves the same.
    fs.rmSync(p.config.artifactsDir, { recursive: true, force: true });
    // a's declared artifacts are kept, linked to a's final checkpoint, and readable by name (a path).
    const aArtifacts = (await p.api('GET', `/v1/machines/${by.a.machineId}/artifacts`)).body.items;
    assert.deepEqual(aArtifacts.map((x: any) => x.name).sort(), ['out/data.txt', 'report.txt']);
    for (const x of aArtifacts) assert.equal(x.checkpointId, by.a.checkpointId);
    assert.equal((await p.api('GET', `/v1/machines/${by.a.machineId}/artifacts/out/data.txt`)).body, 'data-from-a\n');

    // b started from an inputs checkpoint: a's final checkpoint plus the two given files.
    const b = (await p.api('GET', `/v1/machines/${by.b.machineId}`)).body;
    assert.equal(b.parentCheckpointId, by.a.checkpointId);
    const inputsCp = (await p.api('GET', `/v1/checkpoints/${b.checkpoints[0]}`)).body;
    assert.equal(inputsCp.kind, 'inputs');
    assert.equal(inputsCp.parentId, by.a.checkpointId);
    const diff = (await p.api('GET', `/v1/checkpoints/${by.a.checkpointId}/diff/${inputsCp.id}`)).body;
    assert.deepEqual(diff.added.sort(), ['a-report.txt', 'copied/data.txt']);
    assert.ok(
      b.events.some((e: any) => e.action === 'machine.inputs_placed'),
      'the inputs are audited',
    );

    // c: b's conversation under .autovibe/context, and a's file although b had deleted it.
    const cFiles = (await p.api('GET', `/v1/checkpoints/${by.c.checkpointId}`)).body.files.map((f: any) => f.path);
    assert.ok(cFiles.includes(`.autovibe/context/${bMachine}.conversation.jsonl`), JSON.stringify(cFiles));
    assert.ok(!cFiles.includes('out/data.txt'));
    const read = async (f: string) => (await p.api('GET', `/v1/checkpoints/${by.c.checkpointId}/files/${f}`)).body;
    assert.equal(await read('again.txt'), 'data-from-a\n');
    assert.equal(await read(`.autovibe/context/${bMachine}.conversation.jsonl`), conversation);
    assert.equal(await read('seen-conversation.txt'), conversation);
  });

  it('a step whose referenced step left no conversation fails with a clear error; steps after it are skipped', async () => {
    const r = await p.api('POST', '/v1/pipelines', {
      projectId: projectA,
      steps: [
        { id: 'quiet', type: 'shell', command: 'true' },
        { id: 'reader', type: 'shell', command: 'true', dependsOn: ['quiet'], inputs: { conversations: [{ step: 'quiet' }] } },
        { id: 'after', type: 'shell', command: 'true', dependsOn: ['reader'] },
      ],
    });
    assert.equal(r.status, 202, JSON.stringify(r.body));
    const done = await waitForPipeline(r.body.id);
    const by = Object.fromEntries(done.steps.map((s: any) => [s.id, s]));
    assert.equal(done.status, 'failed');
    assert.equal(by.reader.status, 'failed');
    assert.match(by.reader.error, /has no conversation history/);
    assert.equal(by.after.status, 'skipped');
    const reader = (await p.api('GET', `/v1/machines/${by.reader.machineId}`)).body;
    assert.equal(reader.status, 'failed');
    assert.equal((await p.api('GET', `/v1/projects/${projectA}`)).body.budget.reserved, '0.00');
  });

  it("a machine is given another machine's file and conversation by id; a missing declared artifact fails it, naming the file", async () => {
    await recordConversation(machineA.id, '{"seq":1,"response":"hello"}\n');
    const r = await p.api('POST', '/v1/machines', {
      projectId: projectA,
      type: 'shell',
      checkpointId: machineA.checkpoints.at(-1),
      inputs: {
        files: [{ checkpointId: machineA.checkpoints.at(-1), path: 'data/a.txt', as: 'given.txt' }],
        conversations: [{ machineId: machineA.id }],
      },
      artifacts: ['result.txt', 'never/written.txt'],
      command: `cat given.txt .autovibe/context/${machineA.id}.conversation.jsonl > result.txt`,
    });
    assert.equal(r.status, 202, JSON.stringify(r.body));
    const m = await waitForMachine(p, r.body.id);
    assert.equal(m.status, 'failed');
    assert.match(m.error, /declared artifacts missing from the final checkpoint: never\/written\.txt/);
    const artifacts = (await p.api('GET', `/v1/machines/${m.id}/artifacts`)).body.items;
    assert.deepEqual(
      artifacts.map((a: any) => a.name),
      ['result.txt'],
    );
    assert.equal((await p.api('GET', `/v1/machines/${m.id}/artifacts/result.txt`)).body, 'from-project-a\n{"seq":1,"response":"hello"}\n');
  });

  it('an artifact over the size cap is recorded without its content and refused clearly; a row from before the database store is read from its file where it is', async () => {
    const saved = await saveArtifact(p.db, { machineId: machineA.id, name: 'big.txt', content: Buffer.alloc(2048, 'x'), checkpointId: null }, 1024);
    assert.match(saved.notStored ?? '', /2048 bytes is over the artifact size cap of 1024 bytes/);
    const listed = (await p.api('GET', `/v1/machines/${machineA.id}/artifacts`)).body.items.find((a: any) => a.name === 'big.txt');
    assert.equal(listed.size, 2048);
    assert.match(listed.notStored, /size cap/);
    const served = await p.api('GET', `/v1/machines/${machineA.id}/artifacts/big.txt`);
    assert.equal(served.status, 409, JSON.stringify(served.body));
    assert.equal(served.body.error.code, 'artifact_not_stored');
    assert.match(served.body.error.message, /artifact big\.txt of machine .* was not stored: 2048 bytes is over the artifact size cap/);
    // Given as an input, it fails the machine with the reason.
    const r = await p.api('POST', '/v1/machines', {
      projectId: projectA,
      type: 'shell',
      command: 'true',
      inputs: { artifacts: [{ machineId: machineA.id, name: 'big.txt' }] },
    });
    assert.equal(r.status, 202, JSON.stringify(r.body));
    const m = await waitForMachine(p, r.body.id);
    assert.equal(m.status, 'failed');
    assert.match(m.error, /inputs refused: inputs\.artifacts\.0: artifact big\.txt .* size cap/);

    // Recorded before artifacts moved to the database: a path only, read while that file is here.
    const file = path.join(p.home, 'legacy.txt');
    fs.writeFileSync(file, 'old\n');
    await putArtifact(p.db, {
      machineId: machineA.id,
      name: 'legacy.txt',
      path: file,
      size: 4,
      sha256: crypto.createHash('sha256').update('old\n').digest('hex'),
      checkpointId: null,
    });
    assert.equal((await p.api('GET', `/v1/machines/${machineA.id}/artifacts/legacy.txt`)).body, 'old\n');
    fs.rmSync(file);
    const gone = await p.api('GET', `/v1/machines/${machineA.id}/artifacts/legacy.txt`);
    assert.equal(gone.status, 409);
    assert.match(gone.body.error.message, /recorded before artifacts moved to the database.*not on this host/);
  });

  it('refuses at submit, with 422 naming the field, and starts nothing: other projects, path traversal, missing files, non-ancestor steps', async () => {
    const countMachines = async () => Number((await p.db('machines').count({ n: '*' }))[0]!.n);
    const countPipelines = async () => Number((await p.db('pipelines').count({ n: '*' }))[0]!.n);
    const [machinesBefore, pipelinesBefore] = [await countMachines(), await countPipelines()];
    const cpA = machineA.checkpoints.at(-1);
    const cpB = machineB.checkpoints.at(-1);
    const machine = (inputs: unknown, extra: Record<string, unknown> = {}) =>
      p.api('POST', '/v1/machines', { projectId: projectA, type: 'shell', command: 'true', inputs, ...extra });
    const refused = async (r: { status: number; body: any }, field: string, message: RegExp) => {
      assert.equal(r.status, 422, JSON.stringify(r.body));
      assert.equal(r.body.error.details.field, field, JSON.stringify(r.body));
      assert.match(r.body.error.message, message);
    };

    await refused(await machine({ files: [{ checkpointId: cpB, path: 'data/a.txt' }] }), 'inputs.files.0.checkpointId', /not a checkpoint of project/);
    await refused(await machine({ files: [{ checkpointId: cpA, path: '../../etc/passwd' }] }), 'inputs.files.0.path', /"\.\."/);
    await refused(await machine({ files: [{ checkpointId: cpA, path: 'data/a.txt', as: '../outside.txt' }] }), 'inputs.files.0.as', /"\.\."/);
    await refused(await machine({ files: [{ checkpointId: cpA, path: 'data/a.txt', as: '/etc/x' }] }), 'inputs.files.0.as', /relative/);
    await refused(await machine({ files: [{ checkpointId: cpA, path: 'data/a.txt', as: '.git/config' }] }), 'inputs.files.0.as', /\.git/);
    await refused(await machine({ files: [{ checkpointId: cpA, path: 'data/nope.txt' }] }), 'inputs.files.0.path', /not a file of checkpoint/);
    await refused(await machine({ files: [{ checkpointId: cpA, path: 'data' }] }), 'inputs.files.0.path', /not a file of checkpoint/);
    await refused(
      await machine({
        files: [
          { checkpointId: cpA, path: 'data/a.txt', as: 'x.txt' },
          { checkpointId: cpA, path: 'data/a.txt', as: 'x.txt' },
        ],
      }),
      'inputs.files.1.as',
      /already the destination/,
    );
    await refused(await machine({ conversations: [{ machineId: machineB.id }] }), 'inputs.conversations.0.machineId', /not a machine of project/);
    await refused(await machine({ artifacts: [{ machineId: machineA.id, name: 'nothing.txt' }] }), 'inputs.artifacts.0.name', /has no artifact/);
    await refused(await machine({ files: [{ step: 'a', path: 'x.txt' }] }), 'inputs.files.0.step', /only for pipeline steps/);
    await refused(await machine(undefined, { artifacts: ['../escape.txt'] }), 'artifacts.0', /"\.\."/);
    await refused(await machine(undefined, { artifacts: ['conversation.jsonl'] }), 'artifacts.0', /record by themselves/);
    // Neither or both of checkpointId and step: a malformed request (400), also naming the field.
    const both = await machine({ files: [{ checkpointId: cpA, step: 'a', path: 'x' }] });
    assert.equal(both.status, 400);
    assert.match(both.body.error.message, /inputs\.files\.0: give exactly one of checkpointId, step/);

    const pipeline = (steps: unknown[]) => p.api('POST', '/v1/pipelines', { projectId: projectA, steps });
    // A sibling is not an ancestor: its output may not exist when the step starts.
    await refused(
      await pipeline([
        { id: 'a', type: 'shell', command: 'true' },
        { id: 'b', type: 'shell', command: 'true' },
        { id: 'c', type: 'shell', command: 'true', dependsOn: ['a'], inputs: { files: [{ step: 'b', path: 'x.txt' }] } },
      ]),
      'steps.2.inputs.files.0.step',
      /step b is not a step that c depends on/,
    );
    // Transitive ancestors are fine, but an artifact the step does not declare is refused.
    await refused(
      await pipeline([
        { id: 'a', type: 'shell', command: 'true', artifacts: ['r.txt'] },
        { id: 'b', type: 'shell', command: 'true', dependsOn: ['a'] },
        { id: 'c', type: 'shell', command: 'true', dependsOn: ['b'], inputs: { artifacts: [{ step: 'a', name: 'other.txt' }] } },
      ]),
      'steps.2.inputs.artifacts.0.name',
      /step a declares no artifact other\.txt \(it declares: r\.txt\)/,
    );
    await refused(
      await pipeline([{ id: 'a', type: 'shell', command: 'true', inputs: { files: [{ checkpointId: cpB, path: 'data/a.txt' }] } }]),
      'steps.0.inputs.files.0.checkpointId',
      /not a checkpoint of project/,
    );
    assert.equal(await countMachines(), machinesBefore);
    assert.equal(await countPipelines(), pipelinesBefore);
  });

  it("a running agent fetches files of its own project's checkpoints through the proxy socket, and nothing else; every request is audited", async () => {
    // The model upstream: it must never see the platform's own routes.
    const upstreamPaths: string[] = [];
    const upstream = http.createServer((req, res) => {
      upstreamPaths.push(req.url ?? '');
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    const socketPath = path.join(p.home, 'machines', 'proxy-test', 'api.sock');
    const refused: string[] = [];
    fs.mkdirSync(path.dirname(socketPath), { recursive: true });
    // Started as the agent run starts it, for machine A of project A.
    const proxy = await startMeteringProxy({
      socketPath,
      upstream: `http://127.0.0.1:${(upstream.address() as { port: number }).port}`,
      dialect: 'anthropic',
      headers: {},
      admit: () => ({ ok: true }),
      completed: async () => undefined,
      refused: async (r) => void refused.push(`${r.method} ${r.path}`),
      local: checkpointFileRoute(p.db, { machineId: machineA.id, projectId: projectA }),
    });
    const get = (url: string) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        http
          .get({ socketPath, path: url }, (res) => {
            let body = '';
            res.on('data', (c: Buffer) => (body += c.toString()));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
          })
          .on('error', reject);
      });
    try {
      const cpA = machineA.checkpoints.at(-1);
      const cpB = machineB.checkpoints.at(-1);
      const own = await get(`/autovibe/v1/checkpoints/${cpA}/files/data/a.txt`);
      assert.deepEqual(own, { status: 200, body: 'from-project-a\n' });
      const foreign = await get(`/autovibe/v1/checkpoints/${cpB}/files/data/a.txt`);
      assert.equal(foreign.status, 404);
      assert.doesNotMatch(foreign.body, /from-project-b/);
      // Refused for being another project's, not merely because this project's repository lacks its commit.
      assert.match(foreign.body, /no checkpoint checkpoint-\S+ in this machine's project/);
      assert.equal((await get(`/autovibe/v1/checkpoints/${cpA}/files/data/missing.txt`)).status, 404);
      assert.equal((await get(`/autovibe/v1/checkpoints/${cpA}/files/data/../../x`)).status, 400);
      // The agent can discover what to ask for: its project's checkpoints, and the files of one.
      const list = await get('/autovibe/v1/checkpoints');
      assert.equal(list.status, 200);
      const ids = JSON.parse(list.body).items.map((c: any) => c.id);
      assert.ok(ids.includes(cpA) && !ids.includes(cpB), list.body);
      const one = await get(`/autovibe/v1/checkpoints/${cpA}`);
      assert.ok(
        JSON.parse(one.body).files.some((f: any) => f.path === 'data/a.txt'),
        one.body,
      );
      assert.equal((await get(`/autovibe/v1/checkpoints/${cpB}`)).status, 404);
      assert.deepEqual(upstreamPaths, []);
      // Nothing else reaches the model API but its model endpoints: the rest is refused.
      assert.equal((await get('/v1/models')).status, 403);
      assert.deepEqual(upstreamPaths, []);
      assert.deepEqual(refused, ['GET /v1/models']);

      const requests = (await p.api('GET', `/v1/audit?subjectId=${machineA.id}&action=machine.file_requested`)).body.items;
      assert.deepEqual(
        requests.map((a: any) => [a.details.checkpointId, a.details.path, a.details.status]).sort(),
        [
          [cpA, 'data/../../x', 400],
          [cpA, 'data/a.txt', 200],
          [cpA, 'data/missing.txt', 404],
          [cpB, 'data/a.txt', 404],
        ].sort(),
      );
      assert.ok(requests.every((a: any) => a.actor === `machine:${machineA.id}`));
    } finally {
      await proxy.close();
      upstream.close();
    }
  });
});

describe('artifact passing to an agent machine (the real Claude Code CLI against the scripted model endpoint)', function () {
  this.timeout(600_000);
  let llm: ScriptedEndpoint;
  let p: TestPlatform;

  before(async function () {
    this.timeout(1_800_000);
    await installAgentClis();
    llm = await startScriptedEndpoint();
    p = await startTestPlatform({
      label: 'artifacts-agent',
      env: { AUTOVIBE_TOOLS_DIR: toolsDir(), ANTHROPIC_API_KEY: 'test-anthropic-key', ANTHROPIC_BASE_URL: llm.url },
    });
  });
  after(async () => {
    await p?.stop();
    await llm?.stop();
  });

  it("gives the agent another machine's conversation and file, tells it so in its prompt, and serves it files while it runs", async () => {
    const projectId = await projectWithBudget(p, '10.00');
    const r = await p.api('POST', '/v1/machines', { projectId, type: 'shell', command: 'echo spec > spec.txt' });
    const earlier = await waitForMachine(p, r.body.id);
    assert.equal(earlier.status, 'completed', JSON.stringify(earlier));
    const checkpoint = earlier.checkpoints.at(-1);
    // A shell machine records no conversation: give the earlier machine one as an agent would have.
    const conversation = '{"seq":1,"response":"the spec is in spec.txt"}\n';
    const file = path.join(p.config.artifactsDir, earlier.id, 'conversation.jsonl');
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, conversation);
    await putArtifact(p.db, { machineId: earlier.id, name: 'conversation.jsonl', path: file, size: conversation.length, sha256: 'x', checkpointId: null });

    // The agent reads what it was given and fetches one more file through the platform while it runs.
    llm.setScript(
      shellScript('claude', {
        command: `cat .autovibe/context/${earlier.id}.conversation.jsonl given/spec.txt > seen.txt && curl -sf http://127.0.0.1:8080/autovibe/v1/checkpoints/${checkpoint}/files/spec.txt > fetched.txt`,
      }),
    );
    const started = await p.api('POST', '/v1/machines', {
      projectId,
      type: 'claude-code',
      prompt: 'Continue the work.',
      checkpointId: checkpoint,
      limits: { money: '2.00', minutes: 5 },
      inputs: { files: [{ checkpointId: checkpoint, path: 'spec.txt', as: 'given/spec.txt' }], conversations: [{ machineId: earlier.id }] },
    });
    assert.equal(started.status, 202, JSON.stringify(started.body));
    const m = await waitForMachine(p, started.body.id);
    assert.equal(m.status, 'completed', JSON.stringify(m));
    const final = m.checkpoints.at(-1);
    const read = async (f: string) => {
      const res = await fetch(`${p.apiUrl}/v1/checkpoints/${final}/files/${f}`, { headers: { authorization: `Bearer ${p.adminKey}` } });
      assert.equal(res.status, 200, `${f}: ${res.status}`);
      return res.text();
    };
    assert.equal(await read('seen.txt'), `${conversation}spec\n`);
    assert.equal(await read('fetched.txt'), 'spec\n');

    // The note reached the model in the first request's prompt.
    const first = JSON.stringify(llm.requests.find((q) => q.kind === 'main')?.body ?? '');
    assert.match(first, /Continue the work\./);
    assert.ok(first.includes(`.autovibe/context/${earlier.id}.conversation.jsonl: conversation history of machine ${earlier.id}`), first.slice(0, 2000));
    assert.ok(first.includes(`given/spec.txt: file spec.txt of checkpoint ${checkpoint}`));
    const audit = (await p.api('GET', `/v1/audit?subjectId=${m.id}&action=machine.file_requested`)).body.items;
    assert.equal(audit.length, 1, JSON.stringify(audit));
  });
});

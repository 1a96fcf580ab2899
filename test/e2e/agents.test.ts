import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { liveSandboxPids } from '../../activities/compute/local-sandbox.js';
import { installAgentClis, toolsDir } from '../support/llm/agent-clis.js';
import { startScriptedEndpoint, writeFileScript, type AgentCli, type ScriptedEndpoint } from '../support/llm/endpoint.js';
import { projectWithBudget, startTestPlatform, waitFor, waitForMachine, type TestPlatform } from '../support/platform.js';

/** USD price per million tokens of the `*` model of each type, written out here independently of the price table. */
const PRICES: Record<string, [bigint, bigint]> = {
  'claude-code': [3n, 15n],
  'gemini-pro': [125n, 1000n], // in cents: 1.25 and 10
  'qwen-coder': [0n, 0n],
  aider: [2n, 8n],
  'deepseek-coder': [27n, 110n], // cents: 0.27 and 1.10
  'local-llama': [0n, 0n],
};
const IN_CENTS = new Set(['gemini-pro', 'deepseek-coder']);
const UNIT = 10n ** 18n;

/** Cost of one call in ledger units (10^-18 USD), rounded up, computed without the platform's code. */
function expectedCallCost(type: string, input: number, output: number): bigint {
  const [pi, po] = PRICES[type]!;
  const scale = IN_CENTS.has(type) ? 100n : 1n;
  const raw = (BigInt(input) * pi + BigInt(output) * po) * UNIT;
  const den = 1_000_000n * scale;
  return (raw + den - 1n) / den;
}

const toUnits = (s: string) => {
  const [w, f = ''] = s.split('.');
  return BigInt(w!) * UNIT + BigInt(f.padEnd(18, '0'));
};

const CASES: Array<{ type: string; cli: AgentCli }> = [
  { type: 'claude-code', cli: 'claude' },
  { type: 'qwen-coder', cli: 'qwen' },
  { type: 'gemini-pro', cli: 'gemini' },
  { type: 'aider', cli: 'aider' },
  { type: 'deepseek-coder', cli: 'aider' },
  { type: 'local-llama', cli: 'aider' },
];

describe('model-backed machines: the real agent CLIs in the sandbox against a scripted model endpoint', function () {
  this.timeout(600_000);
  let llm: ScriptedEndpoint;
  let p: TestPlatform;

  before(async function () {
    this.timeout(1_800_000);
    await installAgentClis();
    llm = await startScriptedEndpoint();
    p = await startTestPlatform({
      label: 'agents',
      env: {
        AUTOVIBE_TOOLS_DIR: toolsDir(),
        ANTHROPIC_API_KEY: 'test-anthropic-key',
        ANTHROPIC_BASE_URL: llm.url,
        QWEN_BASE_URL: llm.url,
        GEMINI_API_KEY: 'test-gemini-key',
        GOOGLE_GEMINI_BASE_URL: llm.url,
        OPENAI_API_KEY: 'test-openai-key',
        OPENAI_BASE_URL: `${llm.url}/v1`,
        DEEPSEEK_API_KEY: 'test-deepseek-key',
        DEEPSEEK_BASE_URL: llm.url,
        LOCAL_LLM_BASE_URL: llm.url,
      },
    });
  });
  after(async () => {
    await p?.stop();
    await llm?.stop();
  });

  it('lists every machine type as available once its CLI and endpoint are configured', async () => {
    const types = (await p.api('GET', '/v1/machine-types')).body.items;
    for (const { type } of CASES) {
      const t = types.find((x: any) => x.id === type);
      assert.equal(t.available, true, `${type}: ${t.reason}`);
    }
    assert.deepEqual(types.find((x: any) => x.id === 'aider').dailyBudget, { amount: '75.00', currency: 'USD' });
    assert.deepEqual(types.find((x: any) => x.id === 'qwen-coder').dailyBudget, { amount: '50.00', currency: 'USD' });
  });

  for (const { type, cli } of CASES) {
    it(`${type}: the CLI edits the workspace as scripted; checkpoints, tokens and cost match what the endpoint reported`, async () => {
      const projectId = await projectWithBudget(p, '20.00');
      const content = `hello from ${type}\n`;
      llm.reset();
      llm.setScript(writeFileScript(cli, { path: '/workspace/hello.txt', relativePath: 'hello.txt', content }));
      const start = await p.api('POST', '/v1/machines', {
        projectId,
        type,
        prompt: 'Create hello.txt with a greeting.',
        limits: { money: '5.00', minutes: 5 },
      });
      assert.equal(start.status, 202, JSON.stringify(start.body));
      const m = await waitForMachine(p, start.body.id, 300_000);
      assert.equal(m.status, 'completed', JSON.stringify(m));

      // Files changed as scripted, in the final checkpoint.
      const final = m.checkpoints.at(-1);
      assert.equal((await p.api('GET', `/v1/checkpoints/${final}/files/hello.txt`)).body, content);
      // A turn that changed files was checkpointed during the run, before the final checkpoint.
      const kinds = await Promise.all(m.checkpoints.map(async (c: string) => (await p.api('GET', `/v1/checkpoints/${c}`)).body.kind));
      assert.ok(kinds.includes('turn'), `checkpoint kinds: ${kinds}`);
      assert.equal(kinds.at(-1), 'final');

      // Tokens: what the machine recorded is what the endpoint reported, call by call.
      const reported = llm.requests.filter((r) => r.usage);
      const totals = llm.totals();
      assert.ok(totals.calls > 0);
      assert.deepEqual(m.usage, { inputTokens: totals.inputTokens, outputTokens: totals.outputTokens, apiCalls: totals.calls });
      const costs = (await p.api('GET', `/v1/projects/${projectId}/costs`)).body.items.filter((e: any) => e.machineId === m.id);
      const api = costs.filter((e: any) => e.category === 'api');
      assert.equal(api.length, reported.length, 'one api cost event per model call');
      const expected = reported.reduce((sum, r) => sum + expectedCallCost(type, r.usage!.inputTokens, r.usage!.outputTokens), 0n);
      const recorded = api.reduce((sum: bigint, e: any) => sum + toUnits(e.amount), 0n);
      assert.equal(recorded, expected);
      // The machine's cost is its model calls plus its compute, and the budget was charged exactly that.
      const infra = costs.filter((e: any) => e.category === 'infra');
      assert.equal(infra.length, 1);
      assert.equal(toUnits(m.cost.amount), expected + toUnits(infra[0].amount));
      const budget = (await p.api('GET', `/v1/projects/${projectId}`)).body.budget;
      assert.equal(toUnits(budget.spent), toUnits(m.cost.amount));
      assert.equal(budget.reserved, '0.00');

      // The conversation is kept as an artifact; the credentials never entered the sandbox.
      const artifacts = (await p.api('GET', `/v1/machines/${m.id}/artifacts`)).body.items.map((a: any) => a.name);
      assert.ok(artifacts.includes('conversation.jsonl'), `artifacts: ${artifacts}`);
      const conversation = (await p.api('GET', `/v1/machines/${m.id}/artifacts/conversation.jsonl`)).body as string;
      assert.equal(conversation.trim().split('\n').length, reported.length);
      for (const r of llm.requests) assert.doesNotMatch(JSON.stringify(r.body ?? ''), /test-(anthropic|gemini|openai|deepseek)-key/);
      assert.deepEqual(liveSandboxPids(m.id), []);
    });
  }

  it('stops a machine at its API-call limit with the reason recorded', async () => {
    const projectId = await projectWithBudget(p, '20.00');
    llm.reset();
    llm.setScript(writeFileScript('claude', { path: '/workspace/hello.txt', content: 'x\n' }));
    const start = await p.api('POST', '/v1/machines', { projectId, type: 'claude-code', prompt: 'go', limits: { money: '5.00', apiCalls: 1 } });
    const m = await waitForMachine(p, start.body.id, 300_000);
    assert.equal(m.status, 'terminated', JSON.stringify(m));
    assert.equal(m.stopReason, 'API call limit reached');
    assert.equal(llm.totals().calls, 1, 'the endpoint saw exactly the one allowed call');
    assert.equal(m.usage.apiCalls, 1);
  });

  it('refuses at request time a money limit that cannot cover one worst-case call, naming the minimum, and an unpriced model', async () => {
    const projectId = await projectWithBudget(p, '20.00');
    const before = (await p.api('GET', `/v1/machines?projectId=${projectId}`)).body.items.length;
    const low = await p.api('POST', '/v1/machines', { projectId, type: 'claude-code', prompt: 'go', limits: { money: '0.01' } });
    assert.equal(low.status, 422, JSON.stringify(low.body));
    // claude-sonnet-4-5: 200k context × 3.75/M (cache write) + 64k output × 15/M = 1.71; 30 minutes at 0.02/h = 0.01.
    assert.equal(
      low.body.error.message,
      'limits.money: 0.01 USD cannot cover one claude-code call (claude-sonnet-4-5, worst case 1.71 USD) plus 30 minutes of compute (0.01 USD); use at least 1.72',
    );
    assert.equal(low.body.error.details.minimum, '1.72');
    const unpriced = await p.api('POST', '/v1/machines', {
      projectId,
      type: 'claude-code',
      model: 'claude-unpriced-9',
      prompt: 'go',
      limits: { money: '5.00' },
    });
    assert.equal(unpriced.status, 422, JSON.stringify(unpriced.body));
    assert.match(unpriced.body.error.message, /^model: claude-unpriced-9 is not priced for claude-code/);
    assert.equal((await p.api('GET', `/v1/machines?projectId=${projectId}`)).body.items.length, before, 'nothing was started');
    assert.equal((await p.api('GET', `/v1/projects/${projectId}`)).body.budget.reserved, '0.00');
  });

  it('applies the same minimum to objectives and pipeline steps, at submit', async () => {
    const projectId = await projectWithBudget(p, '20.00');
    const objective = await p.api('POST', `/v1/projects/${projectId}/objectives`, {
      title: 'too cheap',
      machineType: 'claude-code',
      prompt: 'go',
      limits: { money: '0.01' },
    });
    assert.equal(objective.status, 422, JSON.stringify(objective.body));
    assert.match(objective.body.error.message, /^limits\.money: 0\.01 USD cannot cover one claude-code call .*; use at least 1\.72$/);
    const pipeline = await p.api('POST', '/v1/pipelines', {
      projectId,
      steps: [
        { id: 'a', type: 'shell', command: 'true', limits: { money: '0.01' } },
        { id: 'b', type: 'gemini-pro', prompt: 'go', dependsOn: ['a'], limits: { money: '0.50' } },
      ],
    });
    assert.equal(pipeline.status, 422, JSON.stringify(pipeline.body));
    // gemini-2.5-pro: 1,048,576 × 1.25/M + 65,536 × 10/M = 1.96608 → 1.97; plus 0.01 of compute.
    assert.equal(
      pipeline.body.error.message,
      'steps.1.limits.money: 0.50 USD cannot cover one gemini-pro call (gemini-2.5-pro, worst case 1.97 USD) plus 30 minutes of compute (0.01 USD); use at least 1.98',
    );
  });

  it('an agent machine with default limits gets a limit that covers a call, makes its calls and completes', async () => {
    const projectId = await projectWithBudget(p, '20.00');
    llm.reset();
    llm.setScript(writeFileScript('claude', { path: '/workspace/hello.txt', content: 'default limits\n' }));
    const start = await p.api('POST', '/v1/machines', { projectId, type: 'claude-code', prompt: 'go' });
    assert.equal(start.status, 202, JSON.stringify(start.body));
    const m = await waitForMachine(p, start.body.id, 300_000);
    assert.equal(m.status, 'completed', JSON.stringify(m));
    assert.equal(m.stopReason, null);
    assert.equal(m.limits.money, '1.72', "the project's 0.50 default raised to one worst-case call plus compute");
    assert.ok(m.usage.apiCalls >= 1);
    assert.equal(m.usage.apiCalls, llm.totals().calls);
  });

  it('refuses endpoints other than the model API and unpriced models from inside the sandbox: nothing forwarded, nothing charged, each audited', async () => {
    const projectId = await projectWithBudget(p, '20.00');
    llm.reset();
    // The agent itself tries to use the proxy for something else.
    const probe = [
      '(async () => { const out = [];',
      'for (const [method, path, body] of [["GET", "/v1/models", null], ["POST", "/v1/files", "{}"],',
      '["POST", "/v1/messages", JSON.stringify({ model: "claude-unpriced-9", max_tokens: 10, messages: [{ role: "user", content: "hi" }] })]]) {',
      'const res = await fetch("http://127.0.0.1:8080" + path, { method, headers: { "content-type": "application/json" }, body: body ?? undefined });',
      'out.push({ method, path, status: res.status, body: await res.text() }); }',
      'require("fs").writeFileSync("/workspace/bypass.json", JSON.stringify(out)); })()',
    ].join(' ');
    llm.setScript([
      { kind: 'tool', name: 'Bash', args: { command: `node -e '${probe}'`, description: 'probe the proxy' } },
      { kind: 'text', text: 'Done.' },
    ]);
    const start = await p.api('POST', '/v1/machines', { projectId, type: 'claude-code', prompt: 'probe', limits: { money: '5.00' } });
    assert.equal(start.status, 202, JSON.stringify(start.body));
    const m = await waitForMachine(p, start.body.id, 300_000);
    assert.equal(m.status, 'completed', JSON.stringify(m));
    const seen = JSON.parse((await p.api('GET', `/v1/checkpoints/${m.checkpoints.at(-1)}/files/bypass.json`)).body);
    assert.deepEqual(
      seen.map((r: any) => [r.method, r.path, r.status]),
      [
        ['GET', '/v1/models', 403],
        ['POST', '/v1/files', 403],
        ['POST', '/v1/messages', 403],
      ],
    );
    assert.match(seen[0].body, /GET \/v1\/models is not a model endpoint this machine may call/);
    assert.match(seen[2].body, /model claude-unpriced-9 is not priced for claude-code/);
    // The endpoint never saw them; only the agent's own calls were charged.
    assert.deepEqual(
      llm.requests.filter((r) => r.path !== '/v1/messages' || r.model === 'claude-unpriced-9').map((r) => `${r.method} ${r.path}`),
      [],
    );
    const api = (await p.api('GET', `/v1/projects/${projectId}/costs`)).body.items.filter((e: any) => e.machineId === m.id && e.category === 'api');
    assert.equal(api.length, llm.totals().calls);
    assert.equal(m.usage.apiCalls, llm.totals().calls);
    const refusals = m.events.filter((e: any) => e.action === 'machine.call_refused');
    assert.deepEqual(refusals.map((e: any) => [e.details.method, e.details.path, e.details.code, e.details.charged]).sort(), [
      ['GET', '/v1/models', 'endpoint_not_allowed', '0'],
      ['POST', '/v1/files', 'endpoint_not_allowed', '0'],
      ['POST', '/v1/messages', 'model_not_priced', '0'],
    ]);
  });

  it('charges a model call whose response reports no usage its worst case, the amount reserved before it was sent', async () => {
    const projectId = await projectWithBudget(p, '20.00');
    llm.reset();
    llm.setUsageReported(false);
    llm.setScript(writeFileScript('claude', { path: '/workspace/hello.txt', content: 'unmetered?\n' }));
    const start = await p.api('POST', '/v1/machines', { projectId, type: 'claude-code', prompt: 'go', limits: { money: '5.00' } });
    assert.equal(start.status, 202, JSON.stringify(start.body));
    const m = await waitForMachine(p, start.body.id, 300_000);
    const calls = llm.requests.filter((r) => r.path === '/v1/messages');
    assert.ok(calls.length >= 1, JSON.stringify(m));
    assert.ok(calls.every((r) => !r.usage));
    const api = (await p.api('GET', `/v1/projects/${projectId}/costs`)).body.items.filter((e: any) => e.machineId === m.id && e.category === 'api');
    assert.equal(api.length, calls.length, 'every call charged');
    // Worst case, computed here: min(body bytes, 200k) input tokens at 3.75/M (the dearest input rate) + max_tokens at 15/M, rounded up.
    const worst = (r: (typeof calls)[number]) => {
      const raw = BigInt(Math.min(r.bytes, 200_000)) * 375n * 10n ** 16n + BigInt((r.body as any).max_tokens) * 15n * UNIT;
      return (raw + 999_999n) / 1_000_000n;
    };
    const expected = calls.reduce((sum, r) => sum + worst(r), 0n);
    assert.ok(expected > toUnits('0.40'), 'a real worst case, not zero');
    assert.equal(
      api.reduce((sum: bigint, e: any) => sum + toUnits(e.amount), 0n),
      expected,
    );
    assert.equal(m.usage.apiCalls, calls.length);
    assert.ok(toUnits(m.cost.amount) >= expected);
  });

  it('enforces per-type daily budgets with the same ledger', async () => {
    const projectId = await projectWithBudget(p, '20.00');
    const set = await p.api('PUT', `/v1/projects/${projectId}/machine-types/aider/budget`, { amount: '1.00', currency: 'USD' });
    assert.equal(set.status, 200, JSON.stringify(set.body));
    const r = await p.api('POST', '/v1/machines', { projectId, type: 'aider', prompt: 'go', limits: { money: '2.50' } });
    assert.equal(r.status, 409);
    assert.equal(r.body.error.code, 'budget_exceeded');
    assert.match(r.body.error.message, /aider daily budget/);
  });

  it('pauses at a limit under the pause policy, keeps the work, and resumes when a human extends it', async () => {
    const project = await p.api('POST', '/v1/projects', { name: 'pausing', limitPolicy: 'pause', pauseMinutes: 10 });
    assert.equal(project.status, 201, JSON.stringify(project.body));
    const projectId = project.body.id;
    await p.api('PUT', `/v1/projects/${projectId}/budget`, { amount: '20.00', currency: 'USD', period: 'daily' });
    llm.reset();
    llm.setScript(writeFileScript('claude', { path: '/workspace/hello.txt', content: 'before pause\n' }));
    const start = await p.api('POST', '/v1/machines', { projectId, type: 'claude-code', prompt: 'go', limits: { money: '2.00', apiCalls: 1 } });
    const id = start.body.id;
    const paused = await waitFor(
      async () => {
        const m = (await p.api('GET', `/v1/machines/${id}`)).body;
        return m.status === 'paused' ? m : null;
      },
      'the machine to pause',
      120_000,
    );
    assert.equal(paused.stopReason, 'API call limit reached');
    const pauseCheckpoint = (await p.api('GET', `/v1/checkpoints/${paused.checkpoints.at(-1)}`)).body;
    assert.equal(pauseCheckpoint.kind, 'pause');
    assert.ok(
      pauseCheckpoint.files.some((f: any) => f.path === 'hello.txt'),
      'the work before the limit is kept',
    );
    assert.deepEqual(liveSandboxPids(id), [], 'the compute is freed while paused');
    // Waiting for a decision is an alert of the project.
    const alerts = (await p.api('GET', `/v1/alerts?projectId=${projectId}`)).body.items.filter((a: any) => a.kind === 'machine_paused');
    assert.deepEqual(
      alerts.map((a: any) => [a.subjectId, a.severity, a.data.stopReason]),
      [[id, 'warning', 'API call limit reached']],
    );
    // The worker's copy of the history goes, as when the run resumes on another worker.
    fs.rmSync(path.join(p.config.artifactsDir, id), { recursive: true, force: true });

    const bad = await p.api('POST', `/v1/machines/${id}/extend`, {});
    assert.equal(bad.status, 400);
    llm.setScript(writeFileScript('claude', { path: '/workspace/after.txt', content: 'after resume\n' }));
    const ext = await p.api('POST', `/v1/machines/${id}/extend`, { money: '1.00', apiCalls: 10 });
    assert.equal(ext.status, 202, JSON.stringify(ext.body));
    const m = await waitForMachine(p, id, 300_000);
    assert.equal(m.status, 'completed', JSON.stringify(m));
    const final = (await p.api('GET', `/v1/checkpoints/${m.checkpoints.at(-1)}`)).body;
    const files = final.files.map((f: any) => f.path).sort();
    assert.deepEqual(files, ['after.txt', 'hello.txt'], 'the resumed run started from the pause checkpoint');
    const reservations = await p.db('reservations').where({ machine_id: id }).orderBy('id');
    assert.deepEqual(
      reservations.map((r) => [r.id, r.status]),
      [
        [`machine:${id}`, 'settled'],
        [`machine:${id}:ext:1`, 'settled'],
      ],
    );
    const apiEvents = await p.db('cost_events').where({ machine_id: id, category: 'api' });
    assert.equal(apiEvents.length, llm.totals().calls, 'every model call of both runs counted once');
    // The history went on from the stored one: both runs' calls, each once.
    const conversation = (await p.api('GET', `/v1/machines/${id}/artifacts/conversation.jsonl`)).body as string;
    assert.equal(conversation.trim().split('\n').length, llm.totals().calls, 'the conversation holds the calls of both runs');
    assert.equal((await p.api('GET', `/v1/projects/${projectId}`)).body.budget.reserved, '0.00');
    const again = await p.api('POST', `/v1/machines/${id}/extend`, { money: '1.00' });
    assert.equal(again.status, 409);
    assert.equal(again.body.error.code, 'machine_not_paused');
  });

  it('ends a paused machine when it is terminated instead of extended', async () => {
    const project = (await p.api('POST', '/v1/projects', { name: 'pausing 2', limitPolicy: 'pause' })).body;
    await p.api('PUT', `/v1/projects/${project.id}/budget`, { amount: '20.00', currency: 'USD', period: 'daily' });
    llm.reset();
    llm.setScript(writeFileScript('claude', { path: '/workspace/hello.txt', content: 'x\n' }));
    const id = (await p.api('POST', '/v1/machines', { projectId: project.id, type: 'claude-code', prompt: 'go', limits: { apiCalls: 1 } })).body.id;
    await waitFor(async () => (await p.api('GET', `/v1/machines/${id}`)).body.status === 'paused', 'pause', 120_000);
    assert.equal((await p.api('POST', `/v1/machines/${id}/terminate`)).status, 202);
    const m = await waitForMachine(p, id, 120_000);
    assert.equal(m.status, 'terminated');
    assert.equal(m.stopReason, 'terminated by request');
    assert.equal((await p.db('reservations').where({ machine_id: id }).first()).status, 'settled');
  });

  it('checkpoints the live workspace every N minutes while the agent works', async function () {
    this.timeout(300_000);
    const projectId = await projectWithBudget(p, '20.00');
    llm.reset();
    // One long tool call: the agent writes a line a second for 75 seconds.
    llm.setScript([
      { kind: 'tool', name: 'Bash', args: { command: 'for i in $(seq 1 75); do echo $i >> ticks.txt; sleep 1; done', description: 'tick', timeout: 300000 } },
      { kind: 'text', text: 'Done.' },
    ]);
    const start = await p.api('POST', '/v1/machines', { projectId, type: 'claude-code', prompt: 'tick', checkpointEveryMinutes: 1, limits: { money: '5.00' } });
    assert.equal(start.status, 202, JSON.stringify(start.body));
    const m = await waitForMachine(p, start.body.id, 240_000);
    assert.equal(m.status, 'completed', JSON.stringify(m));
    const cps = await Promise.all(m.checkpoints.map(async (c: string) => (await p.api('GET', `/v1/checkpoints/${c}`)).body));
    const periodic = cps.find((c: any) => c.trigger === 'every 1 minutes');
    assert.ok(periodic, `triggers: ${cps.map((c: any) => c.trigger)}`);
    // Taken mid-run: it has some ticks, fewer than the final checkpoint.
    const ticksAt = async (id: string) =>
      String((await p.api('GET', `/v1/checkpoints/${id}/files/ticks.txt`)).body)
        .trim()
        .split('\n').length;
    const mid = await ticksAt(periodic.id);
    assert.ok(mid > 30 && mid < 75, `periodic checkpoint had ${mid} ticks`);
    assert.equal(await ticksAt(m.checkpoints.at(-1)), 75);
    const artifacts = (await p.api('GET', `/v1/machines/${m.id}/artifacts`)).body.items;
    assert.ok(artifacts.find((a: any) => a.name === 'conversation.jsonl').checkpointId, 'the conversation is linked to a checkpoint');
  });
});

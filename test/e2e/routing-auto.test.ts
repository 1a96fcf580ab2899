import assert from 'node:assert/strict';
import { settleRoutingDecision } from '../../store/routing.js';
import { installAgentClis, toolsDir } from '../support/llm/agent-clis.js';
import { startScriptedEndpoint, writeFileScript, type ScriptedEndpoint } from '../support/llm/endpoint.js';
import { projectWithBudget, startTestPlatform, waitFor, waitForMachine, type TestPlatform } from '../support/platform.js';

/**
 * type "auto" end to end: the router picks between the two agent types configured here (claude-code
 * and aider, real CLIs in the sandbox against the scripted model endpoint), the machine says which
 * and why, and its settled outcome and cost teach the bandit once.
 */
describe('machine selection: type "auto" on real agent CLIs', function () {
  this.timeout(600_000);
  let llm: ScriptedEndpoint;
  let p: TestPlatform;

  before(async function () {
    this.timeout(1_800_000);
    await installAgentClis();
    llm = await startScriptedEndpoint();
    p = await startTestPlatform({
      label: 'routing-auto',
      env: {
        AUTOVIBE_TOOLS_DIR: toolsDir(),
        ANTHROPIC_API_KEY: 'test-anthropic-key',
        ANTHROPIC_BASE_URL: llm.url,
        OPENAI_API_KEY: 'test-openai-key',
        OPENAI_BASE_URL: `${llm.url}/v1`,
        // qwen-coder and local-llama count as available with their local defaults: keep the router to these two.
        AUTOVIBE_ROUTING_TYPES: 'claude-code,aider',
      },
    });
  });
  after(async () => {
    await p?.stop();
    await llm?.stop();
  });

  /** Whichever type the router picks, its CLI finds a script that writes hello.txt. */
  function scriptHello(content: string) {
    llm.reset();
    llm.setDialectScript('anthropic', writeFileScript('claude', { path: '/workspace/hello.txt', content }));
    llm.setDialectScript('openai', writeFileScript('aider', { path: '/workspace/hello.txt', relativePath: 'hello.txt', content }));
  }

  it('picks an available agent type, says why, runs it, and the outcome updates the bandit once', async () => {
    const projectId = await projectWithBudget(p, '20.00');
    const knob = await p.api('PUT', `/v1/projects/${projectId}/routing`, { quality: 0.9, exploration: 0 });
    assert.equal(knob.status, 200, JSON.stringify(knob.body));
    scriptHello('fixed\n');
    const start = await p.api('POST', '/v1/machines', {
      projectId,
      type: 'auto',
      prompt: 'Fix the typo in the greeting of hello.txt',
      limits: { money: '5.00', minutes: 5 },
    });
    assert.equal(start.status, 202, JSON.stringify(start.body));
    const m = await waitForMachine(p, start.body.id, 300_000);
    assert.equal(m.status, 'completed', JSON.stringify(m));
    assert.ok(['claude-code', 'aider'].includes(m.type), m.type);
    assert.equal(m.routing.requestedType, 'auto');
    assert.equal(m.routing.operationClass, 'bugfix');
    assert.equal(m.routing.complexity, 'low');
    assert.equal(m.routing.mode, 'exploit');
    assert.match(m.routing.reason, new RegExp(`classified bugfix .*${m.type} has the best quality-for-cost at quality 0.9`));
    assert.equal(m.routing.outcome, 'success');
    assert.ok(m.events.some((e: any) => e.action === 'routing.decided' && e.details.chosenType === m.type));
    assert.equal((await p.api('GET', `/v1/checkpoints/${m.checkpoints.at(-1)}/files/hello.txt`)).body, 'fixed\n');
    assert.ok(llm.totals().calls > 0, 'the chosen CLI talked to the model');

    const view = (await p.api('GET', `/v1/routing?projectId=${projectId}`)).body;
    const decision = view.decisions[0];
    assert.equal(decision.machineId, m.id);
    assert.equal(decision.chosenType, m.type);
    assert.deepEqual(decision.candidates.map((c: any) => c.type).sort(), ['aider', 'claude-code'], 'only the configured agent types are candidates');
    assert.equal(decision.outcome, 'success');
    assert.deepEqual(decision.cost, m.cost, 'the settled cost is the machine’s');
    const arm = view.arms.find((a: any) => a.operationClass === 'bugfix' && a.machineType === m.type);
    assert.equal(arm.successes, 1);
    assert.equal(arm.failures, 0);

    // Applying the outcome again changes nothing (once per machine).
    assert.equal(await settleRoutingDecision(p.db, m.id, { finalStatus: 'completed', success: true, cost: 0n, currency: 'USD' }), null);
    const again = (await p.api('GET', '/v1/routing')).body.arms.find((a: any) => a.operationClass === 'bugfix' && a.machineType === m.type);
    assert.equal(again.successes, 1);
    const audit = (await p.api('GET', `/v1/audit?projectId=${projectId}&limit=200`)).body.items.filter(
      (a: any) => a.subjectId === m.id && a.action === 'routing.outcome',
    );
    assert.equal(audit.length, 1);
  });

  it('a routed machine that fails counts as a failure of its type', async () => {
    const projectId = await projectWithBudget(p, '20.00');
    scriptHello('x\n');
    // The agent writes hello.txt, but the request declares report.txt as its artifact: the machine fails.
    const start = await p.api('POST', '/v1/machines', {
      projectId,
      type: 'auto',
      prompt: 'Add unit tests for the greeting',
      artifacts: ['report.txt'],
      limits: { money: '5.00', minutes: 5 },
    });
    assert.equal(start.status, 202, JSON.stringify(start.body));
    const m = await waitForMachine(p, start.body.id, 300_000);
    assert.equal(m.status, 'failed', JSON.stringify(m));
    assert.equal(m.routing.operationClass, 'tests');
    assert.equal(m.routing.outcome, 'failure');
    const arm = (await p.api('GET', '/v1/routing')).body.arms.find((a: any) => a.operationClass === 'tests' && a.machineType === m.type);
    assert.equal(arm.failures, 1);
    assert.equal(arm.successes, 0);
  });

  it('refuses type auto without a prompt, and keeps the decision on a repeated request', async () => {
    const projectId = await projectWithBudget(p, '20.00');
    const bad = await p.api('POST', '/v1/machines', { projectId, type: 'auto', command: 'true' });
    assert.equal(bad.status, 400, JSON.stringify(bad.body));
    assert.match(JSON.stringify(bad.body.error), /prompt/);
    scriptHello('doc\n');
    const body = { projectId, type: 'auto', prompt: 'Document the greeting in the README', limits: { money: '5.00', minutes: 5 } };
    const first = await p.api('POST', '/v1/machines', body, { headers: { 'Idempotency-Key': 'routing-repeat' } });
    assert.equal(first.status, 202, JSON.stringify(first.body));
    const m = await waitForMachine(p, first.body.id, 300_000);
    const second = await p.api('POST', '/v1/machines', body, { headers: { 'Idempotency-Key': 'routing-repeat' } });
    assert.equal(second.body.id, m.id);
    const decisions = (await p.api('GET', `/v1/routing?projectId=${projectId}`)).body.decisions;
    assert.equal(decisions.length, 1);
    assert.equal(decisions[0].operationClass, 'documentation');
    assert.equal((await p.api('GET', `/v1/machines/${m.id}`)).body.type, decisions[0].chosenType);
  });

  it('routes an objective with machineType auto through the same router: its machine says why, the outcome teaches the bandit once', async () => {
    const projectId = await projectWithBudget(p, '20.00');
    await p.api('PUT', `/v1/projects/${projectId}/routing`, { quality: 0.9, exploration: 0 });
    scriptHello('objective\n');
    const created = await p.api('POST', `/v1/projects/${projectId}/objectives`, {
      title: 'greeting',
      machineType: 'auto',
      prompt: 'Fix the typo in the greeting of hello.txt',
      limits: { money: '5.00', minutes: 5 },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.equal(created.body.machineType, 'auto');
    const o = await waitFor(
      async () => {
        const b = (await p.api('GET', `/v1/objectives/${created.body.id}`)).body;
        return ['completed', 'failed', 'cancelled'].includes(b.status) && b;
      },
      'objective end',
      300_000,
    );
    assert.equal(o.status, 'completed', JSON.stringify(o));
    const m = await waitForMachine(p, o.machines[0], 60_000);
    assert.ok(['claude-code', 'aider'].includes(m.type), m.type);
    assert.equal(m.routing.requestedType, 'auto');
    assert.equal(m.routing.operationClass, 'bugfix');
    assert.match(m.routing.reason, new RegExp(`classified bugfix .*${m.type} has the best quality-for-cost at quality 0.9`));
    assert.equal(m.routing.outcome, 'success');
    assert.ok(m.events.some((e: any) => e.action === 'routing.decided' && e.actor === `objective:${o.id}` && e.details.chosenType === m.type));
    assert.equal((await p.api('GET', `/v1/checkpoints/${m.checkpoints.at(-1)}/files/hello.txt`)).body, 'objective\n');
    const decisions = (await p.api('GET', `/v1/routing?projectId=${projectId}`)).body.decisions;
    assert.equal(decisions.length, 1);
    assert.equal(decisions[0].machineId, m.id);
    assert.equal(decisions[0].outcome, 'success');
    const outcomes = (await p.api('GET', `/v1/audit?projectId=${projectId}&limit=200`)).body.items.filter(
      (a: any) => a.subjectId === m.id && a.action === 'routing.outcome',
    );
    assert.equal(outcomes.length, 1);
  });

  it('routes a pipeline step of type auto next to a shell step, and refuses auto without a prompt', async () => {
    const projectId = await projectWithBudget(p, '20.00');
    const bad = await p.api('POST', '/v1/pipelines', { projectId, steps: [{ id: 'a', type: 'auto', command: 'true' }] });
    assert.equal(bad.status, 400, JSON.stringify(bad.body));
    assert.match(JSON.stringify(bad.body.error), /prompt/);
    const before = (await p.api('GET', '/v1/routing')).body.arms.filter((a: any) => a.operationClass === 'documentation');
    scriptHello('pipeline\n');
    const start = await p.api('POST', '/v1/pipelines', {
      projectId,
      steps: [
        { id: 'write', type: 'auto', prompt: 'Document the greeting in the README', limits: { money: '5.00', minutes: 5 } },
        { id: 'check', type: 'shell', command: 'cat hello.txt', dependsOn: ['write'] },
      ],
    });
    assert.equal(start.status, 202, JSON.stringify(start.body));
    const pl = await waitFor(
      async () => {
        const b = (await p.api('GET', `/v1/pipelines/${start.body.id}`)).body;
        return b.status !== 'running' && b;
      },
      'pipeline end',
      300_000,
    );
    assert.equal(pl.status, 'completed', JSON.stringify(pl));
    assert.equal(pl.steps[0].type, 'auto');
    const m = await waitForMachine(p, pl.steps[0].machineId, 60_000);
    assert.ok(['claude-code', 'aider'].includes(m.type), m.type);
    assert.equal(m.routing.operationClass, 'documentation');
    assert.equal(m.routing.outcome, 'success');
    assert.ok(m.events.some((e: any) => e.action === 'routing.decided' && e.actor === `pipeline:${pl.id}`));
    const shell = await waitForMachine(p, pl.steps[1].machineId, 60_000);
    assert.equal(shell.type, 'shell');
    assert.equal(shell.routing, null);
    const after = (await p.api('GET', '/v1/routing')).body.arms.filter((a: any) => a.operationClass === 'documentation');
    const delta = (arms: any[], t: string) => arms.find((a) => a.machineType === t).successes;
    assert.equal(delta(after, m.type) - delta(before, m.type), 1, 'the step machine counts once for its type');
  });

  it('learns failure patterns of a class and refines the next auto machine’s prompt (refined arm), and reports outcomes and cost per arm', async () => {
    const projectId = await projectWithBudget(p, '20.00');
    const knob = await p.api('PUT', `/v1/projects/${projectId}/routing`, { quality: 0.9, exploration: 0, refinement: 1 });
    assert.equal(knob.status, 200, JSON.stringify(knob.body));
    assert.equal(knob.body.refinement, 1);
    const prompt = 'Add unit tests for the greeting';
    const mainBodies = () => llm.requests.filter((r) => r.kind === 'main').map((r) => JSON.stringify(r.body));

    // 1. A failing run of the class: it writes hello.txt but not its declared artifact.
    scriptHello('first\n');
    const first = await p.api('POST', '/v1/machines', { projectId, type: 'auto', prompt, artifacts: ['report.txt'], limits: { money: '5.00', minutes: 5 } });
    assert.equal(first.status, 202, JSON.stringify(first.body));
    const failed = await waitForMachine(p, first.body.id, 300_000);
    assert.equal(failed.status, 'failed', JSON.stringify(failed));
    assert.equal(failed.routing.promptArm, null, 'no patterns yet: not in the A/B');
    assert.ok(failed.failureSummary, 'a failed machine has a failure summary');
    assert.equal(failed.failureSummary.operationClass, 'tests');
    assert.equal(failed.failureSummary.finalStatus, 'failed');
    assert.match(failed.failureSummary.summary, /^ended failed; error: .*report\.txt/);
    assert.deepEqual(failed.failureSummary.files, ['hello.txt']);
    assert.ok(
      mainBodies().every((b) => !b.includes('did not succeed')),
      'the first run got the plain prompt',
    );
    // Negative feedback on it counts too.
    const rated = await p.api('POST', `/v1/machines/${failed.id}/feedback`, { rating: 1, comment: 'the greeting tests never ran' });
    assert.equal(rated.status, 201, JSON.stringify(rated.body));

    // 2. The next machine of the class, refinement share 1: the refined arm, the learned instructions in its prompt.
    scriptHello('second\n');
    const second = await p.api('POST', '/v1/machines', { projectId, type: 'auto', prompt, limits: { money: '5.00', minutes: 5 } });
    const refined = await waitForMachine(p, second.body.id, 300_000);
    assert.equal(refined.status, 'completed', JSON.stringify(refined));
    assert.equal(refined.failureSummary, null);
    assert.equal(refined.routing.promptArm, 'refined');
    assert.match(refined.routing.reason, /prompt refined \(\d+ failure pattern\(s\) of tests in this project, refinement share 1\)/);
    const bodies = mainBodies();
    assert.ok(bodies.length > 0);
    const given = bodies.find((b) => b.includes('Earlier tests runs in this project did not succeed'));
    assert.ok(given, `the agent's prompt carries the refinement: ${bodies[0]!.slice(0, 2000)}`);
    assert.ok(given.includes('Add unit tests for the greeting'), 'and its own prompt');
    assert.ok(given.includes('review them closely: hello.txt'), 'the files the failing run touched');
    assert.ok(given.includes('report.txt'), 'the error it ended with');
    assert.ok(given.includes('the greeting tests never ran'), 'what the reviewer said');

    // 3. Share 0: the plain arm, no refinement; this one fails.
    assert.equal((await p.api('PUT', `/v1/projects/${projectId}/routing`, { refinement: 0 })).body.refinement, 0);
    scriptHello('third\n');
    const third = await p.api('POST', '/v1/machines', { projectId, type: 'auto', prompt, artifacts: ['report.txt'], limits: { money: '5.00', minutes: 5 } });
    const plain = await waitForMachine(p, third.body.id, 300_000);
    assert.equal(plain.status, 'failed');
    assert.equal(plain.routing.promptArm, 'plain');
    assert.ok(
      mainBodies().every((b) => !b.includes('did not succeed')),
      'the plain arm got its prompt unchanged',
    );

    // The A/B report: per arm its machines, outcomes and cost.
    const view = (await p.api('GET', `/v1/routing?projectId=${projectId}`)).body;
    assert.equal(view.settings.refinement, 0);
    const arm = (name: string) => view.refinement.arms.find((a: any) => a.arm === name);
    assert.deepEqual(
      { ...arm('refined'), totalCost: undefined, meanCost: undefined },
      { arm: 'refined', currency: 'USD', machines: 1, settled: 1, successes: 1, failures: 0, successRate: 1, totalCost: undefined, meanCost: undefined },
    );
    assert.equal(arm('refined').totalCost, refined.cost.amount);
    assert.equal(arm('refined').meanCost, refined.cost.amount);
    assert.deepEqual(
      { ...arm('plain'), totalCost: undefined, meanCost: undefined },
      { arm: 'plain', currency: 'USD', machines: 1, settled: 1, successes: 0, failures: 1, successRate: 0, totalCost: undefined, meanCost: undefined },
    );
    assert.equal(arm('plain').totalCost, plain.cost.amount);
    assert.equal(view.refinement.arms.length, 2, 'the first machine (no patterns) is in neither arm');
    const kinds = new Set(view.refinement.patterns.map((x: any) => x.kind));
    assert.ok(kinds.has('file') && kinds.has('error') && kinds.has('feedback'), JSON.stringify(view.refinement.patterns));
    const file = view.refinement.patterns.find((x: any) => x.kind === 'file' && x.detail === 'hello.txt' && x.machineType === failed.type);
    assert.ok(file, 'the touched file counts for the failed machine’s type');
    const decision = view.decisions.find((d: any) => d.machineId === refined.id);
    assert.equal(decision.promptArm, 'refined');
    assert.match(decision.refinement, /Earlier tests runs/);
  });

  it('a failed completion check of an auto objective becomes a check pattern of its class, named in the next refined prompt', async () => {
    const projectId = await projectWithBudget(p, '20.00');
    await p.api('PUT', `/v1/projects/${projectId}/routing`, { quality: 0.9, exploration: 0, refinement: 1 });
    scriptHello('wrong\n');
    const created = await p.api('POST', `/v1/projects/${projectId}/objectives`, {
      title: 'tests',
      machineType: 'auto',
      prompt: 'Add unit tests for the greeting',
      completion: { command: 'grep -q right hello.txt || { echo "FAIL greeting test: expected right"; exit 1; }' },
      limits: { money: '5.00', minutes: 5 },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const o = await waitFor(
      async () => {
        const b = (await p.api('GET', `/v1/objectives/${created.body.id}`)).body;
        return ['completed', 'failed', 'cancelled'].includes(b.status) && b;
      },
      'objective end',
      300_000,
    );
    assert.equal(o.status, 'failed', JSON.stringify(o));
    const patterns = (await p.api('GET', `/v1/routing?projectId=${projectId}`)).body.refinement.patterns;
    const check = patterns.find((x: any) => x.kind === 'check');
    assert.ok(check, JSON.stringify(patterns));
    assert.equal(check.operationClass, 'tests');
    assert.match(check.detail, /^`grep -q right hello\.txt .*` — FAIL greeting test: expected right$/);
    assert.equal(check.lastMachineId, o.machines[0]);

    scriptHello('right\n');
    const next = await p.api('POST', '/v1/machines', {
      projectId,
      type: 'auto',
      prompt: 'Add unit tests for the greeting',
      limits: { money: '5.00', minutes: 5 },
    });
    const m = await waitForMachine(p, next.body.id, 300_000);
    assert.equal(m.routing.promptArm, 'refined');
    const given = llm.requests.filter((r) => r.kind === 'main').map((r) => JSON.stringify(r.body));
    assert.ok(
      given.some((b) => b.includes('Completion checks failed last time') && b.includes('FAIL greeting test: expected right')),
      'the failed check is named in the prompt',
    );
  });
});

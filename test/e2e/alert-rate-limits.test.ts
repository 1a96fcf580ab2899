import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { installAgentClis, toolsDir } from '../support/llm/agent-clis.js';
import { startScriptedEndpoint, writeFileScript, type ScriptedEndpoint } from '../support/llm/endpoint.js';
import { projectWithBudget, startTestPlatform, waitFor, waitForMachine, type TestPlatform } from '../support/platform.js';
import { startWebhookReceiver, type WebhookReceiver } from '../support/webhook-receiver.js';

/**
 * Rate-limit alerts from what a model provider really answers: the metering proxy reads the
 * rate-limit headers of each model call (here the scripted endpoint sends Anthropic's), the
 * latest per project and provider is kept, and the alert evaluator raises `rate_limit_low` under
 * 10 % remaining and resolves it when a later answer has the headroom back.
 */
describe('alert engine: provider rate-limit headers seen by the metering proxy (real claude CLI, scripted endpoint)', function () {
  this.timeout(600_000);
  let llm: ScriptedEndpoint;
  let p: TestPlatform;
  let receiver: WebhookReceiver;

  before(async function () {
    this.timeout(1_800_000);
    await installAgentClis();
    llm = await startScriptedEndpoint();
    receiver = await startWebhookReceiver();
    p = await startTestPlatform({
      label: 'alert-rate-limits',
      env: {
        AUTOVIBE_TOOLS_DIR: toolsDir(),
        ANTHROPIC_API_KEY: 'test-anthropic-key',
        ANTHROPIC_BASE_URL: llm.url,
        AUTOVIBE_WEBHOOK_ALLOW_PRIVATE: '1',
      },
    });
  });
  after(async () => {
    await p?.stop();
    await llm?.stop();
    await receiver?.close();
  });

  const evaluate = () =>
    p.temporal.workflow.execute('alertEvaluation', {
      workflowId: `alert-evaluation-test-${crypto.randomUUID()}`,
      taskQueue: p.config.taskQueue,
      args: [{ trigger: 'test' }],
    });
  const run = async (projectId: string, content: string) => {
    llm.setScript(writeFileScript('claude', { path: '/workspace/hello.txt', relativePath: 'hello.txt', content }));
    const start = await p.api('POST', '/v1/machines', { projectId, type: 'claude-code', prompt: 'go', limits: { money: '5.00', minutes: 5 } });
    assert.equal(start.status, 202, JSON.stringify(start.body));
    const m = await waitForMachine(p, start.body.id, 300_000);
    assert.equal(m.status, 'completed', JSON.stringify(m));
    return m.id as string;
  };
  const headers = (remaining: number) => ({
    'anthropic-ratelimit-requests-limit': '1000',
    'anthropic-ratelimit-requests-remaining': String(remaining),
    'anthropic-ratelimit-requests-reset': new Date(Date.now() + 10 * 60_000).toISOString(),
    'anthropic-ratelimit-tokens-limit': '400000',
    'anthropic-ratelimit-tokens-remaining': '390000',
  });

  it('raises one alert under 10 % of requests remaining, delivered to the webhook, and resolves it when the headroom is back', async () => {
    const projectId = await projectWithBudget(p, '20.00');
    const hookPath = `/ok/rate-${projectId}`;
    assert.equal((await p.api('POST', '/v1/webhooks', { projectId, url: `${receiver.url}${hookPath}`, events: ['alert.*'] })).status, 201);
    const provider = new URL(llm.url).host;

    llm.setResponseHeaders(headers(42));
    const machineId = await run(projectId, 'first\n');
    await evaluate();
    await evaluate();
    const alerts = (await p.api('GET', `/v1/alerts?projectId=${projectId}&kind=rate_limit_low`)).body.items;
    assert.equal(alerts.length, 1, JSON.stringify(alerts));
    assert.equal(alerts[0].status, 'open');
    assert.equal(alerts[0].subjectId, provider);
    assert.equal(alerts[0].data.machineId, machineId);
    assert.equal(alerts[0].data.requestsRemaining, 42);
    assert.match(alerts[0].message, /42 of 1000 requests left \(4%\)/);

    llm.setResponseHeaders(headers(900));
    await run(projectId, 'second\n');
    await evaluate();
    const after = (await p.api('GET', `/v1/alerts?projectId=${projectId}&kind=rate_limit_low`)).body.items;
    assert.equal(after.length, 1);
    assert.equal(after[0].status, 'resolved');

    const bodies = () => receiver.at(hookPath).map((r) => JSON.parse(r.body));
    await waitFor(async () => bodies().some((b) => b.type === 'alert.resolved' && b.data.alertId === alerts[0].id), 'the resolution delivered');
    assert.equal(bodies().filter((b) => b.type === 'alert.rate_limit_low').length, 1);
  });
});

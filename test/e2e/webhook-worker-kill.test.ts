/**
 * Webhook delivery survives its worker: a worker killed (SIGKILL) while an endpoint is failing
 * and events wait loses none of them; the next worker delivers every event, in order, with the
 * same webhook-ids, and the endpoint's cursor ends past the last one.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { projectWithBudget, startTestPlatform, waitFor, type TestPlatform } from '../support/platform.js';
import { WorkerProcesses } from '../support/worker-processes.js';

describe('webhook delivery across a killed worker', function () {
  this.timeout(300_000);
  const workers = new WorkerProcesses();
  const env = {
    AUTOVIBE_WEBHOOK_ALLOW_PRIVATE: '1',
    AUTOVIBE_WEBHOOK_MAX_ATTEMPTS: '100',
    AUTOVIBE_WEBHOOK_RETRY_INITIAL_MS: '200',
    AUTOVIBE_WEBHOOK_RETRY_MAX_S: '1',
    AUTOVIBE_WEBHOOK_TIMEOUT_S: '2',
  };
  let p: TestPlatform;
  let server: http.Server;
  let up = false;
  const received: Array<{ id: string; seq: number; status: number }> = [];

  before(async () => {
    server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        const status = up ? 204 : 503;
        received.push({ id: String(req.headers['webhook-id']), seq: JSON.parse(body).seq, status });
        res.writeHead(status).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    p = await startTestPlatform({ label: 'webhook-kill', worker: false, env });
  });
  after(async () => {
    await workers.killAll();
    await p?.stop();
    server?.close();
  });

  it('delivers every event in order after the worker is killed mid-retry and another starts', async () => {
    const projectId = await projectWithBudget(p, '5.00');
    const a = workers.start(p, env);
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
    const hook = (await p.api('POST', '/v1/webhooks', { projectId, url, events: ['budget.set'] })).body;
    assert.match(hook.id, /^webhook-/, JSON.stringify(hook));
    const setBudget = async (amount: string) =>
      assert.equal((await p.api('PUT', `/v1/projects/${projectId}/budget`, { amount, currency: 'USD', period: 'daily' })).status, 200);
    for (const amount of ['6.00', '7.00', '8.00']) await setBudget(amount);
    // The first event is being retried against a failing receiver: kill the worker then.
    await waitFor(async () => received.filter((r) => r.status === 503).length >= 3, 'retries of the first event', 120_000);
    await workers.kill(a);
    const seenBeforeKill = received.length;
    for (const amount of ['9.00', '10.00']) await setBudget(amount);
    up = true;
    workers.start(p, env);

    const delivered = () => new Set(received.filter((r) => r.status === 204).map((r) => r.seq));
    await waitFor(async () => delivered().size >= 5, 'all five events delivered', 180_000);
    assert.ok(seenBeforeKill >= 3);
    const seqs = [...delivered()];
    assert.equal(seqs.length, 5, 'nothing else was sent');
    // In order: no request for an event ever came after a request for a later one.
    const arrival = received.map((r) => r.seq);
    assert.deepEqual(
      arrival,
      [...arrival].sort((x, y) => x - y),
      `arrival order ${arrival.join(',')}`,
    );
    for (const r of received) assert.equal(r.id, `evt_${r.seq}`, 'the same webhook-id on every attempt');
    const shown = await waitFor(async () => {
      const res = await p.api('GET', `/v1/webhooks/${hook.id}`);
      return res.body.cursor === Math.max(...seqs) ? res.body : null;
    }, 'the cursor past the last event');
    assert.equal(shown.status, 'active');
    const log = await p.api('GET', `/v1/webhooks/${hook.id}/deliveries`);
    assert.deepEqual(
      log.body.items.map((d: any) => d.status),
      ['succeeded', 'succeeded', 'succeeded', 'succeeded', 'succeeded'],
    );
  });
});

import assert from 'node:assert/strict';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger, NativeConnection, Worker } from '@temporalio/worker';
import { createApp } from '../../api/app.js';
import { createDb } from '../../store/db.js';
import { countActivityFailures } from '../../workers/metrics.js';
import { projectWithBudget, startTestPlatform, waitFor, waitForMachine, workflowBundle, type TestPlatform } from '../support/platform.js';

/** The value of one sample in Prometheus text exposition, matched by name and exact label set. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const got = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1], l[2]]));
    if (JSON.stringify(Object.entries(got).sort()) === JSON.stringify(Object.entries(labels).sort())) return Number(m[3]);
  }
  return undefined;
}

async function scrape(p: TestPlatform, headers: Record<string, string> = {}): Promise<{ status: number; text: string; type: string | null }> {
  const res = await fetch(`${p.apiUrl}/metrics`, { headers });
  return { status: res.status, text: await res.text(), type: res.headers.get('content-type') };
}

describe('metrics and health', function () {
  this.timeout(180_000);
  let p: TestPlatform;
  before(async () => {
    p = await startTestPlatform({ label: 'metrics' });
  });
  after(async () => {
    await p?.stop();
  });

  it('splits liveness (/healthz) from readiness (/readyz, 503 naming what is down)', async () => {
    assert.deepEqual((await p.api('GET', '/healthz', undefined, { key: null })).body, { api: 'ok' });
    const ready = await p.api('GET', '/readyz', undefined, { key: null });
    assert.equal(ready.status, 200);
    assert.deepEqual(ready.body, { api: 'ok', db: 'ok', temporal: 'ok' });

    // The same api over a database that does not answer: alive, not ready.
    const deadDb = await createDb({ databaseUrl: 'postgres://nobody@127.0.0.1:1/none' });
    const server = createApp({ db: deadDb, temporal: p.temporal, config: p.config, log: p.log }).listen(0, '127.0.0.1');
    try {
      await new Promise((r) => server.once('listening', r));
      const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
      assert.equal((await fetch(`${base}/healthz`)).status, 200);
      const res = await fetch(`${base}/readyz`);
      assert.equal(res.status, 503);
      const body = (await res.json()) as Record<string, string>;
      assert.equal(body.temporal, 'ok');
      assert.match(body.db!, /^error: /);
    } finally {
      server.close();
      await deadDb.destroy();
    }
  });

  it('serves Prometheus metrics without a key: latency by route template, machines, reservations, spend, activity failures', async () => {
    const projectId = await projectWithBudget(p, '5.00');
    const start = await p.api('POST', '/v1/machines', { projectId, type: 'shell', command: 'while true; do sleep 0.2; done' });
    assert.equal(start.status, 202, JSON.stringify(start.body));
    const id = start.body.id as string;
    await waitFor(async () => (await p.api('GET', `/v1/machines/${id}`)).body.status === 'running', 'running');

    // While it runs, its limit is held by one open reservation on the project's budget.
    const limit = Number((await p.api('GET', `/v1/machines/${id}`)).body.limits.money);
    const running = await scrape(p);
    assert.equal(running.status, 200);
    assert.match(running.type ?? '', /^text\/plain/);
    assert.equal(sample(running.text, 'autovibe_machines', { status: 'running' }), 1);
    assert.equal(sample(running.text, 'autovibe_open_reservations', { currency: 'USD', scope: 'project' }), 1);
    assert.equal(sample(running.text, 'autovibe_reserved_amount', { currency: 'USD', scope: 'project' }), limit);

    assert.equal((await p.api('POST', `/v1/machines/${id}/terminate`)).status, 202);
    const m = await waitForMachine(p, id);
    await p.api('GET', `/v1/machines/${id}/nope-not-a-route`);
    const ended = await scrape(p);
    assert.equal(sample(ended.text, 'autovibe_machines', { status: 'running' }), undefined, 'a status with no machines is gone');
    assert.equal(sample(ended.text, 'autovibe_machines', { status: 'terminated' }), 1);
    assert.equal(sample(ended.text, 'autovibe_open_reservations', { currency: 'USD', scope: 'project' }), undefined);
    assert.equal(sample(ended.text, 'autovibe_spend_total', { currency: 'USD' }), Number(m.cost.amount));
    // Latency is labelled by the route template, never the raw path.
    const posts = sample(ended.text, 'autovibe_api_request_duration_seconds_count', { route: '/v1/machines', method: 'POST', status: '202' });
    assert.equal(posts, 1);
    assert.ok(sample(ended.text, 'autovibe_api_request_duration_seconds_count', { route: '/v1/machines/:id', method: 'GET', status: '200' })! >= 2);
    assert.equal(sample(ended.text, 'autovibe_api_request_duration_seconds_count', { route: 'unmatched', method: 'GET', status: '404' }), 1);
    assert.ok(!ended.text.includes(id), 'no raw path (machine id) in the labels');

    // Activity failures are counted per attempt by the worker's interceptor (a cancellation is not one).
    const env = new MockActivityEnvironment({ activityType: 'probeActivity' }, { interceptors: [countActivityFailures], logger: new DefaultLogger('ERROR') });
    await assert.rejects(
      env.run(async () => {
        throw ApplicationFailure.nonRetryable('bad input', 'InputError');
      }),
    );
    const failures = await scrape(p);
    assert.equal(sample(failures.text, 'autovibe_activity_failures_total', { activity: 'probeActivity', error: 'InputError' }), 1);
  });

  it('asks for the bearer token when AUTOVIBE_METRICS_TOKEN is set', async () => {
    const token = 'metrics-token-0123456789';
    const q = await startTestPlatform({ label: 'metrics-token', worker: false, env: { AUTOVIBE_METRICS_TOKEN: token } });
    try {
      const none = await scrape(q);
      assert.equal(none.status, 401);
      assert.match(none.text, /AUTOVIBE_METRICS_TOKEN/);
      assert.equal((await scrape(q, { authorization: 'Bearer wrong-token-0123456789' })).status, 401);
      const ok = await scrape(q, { authorization: `Bearer ${token}` });
      assert.equal(ok.status, 200);
      assert.ok(sample(ok.text, 'autovibe_api_request_duration_seconds_count', { route: '/metrics', method: 'GET', status: '401' })! >= 1);
    } finally {
      await q.stop();
    }
  });

  it('reports the backlog of the platform task queue by kind, as Temporal counts it', async () => {
    // No worker in the platform: what is started waits in the queue until the test lets a worker in.
    const q = await startTestPlatform({ label: 'metrics-queue', worker: false });
    const queue = q.config.taskQueue;
    const backlog = async (kind: 'workflow' | 'activity') => sample((await scrape(q)).text, 'autovibe_task_queue_backlog', { queue, kind });
    const ids = ['queue-depth-1', 'queue-depth-2', 'queue-depth-3'];
    let connection: NativeConnection | undefined;
    try {
      assert.equal(await backlog('workflow'), 0);
      assert.equal(await backlog('activity'), 0);

      // Three workflows started with nobody polling: three workflow tasks wait. (Reconciliation:
      // its first step is an ordinary activity; a machine's first steps are local activities now,
      // which run in the workflow's worker and never wait in the queue.)
      for (const workflowId of ids) {
        await q.temporal.workflow.start('reconcileInstances', { taskQueue: queue, workflowId, args: [{ minAgeSeconds: 0 }] });
      }
      await waitFor(async () => (await backlog('workflow')) === 3, 'a workflow backlog of 3');
      assert.equal(await backlog('activity'), 0);

      // A worker with the workflows and no activities takes the workflow tasks; each run then
      // schedules its first activity (checkProviders), which waits for an activity worker.
      connection = await NativeConnection.connect({ address: q.temporalAddress });
      const worker = await Worker.create({ connection, taskQueue: queue, workflowBundle: await workflowBundle() });
      await worker.runUntil(async () => {
        await waitFor(async () => (await backlog('workflow')) === 0 && (await backlog('activity')) === 3, 'workflow backlog 0 and activity backlog 3');
      });
    } finally {
      for (const id of ids)
        await q.temporal.workflow
          .getHandle(id)
          .terminate('test over')
          .catch(() => undefined);
      await connection?.close();
      await q.stop();
    }
  });
});

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { createUserWithKey } from '../../store/auth.js';
import { projectWithBudget, startTestPlatform, waitFor, waitForMachine, type TestPlatform } from '../support/platform.js';

type Result = { id: string | null; status: number; headers: Record<string, string>; body: any; encoding?: string };
type Op = { id?: string; method: string; path: string; body?: unknown; idempotencyKey?: string };

/** POST /v1/batch: each operation answered in its own slot, as the same request sent alone would be. */
describe('api: POST /v1/batch', function () {
  this.timeout(300_000);
  let p: TestPlatform;
  let projectA: string;
  let projectB: string;
  let ownerA: string;
  let viewerA: string;

  async function batch(operations: unknown[], key?: string): Promise<{ status: number; body: any; results: Result[] }> {
    const res = await p.api('POST', '/v1/batch', { operations }, key === undefined ? {} : { key });
    return { status: res.status, body: res.body, results: res.body.results };
  }

  before(async () => {
    p = await startTestPlatform({ label: 'batch' });
    projectA = await projectWithBudget(p, '5.00');
    projectB = await projectWithBudget(p, '5.00');
    ownerA = (await createUserWithKey(p.db, 'owner-of-a', 'owner', [projectA])).key;
    viewerA = (await createUserWithKey(p.db, 'viewer-of-a', 'viewer', [projectA])).key;
  });
  after(async () => {
    await p?.stop();
  });

  it('answers each operation in its slot: success, a validation error, another project’s resource, a malformed operation', async () => {
    const { status, results } = await batch(
      [
        { id: 'read', method: 'GET', path: `/v1/projects/${projectA}` },
        { id: 'bad-repo', method: 'POST', path: '/v1/projects', body: { name: 'x', repoUrl: 'file:///etc' } },
        { id: 'foreign', method: 'GET', path: `/v1/projects/${projectB}` },
        { id: 'create', method: 'POST', path: '/v1/projects', body: { name: 'made in a batch' } },
        { id: 'bad-schema', method: 'PUT', path: `/v1/projects/${projectA}/budget`, body: { amount: 'lots' } },
        { id: 'malformed', method: 'HEAD', path: 'projects' },
        { method: 'GET', path: '/v1/no-such-route' },
      ],
      ownerA,
    );
    assert.equal(status, 200);
    assert.deepEqual(
      results.map((r) => [r.id, r.status]),
      [
        ['read', 200],
        ['bad-repo', 422],
        ['foreign', 404],
        ['create', 201],
        ['bad-schema', 400],
        ['malformed', 422],
        [null, 404],
      ],
    );
    assert.equal(results[0]!.body.id, projectA);
    assert.match(results[0]!.headers['content-type']!, /application\/json/);
    assert.equal(results[1]!.body.error.code, 'invalid_request');
    assert.match(results[1]!.body.error.message, /file:\/\/ URLs are not allowed/);
    assert.equal(results[2]!.body.error.message, `project ${projectB} not found`);
    assert.ok(!JSON.stringify(results[2]!.body).includes('test project'), 'nothing of the foreign project shows');
    // The project made with a key bound to A is bound to that key: the same key reads it.
    const made = results[3]!.body.id as string;
    assert.equal((await p.api('GET', `/v1/projects/${made}`, undefined, { key: ownerA })).status, 200);
    assert.match(results[4]!.body.error.message, /amount/);
    assert.equal(results[5]!.body.error.code, 'invalid_operation');
    assert.match(results[5]!.body.error.message, /operations\.5\.method: must be one of: GET, POST, PUT, PATCH, DELETE/);
    assert.match(results[5]!.body.error.message, /operations\.5\.path: must start with \/v1\//);
    assert.match(results[6]!.body.error.message, /no route GET \/v1\/no-such-route/);
    // Each operation is a request of its own (its requestId derives from the batch's).
    assert.match(results[0]!.headers['x-request-id']!, /\.0$/);
  });

  it('authorizes each operation on its own: a viewer’s write is 403 in its slot (and audited), its reads still succeed', async () => {
    const { status, results } = await batch(
      [
        { method: 'GET', path: `/v1/projects/${projectA}` },
        { method: 'PUT', path: `/v1/projects/${projectA}/budget`, body: { amount: '100.00', currency: 'USD', period: 'daily' } },
        { method: 'GET', path: `/v1/projects/${projectB}/costs` },
        { method: 'GET', path: '/v1/projects' },
      ],
      viewerA,
    );
    assert.equal(status, 200);
    assert.deepEqual(
      results.map((r) => r.status),
      [200, 403, 404, 200],
    );
    assert.equal(results[1]!.body.error.code, 'forbidden');
    assert.match(results[1]!.body.error.message, /role "viewer" lacks the permission "budgets.write"/);
    assert.deepEqual(
      results[3]!.body.items.map((x: { id: string }) => x.id),
      [projectA],
    );
    // The budget did not change, and the denial is audited by the route it reached, as for REST.
    assert.equal((await p.api('GET', `/v1/projects/${projectA}`)).body.budget.limit, '5.00');
    const denied = await p.db('audit_log').where({ action: 'access.denied' }).orderBy('seq', 'desc').limit(5);
    const details = denied.map((r) => (typeof r.details === 'string' ? JSON.parse(r.details) : r.details));
    assert.ok(
      details.some((d) => d.permission === 'budgets.write' && d.path === `/v1/projects/${projectA}/budget` && d.method === 'PUT'),
      JSON.stringify(details),
    );
  });

  it('is idempotent per operation: the same batch twice creates one project and one machine, with the same ids, as REST with Idempotency-Key', async () => {
    const tag = crypto.randomUUID();
    const ops: Op[] = [
      { id: 'project', method: 'POST', path: '/v1/projects', body: { name: `idem-${tag}` }, idempotencyKey: `p-${tag}` },
      {
        id: 'machine',
        method: 'POST',
        path: '/v1/machines',
        body: { projectId: projectA, type: 'shell', command: 'echo once', cache: false, limits: { money: '0.05', minutes: 2 } },
        idempotencyKey: `m-${tag}`,
      },
    ];
    const machinesBefore = Number((await p.db('machines').where({ project_id: projectA }).count({ n: '*' }))[0]!.n);
    const first = await batch(ops, ownerA);
    const second = await batch(ops, ownerA);
    assert.deepEqual(
      first.results.map((r) => r.status),
      [201, 202],
      JSON.stringify(first.results),
    );
    assert.deepEqual(
      second.results.map((r) => r.status),
      [201, 202],
    );
    assert.equal(first.results[0]!.headers['idempotent-replayed'], undefined);
    assert.equal(second.results[0]!.headers['idempotent-replayed'], 'true');
    assert.equal(second.results[1]!.headers['idempotent-replayed'], 'true');
    assert.deepEqual(second.results[0]!.body, first.results[0]!.body);
    assert.equal(second.results[1]!.body.id, first.results[1]!.body.id);
    assert.equal(
      Number(
        (
          await p
            .db('projects')
            .where({ name: `idem-${tag}` })
            .count({ n: '*' })
        )[0]!.n,
      ),
      1,
    );
    assert.equal(Number((await p.db('machines').where({ project_id: projectA }).count({ n: '*' }))[0]!.n), machinesBefore + 1);

    // The same key sent as REST is the same request: replayed, not run again.
    const rest = await fetch(`${p.apiUrl}/v1/projects`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ownerA}`, 'content-type': 'application/json', 'idempotency-key': `p-${tag}` },
      body: JSON.stringify({ name: `idem-${tag}` }),
    });
    assert.equal(rest.status, 201);
    assert.equal(rest.headers.get('idempotent-replayed'), 'true');
    assert.equal(((await rest.json()) as { id: string }).id, first.results[0]!.body.id);
    // And the same key with another request is refused in its slot, as in REST.
    const reused = await batch([{ method: 'POST', path: '/v1/projects', body: { name: 'other' }, idempotencyKey: `p-${tag}` }], ownerA);
    assert.equal(reused.results[0]!.status, 422);
    assert.equal(reused.results[0]!.body.error.code, 'idempotency_key_reused');
    assert.equal((await waitForMachine(p, first.results[1]!.body.id)).status, 'completed');
  });

  it('refuses a batch over the limit whole (413), running none of it', async () => {
    const tag = crypto.randomUUID();
    const ops = Array.from({ length: 51 }, () => ({ method: 'POST', path: '/v1/projects', body: { name: `over-${tag}` } }));
    const res = await batch(ops);
    assert.equal(res.status, 413);
    assert.equal(res.body.error.code, 'batch_too_large');
    assert.equal(res.body.error.message, 'operations: at most 50 in one batch (got 51); split them over several batches');
    assert.equal(
      Number(
        (
          await p
            .db('projects')
            .where({ name: `over-${tag}` })
            .count({ n: '*' })
        )[0]!.n,
      ),
      0,
    );
    const empty = await batch([]);
    assert.equal(empty.status, 400);
    assert.match(empty.body.error.message, /operations: give at least one operation/);
  });

  it('refuses a nested batch and streaming operations in their slots, and runs the rest', async () => {
    const machine = (await p.db('machines').where({ project_id: projectA }).first())!.id as string;
    const inner = { operations: [{ method: 'POST', path: '/v1/projects', body: { name: 'nested' } }] };
    const { results } = await batch([
      { method: 'POST', path: '/v1/batch', body: inner },
      { method: 'POST', path: '/v1/Batch', body: inner },
      { method: 'GET', path: `/v1/machines/${machine}/logs?follow=true` },
      { method: 'GET', path: `/v1/machines/${machine}?waitFor=completed` },
      { method: 'GET', path: `/v1/machines/${machine}?waitFor=completed&timeout=30` },
      { method: 'GET', path: `/v1/machines/${machine}?waitFor=completed,failed&timeout=1` },
      { method: 'GET', path: `/v1/machines/${machine}/logs` },
      { method: 'GET', path: `/v1/events?projectId=${projectA}&limit=2&cursor=0` },
    ]);
    assert.deepEqual(
      results.map((r) => r.status),
      [422, 422, 422, 422, 422, 200, 200, 200],
    );
    for (const r of results.slice(0, 2)) assert.equal(r.body.error.code, 'batch_nested');
    assert.match(results[2]!.body.error.message, /follow=true streams/);
    assert.match(results[3]!.body.error.message, /waitFor in a batch needs timeout of at most 5 seconds/);
    assert.equal(Number((await p.db('projects').where({ name: 'nested' }).count({ n: '*' }))[0]!.n), 0);
    assert.equal(results[5]!.body.id, machine);
    // Text answers come as text; the event feed answers its JSON page (never a stream) inside a batch.
    assert.equal(typeof results[6]!.body, 'string');
    assert.match(results[6]!.headers['content-type']!, /^text\/plain/);
    assert.ok(Array.isArray(results[7]!.body.items) && results[7]!.body.items.length === 2);
  });

  it('creates a project in one batch, then sets its budget and starts a shell machine on it in the next', async () => {
    const first = await batch([{ id: 'project', method: 'POST', path: '/v1/projects', body: { name: 'batch-made' } }], ownerA);
    assert.equal(first.results[0]!.status, 201);
    const projectId = first.results[0]!.body.id as string;
    const second = await batch(
      [
        { id: 'budget', method: 'PUT', path: `/v1/projects/${projectId}/budget`, body: { amount: '1.00', currency: 'USD', period: 'daily' } },
        {
          id: 'machine',
          method: 'POST',
          path: '/v1/machines',
          body: { projectId, type: 'shell', command: 'echo from-batch > out.txt', cache: false, limits: { money: '0.05', minutes: 2 } },
        },
      ],
      ownerA,
    );
    assert.deepEqual(
      second.results.map((r) => [r.id, r.status]),
      [
        ['budget', 200],
        ['machine', 202],
      ],
      JSON.stringify(second.results),
    );
    const done = await waitForMachine(p, second.results[1]!.body.id);
    assert.equal(done.status, 'completed', JSON.stringify(done));
    assert.equal(done.projectId, projectId);
  });

  it('starts no further operation once the caller has hung up', async () => {
    const started = await p.api('POST', '/v1/machines', { projectId: projectA, type: 'shell', command: 'sleep 60', cache: false, limits: { minutes: 5 } });
    assert.equal(started.status, 202, JSON.stringify(started.body));
    const machine = started.body.id as string;
    await waitFor(async () => (await p.api('GET', `/v1/machines/${machine}`)).body.status === 'running', 'the machine to run');
    const tag = crypto.randomUUID();
    const hangUp = new AbortController();
    const sent = fetch(`${p.apiUrl}/v1/batch`, {
      method: 'POST',
      headers: { authorization: `Bearer ${p.adminKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        operations: [
          { method: 'GET', path: `/v1/machines/${machine}?waitFor=completed&timeout=5` },
          { method: 'POST', path: '/v1/projects', body: { name: `after-hangup-${tag}` } },
        ],
      }),
      signal: hangUp.signal,
    });
    // Hang up while the first operation waits (it holds up to 5 s on a machine that sleeps 60).
    setTimeout(() => hangUp.abort(), 1000);
    await assert.rejects(sent);
    // Past the longest the first operation could have held, the second has not run.
    await new Promise((r) => setTimeout(r, 6000));
    assert.equal(
      Number(
        (
          await p
            .db('projects')
            .where({ name: `after-hangup-${tag}` })
            .count({ n: '*' })
        )[0]!.n,
      ),
      0,
    );
    assert.equal((await p.api('POST', `/v1/machines/${machine}/terminate`)).status, 202);
  });

  it('counts each operation as one request of the caller against the rate limit, and keeps the configured batch size', async () => {
    const q = await startTestPlatform({ label: 'batch-limits', worker: false, env: { AUTOVIBE_RATE_LIMIT: '6', AUTOVIBE_BATCH_MAX_OPERATIONS: '3' } });
    try {
      const get = { method: 'GET', path: '/v1/whoami' };
      const call = (operations: unknown[]) => q.api('POST', '/v1/batch', { operations });
      assert.equal((await call([get, get, get, get])).status, 413);
      // Requests so far: 1. This batch is the 2nd, its operations the 3rd to 5th.
      const first = await call([get, get, get]);
      assert.deepEqual(
        first.body.results.map((r: Result) => r.status),
        [200, 200, 200],
      );
      // The 6th request (the batch) and its first operation (the 7th, over the limit of 6) ...
      const second = await call([get, get]);
      assert.equal(second.status, 200);
      assert.deepEqual(
        second.body.results.map((r: Result) => r.status),
        [429, 429],
      );
      assert.equal(second.body.results[0].body.error.code, 'rate_limited');
      assert.ok(Number(second.body.results[0].headers['retry-after']) >= 1);
      // ... and the caller's own next request is over it too.
      assert.equal((await q.api('GET', '/v1/whoami')).status, 429);
    } finally {
      await q.stop();
    }
  });
});

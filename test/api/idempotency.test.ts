import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { reserveKey } from '../../store/idempotency.js';
import { projectWithBudget, startTestPlatform, waitForMachine, type TestPlatform } from '../support/platform.js';

/** Idempotency-Key is atomic: concurrent requests with one key start exactly one thing. */
describe('api: Idempotency-Key under concurrency', function () {
  this.timeout(180_000);
  let p: TestPlatform;
  let projectId: string;

  before(async () => {
    p = await startTestPlatform({ label: 'idempotency', env: { AUTOVIBE_IDEMPOTENCY_WAIT_MS: '60000' } });
    projectId = await projectWithBudget(p, '5.00');
  });
  after(async () => {
    await p?.stop();
  });

  const N = 8;

  /** Each answer is the one run (exactly one), a replay of it, or 409 in progress with Retry-After. */
  function checkAnswers(answers: Array<{ status: number; body: any; replayed: boolean; retryAfter: string | null }>, okStatus: number) {
    const ran = answers.filter((a) => a.status === okStatus && !a.replayed);
    assert.equal(ran.length, 1, `exactly one request ran: ${JSON.stringify(answers.map((a) => [a.status, a.replayed]))}`);
    for (const a of answers) {
      if (a.status === 409) {
        assert.equal(a.body.error.code, 'idempotency_in_progress');
        assert.ok(Number(a.retryAfter) >= 1);
      } else {
        assert.equal(a.status, okStatus, JSON.stringify(a.body));
        assert.ok(a.replayed || a === ran[0]);
        assert.deepEqual(a.body, ran[0]!.body);
      }
    }
    return ran[0]!.body;
  }

  async function concurrently(path: string, body: unknown, key: string) {
    return Promise.all(
      Array.from({ length: N }, async () => {
        const res = await fetch(`${p.apiUrl}${path}`, {
          method: 'POST',
          headers: { authorization: `Bearer ${p.adminKey}`, 'content-type': 'application/json', 'idempotency-key': key },
          body: JSON.stringify(body),
        });
        return {
          status: res.status,
          body: await res.json(),
          replayed: res.headers.get('idempotent-replayed') === 'true',
          retryAfter: res.headers.get('retry-after'),
        };
      }),
    );
  }

  it(`starts one machine and one workflow for ${N} concurrent POST /v1/machines with one key`, async () => {
    const key = `m-${crypto.randomUUID()}`;
    const machinesBefore = Number((await p.db('machines').count({ n: '*' }))[0]!.n);
    const answers = await concurrently('/v1/machines', { projectId, type: 'shell', command: 'echo once >> once.txt' }, key);
    const machine = checkAnswers(answers, 202);
    assert.equal(Number((await p.db('machines').count({ n: '*' }))[0]!.n), machinesBefore + 1);
    const done = await waitForMachine(p, machine.id);
    assert.equal(done.status, 'completed');
    const workflows: string[] = [];
    for await (const w of p.temporal.workflow.list({ query: `WorkflowId = '${machine.id}'` })) workflows.push(w.runId);
    assert.equal(workflows.length, 1, 'one workflow run');
    assert.equal((await p.db('audit_log').where({ subject_id: machine.id, action: 'machine.requested' }).count({ n: '*' }))[0]!.n, '1');
  });

  it(`creates one project for ${N} concurrent POST /v1/projects with one key`, async () => {
    const key = `p-${crypto.randomUUID()}`;
    const before = Number((await p.db('projects').count({ n: '*' }))[0]!.n);
    const project = checkAnswers(await concurrently('/v1/projects', { name: 'concurrent' }, key), 201);
    assert.equal(Number((await p.db('projects').count({ n: '*' }))[0]!.n), before + 1);
    assert.equal((await p.db('audit_log').where({ subject_id: project.id, action: 'project.created' }).count({ n: '*' }))[0]!.n, '1');
    // A later repeat replays the same answer.
    const again = await p.api('POST', '/v1/projects', { name: 'concurrent' }, { headers: { 'idempotency-key': key } });
    assert.equal(again.status, 201);
    assert.deepEqual(again.body, project);
  });

  it('refuses the same key with a different body with 422, also while the first still runs', async () => {
    const key = `d-${crypto.randomUUID()}`;
    const [a, b] = await Promise.all([
      p.api('POST', '/v1/projects', { name: 'first' }, { headers: { 'idempotency-key': key } }),
      p.api('POST', '/v1/projects', { name: 'second' }, { headers: { 'idempotency-key': key } }),
    ]);
    const statuses = [a.status, b.status].sort();
    assert.deepEqual(statuses, [201, 422], JSON.stringify([a.body, b.body]));
    const refused = a.status === 422 ? a : b;
    assert.equal(refused.body.error.code, 'idempotency_key_reused');
    assert.equal(
      await p
        .db('projects')
        .whereIn('name', ['first', 'second'])
        .count({ n: '*' })
        .then((r) => Number(r[0]!.n)),
      1,
    );
  });

  it('answers 409 idempotency_in_progress with Retry-After while another request holds the key', async () => {
    const q = await startTestPlatform({ label: 'idempotency-held', worker: false, env: { AUTOVIBE_IDEMPOTENCY_WAIT_MS: '300' } });
    try {
      const key = `h-${crypto.randomUUID()}`;
      const body = { name: 'held' };
      const apiKeyId = (await q.db('api_keys').first()).id as string;
      const requestHash = crypto
        .createHash('sha256')
        .update(`POST /v1/projects\n${JSON.stringify(body)}`)
        .digest('hex');
      // Another process holds the key (it reserved it and is still running).
      assert.equal((await reserveKey(q.db, { apiKeyId, key, method: 'POST', path: '/v1/projects', requestHash, staleAfterSeconds: 900 })).kind, 'reserved');
      const res = await fetch(`${q.apiUrl}/v1/projects`, {
        method: 'POST',
        headers: { authorization: `Bearer ${q.adminKey}`, 'content-type': 'application/json', 'idempotency-key': key },
        body: JSON.stringify(body),
      });
      assert.equal(res.status, 409);
      assert.equal(res.headers.get('retry-after'), '1');
      assert.equal(((await res.json()) as any).error.code, 'idempotency_in_progress');
      assert.equal(Number((await q.db('projects').where({ name: 'held' }).count({ n: '*' }))[0]!.n), 0);
    } finally {
      await q.stop();
    }
  });
});

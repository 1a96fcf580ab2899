import assert from 'node:assert/strict';
import { bootstrapAdminKey } from '../../api/bootstrap.js';
import { loadConfig } from '../../config/index.js';
import { hashApiKey } from '../../store/auth.js';
import { projectWithBudget, startTestPlatform, type TestPlatform } from '../support/platform.js';

describe('api: keys, roles and tenants', function () {
  this.timeout(180_000);
  let p: TestPlatform;
  let projectA: string;
  let projectB: string;

  before(async () => {
    p = await startTestPlatform({ label: 'keys', worker: false, env: { AUTOVIBE_RATE_LIMIT: '80' } });
    projectA = await projectWithBudget(p, '5.00');
    projectB = await projectWithBudget(p, '5.00');
  });
  after(async () => {
    await p?.stop();
  });

  const key = async (role: string, projectIds?: string[], as?: string) => {
    const r = await p.api('POST', '/v1/keys', { name: `${role}-key`, role, ...(projectIds ? { projectIds } : {}) }, as ? { key: as } : {});
    assert.equal(r.status, 201, JSON.stringify(r.body));
    return r.body as { id: string; key: string; prefix: string; role: string; projectIds: string[] | null };
  };

  it('shows a secret once, lists keys by prefix only, and stores only a hash', async () => {
    const made = await key('viewer', [projectA]);
    assert.match(made.key, /^av_/);
    assert.equal(made.prefix, made.key.slice(0, 10));
    const list = await p.api('GET', '/v1/keys?limit=500');
    const listed = list.body.items.find((k: { id: string }) => k.id === made.id);
    assert.deepEqual(listed.projectIds, [projectA]);
    assert.ok(!JSON.stringify(list.body).includes(made.key), 'a list never shows a secret');
    const row = await p.db('api_keys').where({ id: made.id }).first();
    assert.equal(row.key_hash, hashApiKey(made.key));
    assert.ok(!JSON.stringify(row).includes(made.key));
    // It works, knows who it is, and its use is recorded.
    const me = await p.api('GET', '/v1/whoami', undefined, { key: made.key });
    assert.equal(me.status, 200);
    assert.equal(me.body.id, made.id);
    assert.ok(me.body.lastUsedAt, 'last-used time is set');
    assert.ok(await p.db('audit_log').where({ action: 'key.used', subject_id: made.id }).first(), 'key use is audited');
  });

  it('rotates (old secret 401 at once, same id), expires and revokes keys', async () => {
    const made = await key('operator', [projectA]);
    const rotated = await p.api('POST', `/v1/keys/${made.id}/rotate`, undefined, { key: made.key });
    assert.equal(rotated.status, 201);
    assert.equal(rotated.body.id, made.id);
    assert.notEqual(rotated.body.key, made.key);
    assert.equal((await p.api('GET', '/v1/whoami', undefined, { key: made.key })).status, 401);
    assert.equal((await p.api('GET', '/v1/whoami', undefined, { key: rotated.body.key })).status, 200);

    // The holder may bring its expiry forward, not push it back; a manager may.
    const soon = new Date(Date.now() + 3600_000).toISOString();
    assert.equal((await p.api('PATCH', `/v1/keys/${made.id}`, { expiresAt: soon })).status, 200);
    const later = await p.api('PATCH', `/v1/keys/${made.id}`, { expiresAt: null }, { key: rotated.body.key });
    assert.equal(later.status, 403);
    const past = await p.api('PATCH', `/v1/keys/${made.id}`, { expiresAt: new Date(Date.now() - 1000).toISOString() }, { key: rotated.body.key });
    assert.equal(past.status, 200);
    assert.equal(past.body.status, 'expired');
    const expired = await p.api('GET', '/v1/projects', undefined, { key: rotated.body.key });
    assert.equal(expired.status, 401);
    assert.match(expired.body.error.message, /expired/);

    // A key just used (its look-up reused by the next requests for a moment) is still refused the moment it is revoked...
    const other = await key('viewer', [projectA]);
    assert.equal((await p.api('GET', '/v1/projects', undefined, { key: other.key })).status, 200);
    assert.equal((await p.api('DELETE', `/v1/keys/${other.id}`)).status, 204);
    assert.equal((await p.api('GET', '/v1/projects', undefined, { key: other.key })).status, 401);
    assert.equal((await p.api('POST', `/v1/keys/${other.id}/rotate`)).status, 409);
    assert.ok(await p.db('audit_log').where({ action: 'key.revoked', subject_id: other.id }).first());

    // ...and the moment its expiry passes.
    const brief = await key('viewer', [projectA]);
    const at = new Date(Date.now() + 1500);
    assert.equal((await p.api('PATCH', `/v1/keys/${brief.id}`, { expiresAt: at.toISOString() })).status, 200);
    assert.equal((await p.api('GET', '/v1/projects', undefined, { key: brief.key })).status, 200);
    await new Promise((r) => setTimeout(r, Math.max(0, at.getTime() - Date.now()) + 50));
    assert.equal((await p.api('GET', '/v1/projects', undefined, { key: brief.key })).status, 401);
  });

  it('never hands out more than the granter holds', async () => {
    const owner = await key('owner', [projectA]);
    const tries: Array<[unknown, number, RegExp]> = [
      [{ name: 'x', role: 'admin' }, 403, /may not create a key with role "admin"|deployment-wide/],
      [{ name: 'x', role: 'operator' }, 403, /bound to projects/],
      [{ name: 'x', role: 'operator', projectIds: [projectB] }, 422, /projectIds: project .* not found/],
      [{ name: 'x', role: 'machine', projectIds: [projectA, projectA + 'x'] }, 422, /not found/],
      [{ name: 'x', role: 'viewer', projectIds: [projectA], expiresAt: '2001-01-01T00:00:00Z' }, 422, /future/],
      [{ name: 'x', role: 'superuser', projectIds: [projectA] }, 400, /role/],
    ];
    for (const [body, status, message] of tries) {
      const r = await p.api('POST', '/v1/keys', body, { key: owner.key });
      assert.equal(r.status, status, JSON.stringify([body, r.body]));
      assert.match(r.body.error.message, message);
    }
    const operator = await key('operator', [projectA], owner.key);
    assert.equal((await p.api('POST', '/v1/keys', { name: 'y', role: 'viewer', projectIds: [projectA] }, { key: operator.key })).status, 403);
    // The owner sees the keys of its project, not the other project's, and not the admin's.
    const listed = (await p.api('GET', '/v1/keys?limit=500', undefined, { key: owner.key })).body.items as Array<{ projectIds: string[] | null }>;
    assert.ok(listed.length >= 2);
    assert.ok(listed.every((k) => k.projectIds !== null && k.projectIds.every((id) => id === projectA)));
  });

  it('pages a deployment-wide owner through every key it may see, leaving out others\u2019 admin keys', async () => {
    const owner = await key('owner');
    for (let i = 0; i < 3; i++) await key('admin');
    const seen: Array<{ id: string; role: string; userId: string }> = [];
    let cursor: string | null = null;
    do {
      const page: { status: number; body: { items: Array<{ id: string; role: string; userId: string }>; nextCursor: string | null } } = await p.api(
        'GET',
        `/v1/keys?limit=1${cursor ? `&cursor=${cursor}` : ''}`,
        undefined,
        { key: owner.key },
      );
      assert.equal(page.status, 200);
      seen.push(...page.body.items);
      cursor = page.body.nextCursor;
    } while (cursor);
    const expected = await p.db('api_keys').whereNot('role', 'admin').count({ n: '*' });
    assert.equal(seen.length, Number(expected[0]!.n));
    assert.ok(seen.every((k) => k.role !== 'admin'));
  });

  it('separates raising budgets and payment methods from running machines', async () => {
    const operator = await key('operator', [projectA]);
    const owner = await key('owner', [projectA]);
    const budget = { amount: '50.00', currency: 'USD', period: 'daily' };
    assert.equal((await p.api('PUT', `/v1/projects/${projectA}/budget`, budget, { key: operator.key })).status, 403);
    assert.equal((await p.api('PUT', `/v1/projects/${projectA}/payment-methods`, [{ kind: 'credits' }], { key: operator.key })).status, 403);
    assert.equal((await p.api('PUT', `/v1/projects/${projectA}/budget`, budget, { key: owner.key })).status, 200);
    assert.equal((await p.api('PUT', `/v1/projects/${projectA}/payment-methods`, [{ kind: 'credits' }], { key: owner.key })).status, 200);
    assert.equal((await p.api('POST', `/v1/projects/${projectA}/credits`, { amount: '1.00', currency: 'USD' }, { key: owner.key })).status, 403);
    // A project an owner creates is bound to its key at once.
    const made = await p.api('POST', '/v1/projects', { name: 'owned' }, { key: owner.key });
    assert.equal(made.status, 201);
    assert.equal((await p.api('GET', `/v1/projects/${made.body.id}`, undefined, { key: owner.key })).status, 200);
    assert.equal((await p.api('GET', `/v1/projects/${made.body.id}`, undefined, { key: operator.key })).status, 404);
  });

  it('pages every list with a cursor, never repeating or skipping an item', async () => {
    for (let i = 0; i < 5; i++) assert.equal((await p.api('POST', '/v1/projects', { name: `paged-${i}` })).status, 201);
    const all = (await p.api('GET', '/v1/projects?limit=500')).body.items.map((x: { id: string }) => x.id);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { status: number; body: { items: Array<{ id: string }>; nextCursor: string | null } } = await p.api(
        'GET',
        `/v1/projects?limit=2${cursor ? `&cursor=${cursor}` : ''}`,
      );
      assert.equal(page.status, 200);
      assert.ok(page.body.items.length <= 2);
      seen.push(...page.body.items.map((x) => x.id));
      cursor = page.body.nextCursor;
    } while (cursor);
    assert.deepEqual(seen, all);
    assert.equal((await p.api('GET', '/v1/projects?limit=501')).status, 400);
    const forged = Buffer.from(JSON.stringify(['yesterday', 'x'])).toString('base64url');
    for (const cursor of ['not-a-cursor', forged]) {
      const bad = await p.api('GET', `/v1/projects?cursor=${cursor}`);
      assert.equal(bad.status, 422);
      assert.match(bad.body.error.message, /cursor/);
    }
  });

  it('answers 429 with Retry-After once a key passes its rate limit, other keys unaffected', async () => {
    const noisy = await key('viewer', [projectA]);
    let limited: { status: number; body: any } | null = null;
    let retryAfter: string | null = null;
    for (let i = 0; i < 120 && !limited; i++) {
      const res = await fetch(`${p.apiUrl}/v1/projects`, { headers: { authorization: `Bearer ${noisy.key}` } });
      if (res.status === 429) {
        limited = { status: 429, body: await res.json() };
        retryAfter = res.headers.get('retry-after');
      } else assert.equal(res.status, 200);
    }
    assert.ok(limited, 'the limit (80 a minute) was never reached');
    assert.equal(limited.body.error.code, 'rate_limited');
    assert.ok(Number(retryAfter) >= 1 && Number(retryAfter) <= 60, `Retry-After: ${retryAfter}`);
    const quiet = await key('viewer', [projectA]);
    assert.equal((await p.api('GET', '/v1/projects', undefined, { key: quiet.key })).status, 200);
  });

  // Last: it revokes the platform's own admin key.
  it('revokes the bootstrap admin key when AUTOVIBE_ADMIN_KEY changes', async () => {
    const first = 'first-admin-key-0123456789';
    const second = 'second-admin-key-0123456789';
    const cfg = (adminKey: string) => loadConfig({ AUTOVIBE_HOME: p.home, AUTOVIBE_ADMIN_KEY: adminKey });
    await bootstrapAdminKey(p.db, cfg(first));
    assert.equal((await p.api('GET', '/v1/whoami', undefined, { key: first })).body.role, 'admin');
    const { revoked } = await bootstrapAdminKey(p.db, cfg(second));
    assert.ok(revoked.length >= 1);
    assert.equal((await p.api('GET', '/v1/whoami', undefined, { key: first })).status, 401);
    assert.equal((await p.api('GET', '/v1/whoami', undefined, { key: second })).status, 200);
    // Starting again with the same value changes nothing.
    assert.deepEqual((await bootstrapAdminKey(p.db, cfg(second))).revoked, []);
  });
});

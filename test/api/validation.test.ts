import assert from 'node:assert/strict';
import { createUserWithKey } from '../../store/auth.js';
import { projectWithBudget, startTestPlatform, type TestPlatform } from '../support/platform.js';

/** Row counts of every table bad input could touch: a refused request must change none. */
async function counts(p: TestPlatform): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const t of ['projects', 'budgets', 'machines', 'checkpoints', 'reservations', 'cost_events', 'objectives', 'audit_log', 'cost_centers']) {
    // Key use and denials are audited by design; what must not change is the work's own records.
    const q = t === 'audit_log' ? p.db(t).whereNotIn('action', ['key.used', 'access.denied']) : p.db(t);
    out[t] = Number((await q.count({ n: '*' }))[0]!.n);
  }
  return out;
}

describe('api: authentication and bad input', function () {
  this.timeout(120_000);
  let p: TestPlatform;
  let projectId: string;
  let otherCheckpoint: string;

  before(async () => {
    p = await startTestPlatform({ label: 'validation' });
    projectId = await projectWithBudget(p, '1.00');
    const other = await projectWithBudget(p, '1.00');
    otherCheckpoint = (await p.api('GET', `/v1/projects/${other}`)).body.rootCheckpointId;
  });
  after(async () => {
    await p?.stop();
  });

  it('requires an API key on every /v1 route and refuses unknown ones with 401', async () => {
    const routes: Array<[string, string]> = [
      ['GET', '/v1/projects'],
      ['POST', '/v1/projects'],
      ['GET', `/v1/projects/${projectId}`],
      ['PUT', `/v1/projects/${projectId}/budget`],
      ['GET', `/v1/projects/${projectId}/checkpoints`],
      ['GET', `/v1/projects/${projectId}/costs`],
      ['POST', `/v1/projects/${projectId}/objectives`],
      ['POST', '/v1/machines'],
      ['GET', '/v1/machines'],
      ['GET', '/v1/machines/machine-x'],
      ['POST', '/v1/machines/machine-x/terminate'],
      ['GET', '/v1/audit'],
      ['GET', '/v1/openapi.json'],
      ['GET', '/v1/machine-types'],
      ['GET', '/v1/no-such-route'],
    ];
    for (const [method, path] of routes) {
      const none = await p.api(method, path, method === 'GET' ? undefined : {}, { key: null });
      assert.equal(none.status, 401, `${method} ${path} without a key`);
      assert.equal(none.body.error.code, 'unauthenticated');
      assert.match(none.body.error.message, /Authorization: Bearer/);
      assert.ok(none.body.requestId);
      const wrong = await p.api(method, path, method === 'GET' ? undefined : {}, { key: 'av_not-a-real-key' });
      assert.equal(wrong.status, 401, `${method} ${path} with an unknown key`);
      assert.match(wrong.body.error.message, /unknown, expired or revoked/);
    }
    assert.equal((await p.api('GET', '/healthz', undefined, { key: null })).status, 200);
  });

  it('lets a viewer read but not write (403 naming the role)', async () => {
    const { key } = await createUserWithKey(p.db, 'reader', 'viewer');
    assert.equal((await p.api('GET', '/v1/projects', undefined, { key })).status, 200);
    const r = await p.api('POST', '/v1/projects', { name: 'x' }, { key });
    assert.equal(r.status, 403);
    assert.match(r.body.error.message, /viewer/);
  });

  const cases: Array<{ name: string; method: string; path: () => string; body: () => unknown; status: number; field: RegExp }> = [
    { name: 'project without a name', method: 'POST', path: () => '/v1/projects', body: () => ({}), status: 400, field: /name/ },
    {
      name: 'project with an unknown currency',
      method: 'POST',
      path: () => '/v1/projects',
      body: () => ({ name: 'x', currency: 'XYZ' }),
      status: 400,
      field: /currency/,
    },
    {
      name: 'project with an unknown field',
      method: 'POST',
      path: () => '/v1/projects',
      body: () => ({ name: 'x', colour: 'red' }),
      status: 400,
      field: /colour/,
    },
    {
      name: 'project whose repoUrl cannot be cloned',
      method: 'POST',
      path: () => '/v1/projects',
      body: () => ({ name: 'x', repoUrl: '/nonexistent/repo' }),
      status: 422,
      field: /repoUrl/,
    },
    {
      name: 'budget with a malformed amount',
      method: 'PUT',
      path: () => `/v1/projects/${projectId}/budget`,
      body: () => ({ amount: '12,50', currency: 'USD', period: 'daily' }),
      status: 400,
      field: /amount/,
    },
    {
      name: 'budget with a number instead of a decimal string',
      method: 'PUT',
      path: () => `/v1/projects/${projectId}/budget`,
      body: () => ({ amount: 10.5, currency: 'USD', period: 'daily' }),
      status: 400,
      field: /amount/,
    },
    {
      name: 'negative budget',
      method: 'PUT',
      path: () => `/v1/projects/${projectId}/budget`,
      body: () => ({ amount: '-5.00', currency: 'USD', period: 'daily' }),
      status: 422,
      field: /amount.*negative/,
    },
    {
      name: 'budget with too many decimals',
      method: 'PUT',
      path: () => `/v1/projects/${projectId}/budget`,
      body: () => ({ amount: '1.001', currency: 'USD', period: 'daily' }),
      status: 422,
      field: /amount.*decimals/,
    },
    {
      name: 'budget with an unknown period',
      method: 'PUT',
      path: () => `/v1/projects/${projectId}/budget`,
      body: () => ({ amount: '5.00', currency: 'USD', period: 'hourly' }),
      status: 400,
      field: /period/,
    },
    {
      name: 'budget in an unknown currency',
      method: 'PUT',
      path: () => `/v1/projects/${projectId}/budget`,
      body: () => ({ amount: '5.00', currency: 'XYZ', period: 'daily' }),
      status: 400,
      field: /currency/,
    },
    {
      name: 'BTC budget with more than 8 decimals',
      method: 'PUT',
      path: () => `/v1/projects/${projectId}/budget`,
      body: () => ({ amount: '0.000000001', currency: 'BTC', period: 'daily' }),
      status: 422,
      field: /amount.*BTC allows at most 8/,
    },
    {
      name: 'project with an unknown cost center',
      method: 'POST',
      path: () => '/v1/projects',
      body: () => ({ name: 'x', costCenterId: 'cost-center-00000000-0000-4000-8000-000000000000' }),
      status: 422,
      field: /costCenterId/,
    },
    {
      name: 'machine with an unknown cost center',
      method: 'POST',
      path: () => '/v1/machines',
      body: () => ({ projectId, type: 'shell', command: 'true', costCenterId: 'cost-center-00000000-0000-4000-8000-000000000000' }),
      status: 422,
      field: /costCenterId/,
    },
    {
      name: 'cost center of an unknown kind',
      method: 'POST',
      path: () => '/v1/cost-centers',
      body: () => ({ name: 'cc', kind: 'marketing', department: 'eng' }),
      status: 400,
      field: /kind/,
    },
    {
      name: 'cost center without a department',
      method: 'POST',
      path: () => '/v1/cost-centers',
      body: () => ({ name: 'cc', kind: 'testing' }),
      status: 400,
      field: /department/,
    },
    { name: 'rates for an unknown base currency', method: 'GET', path: () => '/v1/fx/rates?base=XYZ', body: () => undefined, status: 400, field: /base/ },
    {
      name: 'budget of an unknown project',
      method: 'PUT',
      path: () => '/v1/projects/project-00000000-0000-4000-8000-000000000000/budget',
      body: () => ({ amount: '5.00', currency: 'USD', period: 'daily' }),
      status: 404,
      field: /project/,
    },
    {
      name: 'machine of an unknown project',
      method: 'POST',
      path: () => '/v1/machines',
      body: () => ({ projectId: 'project-00000000-0000-4000-8000-000000000000', type: 'shell', command: 'true' }),
      status: 422,
      field: /projectId/,
    },
    {
      name: 'machine with a malformed project id',
      method: 'POST',
      path: () => '/v1/machines',
      body: () => ({ projectId: 'nope', type: 'shell', command: 'true' }),
      status: 400,
      field: /projectId/,
    },
    {
      name: 'machine of an unknown type',
      method: 'POST',
      path: () => '/v1/machines',
      body: () => ({ projectId, type: 'gpt-9', command: 'true' }),
      status: 400,
      field: /type/,
    },
    {
      name: 'shell machine without a command',
      method: 'POST',
      path: () => '/v1/machines',
      body: () => ({ projectId, type: 'shell' }),
      status: 400,
      field: /command/,
    },
    { name: 'machine without a type', method: 'POST', path: () => '/v1/machines', body: () => ({ projectId, command: 'true' }), status: 400, field: /type/ },
    {
      name: 'machine from a checkpoint of another project',
      method: 'POST',
      path: () => '/v1/machines',
      body: () => ({ projectId, type: 'shell', command: 'true', checkpointId: otherCheckpoint }),
      status: 422,
      field: /checkpointId/,
    },
    {
      name: 'machine with a malformed money limit',
      method: 'POST',
      path: () => '/v1/machines',
      body: () => ({ projectId, type: 'shell', command: 'true', limits: { money: 'lots' } }),
      status: 400,
      field: /limits\.money/,
    },
    {
      name: 'machine with a zero money limit',
      method: 'POST',
      path: () => '/v1/machines',
      body: () => ({ projectId, type: 'shell', command: 'true', limits: { money: '0' } }),
      status: 422,
      field: /limits\.money/,
    },
    {
      name: 'machine with a fractional minutes limit',
      method: 'POST',
      path: () => '/v1/machines',
      body: () => ({ projectId, type: 'shell', command: 'true', limits: { minutes: 1.5 } }),
      status: 400,
      field: /limits\.minutes/,
    },
    {
      name: 'objective depending on an unknown objective',
      method: 'POST',
      path: () => `/v1/projects/${projectId}/objectives`,
      body: () => ({ title: 't', command: 'true', dependsOn: ['objective-00000000-0000-4000-8000-000000000000'] }),
      status: 422,
      field: /dependsOn/,
    },
    {
      name: 'objective without a title',
      method: 'POST',
      path: () => `/v1/projects/${projectId}/objectives`,
      body: () => ({ command: 'true' }),
      status: 400,
      field: /title/,
    },
  ];

  for (const c of cases) {
    it(`refuses a ${c.name} with ${c.status}, naming the field, and writes nothing`, async () => {
      const before = await counts(p);
      const r = await p.api(c.method, c.path(), c.body());
      assert.equal(r.status, c.status, JSON.stringify(r.body));
      assert.match(r.body.error.message, c.field);
      assert.ok(r.body.requestId);
      assert.deepEqual(await counts(p), before);
    });
  }

  it('refuses malformed JSON with 400', async () => {
    const r = await p.api('POST', '/v1/projects', '{"name": ', {});
    assert.equal(r.status, 400);
    assert.equal(r.body.error.code, 'invalid_json');
  });

  it('answers unknown machines and checkpoints with 404', async () => {
    assert.equal((await p.api('GET', '/v1/machines/machine-00000000-0000-4000-8000-000000000000')).status, 404);
    assert.equal((await p.api('GET', '/v1/checkpoints/checkpoint-00000000-0000-4000-8000-000000000000')).status, 404);
  });

  it('serves an OpenAPI document that lists every v1 route', async () => {
    const doc = (await p.api('GET', '/v1/openapi.json')).body;
    assert.equal(doc.openapi, '3.1.0');
    for (const path of [
      '/projects',
      '/projects/{id}/budget',
      '/machines',
      '/machines/{id}',
      '/machines/{id}/terminate',
      '/projects/{id}/checkpoints',
      '/checkpoints/{id}',
      '/projects/{id}/costs',
      '/audit',
    ]) {
      assert.ok(doc.paths[path], `missing ${path}`);
    }
    const schema = doc.paths['/machines'].post.requestBody.content['application/json'].schema;
    assert.ok(schema.properties.projectId && schema.properties.limits);
  });
});

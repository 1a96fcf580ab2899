import assert from 'node:assert/strict';
import { routeTable } from '../../api/app.js';
import { openApiDocument } from '../../api/openapi.js';
import type { ResourceRef, RouteSpec } from '../../api/routes/table.js';
import { roleAllows, ROLES, type Role } from '../../domain/permissions.js';
import { createUserWithKey } from '../../store/auth.js';
import { findBudget, release, reserve } from '../../store/budgets.js';
import { saveProviderStatus } from '../../store/compute.js';
import { projectWithBudget, startTestPlatform, waitForMachine, type TestPlatform } from '../support/platform.js';

type Side = 'own' | 'foreign';
type Fixtures = Record<ResourceRef['kind'], string> & { department: string; key: string; webhook: string; doomedWebhook: string };

/** The route table's paths in OpenAPI form: `/machines/:id` and `/files/*path` → `{id}`, `{path}`. */
const asOpenApi = (p: string) => p.replace(/[:*](\w+)/g, '{$1}');

/**
 * The permission matrix: every route of the route table × every role × a resource of the key's
 * own project and of another project. Generated from the table, so a new route is in it at once;
 * a route cannot be registered without declaring its access (RouteGroup), and one added outside
 * the table is caught by the OpenAPI comparison below.
 */
describe('api: permission matrix (every route × every role × own/foreign project)', function () {
  this.timeout(600_000);
  let p: TestPlatform;
  let routes: RouteSpec[];
  const fixtures = {} as Record<Side, Fixtures>;
  const keys = {} as Record<Role, string>;
  let projectA: string;

  async function makeFixtures(projectId: string, label: string): Promise<Fixtures> {
    const project = (await p.api('GET', `/v1/projects/${projectId}`)).body;
    const m = await p.api('POST', '/v1/machines', {
      projectId,
      type: 'shell',
      command: 'echo hi > hi.txt',
      cache: false,
      limits: { money: '0.05', minutes: 2 },
    });
    assert.equal(m.status, 202, JSON.stringify(m.body));
    const machine = await waitForMachine(p, m.body.id);
    const objective = await p.api('POST', `/v1/projects/${projectId}/objectives`, { title: `o-${label}`, command: 'true' });
    assert.equal(objective.status, 201, JSON.stringify(objective.body));
    const pipeline = await p.api('POST', '/v1/pipelines', { projectId, steps: [{ id: 's', type: 'shell', command: 'true' }] });
    assert.equal(pipeline.status, 202, JSON.stringify(pipeline.body));
    assert.equal((await p.api('PUT', `/v1/projects/${projectId}/payment-methods`, [{ kind: 'manual', timeoutSeconds: 300 }])).status, 200);
    const topup = await p.api('POST', `/v1/projects/${projectId}/topups`, { amount: '1.00', currency: 'USD' });
    assert.equal(topup.status, 202, JSON.stringify(topup.body));
    const department = `dept-${label}`;
    const center = await p.api('POST', '/v1/cost-centers', { name: `cc-${label}`, kind: 'development', department });
    assert.equal(center.status, 201, JSON.stringify(center.body));
    assert.equal((await p.api('PUT', `/v1/projects/${projectId}/cost-center`, { costCenterId: center.body.id })).status, 200);
    // A key of this project the matrix may rotate, expire and revoke.
    const key = await p.api('POST', '/v1/keys', { name: `throwaway-${label}`, role: 'viewer', projectIds: [projectId] });
    assert.equal(key.status, 201, JSON.stringify(key.body));
    // A webhook of this project (subscribed to events that do not come here: nothing is sent).
    const webhook = await p.api('POST', '/v1/webhooks', { projectId, url: `https://hooks.example.com/${label}`, events: ['webhook.*'] });
    assert.equal(webhook.status, 201, JSON.stringify(webhook.body));
    // One for DELETE, so the others' answers do not depend on the order the matrix runs in.
    const doomed = await p.api('POST', '/v1/webhooks', { projectId, url: `https://hooks.example.com/${label}/2`, events: ['webhook.*'] });
    assert.equal(doomed.status, 201, JSON.stringify(doomed.body));
    return {
      project: projectId,
      machine: machine.id,
      checkpoint: project.rootCheckpointId,
      objective: objective.body.id,
      pipeline: pipeline.body.id,
      payment: topup.body.paymentId,
      'cost-center': center.body.id,
      department,
      key: key.body.id,
      webhook: webhook.body.id,
      doomedWebhook: doomed.body.id,
    };
  }

  before(async () => {
    p = await startTestPlatform({ label: 'permissions' });
    projectA = await projectWithBudget(p, '5.00');
    const projectB = await projectWithBudget(p, '5.00');
    fixtures.own = await makeFixtures(projectA, 'a');
    fixtures.foreign = await makeFixtures(projectB, 'b');
    // An alert of each project (a spend past half its budget, given back) and one of the deployment.
    for (const projectId of [projectA, projectB]) {
      const budget = (await findBudget(p.db, 'project', projectId))!;
      const key = `permissions-alert:${projectId}`;
      assert.ok((await reserve(p.db, { key, budgetIds: [budget.id], projectId, amount: 3n * 10n ** 18n, now: new Date() })).ok);
      await release(p.db, key);
    }
    await saveProviderStatus(p.db, { id: 'aws-ecs', available: true, reason: null, checkedAt: new Date() });
    await saveProviderStatus(p.db, { id: 'aws-ecs', available: false, reason: 'not configured', checkedAt: new Date() });
    keys.admin = p.adminKey;
    for (const role of ROLES.filter((r) => r !== 'admin')) keys[role] = (await createUserWithKey(p.db, `${role}-of-a`, role, [projectA])).key;
    routes = routeTable({ db: p.db, temporal: p.temporal, config: p.config, log: p.log });
  });
  after(async () => {
    await p?.stop();
  });

  it('declares a permission for every route, and the route table and the OpenAPI document list the same routes', () => {
    assert.ok(routes.length >= 60, `only ${routes.length} routes in the table`);
    for (const r of routes) assert.ok(r.access.permission, `${r.method} ${r.path} declares no permission`);
    const table = new Set(routes.map((r) => `${r.method.toUpperCase()} ${asOpenApi(r.path)}`));
    const documented = new Set<string>();
    for (const [path, ops] of Object.entries(openApiDocument().paths as Record<string, Record<string, unknown>>)) {
      for (const method of Object.keys(ops)) if (path !== '/openapi.json') documented.add(`${method.toUpperCase()} ${path}`);
    }
    assert.deepEqual(
      [...table].filter((r) => !documented.has(r)),
      [],
      'routes missing from the OpenAPI document',
    );
    assert.deepEqual(
      [...documented].filter((r) => !table.has(r)),
      [],
      'documented routes that are not in the route table',
    );
  });

  function request(route: RouteSpec, side: Side): { path: string; body: Record<string, unknown> | undefined } {
    const f = fixtures[side];
    const refs = route.access.resource === 'none' ? [] : [route.access.resource].flat();
    let path = route.path;
    const body: Record<string, unknown> = {};
    const query: string[] = [];
    for (const ref of refs) {
      if (ref.in === 'path') path = path.replace(`:${ref.name}`, f[ref.kind]);
      if (ref.in === 'body') body[ref.name] = f[ref.kind];
      if (ref.in === 'query') query.push(`${ref.name}=${f[ref.kind]}`);
    }
    path = path
      .replace(
        ':id',
        route.path.startsWith('/keys') ? f.key : route.path.startsWith('/webhooks/') ? (route.method === 'delete' ? f.doomedWebhook : f.webhook) : 'x',
      )
      .replace(':name', f.department)
      .replace(':kind', 'github')
      .replace(':type', 'shell')
      .replace('*path', 'hi.txt')
      .replace('*name', 'no-such-artifact');
    const full = `/v1${path}${query.length ? `?${query.join('&')}` : ''}`;
    return { path: full, body: route.method === 'get' || route.method === 'delete' ? undefined : body };
  }

  /** Every answer of the matrix, for the batch comparison below. */
  const answered: Array<{ role: Role; method: string; path: string; body: unknown; status: number; allowed: boolean }> = [];

  it('answers each role on each route as the permission table says: allowed, 403, or 404/422 for another project', async () => {
    const failures: string[] = [];
    let checked = 0;
    for (const route of routes) {
      const refs = route.access.resource === 'none' ? [] : [route.access.resource].flat();
      const sides: Side[] = refs.length || route.path.startsWith('/keys/') || route.path.startsWith('/webhooks/') ? ['own', 'foreign'] : ['own'];
      for (const role of ROLES) {
        for (const side of sides) {
          const { path, body } = request(route, side);
          const res = await p.api(route.method.toUpperCase(), path, body, { key: keys[role] });
          checked++;
          const where = `${role} ${route.method.toUpperCase()} ${path} (${side})`;
          const scoped = role !== 'admin';
          const foreignKey = route.path.startsWith('/keys/') && side === 'foreign';
          let expected: 'allowed' | 403 | 404 | 422;
          if (side === 'foreign' && scoped && refs.length) expected = refs.some((r) => r.in !== 'body') ? 404 : 422;
          else if (!roleAllows(role, route.access.permission)) expected = 403;
          else if (route.access.deploymentWide && scoped) expected = 403;
          // A key an owner did not grant (another project's), or anyone else's key for the rest.
          else if (route.path.startsWith('/keys/') && (foreignKey ? scoped : role !== 'admin' && role !== 'owner')) expected = 404;
          // Another project's webhook reads as a missing one (the service's scoping: its routes name no resource).
          else if (route.path.startsWith('/webhooks/') && side === 'foreign' && scoped) expected = 404;
          else expected = 'allowed';
          answered.push({ role, method: route.method.toUpperCase(), path, body, status: res.status, allowed: expected === 'allowed' });

          if (res.status >= 500) failures.push(`${where}: ${res.status} ${JSON.stringify(res.body)}`);
          else if (expected === 'allowed') {
            const scopeMiss =
              res.status === 404 &&
              /^(project|machine|checkpoint|objective|pipeline|payment|cost center|key) \S+ not found$/.test(res.body.error?.message ?? '');
            if (res.status === 401 || res.status === 403 || scopeMiss)
              failures.push(`${where}: expected allowed, got ${res.status} ${res.body.error?.message}`);
          } else if (res.status !== expected) failures.push(`${where}: expected ${expected}, got ${res.status} ${JSON.stringify(res.body.error ?? res.body)}`);
          else if (expected === 404 || expected === 422) {
            // Another project's resource reads exactly as a missing one: nothing of it that the
            // caller did not send itself comes back.
            const text = JSON.stringify(res.body);
            const sent = `${path} ${JSON.stringify(body ?? {})}`;
            for (const v of Object.values(fixtures.foreign)) {
              if (!sent.includes(v) && text.includes(v)) failures.push(`${where}: the answer shows ${v}`);
            }
          }
        }
      }
    }
    assert.ok(checked > 400, `only ${checked} combinations checked`);
    assert.deepEqual(failures, []);
  });

  it('answers every read, and every refused call, inside POST /v1/batch exactly as sent alone, for every role', async () => {
    // Allowed writes are left out: sending them again would find the state they changed.
    const again = answered.filter((a) => a.method === 'GET' || !a.allowed);
    assert.ok(again.length > 300, `only ${again.length} calls to repeat`);
    const differ: string[] = [];
    for (const role of ROLES) {
      const mine = again.filter((a) => a.role === role);
      for (let i = 0; i < mine.length; i += 50) {
        const chunk = mine.slice(i, i + 50);
        const res = await p.api(
          'POST',
          '/v1/batch',
          { operations: chunk.map((a) => ({ method: a.method, path: a.path, ...(a.body !== undefined ? { body: a.body } : {}) })) },
          { key: keys[role] },
        );
        assert.equal(res.status, 200, JSON.stringify(res.body));
        chunk.forEach((a, j) => {
          const got = res.body.results[j].status;
          if (got !== a.status) differ.push(`${role} ${a.method} ${a.path}: alone ${a.status}, in a batch ${got} ${JSON.stringify(res.body.results[j].body)}`);
        });
      }
    }
    assert.deepEqual(differ, []);
  });

  it('audits denied access: a foreign resource and a missing permission each leave an access.denied record', async () => {
    const before = Number((await p.db('audit_log').where({ action: 'access.denied' }).count({ n: '*' }))[0]!.n);
    assert.equal((await p.api('GET', `/v1/machines/${fixtures.foreign.machine}`, undefined, { key: keys.viewer })).status, 404);
    assert.equal(
      (await p.api('PUT', `/v1/projects/${projectA}/budget`, { amount: '100.00', currency: 'USD', period: 'daily' }, { key: keys.operator })).status,
      403,
    );
    const rows = await p.db('audit_log').where({ action: 'access.denied' }).orderBy('seq', 'desc').limit(2);
    assert.equal(rows.length >= 2 && Number((await p.db('audit_log').where({ action: 'access.denied' }).count({ n: '*' }))[0]!.n) - before, 2);
    const details = rows.map((r) => (typeof r.details === 'string' ? JSON.parse(r.details) : r.details));
    assert.equal(details[0].permission, 'budgets.write');
    assert.equal(details[1].machine, fixtures.foreign.machine);
    // Denials are deployment-level records: the tenant's own audit view never shows them.
    const own = await p.api('GET', '/v1/audit?limit=500', undefined, { key: keys.owner });
    assert.ok(own.body.items.every((a: { projectId: string }) => a.projectId === projectA));
  });

  it('lists only the caller\u2019s projects, machines, cost centers, audit records and alerts', async () => {
    const projects = await p.api('GET', '/v1/projects', undefined, { key: keys.viewer });
    assert.deepEqual(
      projects.body.items.map((x: { id: string }) => x.id),
      [projectA],
    );
    const machines = await p.api('GET', '/v1/machines', undefined, { key: keys.viewer });
    assert.ok(machines.body.items.length >= 1 && machines.body.items.every((m: { projectId: string }) => m.projectId === projectA));
    const centers = await p.api('GET', '/v1/cost-centers', undefined, { key: keys.viewer });
    assert.deepEqual(
      centers.body.items.map((c: { id: string }) => c.id),
      [fixtures.own['cost-center']],
    );
    const all = await p.api('GET', '/v1/projects');
    assert.ok(all.body.items.length >= 2, 'the admin key sees every project');
    // Alerts: each project's own, and the deployment's (no project) to deployment-wide keys only.
    const alerts = await p.api('GET', '/v1/alerts?limit=500');
    const projectsOfAlerts = new Set(alerts.body.items.map((a: { projectId: string | null }) => a.projectId));
    assert.ok(projectsOfAlerts.has(projectA) && projectsOfAlerts.has(fixtures.foreign.project) && projectsOfAlerts.has(null), JSON.stringify(alerts.body));
    const ownAlerts = await p.api('GET', '/v1/alerts?limit=500', undefined, { key: keys.viewer });
    assert.ok(
      ownAlerts.body.items.length >= 1 && ownAlerts.body.items.every((a: { projectId: string }) => a.projectId === projectA),
      JSON.stringify(ownAlerts.body),
    );
  });
});

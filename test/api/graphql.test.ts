import assert from 'node:assert/strict';
import fs from 'node:fs';
import { assertValidSchema, buildSchema, getIntrospectionQuery, printSchema } from 'graphql';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { graphqlSchema, SCHEMA_SDL } from '../../api/graphql/schema.js';
import { MAX_COMPLEXITY, MAX_DEPTH } from '../../api/graphql/limits.js';
import { MUTATION_ROUTES } from '../../api/graphql/mutations.js';
import { routeTable } from '../../api/app.js';
import type { ApiContext } from '../../api/context.js';
import { createUserWithKey } from '../../store/auth.js';
import { projectWithBudget, startTestPlatform, waitFor, waitForMachine, type TestPlatform } from '../support/platform.js';

/** The printed schema as committed: a change to the GraphQL contract must update it on purpose. */
const SNAPSHOT = new URL('../fixtures/graphql/schema.graphql', import.meta.url);

describe('graphql: schema', () => {
  it('is valid SDL and prints as the committed snapshot (UPDATE_GRAPHQL_SNAPSHOT=1 rewrites it)', () => {
    assertValidSchema(buildSchema(SCHEMA_SDL));
    const printed = printSchema(graphqlSchema()) + '\n';
    if (process.env.UPDATE_GRAPHQL_SNAPSHOT === '1') fs.writeFileSync(SNAPSHOT, printed);
    assert.equal(printed, fs.readFileSync(SNAPSHOT, 'utf8'), 'the GraphQL schema changed: review it and run with UPDATE_GRAPHQL_SNAPSHOT=1');
  });
});

describe('graphql: mutations', () => {
  it('each declares the access of the REST route of the same use case', () => {
    const routes = routeTable({ fx: {} } as unknown as ApiContext);
    for (const [name, { route, access }] of Object.entries(MUTATION_ROUTES)) {
      const rest = routes.find((r) => `${r.method.toUpperCase()} ${r.path}` === route);
      assert.ok(rest, `${name}: no route ${route}`);
      assert.deepEqual(access, rest.access, `${name} and ${route} declare different access`);
    }
    // Every mutation of the schema is one of them.
    const mutations = Object.keys(graphqlSchema().getMutationType()!.getFields()).sort();
    assert.deepEqual(mutations, Object.keys(MUTATION_ROUTES).sort());
  });
});

describe('graphql: /v1/graphql against the running platform', function () {
  this.timeout(600_000);
  let p: TestPlatform;
  let projectA: string;
  let projectB: string;
  const keys = { viewer: '', machine: '', operator: '', owner: '' };
  const fx = { machine: '', foreignMachine: '', objective: '', pipeline: '', rootA: '', rootB: '', final: '' };

  /** POST /v1/graphql with a key (the admin key by default). */
  async function gql(query: string, variables: Record<string, unknown> = {}, key?: string) {
    const res = await p.api('POST', '/v1/graphql', { query, variables }, key === undefined ? {} : { key });
    return res as { status: number; body: { data?: any; errors?: Array<{ message: string; path?: string[]; extensions: Record<string, any> }> } };
  }
  /** A query that must run without errors; its data. */
  async function data(query: string, variables: Record<string, unknown> = {}, key?: string) {
    const res = await gql(query, variables, key);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.errors, undefined, JSON.stringify(res.body.errors));
    return res.body.data;
  }

  before(async () => {
    p = await startTestPlatform({ label: 'graphql' });
    projectA = await projectWithBudget(p, '10.00');
    projectB = await projectWithBudget(p, '10.00');
    const m = await p.api('POST', '/v1/machines', {
      projectId: projectA,
      type: 'shell',
      command: 'echo hello from a > a.txt; echo out',
      cache: false,
      limits: { money: '0.05', minutes: 2 },
    });
    assert.equal(m.status, 202, JSON.stringify(m.body));
    const done = await waitForMachine(p, m.body.id);
    assert.equal(done.status, 'completed', JSON.stringify(done));
    fx.machine = done.id;
    fx.final = done.checkpoints.at(-1);
    const other = await p.api('POST', '/v1/machines', {
      projectId: projectB,
      type: 'shell',
      command: 'true',
      cache: false,
      limits: { money: '0.05', minutes: 2 },
    });
    fx.foreignMachine = (await waitForMachine(p, other.body.id)).id;
    fx.objective = (await p.api('POST', `/v1/projects/${projectA}/objectives`, { title: 'an objective', command: 'true' })).body.id;
    fx.pipeline = (await p.api('POST', '/v1/pipelines', { projectId: projectA, steps: [{ id: 's', type: 'shell', command: 'true' }] })).body.id;
    await waitFor(async () => (await p.api('GET', `/v1/pipelines/${fx.pipeline}`)).body.status !== 'running', 'pipeline end');
    // Settled, so REST and GraphQL read the same state (and nothing else writes events later).
    await waitFor(
      async () => ['completed', 'failed', 'cancelled'].includes((await p.api('GET', `/v1/objectives/${fx.objective}`)).body.status),
      'objective end',
    );
    fx.rootA = (await p.api('GET', `/v1/projects/${projectA}`)).body.rootCheckpointId;
    fx.rootB = (await p.api('GET', `/v1/projects/${projectB}`)).body.rootCheckpointId;
    for (const role of ['viewer', 'machine', 'operator', 'owner'] as const) keys[role] = (await createUserWithKey(p.db, `${role}-gql`, role, [projectA])).key;
  });
  after(async () => {
    await p?.stop();
  });

  it('answers the same data as REST for the same key: viewer, projects, project with budget, costs, machines, checkpoint tree, logs, files, objective, pipeline', async () => {
    const key = keys.viewer;
    const rest = async (path: string) => {
      const res = await p.api('GET', path, undefined, { key });
      assert.equal(res.status, 200, `${path}: ${JSON.stringify(res.body)}`);
      return res.body;
    };
    const whoami = await rest('/v1/whoami');
    const viewer = (await data('{ viewer { id name role prefix projectIds expiresAt user { id name } } }', {}, key)).viewer;
    assert.deepEqual(viewer, {
      id: whoami.id,
      name: whoami.name,
      role: 'viewer',
      prefix: whoami.prefix,
      projectIds: [projectA],
      expiresAt: null,
      user: whoami.user,
    });

    const projects = (await data('{ projects { items { id } nextCursor } }', {}, key)).projects;
    assert.deepEqual(
      projects.items.map((x: { id: string }) => x.id),
      (await rest('/v1/projects')).items.map((x: { id: string }) => x.id),
    );
    assert.deepEqual(projects.items, [{ id: projectA }]);

    const project = (
      await data(
        `query($id: ID!) { project(id: $id) { id name repoUrl currency greediness defaultMachineMoney rootCheckpointId limitPolicy { policy pauseMinutes }
           costCenterId createdAt budget { limit spent reserved remaining currency period windowStart windowEnd alertPercents } } }`,
        { id: projectA },
        key,
      )
    ).project;
    assert.deepEqual(project, await rest(`/v1/projects/${projectA}`));

    const costs = (
      await data(
        'query($id: ID!) { project(id: $id) { costs { total { amount currency } byCategory { category amount { amount currency } } } } }',
        { id: projectA },
        key,
      )
    ).project.costs;
    const restCosts = await rest(`/v1/projects/${projectA}/costs`);
    assert.deepEqual(costs.total, restCosts.totals.total);
    assert.deepEqual(Object.fromEntries(costs.byCategory.map((c: any) => [c.category, c.amount])), restCosts.totals.byCategory);

    const machines = (
      await data(
        'query($id: ID!) { project(id: $id) { machines(first: 50) { items { id status type parentCheckpointId cost { amount currency } checkpoints { items { id } } } } } }',
        { id: projectA },
        key,
      )
    ).project.machines.items;
    const restMachines = (await rest(`/v1/machines?projectId=${projectA}`)).items;
    assert.deepEqual(
      machines.map((m: any) => ({ ...m, checkpoints: m.checkpoints.items.map((c: { id: string }) => c.id) })),
      restMachines.map((m: any) => ({
        id: m.id,
        status: m.status,
        type: m.type,
        parentCheckpointId: m.parentCheckpointId,
        cost: m.cost,
        checkpoints: m.checkpoints,
      })),
    );

    // The tree, whole and one checkpoint a page: the same as REST's, with REST's cursors.
    const fields = 'id parentId mergeParentId machineId commit kind trigger status createdAt';
    const tree = (await data(`query($id: ID!) { project(id: $id) { checkpoints(first: 400) { items { ${fields} } nextCursor } } }`, { id: projectA }, key))
      .project.checkpoints;
    const restTree = await rest(`/v1/projects/${projectA}/checkpoints?limit=400`);
    assert.deepEqual(tree, restTree);
    assert.ok(tree.items.length >= 2 && tree.items.some((c: any) => c.parentId === fx.rootA));
    const walked: string[] = [];
    let after: string | null = null;
    do {
      const page: any = (
        await data(
          'query($id: ID!, $after: String) { project(id: $id) { checkpoints(first: 1, after: $after) { items { id } nextCursor } } }',
          { id: projectA, after },
          key,
        )
      ).project.checkpoints;
      walked.push(...page.items.map((c: { id: string }) => c.id));
      const restPage = await rest(`/v1/projects/${projectA}/checkpoints?limit=1${after ? `&cursor=${after}` : ''}`);
      assert.equal(page.nextCursor, restPage.nextCursor, 'the same cursors as REST');
      after = page.nextCursor;
    } while (after);
    assert.deepEqual(
      walked,
      tree.items.map((c: { id: string }) => c.id),
    );
    const root = (await data('query($id: ID!) { checkpoint(id: $id) { id parent { id } children { items { id parentId } } } }', { id: fx.rootA }, key))
      .checkpoint;
    assert.equal(root.parent, null);
    assert.deepEqual(
      root.children.items,
      tree.items.filter((c: any) => c.parentId === fx.rootA).map((c: any) => ({ id: c.id, parentId: c.parentId })),
    );

    const final = (await data('query($id: ID!) { checkpoint(id: $id) { parent { id } machine { id } files { path size sha256 } } }', { id: fx.final }, key))
      .checkpoint;
    const restFinal = await rest(`/v1/checkpoints/${fx.final}`);
    assert.deepEqual(final.files, restFinal.files);
    assert.ok(final.files.some((f: { path: string }) => f.path === 'a.txt'));
    assert.equal(final.parent.id, restFinal.parentId);
    assert.equal(final.machine.id, fx.machine);

    const logs = (await data('query($id: ID!) { machine(id: $id) { logs(first: 500) { items { seq text } nextCursor } } }', { id: fx.machine }, key)).machine
      .logs;
    const restLogs = await fetch(`${p.apiUrl}/v1/machines/${fx.machine}/logs`, { headers: { authorization: `Bearer ${key}` } });
    assert.equal(logs.items.map((c: { text: string }) => c.text).join(''), await restLogs.text());
    assert.match(logs.items.map((c: { text: string }) => c.text).join(''), /out/);
    assert.equal(logs.items.at(-1).seq, restLogs.headers.get('x-log-seq'));

    const objective = (
      await data('query($id: ID!) { objective(id: $id) { id projectId title status priority dependsOn machineIds } }', { id: fx.objective }, key)
    ).objective;
    const restObjective = await rest(`/v1/objectives/${fx.objective}`);
    assert.deepEqual(objective, {
      id: restObjective.id,
      projectId: projectA,
      title: restObjective.title,
      status: restObjective.status,
      priority: restObjective.priority,
      dependsOn: restObjective.dependsOn,
      machineIds: restObjective.machines,
    });
    const objectives = (await data('query($id: ID!) { project(id: $id) { objectives { items { id } } } }', { id: projectA }, key)).project.objectives.items;
    assert.deepEqual(
      objectives.map((o: { id: string }) => o.id),
      (await rest(`/v1/projects/${projectA}/objectives`)).items.map((o: { id: string }) => o.id),
    );

    const pipeline = (
      await data(
        'query($id: ID!) { pipeline(id: $id) { id projectId status workflowId baseCheckpointId error createdAt endedAt steps { id type dependsOn status machineId checkpointId error startedAt endedAt } } }',
        { id: fx.pipeline },
        key,
      )
    ).pipeline;
    assert.deepEqual(pipeline, await rest(`/v1/pipelines/${fx.pipeline}`));
    const pipelines = (await data('query($id: ID!) { project(id: $id) { pipelines { items { id status } } } }', { id: projectA }, key)).project.pipelines.items;
    assert.deepEqual(pipelines, [{ id: fx.pipeline, status: pipeline.status }]);

    // GET runs queries too.
    const viaGet = await p.api('GET', `/v1/graphql?query=${encodeURIComponent('{ viewer { role } }')}`, undefined, { key });
    assert.equal(viaGet.status, 200);
    assert.deepEqual(viaGet.body, { data: { viewer: { role: 'viewer' } } });
  });

  it("reads another project's things as null, exactly as REST reads them as missing, and audits the probe", async () => {
    const key = keys.viewer;
    const before = Number((await p.db('audit_log').where({ action: 'access.denied' }).count({ n: '*' }))[0]!.n);
    const res = await gql(
      `query($p: ID!, $m: ID!, $c: ID!) { project(id: $p) { id name } machine(id: $m) { id } checkpoint(id: $c) { id }
         missing: project(id: "project-does-not-exist") { id } }`,
      { p: projectB, m: fx.foreignMachine, c: fx.rootB },
      key,
    );
    assert.equal(res.status, 200);
    assert.equal(res.body.errors, undefined);
    assert.deepEqual(res.body.data, { project: null, machine: null, checkpoint: null, missing: null });
    assert.doesNotMatch(JSON.stringify(res.body), new RegExp(`${projectB}|${fx.foreignMachine}|${fx.rootB}`));
    for (const path of [`/v1/projects/${projectB}`, `/v1/machines/${fx.foreignMachine}`, `/v1/checkpoints/${fx.rootB}`]) {
      assert.equal((await p.api('GET', path, undefined, { key })).status, 404, path);
    }
    const after = Number((await p.db('audit_log').where({ action: 'access.denied' }).count({ n: '*' }))[0]!.n);
    assert.equal(after - before, 6, 'three GraphQL and three REST probes of another project, each audited');
    // The admin key (not bound to projects) sees both.
    const all = await data('query($p: ID!) { project(id: $p) { id } projects { items { id } } }', { p: projectB });
    assert.equal(all.project.id, projectB);
    assert.ok(all.projects.items.length >= 2);
    // A subscription to another project's events is refused as a missing project.
    const client = wsClient(key);
    try {
      const it = client.iterate({ query: 'subscription($p: ID!) { events(projectId: $p) { seq } }', variables: { p: projectB } });
      const first = await it.next();
      assert.equal(first.done, false);
      const errors = (first.value as any).errors;
      assert.equal(errors?.[0]?.extensions?.code, 'NOT_FOUND', JSON.stringify(first.value));
      assert.equal(errors[0].extensions.status, 404);
    } finally {
      await client.dispose();
    }
  });

  it('reads the nested fields of a list in one query per kind (batched per request), with the values REST answers', async () => {
    const seen: string[] = [];
    const onQuery = (q: { sql: string }) => seen.push(q.sql);
    p.db.on('query', onQuery);
    let d;
    try {
      d = await data(
        `query($id: ID!) { project(id: $id) {
           machines(first: 50) { items { id cost { amount currency } costs { total { amount } } project { id } parentCheckpoint { id } } }
           checkpoints(first: 50) { items { id parent { id } machine { id } } } } }`,
        { id: projectA },
      );
    } finally {
      p.db.off('query', onQuery);
    }
    const machines = d.project.machines.items as Array<{
      id: string;
      cost: { amount: string };
      costs: { total: { amount: string } };
      project: { id: string };
      parentCheckpoint: { id: string };
    }>;
    const checkpoints = d.project.checkpoints.items as Array<{ id: string; parent: { id: string } | null; machine: { id: string } | null }>;
    assert.ok(machines.length >= 2, `${machines.length} machines`);
    assert.ok(checkpoints.filter((c) => c.parent && c.machine).length >= 2);
    const count = (from: string) => seen.filter((sql) => sql.includes(from)).length;
    // One read of the machines' costs and of the checkpoints and machines named by id, for the whole list.
    assert.equal(count('from "cost_events"'), 1, seen.join('\n'));
    assert.equal(count('from "machines" where "id" in'), 1, seen.join('\n'));
    assert.equal(count('from "checkpoints" where "id" in'), 1, seen.join('\n'));
    for (const m of machines) {
      const rest = (await p.api('GET', `/v1/machines/${m.id}`)).body;
      assert.equal(m.cost.amount, rest.cost.amount);
      assert.equal(m.costs.total.amount, rest.cost.amount);
      assert.equal(m.project.id, projectA);
      assert.equal(m.parentCheckpoint.id, rest.parentCheckpointId);
    }
    for (const c of checkpoints) {
      const rest = (await p.api('GET', `/v1/checkpoints/${c.id}`)).body;
      assert.equal(c.parent?.id ?? null, rest.parentId);
      assert.equal(c.machine?.id ?? null, rest.machineId);
    }
  });

  it('refuses what the role may not read with FORBIDDEN naming the permission, as REST answers 403', async () => {
    // A machine key reads its project and checkpoints, not costs or machines.
    const res = await gql(
      'query($id: ID!) { project(id: $id) { id costs { total { amount } } machines { items { id } } checkpoints { items { id } } } }',
      { id: projectA },
      keys.machine,
    );
    assert.equal(res.status, 200);
    assert.equal(res.body.data.project.id, projectA);
    assert.equal(res.body.data.project.costs, null);
    assert.equal(res.body.data.project.machines, null);
    assert.ok(res.body.data.project.checkpoints.items.length >= 2);
    const byPath = Object.fromEntries(res.body.errors!.map((e) => [e.path!.join('.'), e.extensions]));
    assert.deepEqual(byPath['project.costs'], {
      code: 'FORBIDDEN',
      status: 403,
      reason: 'forbidden',
      permission: 'costs.read',
      details: { permission: 'costs.read' },
    });
    assert.equal(byPath['project.machines']?.permission, 'machines.read');
    assert.match(res.body.errors![0]!.message, /role "machine" lacks the permission/);
    assert.equal((await p.api('GET', `/v1/projects/${projectA}/costs`, undefined, { key: keys.machine })).status, 403);
    // Viewer (REST /whoami needs keys.self, which a machine key lacks).
    const viewer = await gql('{ viewer { id } }', {}, keys.machine);
    assert.equal(viewer.body.errors?.[0]?.extensions.code, 'FORBIDDEN');
    assert.equal((await p.api('GET', '/v1/whoami', undefined, { key: keys.machine })).status, 403);
  });

  it('maps bad input to BAD_USER_INPUT naming the argument, and answers without a key as REST does', async () => {
    const bad = await gql('query($id: ID!) { project(id: $id) { checkpoints(first: 0) { items { id } } } }', { id: projectA });
    assert.deepEqual(bad.body.errors?.[0]?.extensions, {
      code: 'BAD_USER_INPUT',
      status: 422,
      reason: 'invalid_request',
      field: 'first',
      details: { field: 'first' },
    });
    const cursor = await gql('query($id: ID!) { project(id: $id) { checkpoints(after: "nonsense") { items { id } } } }', { id: projectA });
    assert.equal(cursor.body.errors?.[0]?.extensions.field, 'after');
    assert.match(cursor.body.errors![0]!.message, /^after: /);
    assert.equal((await p.api('POST', '/v1/graphql', { query: '{ viewer { id } }' }, { key: null })).status, 401);
    const noQuery = await p.api('POST', '/v1/graphql', {});
    assert.equal(noQuery.status, 400);
    assert.match(noQuery.body.errors[0].message, /query/);
    const syntax = await gql('{ viewer { id ');
    assert.equal(syntax.status, 400);
    assert.equal(syntax.body.errors?.[0]?.extensions.code, 'GRAPHQL_PARSE_FAILED');
    const unknown = await gql('{ viewer { nope } }');
    assert.equal(unknown.status, 400);
    assert.equal(unknown.body.errors?.[0]?.extensions.code, 'GRAPHQL_VALIDATION_FAILED');
  });

  it('refuses a query over the depth or the complexity limit before running it, and allows introspection', async () => {
    let nested = '{ id }';
    for (let i = 0; i < MAX_DEPTH; i++) nested = `{ parent ${nested} }`;
    const deep = await gql(`query($id: ID!) { checkpoint(id: $id) ${nested} }`, { id: fx.final });
    assert.equal(deep.status, 400, JSON.stringify(deep.body));
    assert.equal(deep.body.data, undefined);
    assert.equal(deep.body.errors?.[0]?.extensions.code, 'DEPTH_LIMIT_EXCEEDED');
    assert.match(deep.body.errors![0]!.message, new RegExp(`limit of ${MAX_DEPTH} levels`));
    // At the limit is fine.
    let allowed = '{ id }';
    for (let i = 0; i < MAX_DEPTH - 1; i++) allowed = `{ parent ${allowed} }`;
    // The final checkpoint's parent is the root, which has none.
    assert.deepEqual((await data(`query($id: ID!) { checkpoint(id: $id) ${allowed} }`, { id: fx.final })).checkpoint, { parent: { parent: null } });

    const wide = await gql('{ projects(first: 100) { items { machines(first: 100) { items { id status } } } } }');
    assert.equal(wide.status, 400, JSON.stringify(wide.body));
    assert.equal(wide.body.errors?.[0]?.extensions.code, 'COMPLEXITY_LIMIT_EXCEEDED');
    assert.ok(wide.body.errors![0]!.extensions.complexity > MAX_COMPLEXITY);
    assert.match(wide.body.errors![0]!.message, /over the limit of \d+.*`first`/);
    // Aliases do not get around it.
    const aliased = Array.from({ length: 30 }, (_, i) => `a${i}: projects(first: 500) { items { id name } }`).join(' ');
    assert.equal((await gql(`{ ${aliased} }`)).body.errors?.[0]?.extensions.code, 'COMPLEXITY_LIMIT_EXCEEDED');
    assert.equal((await data('{ projects(first: 10) { items { machines(first: 10) { items { id } } } } }')).projects.items.length >= 2, true);

    // Reading a checkpoint's files costs more than a row.
    assert.equal(
      (await gql('query($id: ID!) { project(id: $id) { checkpoints(first: 100) { items { files { path } } } } }', { id: projectA })).body.errors?.[0]
        ?.extensions.code,
      'COMPLEXITY_LIMIT_EXCEEDED',
    );

    const introspection = await data(getIntrospectionQuery());
    assert.ok(introspection.__schema.types.some((t: { name: string }) => t.name === 'Checkpoint'));
  });

  function wsClient(key: string | null): Client {
    return createClient({
      url: `${p.apiUrl.replace(/^http/, 'ws')}/v1/graphql`,
      webSocketImpl: WebSocket,
      connectionParams: key ? { authorization: `Bearer ${key}` } : {},
      retryAttempts: 0,
      lazy: true,
    });
  }

  /** The next `n` events of a subscription. */
  async function take(it: AsyncIterator<any>, n: number): Promise<any[]> {
    const out: any[] = [];
    while (out.length < n) {
      const r = await it.next();
      if (r.done) throw new Error(`the subscription ended after ${out.length} of ${n} events`);
      if (r.value.errors) throw new Error(JSON.stringify(r.value.errors));
      out.push(r.value.data.events);
    }
    return out;
  }

  const putBudget = async (projectId: string, amount: string) =>
    assert.equal((await p.api('PUT', `/v1/projects/${projectId}/budget`, { amount, currency: 'USD', period: 'daily' })).status, 200);

  it('streams events in order over WebSocket, and after a reconnect resumes from `after` with none missed', async () => {
    const query = 'subscription($p: ID!, $after: String) { events(projectId: $p, kinds: ["budget.*"], after: $after) { seq kind projectId subjectId data } }';
    const restEvents = async (cursor: string) =>
      (await p.api('GET', `/v1/events?projectId=${projectA}&kinds=budget.*&cursor=${cursor}&limit=500`, undefined, { key: keys.viewer })).body.items;

    const first = wsClient(keys.viewer);
    const it = first.iterate({ query, variables: { p: projectA, after: '0' } });
    // The whole history of the project's budget events first, then live ones.
    const history = await restEvents('0');
    assert.ok(history.length >= 1);
    const got = await take(it, history.length);
    for (const amount of ['11.00', '12.00', '13.00']) await putBudget(projectA, amount);
    await putBudget(projectB, '14.00');
    got.push(...(await take(it, 3)));
    await first.dispose();

    // While nobody listens: more events, of this project and another.
    for (const amount of ['21.00', '22.00']) await putBudget(projectA, amount);
    await putBudget(projectB, '23.00');
    await putBudget(projectA, '24.00');

    const last = got.at(-1).seq;
    const second = wsClient(keys.viewer);
    try {
      const resumed = second.iterate({ query, variables: { p: projectA, after: last } });
      got.push(...(await take(resumed, 3)));
    } finally {
      await second.dispose();
    }
    const expected = await restEvents('0');
    assert.deepEqual(
      got.map((e) => e.seq),
      expected.map((e: { seq: number }) => String(e.seq)),
      'the same events, in the same order, as the feed holds',
    );
    assert.deepEqual(
      got.map((e) => ({ ...e, seq: Number(e.seq) })),
      expected.map((e: any) => ({ seq: e.seq, kind: e.kind, projectId: e.projectId, subjectId: e.subjectId, data: e.data })),
    );
    assert.ok(got.every((e) => e.projectId === projectA && e.kind.startsWith('budget.')));
    assert.deepEqual(
      got.slice(-6).map((e) => `${e.kind} ${e.data.limit}`),
      ['11.00', '12.00', '13.00', '21.00', '22.00', '24.00'].map((l) => `budget.set ${l}`),
    );
    for (let i = 1; i < got.length; i++) assert.ok(Number(got[i].seq) > Number(got[i - 1].seq), 'in seq order');
  });

  it('closes a socket without a valid key in connection_init (4401), and runs only subscriptions over it', async () => {
    for (const params of [{}, { authorization: 'Bearer not-a-key' }]) {
      const ws = new WebSocket(`${p.apiUrl.replace(/^http/, 'ws')}/v1/graphql`, 'graphql-transport-ws');
      await new Promise((resolve, reject) => {
        ws.once('open', resolve);
        ws.once('error', reject);
      });
      ws.send(JSON.stringify({ type: 'connection_init', payload: params }));
      const [code, reason] = await new Promise<[number, string]>((resolve) => ws.once('close', (c, r) => resolve([c, String(r)])));
      assert.equal(code, 4401);
      assert.match(reason, /API key/);
    }
    const client = wsClient(keys.viewer);
    try {
      const it = client.iterate({ query: '{ viewer { id } }' });
      const refusal = await it.next().then(
        (r) => JSON.stringify(r.value),
        (errors: unknown) => JSON.stringify(errors),
      );
      assert.match(refusal, /queries and mutations go to POST \/v1\/graphql/);
      assert.doesNotMatch(refusal, /"viewer":\{/);
    } finally {
      await client.dispose();
    }
  });

  it('refuses mutations as REST does: FORBIDDEN naming the permission, another project NOT_FOUND or BAD_USER_INPUT on its field', async () => {
    const refused = async (query: string, variables: Record<string, unknown>, key: string) => {
      const res = await gql(query, variables, key);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.data, null, JSON.stringify(res.body));
      return res.body.errors![0]!;
    };
    const createProject = 'mutation($input: CreateProjectInput!) { createProject(input: $input) { id } }';
    const setBudget = 'mutation($id: ID!) { setBudget(projectId: $id, input: { amount: "99.00", currency: "USD", period: "daily" }) { limit } }';
    const request = 'mutation($input: RequestMachineInput!) { requestMachine(input: $input) { id } }';
    const terminate = 'mutation($id: ID!) { terminateMachine(id: $id) { status } }';
    const before = (await p.api('GET', `/v1/projects/${projectA}`)).body.budget;

    // The viewer may not change anything.
    for (const [query, variables, permission] of [
      [createProject, { input: { name: 'nope' } }, 'projects.create'],
      [setBudget, { id: projectA }, 'budgets.write'],
      [request, { input: { projectId: projectA, type: 'shell', command: 'true' } }, 'machines.run'],
      [terminate, { id: fx.machine }, 'machines.run'],
    ] as const) {
      const error = await refused(query, variables, keys.viewer);
      assert.equal(error.extensions.code, 'FORBIDDEN', JSON.stringify(error));
      assert.equal(error.extensions.status, 403);
      assert.equal(error.extensions.permission, permission);
      assert.match(error.message, new RegExp(`role "viewer" lacks the permission "${permission.replace('.', '\\.')}"`));
    }
    assert.equal((await p.api('POST', '/v1/projects', { name: 'nope' }, { key: keys.viewer })).status, 403);
    // Raising a budget is the owner's, not an operator's.
    assert.equal((await refused(setBudget, { id: projectA }, keys.operator)).extensions.permission, 'budgets.write');
    assert.deepEqual((await p.api('GET', `/v1/projects/${projectA}`)).body.budget, before, 'nothing changed');

    // Another project's things: as missing (NOT_FOUND), or the input field that names them (as REST's 422).
    const foreign = await refused(terminate, { id: fx.foreignMachine }, keys.operator);
    assert.deepEqual([foreign.extensions.code, foreign.extensions.status, foreign.message], ['NOT_FOUND', 404, `machine ${fx.foreignMachine} not found`]);
    assert.equal((await p.api('POST', `/v1/machines/${fx.foreignMachine}/terminate`, undefined, { key: keys.operator })).status, 404);
    const field = await refused(request, { input: { projectId: projectB, type: 'shell', command: 'true' } }, keys.operator);
    assert.deepEqual([field.extensions.code, field.extensions.status, field.extensions.field], ['BAD_USER_INPUT', 422, 'projectId']);
    assert.equal((await p.api('POST', '/v1/machines', { projectId: projectB, type: 'shell', command: 'true' }, { key: keys.operator })).status, 422);
    // GET never changes anything.
    const viaGet = await p.api('GET', `/v1/graphql?query=${encodeURIComponent('mutation { terminateMachine(id: "x") { status } }')}`);
    assert.equal(viaGet.status, 405);
  });

  it('runs the use cases REST runs: create a project, set its budget, request, checkpoint and terminate a machine', async () => {
    // An owner bound to A creates a project: the service binds the key to it, as over REST.
    const created = await data(
      'mutation($input: CreateProjectInput!) { createProject(input: $input) { id name currency budget { limit } rootCheckpointId } }',
      { input: { name: 'made over graphql', currency: 'USD', repoUrl: null } },
      keys.owner,
    );
    const id = created.createProject.id;
    const rest = await p.api('GET', `/v1/projects/${id}`, undefined, { key: keys.owner });
    assert.equal(rest.status, 200, 'the creating key sees its new project');
    assert.deepEqual(created.createProject, { id, name: 'made over graphql', currency: 'USD', budget: null, rootCheckpointId: rest.body.rootCheckpointId });
    // With an Idempotency-Key a retry names the same project.
    const once = async () =>
      (
        await p.api(
          'POST',
          '/v1/graphql',
          { query: 'mutation { createProject(input: { name: "once" }) { id } }' },
          { key: keys.owner, headers: { 'idempotency-key': 'gql-create-once' } },
        )
      ).body.data.createProject.id;
    assert.equal(await once(), await once());
    // Bad input: the service's validation, with the field.
    const bad = await gql('mutation { createProject(input: { name: "x", currency: "XXX" }) { id } }', {}, keys.owner);
    assert.equal(bad.body.errors?.[0]?.extensions.code, 'BAD_USER_INPUT');
    assert.match(bad.body.errors![0]!.message, /currency/);

    const budget = await data(
      'mutation($id: ID!) { setBudget(projectId: $id, input: { amount: "3.00", currency: "USD", period: "daily" }) { limit currency period spent } }',
      { id },
      keys.owner,
    );
    assert.deepEqual(budget.setBudget, { limit: '3.00', currency: 'USD', period: 'daily', spent: '0.00' });
    assert.equal((await p.api('GET', `/v1/projects/${id}`, undefined, { key: keys.owner })).body.budget.limit, '3.00');

    // A machine over the budget is refused now, as over REST (409 budget_exceeded).
    const over = await gql(
      'mutation($input: RequestMachineInput!) { requestMachine(input: $input) { id } }',
      { input: { projectId: id, type: 'shell', command: 'true', cache: false, limits: { money: '5.00', minutes: 2 } } },
      keys.owner,
    );
    assert.equal(over.body.errors?.[0]?.extensions.code, 'CONFLICT', JSON.stringify(over.body));
    assert.equal(over.body.errors![0]!.extensions.reason, 'budget_exceeded');

    // Network beyond the project's policy (none) is an owner's to give, as over REST.
    const widened = await gql(
      'mutation($input: RequestMachineInput!) { requestMachine(input: $input) { id } }',
      { input: { projectId: projectA, type: 'shell', command: 'true', cache: false, network: { mode: 'allowlist', hosts: ['example.com'] } } },
      keys.operator,
    );
    assert.equal(widened.body.errors?.[0]?.extensions.code, 'FORBIDDEN', JSON.stringify(widened.body));
    assert.match(widened.body.errors![0]!.message, /network/);

    // An operator runs one in A (narrowing the network to none is anyone's), checkpoints and terminates it.
    const started = await data(
      'mutation($input: RequestMachineInput!) { requestMachine(input: $input) { id status machine { id projectId type } } }',
      {
        input: {
          projectId: projectA,
          type: 'shell',
          command: 'sleep 60',
          cache: false,
          limits: { money: '0.05', minutes: 5 },
          costCenterId: null,
          network: { mode: 'none', hosts: null },
        },
      },
      keys.operator,
    );
    const machineId = started.requestMachine.id;
    assert.deepEqual(started.requestMachine.machine, { id: machineId, projectId: projectA, type: 'shell' });
    await waitFor(async () => (await p.api('GET', `/v1/machines/${machineId}`)).body.status === 'running', 'machine running');
    const checkpointed = await data('mutation($id: ID!) { checkpointMachine(id: $id) { id status } }', { id: machineId }, keys.operator);
    assert.deepEqual(checkpointed.checkpointMachine, { id: machineId, status: 'running' });
    const terminated = await data('mutation($id: ID!) { terminateMachine(id: $id) { id status machine { id } } }', { id: machineId }, keys.operator);
    assert.deepEqual(terminated.terminateMachine, { id: machineId, status: 'terminating', machine: { id: machineId } });
    assert.equal((await waitForMachine(p, machineId)).status, 'terminated');
    const again = await gql('mutation($id: ID!) { terminateMachine(id: $id) { status } }', { id: machineId }, keys.operator);
    assert.deepEqual([again.body.errors?.[0]?.extensions.code, again.body.errors?.[0]?.extensions.reason], ['CONFLICT', 'machine_ended']);
    const audit = await p.db('audit_log').where({ subject_id: machineId }).orderBy('seq').pluck('action');
    assert.ok(
      audit.includes('machine.requested') && audit.includes('machine.checkpoint_requested') && audit.includes('machine.terminate_requested'),
      audit.join(),
    );
    const actors = await p.db('audit_log').where({ subject_id: machineId, action: 'machine.terminate_requested' }).pluck('actor');
    assert.deepEqual(actors, ['user:operator-gql']);
  });

  it('tops up through the payment service: owners only, the project needs payment methods, idempotent with its key', async () => {
    const topUp = 'mutation($p: ID!, $input: TopUpInput!) { topUp(projectId: $p, input: $input) { paymentId status } }';
    const input = { amount: '5.00', currency: 'USD' };
    const operator = await gql(topUp, { p: projectA, input }, keys.operator);
    assert.deepEqual([operator.body.errors?.[0]?.extensions.code, operator.body.errors?.[0]?.extensions.permission], ['FORBIDDEN', 'topups.create']);
    assert.equal((await gql(topUp, { p: projectB, input }, keys.owner)).body.errors?.[0]?.extensions.code, 'NOT_FOUND');
    const fresh = (await p.api('POST', '/v1/projects', { name: 'no methods' }, { key: keys.owner })).body.id;
    const none = await gql(topUp, { p: fresh, input }, keys.owner);
    assert.deepEqual([none.body.errors?.[0]?.extensions.code, none.body.errors?.[0]?.extensions.reason], ['CONFLICT', 'no_payment_methods']);

    const methods = await p.api('PUT', `/v1/projects/${projectA}/payment-methods`, [{ kind: 'manual', timeoutSeconds: 600 }], { key: keys.owner });
    assert.equal(methods.status, 200, JSON.stringify(methods.body));
    const send = async () =>
      (
        await p.api(
          'POST',
          '/v1/graphql',
          { query: topUp, variables: { p: projectA, input } },
          { key: keys.owner, headers: { 'idempotency-key': 'gql-topup-1' } },
        )
      ).body;
    const first = await send();
    assert.equal(first.data?.topUp.status, 'running', JSON.stringify(first));
    assert.equal((await send()).data.topUp.paymentId, first.data.topUp.paymentId, 'a retry with the same key names the same payment');
    const payment = await p.api('GET', `/v1/payments/${first.data.topUp.paymentId}`, undefined, { key: keys.owner });
    assert.equal(payment.status, 200, JSON.stringify(payment.body));
    assert.equal(payment.body.projectId, projectA);
    assert.equal(
      await p
        .db('payments')
        .where({ project_id: projectA })
        .count({ n: '*' })
        .first()
        .then((r: any) => Number(r.n)),
      1,
    );
  });

  it('creates objectives and pipelines through their services, with the REST rules', async () => {
    const objective =
      'mutation($p: ID!, $input: CreateObjectiveInput!) { createObjective(projectId: $p, input: $input) { id projectId title status dependsOn } }';
    const pipeline = 'mutation($input: CreatePipelineInput!) { createPipeline(input: $input) { id status pipeline { projectId steps { id dependsOn } } } }';
    const viewer = await gql(objective, { p: projectA, input: { title: 'no', command: 'true' } }, keys.viewer);
    assert.deepEqual([viewer.body.errors?.[0]?.extensions.code, viewer.body.errors?.[0]?.extensions.permission], ['FORBIDDEN', 'objectives.write']);
    const viewerPipeline = await gql(pipeline, { input: { projectId: projectA, steps: [{ id: 's', type: 'shell', command: 'true' }] } }, keys.viewer);
    assert.equal(viewerPipeline.body.errors?.[0]?.extensions.permission, 'pipelines.write');
    const foreign = await gql(objective, { p: projectB, input: { title: 'no', command: 'true' } }, keys.operator);
    assert.equal(foreign.body.errors?.[0]?.extensions.code, 'NOT_FOUND');
    const foreignPipeline = await gql(pipeline, { input: { projectId: projectB, steps: [{ id: 's', type: 'shell', command: 'true' }] } }, keys.operator);
    assert.deepEqual([foreignPipeline.body.errors?.[0]?.extensions.code, foreignPipeline.body.errors?.[0]?.extensions.field], ['BAD_USER_INPUT', 'projectId']);
    const cycle = await gql(
      pipeline,
      {
        input: {
          projectId: projectA,
          steps: [
            { id: 'a', type: 'shell', command: 'true', dependsOn: ['b'] },
            { id: 'b', type: 'shell', command: 'true', dependsOn: ['a'] },
          ],
        },
      },
      keys.operator,
    );
    assert.deepEqual([cycle.body.errors?.[0]?.extensions.code, cycle.body.errors?.[0]?.extensions.field], ['BAD_USER_INPUT', 'steps']);

    const made = (
      await data(objective, { p: projectA, input: { title: 'over graphql', command: 'true', dependsOn: [fx.objective], priority: null } }, keys.operator)
    ).createObjective;
    assert.deepEqual({ ...made, status: undefined }, { id: made.id, projectId: projectA, title: 'over graphql', status: undefined, dependsOn: [fx.objective] });
    const rest = (await p.api('GET', `/v1/objectives/${made.id}`, undefined, { key: keys.operator })).body;
    assert.deepEqual([rest.title, rest.dependsOn], ['over graphql', [fx.objective]]);

    const started = (
      await data(
        pipeline,
        {
          input: {
            projectId: projectA,
            steps: [
              { id: 'a', type: 'shell', command: 'true' },
              { id: 'b', type: 'shell', command: 'true', dependsOn: ['a'] },
            ],
          },
        },
        keys.operator,
      )
    ).createPipeline;
    assert.deepEqual(started.pipeline, {
      projectId: projectA,
      steps: [
        { id: 'a', dependsOn: [] },
        { id: 'b', dependsOn: ['a'] },
      ],
    });
    assert.equal(started.status, 'running');
    const ended = await waitFor(async () => {
      const body = (await p.api('GET', `/v1/pipelines/${started.id}`)).body;
      return body.status !== 'running' ? body : null;
    }, 'pipeline end');
    assert.equal(ended.status, 'completed', JSON.stringify(ended));
  });
});

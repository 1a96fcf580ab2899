import assert from 'node:assert/strict';
import { openApiDocument } from '../../api/openapi.js';
import { prng } from '../support/prng.js';
import { startTestPlatform, waitFor, type TestPlatform } from '../support/platform.js';

/**
 * Bad input never makes a 500, and a refused request writes nothing. Every route of the OpenAPI
 * document gets malformed, extreme and wrong-typed bodies, queries and path params: bodies are
 * generated from the route's own request schema with one or more leaves replaced by hostile
 * values, so the requests reach past the schema into the handlers. Seeded: a failure prints the
 * seed and the request, and FUZZ_SEED=<seed> replays it.
 */
const SEED = Number(process.env.FUZZ_SEED ?? 20261206);
const ROUNDS = Number(process.env.FUZZ_ROUNDS ?? 6);

const TABLES = [
  'projects',
  'budgets',
  'machines',
  'checkpoints',
  'reservations',
  'cost_events',
  'objectives',
  'objective_links',
  'objective_progress',
  'audit_log',
  'cost_centers',
  'pipelines',
  'pipeline_steps',
  'placement_policies',
  'payment_methods',
  'payments',
  'credits',
  'machine_artifacts',
  'idempotent_requests',
];
/** Statuses of refused input: none of them may leave a row behind. */
const REFUSED = new Set([400, 404, 413, 415, 422]);

type Rand = () => number;
const pick = <T>(rand: Rand, xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;

function nested(depth: number): unknown {
  let v: unknown = 'deep';
  for (let i = 0; i < depth; i++) v = i % 2 ? [v] : { a: v };
  return v;
}

const EVIL_STRINGS = [
  '',
  ' ',
  '\u0000',
  'a\u0000b',
  '\ud800',
  'x\udc00y',
  '\udbff\udfff',
  '😀',
  '\u202e\u0301',
  'x'.repeat(5000),
  '9'.repeat(40),
  '99999999999999999999999.99',
  '100000000000000000000',
  '1000000000001',
  '0.000000000000000000001',
  '-0',
  '-1',
  '1e400',
  'NaN',
  'Infinity',
  '../../../../etc/passwd',
  '/etc/passwd',
  'file:///etc/passwd',
  'ext::sh -c touch% /tmp/pwned',
  '-uhelp',
  '$(id)',
  "'; drop table projects; --",
  '%00',
  'null',
  '2026-13-45T99:99:99Z',
  '0000-01-01T00:00:00Z',
  'project-00000000-0000-4000-8000-000000000000',
  'checkpoint-00000000-0000-4000-8000-000000000000',
];
const EVIL_OTHER: unknown[] = [
  0,
  -1,
  1.5,
  -0.0001,
  1e308,
  -1e308,
  2 ** 53 + 2,
  2 ** 63,
  5e-324,
  null,
  true,
  false,
  [],
  {},
  [null],
  { '': 1 },
  { 'a\u0000': 1 },
  { constructor: { prototype: { polluted: 1 } } },
  nested(40),
  Array.from({ length: 600 }, (_, i) => `item${i}`),
];

function evil(rand: Rand): unknown {
  return rand() < 0.6 ? pick(rand, EVIL_STRINGS) : pick(rand, EVIL_OTHER);
}

interface Known {
  project: string;
  budgetProject: string;
  checkpoint: string;
  otherCheckpoint: string;
  costCenter: string;
  machine: string;
  objective: string;
  pipeline: string;
  payment: string;
}

type Schema = Record<string, any>;

/** A plausible string for a property (real ids of this platform where the name says so). */
function goodString(rand: Rand, name: string, schema: Schema, k: Known): string {
  if (schema.enum) return pick(rand, schema.enum);
  if (schema.const !== undefined) return schema.const;
  const byName: Record<string, string[]> = {
    projectId: [k.project],
    checkpointId: [k.checkpoint],
    costCenterId: [k.costCenter],
    machineId: [k.machine],
    amount: ['1.00', '0.01', '5'],
    money: ['0.10', '0.01'],
    command: ['true', 'echo hi'],
    prompt: ['say hi'],
    repoUrl: ['git://127.0.0.1:1/none.git', 'https://127.0.0.1:1/none.git'],
    expiresAt: ['2030-01-01T00:00:00Z'],
    address: ['0x0000000000000000000000000000000000000001'],
    customer: ['cus_fuzz'],
    paymentMethod: ['pm_fuzz'],
    rate: ['3000'],
    department: ['eng'],
  };
  if (byName[name]) return pick(rand, byName[name]);
  if (schema.format === 'date-time') return '2030-01-01T00:00:00Z';
  if (schema.pattern) {
    const re = new RegExp(schema.pattern);
    const candidate = [
      '1.00',
      'a',
      's1',
      'gpu',
      'cus_a1',
      'pm_a1',
      k.project,
      k.checkpoint,
      k.costCenter,
      `objective-${'0'.repeat(8)}-0000-4000-8000-${'0'.repeat(12)}`,
    ].find((c) => re.test(c));
    if (candidate) return candidate;
  }
  return pick(rand, ['x', 'fuzz', 'a b']);
}

/** A value that mostly satisfies `schema` (a JSON Schema from z.toJSONSchema). */
function generate(rand: Rand, schema: Schema | undefined, name: string, k: Known, depth = 0): unknown {
  if (!schema || depth > 6) return 'x';
  const alts = schema.anyOf ?? schema.oneOf;
  if (alts) return generate(rand, pick(rand, alts), name, k, depth + 1);
  const type = Array.isArray(schema.type) ? pick(rand, schema.type) : schema.type;
  switch (type) {
    case 'object': {
      const out: Record<string, unknown> = {};
      const required = new Set<string>(schema.required ?? []);
      for (const [prop, sub] of Object.entries<Schema>(schema.properties ?? {})) {
        if (required.has(prop) || rand() < 0.5) out[prop] = generate(rand, sub, prop, k, depth + 1);
      }
      if (!schema.properties && schema.additionalProperties && typeof schema.additionalProperties === 'object') {
        out[goodString(rand, '', schema.propertyNames ?? {}, k)] = generate(rand, schema.additionalProperties, '', k, depth + 1);
      }
      return out;
    }
    case 'array': {
      const n = Math.max(schema.minItems ?? 0, Math.floor(rand() * 3));
      return Array.from({ length: n }, () => generate(rand, schema.items, name, k, depth + 1));
    }
    case 'string':
      return goodString(rand, name, schema, k);
    case 'integer':
    case 'number': {
      const min = schema.minimum ?? 0;
      const max = Math.min(schema.maximum ?? 100, min + 100);
      const v = min + rand() * (max - min);
      return type === 'integer' ? Math.round(v) : Math.round(v * 1000) / 1000;
    }
    case 'boolean':
      return rand() < 0.5;
    case 'null':
      return null;
    default:
      if (schema.const !== undefined) return schema.const;
      if (schema.enum) return pick(rand, schema.enum);
      return 'x';
  }
}

/** Replaces one random leaf (or adds an unknown key, or drops one) of `value`. */
function mutate(rand: Rand, value: unknown): unknown {
  if (value === null || typeof value !== 'object' || rand() < 0.15) return evil(rand);
  const copy: any = Array.isArray(value) ? [...value] : { ...value };
  const keys = Object.keys(copy);
  const roll = rand();
  if (!keys.length || roll < 0.1) {
    copy[Array.isArray(copy) ? copy.length : pick(rand, ['extra', 'a\u0000b', '\ud800', '__proto__'])] = evil(rand);
  } else if (roll < 0.2 && !Array.isArray(copy)) {
    delete copy[pick(rand, keys)];
  } else {
    const key = pick(rand, keys);
    copy[key] = mutate(rand, copy[key]);
  }
  return copy;
}

/** Path params: real ids (so the handler goes on to the body) or hostile text. */
function pathValue(rand: Rand, route: string, param: string, k: Known): string {
  if (rand() < 0.35) {
    const bad = [
      '%00',
      'a%00b',
      '%ED%A0%80',
      '%E0%A4%A',
      '%C0%AE%C0%AE',
      '%F0%9F%98%80',
      'x'.repeat(3000),
      '..%2F..%2F..%2Fetc%2Fpasswd',
      '%2E%2E',
      "'%3B--",
      '-1',
      'project-00000000-0000-4000-8000-000000000000',
      'machine-00000000-0000-4000-8000-000000000000',
    ];
    return pick(rand, bad);
  }
  if (param === 'type') return pick(rand, ['shell', 'claude-code', 'nope']);
  if (param === 'path') return pick(rand, ['README', 'a/b.txt', 'x']);
  if (param === 'name') return route.startsWith('/departments') ? 'eng' : 'conversation';
  if (param === 'a') return k.checkpoint;
  if (param === 'b') return k.otherCheckpoint;
  if (route.startsWith('/projects/{id}/budget') || route.includes('/machine-types/')) return k.budgetProject;
  if (route.startsWith('/projects')) return k.project;
  if (route.startsWith('/checkpoints')) return k.checkpoint;
  if (route.startsWith('/machines')) return k.machine;
  if (route.startsWith('/cost-centers')) return k.costCenter;
  if (route.startsWith('/objectives')) return k.objective;
  if (route.startsWith('/pipelines')) return k.pipeline;
  if (route.startsWith('/payments')) return k.payment;
  return pick(rand, [k.project, k.machine, 'x']);
}

/** Percent-encodes text; a lone surrogate (which encodeURIComponent refuses) becomes its invalid UTF-8 bytes. */
function queryText(text: string): string {
  return [...text].map((ch) => (/[\uD800-\uDFFF]/.test(ch) ? '%ED%A0%80' : encodeURIComponent(ch))).join('');
}

interface Operation {
  route: string;
  method: string;
  op: Schema;
}

function operations(): Operation[] {
  const out: Operation[] = [];
  for (const [route, item] of Object.entries<Schema>(openApiDocument().paths)) {
    for (const [method, op] of Object.entries<Schema>(item)) out.push({ route, method: method.toUpperCase(), op });
  }
  return out;
}

describe('api: fuzzed bad input on every route', function () {
  this.timeout(20 * 60_000);
  let p: TestPlatform;
  let k: Known;

  async function counts(): Promise<Record<string, number>> {
    // `key.used` is written by the key check at most once a minute, whatever the answer: not a row the refused request wrote.
    const select = TABLES.map((t) => `(select count(*) from ${t}${t === 'audit_log' ? ` where action <> 'key.used'` : ''})::int as ${t}`).join(', ');
    return (await p.db.raw(`select ${select}`)).rows[0];
  }

  /** Whether a request was accepted since the platform was last seen quiet (its work may still write). */
  let dirty = true;

  /** Ends whatever an accepted request started, then waits until nothing writes any more. */
  async function quiet(): Promise<Record<string, number>> {
    if (!dirty) return counts();
    let last = '';
    return waitFor(
      async () => {
        const open = await p.db('machines').whereNotIn('status', ['completed', 'failed', 'terminated', 'refused']).pluck('id');
        for (const id of open) await p.api('POST', `/v1/machines/${id}/terminate`);
        const busy = [
          ...(await p.db('objectives').where({ status: 'running' }).pluck('id')),
          ...(await p.db('pipelines').where({ status: 'running' }).pluck('id')),
          ...(await p.db('payments').where({ status: 'running' }).pluck('id')),
        ];
        const now = await counts();
        const text = JSON.stringify(now);
        const stable = text === last && open.length === 0 && busy.length === 0;
        last = text;
        if (stable) dirty = false;
        return stable ? now : null;
      },
      'the platform to go quiet',
      120_000,
    );
  }

  before(async () => {
    // Fixed rates and no fetched ones: conversions never depend on this machine's network.
    p = await startTestPlatform({
      label: 'fuzz',
      env: {
        AUTOVIBE_FX_ECB_URL: 'off',
        AUTOVIBE_FX_CRYPTO_URL: 'off',
        AUTOVIBE_FX_FIXED_RATES: 'USD/EUR=0.9,USD/CAD=1.4,USD/BTC=0.00001,USD/ETH=0.0003,USD/TON=0.2',
      },
    });
    // The project machines are started in has no budget: an accepted machine is refused at once.
    const project = (await p.api('POST', '/v1/projects', { name: 'fuzz' })).body;
    const budgetProject = (await p.api('POST', '/v1/projects', { name: 'fuzz budgets' })).body;
    const costCenter = (await p.api('POST', '/v1/cost-centers', { name: 'cc', kind: 'testing', department: 'eng' })).body;
    const machine = (await p.api('POST', '/v1/machines', { projectId: project.id, type: 'shell', command: 'true' })).body;
    assert.ok(project.id && budgetProject.id && costCenter.id, 'setup');
    const objective = (await p.api('POST', `/v1/projects/${project.id}/objectives`, { title: 'fuzz', command: 'true' })).body;
    const pipeline = (await p.api('POST', '/v1/pipelines', { projectId: project.id, steps: [{ id: 's1', type: 'shell', command: 'true' }] })).body;
    // A payment that waits for a manual approval (for a day): the approve route has something to act on.
    await p.api('PUT', `/v1/projects/${project.id}/payment-methods`, { methods: [{ kind: 'manual', timeoutSeconds: 86_400 }] });
    const payment = (await p.api('POST', `/v1/projects/${project.id}/topups`, { amount: '1.00', currency: 'USD' })).body;
    assert.ok(objective.id && pipeline.id && payment.paymentId, `setup: ${JSON.stringify([objective, pipeline, payment])}`);
    await waitFor(async () => (await p.api('GET', `/v1/payments/${payment.paymentId}`)).body.status === 'manual_required', 'the payment to wait for approval');
    k = {
      project: project.id,
      budgetProject: budgetProject.id,
      checkpoint: project.rootCheckpointId,
      otherCheckpoint: budgetProject.rootCheckpointId,
      costCenter: costCenter.id,
      machine: machine.error?.details?.machineId ?? machine.id,
      objective: objective.id,
      pipeline: pipeline.id,
      payment: payment.paymentId,
    };
    assert.ok(k.machine, `setup machine: ${JSON.stringify(machine)}`);
  });
  after(async () => {
    await p?.stop();
  });

  /** Sends one request; fails on a 5xx, and on any row a refused request left behind. */
  async function probe(what: string, method: string, path: string, body: unknown, headers: Record<string, string> = {}) {
    const before = await quiet();
    const res = await fetch(`${p.apiUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${p.adminKey}`, 'content-type': 'application/json', ...headers },
      ...(method === 'GET' || body === undefined ? {} : { body: typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body) }),
    });
    const text = await res.text();
    const shown = `${what}: ${method} ${path.slice(0, 300)} ${typeof body === 'string' ? body.slice(0, 300) : JSON.stringify(body)?.slice(0, 300)} → ${res.status} ${text.slice(0, 500)} (FUZZ_SEED=${SEED})`;
    assert.ok(res.status < 500, shown);
    if (res.status >= 400) {
      const json = JSON.parse(text);
      // GraphQL answers errors in its own shape (GraphQL over HTTP): { errors: [{ message, extensions: { code, status } }] }.
      const graphql = path.startsWith('/v1/graphql') && Array.isArray(json.errors);
      if (graphql)
        assert.ok(json.errors[0]?.message && json.errors[0]?.extensions?.code && json.errors[0]?.extensions?.status === res.status, `error shape: ${shown}`);
      else assert.ok(json.error?.code && json.error?.message && json.requestId, `error shape: ${shown}`);
    }
    if (REFUSED.has(res.status)) assert.deepEqual(await counts(), before, `rows written by a refused request: ${shown}`);
    else dirty = true;
    return res.status;
  }

  it('answers every route with a 4xx (never a 5xx) for mutated bodies, queries and path params, and a refusal writes nothing', async () => {
    const rand = prng(SEED);
    const seen = new Map<string, Set<number>>();
    for (const { route, method, op } of operations()) {
      for (let round = 0; round < ROUNDS; round++) {
        const params = (op.parameters ?? []) as Schema[];
        let path = `/v1${route}`.replace(/\{(\w+)\}/g, (_m, name: string) => pathValue(rand, route, name, k));
        const query = params.filter((q) => q.in === 'query');
        if (query.length && rand() < 0.8) {
          const parts = query.filter(() => rand() < 0.6).map((q) => `${q.name}=${queryText(String(rand() < 0.5 ? evil(rand) : 'x'))}`);
          if (rand() < 0.3) parts.push(`${pick(rand, query).name}=a&${pick(rand, query).name}=b`, 'unknown=1');
          path += `?${parts.join('&')}`;
        }
        const schema = op.requestBody?.content?.['application/json']?.schema;
        let body: unknown;
        if (method !== 'GET') {
          body = schema ? generate(rand, schema, '', k) : {};
          const mutations = rand() < 0.15 ? 0 : 1 + Math.floor(rand() * 2);
          for (let i = 0; i < mutations; i++) body = mutate(rand, body);
        }
        const status = await probe(`round ${round}`, method, path, body);
        seen.set(`${method} ${route}`, (seen.get(`${method} ${route}`) ?? new Set()).add(status));
      }
    }
    if (process.env.FUZZ_VERBOSE) for (const [route, statuses] of seen) console.log(route, [...statuses].sort().join(' '));
    // The fuzz reached every route (none answered only "no such route").
    for (const [route, statuses] of seen) assert.ok(![...statuses].every((s) => s === 404) || route.includes('{'), `${route} only 404: ${[...statuses]}`);
  });

  it('refuses bodies over the limit with 413, unreadable ones with 400/415, hostile nesting and text with 422, on every route that takes a body', async () => {
    const writes = operations().filter((o) => o.method !== 'GET');
    const bigBody = JSON.stringify({ name: 'x'.repeat(1024 * 1024 + 10) });
    for (const { route, method } of writes) {
      const path = `/v1${route}`.replace(/\{(\w+)\}/g, () => k.project);
      assert.equal(await probe('over the limit', method, path, bigBody), 413);
      assert.equal(await probe('not JSON', method, path, '{"name": '), 400);
      assert.equal(await probe('a charset body-parser cannot read', method, path, '{}', { 'content-type': 'application/json; charset=latin-7' }), 415);
      assert.equal(await probe('an unknown content encoding', method, path, '{}', { 'content-encoding': 'x-fuzz' }), 415);
      assert.equal(await probe('nested 40 deep', method, path, { name: nested(40) }), 422);
      assert.equal(await probe('a NUL', method, path, { name: 'a\u0000b' }), 422);
      assert.equal(await probe('a lone surrogate', method, path, { name: 'a\ud800' }), 422);
      assert.equal(await probe('a NUL key', method, path, { 'n\u0000': 1 }), 422);
    }
    const big = await fetch(`${p.apiUrl}/v1/projects`, {
      method: 'POST',
      headers: { authorization: `Bearer ${p.adminKey}`, 'content-type': 'application/json' },
      body: bigBody,
    }).then((r) => r.json() as Promise<any>);
    assert.equal(big.error.code, 'body_too_large');
    assert.match(big.error.message, /larger than the limit of 1mb/);
  });

  it('refuses NUL and lone surrogates in query and path params before any lookup', async () => {
    const nulQuery = await p.api('GET', '/v1/machines?projectId=a%00b');
    assert.equal(nulQuery.status, 422);
    assert.equal(nulQuery.body.error.code, 'unstorable_text');
    assert.match(nulQuery.body.error.message, /query\.projectId: contains a NUL/);
    const nulPath = await p.api('GET', '/v1/projects/a%00b');
    assert.equal(nulPath.status, 422);
    assert.match(nulPath.body.error.message, /path: contains a NUL/);
    const badUtf8 = await p.api('GET', '/v1/projects/%ED%A0%80');
    assert.equal(badUtf8.status, 400);
    const surrogate = await p.api('POST', '/v1/projects', { name: 'ok', repoUrl: 'git://h/\ud800' });
    assert.equal(surrogate.status, 422);
    assert.match(surrogate.body.error.message, /repoUrl: contains a lone UTF-16 surrogate/);
  });

  it('refuses amounts beyond the ledger range with 422 naming the field, on every money field', async () => {
    const tooBig = '1000000000001';
    const cases: Array<[string, string, unknown, RegExp]> = [
      ['PUT', `/v1/projects/${k.budgetProject}/budget`, { amount: tooBig, currency: 'USD', period: 'daily' }, /^amount:.*beyond the ledger's range/],
      ['PUT', `/v1/projects/${k.budgetProject}/budget`, { amount: '9'.repeat(60), currency: 'ETH', period: 'daily' }, /^amount:.*beyond/],
      ['PUT', `/v1/projects/${k.budgetProject}/machine-types/shell/budget`, { amount: tooBig, currency: 'USD' }, /^amount:.*beyond/],
      ['PUT', `/v1/cost-centers/${k.costCenter}/budget`, { amount: tooBig, currency: 'BTC', period: 'total' }, /^amount:.*beyond/],
      ['PUT', `/v1/departments/eng/budget`, { amount: tooBig, currency: 'EUR', period: 'monthly' }, /^amount:.*beyond/],
      ['POST', '/v1/projects', { name: 'x', defaultMachineMoney: tooBig }, /^defaultMachineMoney:.*beyond/],
      ['POST', '/v1/machines', { projectId: k.project, type: 'shell', command: 'true', limits: { money: tooBig } }, /^limits\.money:.*beyond/],
      ['POST', `/v1/projects/${k.project}/topups`, { amount: tooBig, currency: 'USD' }, /^amount:.*beyond/],
      ['POST', `/v1/projects/${k.project}/credits`, { amount: tooBig, currency: 'USD', expiresAt: '2030-01-01T00:00:00Z' }, /^amount:.*beyond/],
    ];
    for (const [method, path, body, message] of cases) {
      const before = await quiet();
      const r = await p.api(method, path, body);
      assert.equal(r.status, 422, `${method} ${path}: ${JSON.stringify(r.body)}`);
      assert.match(r.body.error.message, message);
      assert.deepEqual(await counts(), before);
    }
    // The largest amount still fits, exactly.
    const max = await p.api('PUT', `/v1/projects/${k.budgetProject}/budget`, { amount: '1000000000000', currency: 'USD', period: 'daily' });
    assert.equal(max.status, 200, JSON.stringify(max.body));
    assert.equal(max.body.limit, '1000000000000.00');
  });
});

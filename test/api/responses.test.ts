import { recordRoutingDecision, settleRoutingDecision } from '../../store/routing.js';
import { recordFailurePatterns, saveFailureSummary } from '../../store/refinement.js';
import { recordPrediction, settlePrediction } from '../../store/predictions.js';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import pino from 'pino';
import { z } from 'zod';
import { routeTable } from '../../api/app.js';
import type { ApiContext } from '../../api/context.js';
import { errorMiddleware } from '../../api/errors.js';
import { openApiDocument } from '../../api/openapi.js';
import * as R from '../../api/responses.js';
import { responseProblem, RouteGroup, type RouteSpec } from '../../api/routes/table.js';
import { loadConfig } from '../../config/index.js';
import { startGithubPeer, type GithubPeer } from '../support/github-peer.js';
import { refreshForecasts } from '../../services/forecasts.js';
import { startHttpGitServer, type HttpGitServer } from '../support/http-git-server.js';
import { projectWithBudget, startTestPlatform, waitFor, waitForMachine, type TestPlatform } from '../support/platform.js';

/** `/machines/:id/artifacts/*name` → a regex matching its concrete paths. */
const routeRegex = (path: string) => new RegExp(`^${path.replace(/:\w+/g, '[^/]+').replace(/\*\w+/g, '.+')}$`);
/** Routes no test here can answer with a 2xx: extending needs a machine paused at a limit. */
// The WebSocket endpoint's plain GET is a 426 by design (its success is the upgrade, tested in test/e2e/watching.test.ts).
const NOT_DRIVEN = new Set(['POST /machines/:id/extend', 'GET /events/ws']);

/**
 * Every route's real 2xx answers match the response schema it declares (and the OpenAPI document
 * shows). The platform validates each answer itself (AUTOVIBE_VALIDATE_RESPONSES=1 in the test
 * platform: a mismatch is a 500); this suite checks them again on the client side, drives every
 * GET route and the write routes with real data, and proves a wrong schema is caught.
 */
describe('api: response schemas (every route answers as its declared schema says)', function () {
  this.timeout(600_000);
  let p: TestPlatform;
  let routes: RouteSpec[];
  const reached = new Set<string>();

  /** Calls the api; a 2xx must be a declared status whose body the declared schema accepts. */
  async function call(method: string, path: string, body?: unknown, expected?: number): Promise<any> {
    const res = await p.api(method, `/v1${path}`, body);
    const bare = path.split('?')[0]!;
    const route = routes.find((r) => r.method === method.toLowerCase() && routeRegex(r.path).test(bare));
    assert.ok(route, `no route for ${method} ${bare}`);
    const where = `${method} ${path}`;
    assert.ok(res.status >= 200 && res.status < 300, `${where}: ${res.status} ${JSON.stringify(res.body)}`);
    if (expected) assert.equal(res.status, expected, where);
    const declared = (route.responses as Partial<Record<number, R.RawBody | z.ZodType | null>>)[res.status];
    assert.notEqual(declared, undefined, `${where}: ${res.status} is not declared`);
    if (declared instanceof z.ZodType) assert.equal(responseProblem(route.responses, res.status, res.body), null, `${where}: ${JSON.stringify(res.body)}`);
    reached.add(`${route.method.toUpperCase()} ${route.path}`);
    return res.body;
  }

  const fx = {
    webhook: '',
    project: '',
    other: '',
    machine: '',
    running: '',
    objective: '',
    waiting: '',
    pipeline: '',
    payment: '',
    center: '',
    department: 'dept-r',
  };
  const checkpoints = { root: '', final: '' };

  before(async () => {
    p = await startTestPlatform({
      label: 'responses',
      env: {
        AUTOVIBE_FX_ECB_URL: 'off',
        AUTOVIBE_FX_CRYPTO_URL: 'off',
        AUTOVIBE_FX_FIXED_RATES: 'EUR/USD=1.08',
        AUTOVIBE_WEBHOOK_ALLOW_PRIVATE: '1',
        AUTOVIBE_REPO_URL_SCHEMES: 'https,ssh,git,http',
      },
    });
    routes = routeTable({ db: p.db, temporal: p.temporal, config: p.config, log: p.log });
    assert.equal(p.config.validateResponses, true, 'the test platform validates responses');

    // A cost center first, so the machine's costs are allocated to it.
    fx.center = (await call('POST', '/cost-centers', { name: 'cc-r', kind: 'development', department: fx.department }, 201)).id;
    fx.project = await projectWithBudget(p, '20.00');
    fx.other = (await call('POST', '/projects', { name: 'other', currency: 'EUR' }, 201)).id;
    await call('PUT', `/projects/${fx.project}/cost-center`, { costCenterId: fx.center });
    checkpoints.root = (await call('GET', `/projects/${fx.project}`)).rootCheckpointId;

    const m = await call(
      'POST',
      '/machines',
      { projectId: fx.project, type: 'shell', command: 'echo hi > hi.txt', artifacts: ['hi.txt'], cache: false, limits: { money: '0.05', minutes: 2 } },
      202,
    );
    fx.machine = m.id;
    // A machine holding 62.5% of its project's budget: an alert for /alerts to list.
    const alerting = await projectWithBudget(p, '0.08');
    const alerted = await call(
      'POST',
      '/machines',
      { projectId: alerting, type: 'shell', command: 'true', cache: false, limits: { money: '0.05', minutes: 2 } },
      202,
    );
    const done = await waitForMachine(p, m.id);
    await waitForMachine(p, alerted.id);
    assert.equal(done.status, 'completed', JSON.stringify(done));
    checkpoints.final = done.checkpoints.at(-1);

    // A machine still running, for checkpoint and terminate.
    fx.running = (await call('POST', '/machines', { projectId: fx.project, type: 'shell', command: 'sleep 60', cache: false, limits: { minutes: 5 } }, 202)).id;

    // An objective that runs long, and one that waits for it (open: it can be changed).
    fx.objective = (await call('POST', `/projects/${fx.project}/objectives`, { title: 'first', command: 'sleep 60' }, 201)).id;
    fx.waiting = (
      await call(
        'POST',
        `/projects/${fx.project}/objectives`,
        { title: 'second', command: 'true', dependsOn: [fx.objective], completion: { subtasks: ['one', 'two'] } },
        201,
      )
    ).id;

    fx.pipeline = (
      await call(
        'POST',
        '/pipelines',
        {
          projectId: fx.project,
          steps: [
            { id: 'a', type: 'shell', command: 'echo a > a.txt', artifacts: ['a.txt'] },
            { id: 'b', type: 'shell', command: 'cat got.txt', dependsOn: ['a'], inputs: { artifacts: [{ step: 'a', name: 'a.txt', as: 'got.txt' }] } },
          ],
        },
        202,
      )
    ).id;

    await call('PUT', `/projects/${fx.project}/payment-methods`, [{ kind: 'credits' }, { kind: 'manual', timeoutSeconds: 300 }]);
    await call('POST', `/projects/${fx.project}/credits`, { amount: '1.00', currency: 'USD', expiresAt: '2099-01-01T00:00:00Z' }, 201);
    fx.payment = (await call('POST', `/projects/${fx.project}/topups`, { amount: '2.50', currency: 'USD' }, 202)).paymentId;
    await waitFor(async () => (await p.api('GET', `/v1/payments/${fx.payment}`)).body.status === 'manual_required', 'manual_required');
    await call('POST', `/payments/${fx.payment}/approve`, undefined, 202);
    await waitFor(async () => (await p.api('GET', `/v1/payments/${fx.payment}`)).body.status === 'succeeded', 'payment succeeded');
    await waitFor(async () => (await p.api('GET', `/v1/pipelines/${fx.pipeline}`)).body.status !== 'running', 'pipeline end');
  });
  let receiver: http.Server | undefined;
  let gitServer: HttpGitServer | undefined;
  let github: GithubPeer | undefined;
  after(async () => {
    receiver?.close();
    await gitServer?.stop();
    await github?.stop();
    await p?.stop();
  });

  it('answers the write routes as declared', async () => {
    await call('PUT', `/projects/${fx.project}/budget`, { amount: '25.00', currency: 'USD', period: 'daily' });
    await call('PUT', `/projects/${fx.project}/machine-types/shell/budget`, { amount: '5.00', currency: 'USD' });
    await call('PUT', `/projects/${fx.project}/limit-policy`, { policy: 'pause', pauseMinutes: 30 });
    await call('PUT', `/projects/${fx.project}/placement`, { rules: [{ name: 'all local', providers: ['local'] }] });
    await call('PUT', `/projects/${fx.project}/scheduling`, { maxConcurrentMachines: 3, resources: { db: 1 } });
    await call('PUT', `/projects/${fx.project}/routing`, { quality: 0.7, exploration: 0.05 });
    await call('PUT', `/projects/${fx.project}/prediction`, { refuseIfPredictedOver: false });
    // A routing decision on a finished machine (no agent CLI here), settled: GET /v1/routing and the machine show it.
    await recordRoutingDecision(
      p.db,
      {
        machineId: fx.machine,
        projectId: fx.project,
        operationClass: 'bugfix',
        complexity: 'low',
        classifier: 'rules',
        chosenType: 'aider',
        mode: 'exploit',
        reason: 'seeded',
        candidates: [{ type: 'aider', capability: 0.7, alpha: 4, beta: 2, mean: 0.66, sample: 0.7, relativeCost: 1, expectedCost: '0.56', utility: 0.4 }],
        quality: 0.7,
        exploration: 0.05,
        promptArm: 'refined',
        refinement: 'Earlier bugfix runs in this project did not succeed.',
      },
      'user:test',
    );
    await settleRoutingDecision(p.db, fx.machine, { finalStatus: 'completed', success: true, cost: 10n ** 16n, currency: 'USD' });
    // Prompt refinement: a failure pattern of the class and a failure summary (seeded; the routing e2e test makes real ones).
    await recordFailurePatterns(p.db, { projectId: fx.project, operationClass: 'bugfix', machineType: 'aider', machineId: fx.machine }, [
      { kind: 'error', detail: 'Error: seeded' },
    ]);
    await saveFailureSummary(p.db, {
      machineId: fx.machine,
      projectId: fx.project,
      operationClass: 'bugfix',
      machineType: 'shell',
      finalStatus: 'failed',
      summary: 'ended failed; error: seeded',
      stopReason: null,
      error: 'seeded',
      errorLines: [],
      files: ['a.txt'],
    });
    // Feedback on a finished machine: the key's first (201), then a replacement (200); the ROI view counts it.
    assert.equal((await call('POST', `/machines/${fx.machine}/feedback`, { rating: 3 }, 201)).rating, 3);
    assert.equal((await call('POST', `/machines/${fx.machine}/feedback`, { rating: 4, comment: 'did the job' })).comment, 'did the job');
    // A cost prediction on it, settled: the machine and GET /v1/predictions/accuracy show it.
    await recordPrediction(p.db, {
      machineId: fx.machine,
      projectId: fx.project,
      machineType: 'shell',
      currency: 'USD',
      operationClass: null,
      scope: 'project',
      basis: 5,
      cost: { p10: 10n ** 15n, p50: 10n ** 16n, p90: 10n ** 17n },
      durationSeconds: { p10: 1, p50: 2, p90: 3 },
    });
    await settlePrediction(p.db, fx.machine, { cost: 2n * 10n ** 16n, finalStatus: 'completed' });
    await call('PUT', `/projects/${fx.project}/network-policy`, { mode: 'allowlist', hosts: ['registry.npmjs.org', '*.example.org:8443'] });
    await call('PUT', `/checkpoints/${checkpoints.final}/milestone`, { milestone: true });
    await call('PUT', `/cost-centers/${fx.center}/budget`, { amount: '100.00', currency: 'EUR', period: 'monthly' });
    await call('PUT', `/departments/${fx.department}/budget`, { amount: '500.00', currency: 'USD', period: 'monthly' });
    await call('PUT', `/cost-centers/${fx.center}/reallocation`, { enabled: true, maxStepPercent: 10, minAllocation: '1.00', maxAllocation: '50.00' });
    await call('POST', `/cost-centers/${fx.center}/reallocation/runs?dryRun=true`, undefined, 201);
    await call('POST', `/cost-centers/${fx.center}/reallocation/runs`, undefined, 201);
    await call('PUT', `/departments/${fx.department}/reallocation`, { enabled: true });
    await call('POST', `/departments/${fx.department}/reallocation/runs?dryRun=true`, undefined, 201);
    await call('PUT', `/projects/${fx.project}/auto-topup`, { amount: '5.00', currency: 'USD' });
    await call('DELETE', `/projects/${fx.project}/auto-topup`, undefined, 204);

    await call('PATCH', `/objectives/${fx.waiting}`, { title: 'second, renamed', priority: 5 });
    await call('POST', `/objectives/${fx.waiting}/subtasks/done`, { names: ['one'] });
    const third = (await call('POST', `/projects/${fx.other}/objectives`, { title: 'third', command: 'true', dependsOn: [] }, 201)).id;
    assert.ok(third);
    const extra = (await call('POST', `/projects/${fx.project}/objectives`, { title: 'extra', command: 'true', dependsOn: [fx.objective] }, 201)).id;
    await call('POST', `/objectives/${fx.waiting}/links`, { dependsOn: extra });
    await call('POST', `/objectives/${fx.waiting}/pause`, undefined, 202);
    await call('POST', `/objectives/${fx.waiting}/resume`, undefined, 202);
    await call('POST', `/objectives/${fx.waiting}/cancel`, undefined, 202);
    await call('POST', `/objectives/${extra}/cancel`, undefined, 202);

    const running = await waitFor(async () => {
      const m = (await p.api('GET', `/v1/machines/${fx.running}`)).body;
      return m.status === 'running' ? m : null;
    }, 'machine running');
    assert.equal(running.id, fx.running);
    await call('POST', `/machines/${fx.running}/checkpoint`, undefined, 202);
    await call('POST', `/machines/${fx.running}/terminate`, undefined, 202);

    const long = (await call('POST', '/pipelines', { projectId: fx.project, steps: [{ id: 'slow', type: 'shell', command: 'sleep 60' }] }, 202)).id;
    await call('POST', `/pipelines/${long}/cancel`, undefined, 202);

    const batch = await call('POST', '/batch', {
      operations: [
        { id: 'read', method: 'GET', path: `/v1/projects/${fx.project}` },
        { id: 'missing', method: 'GET', path: '/v1/machines/machine-none' },
        { id: 'file', method: 'GET', path: `/v1/checkpoints/${checkpoints.final}/files/hi.txt` },
      ],
    });
    assert.deepEqual(
      batch.results.map((r: { id: string; status: number }) => [r.id, r.status]),
      [
        ['read', 200],
        ['missing', 404],
        ['file', 200],
      ],
    );
    // A file's bytes come in base64.
    assert.equal(batch.results[2].encoding, 'base64');
    assert.equal(Buffer.from(batch.results[2].body, 'base64').toString(), 'hi\n');

    const key = await call('POST', '/keys', { name: 'temp', role: 'viewer', projectIds: [fx.project] }, 201);
    await call('PATCH', `/keys/${key.id}`, { expiresAt: '2099-01-01T00:00:00Z' });
    await call('POST', `/keys/${key.id}/rotate`, undefined, 201);
    await call('DELETE', `/keys/${key.id}`, undefined, 204);
    await call('POST', '/backups', undefined, 202);
    // Point-in-time recovery of a quiet project: a dry run (200), then a copy (201).
    const recovered = (await call('POST', '/projects', { name: 'recovered' }, 201)).id;
    await new Promise((resolve) => setTimeout(resolve, 20));
    const recoverAt = new Date().toISOString();
    await call('POST', `/projects/${recovered}/recoveries`, { at: recoverAt, mode: 'in-place', dryRun: true }, 200);
    await call('POST', `/projects/${recovered}/recoveries`, { at: recoverAt }, 201);

    // Webhooks: one delivered to a local receiver (kept for the GET routes), one rotated, changed and deleted.
    receiver = http.createServer((_req, res) => res.writeHead(204).end());
    await new Promise<void>((resolve) => receiver!.listen(0, '127.0.0.1', resolve));
    const hookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
    fx.webhook = (await call('POST', '/webhooks', { projectId: fx.project, url: hookUrl, events: ['budget.*'] }, 201)).id;
    await call('PUT', `/projects/${fx.project}/budget`, { amount: '20.00', currency: 'USD', period: 'daily' });
    const delivered = await waitFor(async () => (await p.api('GET', `/v1/webhooks/${fx.webhook}/deliveries`)).body.items[0], 'a webhook delivery');
    await call('POST', `/webhooks/${fx.webhook}/deliveries/${delivered.id}/redeliver`, {}, 202);
    const spare = await call('POST', '/webhooks', { projectId: fx.project, kind: 'slack', url: hookUrl, events: ['machine.*'] }, 201);
    await call('POST', `/webhooks/${spare.id}/rotate-secret`, undefined, 201);
    await call('PATCH', `/webhooks/${spare.id}`, { enabled: false, description: 'off' });
    await call('DELETE', `/webhooks/${spare.id}`, undefined, 204);

    // A git remote (git http-backend with Basic auth): push a checkpoint, fetch the branch back with a new commit; one removed.
    gitServer = await startHttpGitServer({ username: 'u', token: 't0ken' });
    gitServer.addRepo('r', { 'a.txt': 'a\n' });
    await call('PUT', `/projects/${fx.project}/git-remote`, { url: gitServer.url('r'), username: 'u', token: 't0ken' });
    await call('POST', `/checkpoints/${checkpoints.final}/push`, { branch: 'autovibe/r' });
    gitServer.commitTo('r', 'autovibe/r', { 'b.txt': 'b\n' });
    assert.equal((await call('POST', `/projects/${fx.project}/git-remote/fetch`, { branch: 'autovibe/r' })).created, true);
    await call('PUT', `/projects/${fx.other}/git-remote`, { url: gitServer.url('r') });
    await call('DELETE', `/projects/${fx.other}/git-remote`, undefined, 204);

    // Alert rules: one kept (for the GET list), one deleted.
    await call('POST', `/projects/${fx.project}/alert-rules`, { metric: 'machines_running', comparator: '>', threshold: '5' }, 201);
    const doomedRule = await call(
      'POST',
      `/projects/${fx.project}/alert-rules`,
      { metric: 'spend_today', comparator: '>=', threshold: '10.00', severity: 'info' },
      201,
    );
    await call('DELETE', `/projects/${fx.project}/alert-rules/${doomedRule.id}`, undefined, 204);

    // A GitHub integration (a local GitHub REST peer): a pull request from a checkpoint pushed to the git remote; another project's removed.
    github = await startGithubPeer({ owner: 'o', repo: 'r', token: 'ghp_t' });
    const githubConfig = { apiBase: github.url, owner: 'o', repo: 'r' };
    await call('PUT', `/projects/${fx.project}/integrations/github`, { config: githubConfig, token: 'ghp_t', webhookSecret: 'whs' });
    assert.equal((await call('POST', `/checkpoints/${checkpoints.final}/pull-request`, {})).created, true);
    await call('PUT', `/projects/${fx.other}/integrations/github`, { config: githubConfig });
    await call('DELETE', `/projects/${fx.other}/integrations/github`, undefined, 204);
    // Merges: a clean one; two machine resolutions of a conflict (add/add of c.txt), one accepted, one rejected.
    const [mx, my] = await Promise.all(
      ['x', 'y'].map(async (v) => {
        const started = await call(
          'POST',
          '/machines',
          {
            projectId: fx.project,
            type: 'shell',
            command: `echo ${v} > c.txt`,
            checkpointId: checkpoints.root,
            cache: false,
            limits: { money: '0.05', minutes: 2 },
          },
          202,
        );
        return (await waitForMachine(p, started.id)).checkpoints.at(-1) as string;
      }),
    );
    await call('POST', `/checkpoints/${checkpoints.final}/merge`, { from: mx }, 201);
    const proposals = await Promise.all(
      ['accept', 'reject'].map(async () => {
        const r = await call('POST', `/checkpoints/${mx}/merge-resolutions`, { from: my, type: 'shell', command: 'echo xy > c.txt' }, 202);
        await waitForMachine(p, r.machineId);
        return waitFor(async () => (await p.api('GET', `/v1/checkpoints/${r.proposedCheckpointId}`)).status === 200 && r.proposedCheckpointId, 'a proposal');
      }),
    );
    await call('POST', `/checkpoints/${proposals[0]}/accept`);
    await call('POST', `/checkpoints/${proposals[1]}/reject`);

    // GraphQL: the data, and a field's error beside it, in the declared shape.
    const gql = await call('POST', '/graphql', {
      query:
        'query($id: ID!) { project(id: $id) { id budget { limit } machines(first: 1) { items { id cost { amount } } } checkpoints(first: 0) { items { id } } } }',
      variables: { id: fx.project },
    });
    assert.equal(gql.data.project.id, fx.project);
    assert.equal(gql.data.project.checkpoints, null);
    assert.equal(gql.errors[0].extensions.field, 'first');
  });

  it('answers every GET route as declared, with real data', async () => {
    const key = (await call('GET', '/whoami')).id;
    // Forecasts are stored by the forecast-refresh schedule; run it once so there is one to read.
    assert.ok((await refreshForecasts({ db: p.db, temporal: p.temporal, config: p.config, log: p.log })).scopes > 0, 'no forecast stored');
    const byPath: Record<string, string> = {
      '/projects/:id/costs/breakdown': `/projects/${fx.project}/costs/breakdown?by=category`,
      '/cost-centers/:id/forecast': `/cost-centers/${fx.center}/forecast`,
      '/cost-centers/:id/costs/breakdown': `/cost-centers/${fx.center}/costs/breakdown?by=project`,
      '/departments/:name/costs/breakdown': `/departments/${fx.department}/costs/breakdown?by=category`,
      '/departments/:name/forecast': `/departments/${fx.department}/forecast`,
      '/audit': `/audit?projectId=${fx.project}&limit=5`,
      '/predictions/accuracy': `/predictions/accuracy?projectId=${fx.project}`,
      '/machines': `/machines?projectId=${fx.project}`,
      '/keys/:id': `/keys/${key}`,
      '/webhooks/:id': `/webhooks/${fx.webhook}`,
      '/projects/:id/integrations/:kind': `/projects/${fx.project}/integrations/github`,
      '/webhooks/:id/deliveries': `/webhooks/${fx.webhook}/deliveries`,
      '/cost-centers/:id': `/cost-centers/${fx.center}`,
      '/cost-centers/:id/costs': `/cost-centers/${fx.center}/costs`,
      '/cost-centers/:id/reallocation': `/cost-centers/${fx.center}/reallocation`,
      '/cost-centers/:id/reallocation/runs': `/cost-centers/${fx.center}/reallocation/runs`,
      '/departments/:name/reallocation': `/departments/${fx.department}/reallocation`,
      '/departments/:name/reallocation/runs': `/departments/${fx.department}/reallocation/runs`,
      '/departments/:name/costs': `/departments/${fx.department}/costs`,
      '/machines/:id': `/machines/${fx.machine}`,
      '/machines/:id/artifacts': `/machines/${fx.machine}/artifacts`,
      '/machines/:id/logs': `/machines/${fx.machine}/logs`,
      '/machines/:id/feedback': `/machines/${fx.machine}/feedback`,
      '/machines/:id/artifacts/*name': `/machines/${fx.machine}/artifacts/hi.txt`,
      '/checkpoints/:id': `/checkpoints/${checkpoints.final}`,
      '/checkpoints/:id/files/*path': `/checkpoints/${checkpoints.final}/files/hi.txt`,
      '/checkpoints/:a/diff/:b': `/checkpoints/${checkpoints.root}/diff/${checkpoints.final}`,
      '/objectives/:id': `/objectives/${fx.objective}`,
      '/objectives/:id/progress': `/objectives/${fx.waiting}/progress`,
      '/pipelines/:id': `/pipelines/${fx.pipeline}`,
      '/payments/:id': `/payments/${fx.payment}`,
      '/graphql': `/graphql?query=${encodeURIComponent('{ viewer { id role } }')}`,
    };
    const gets = routes.filter((r) => r.method === 'get' && !NOT_DRIVEN.has(`GET ${r.path}`));
    assert.ok(gets.length >= 30, `only ${gets.length} GET routes`);
    for (const r of gets) {
      const path = byPath[r.path] ?? (r.path.startsWith('/projects/:id') ? r.path.replace(':id', fx.project) : r.path);
      assert.doesNotMatch(path, /[:*]/, `no fixture for GET ${r.path}: add one here`);
      await call('GET', path);
    }
    // Lists with content, so their item schemas were exercised.
    for (const path of [
      '/alerts',
      `/projects/${fx.project}/alert-rules`,
      `/machines/${fx.machine}/artifacts`,
      `/projects/${fx.project}/credits`,
      `/projects/${fx.project}/balance`,
      `/projects/${fx.project}/payments`,
      `/projects/${fx.project}/pipelines`,
      '/keys',
      '/cost-centers',
      `/cost-centers/${fx.center}/reallocation/runs`,
      '/webhooks',
      `/webhooks/${fx.webhook}/deliveries`,
      `/predictions/accuracy?projectId=${fx.project}`,
    ]) {
      assert.ok((await call('GET', path)).items.length > 0, `${path} is empty`);
    }
    const routing = await call('GET', `/routing?projectId=${fx.project}`);
    assert.equal(routing.decisions[0].machineId, fx.machine);
    assert.equal(routing.decisions[0].outcome, 'success');
    assert.deepEqual(routing.settings, { quality: 0.7, exploration: 0.05, refinement: 0.5, source: 'project' });
    assert.deepEqual(
      routing.refinement.arms.map((a: any) => [a.arm, a.machines, a.successes, a.meanCost]),
      [['refined', 1, 1, '0.01']],
    );
    assert.deepEqual(
      routing.refinement.patterns.map((x: any) => [x.kind, x.detail, x.occurrences]),
      [['error', 'Error: seeded', 1]],
    );
    const routed = await call('GET', `/machines/${fx.machine}`);
    assert.equal(routed.routing.operationClass, 'bugfix');
    assert.equal(routed.routing.promptArm, 'refined');
    assert.equal(routed.failureSummary.summary, 'ended failed; error: seeded');
    assert.deepEqual(
      (await call('GET', `/machines/${fx.machine}/feedback`)).items.map((f: any) => f.rating),
      [4],
    );
    assert.deepEqual((await call('GET', `/projects/${fx.project}/roi`)).feedback, { count: 1, machines: 1, meanRating: 4 });
    assert.equal((await call('GET', `/machines/${fx.machine}`)).prediction.actual.cost, '0.02');
    assert.ok((await call('GET', `/cost-centers/${fx.center}/costs`)).items.length > 0, 'no costs allocated to the cost center');
    assert.ok(
      (await call('GET', `/pipelines/${fx.pipeline}`)).steps.some((s: any) => s.inputs),
      'no step with inputs',
    );
    assert.ok((await call('GET', `/objectives/${fx.objective}`)).live !== undefined);
  });

  it('reached every route with a 2xx answer', () => {
    const missing = routes.map((r) => `${r.method.toUpperCase()} ${r.path}`).filter((k) => !reached.has(k) && !NOT_DRIVEN.has(k));
    assert.deepEqual(missing, []);
  });

  it('documents each route’s success responses with their schemas in the OpenAPI document it serves', async () => {
    const doc = (await p.api('GET', '/v1/openapi.json')).body;
    assert.deepEqual(doc, JSON.parse(JSON.stringify(openApiDocumentWithPermissions(doc))));
    for (const r of routes) {
      const op = doc.paths[r.path.replace(/[:*](\w+)/g, '{$1}')][r.method];
      for (const [status, body] of Object.entries(r.responses)) {
        const documented = op.responses[status];
        assert.ok(documented, `${r.method} ${r.path}: ${status} is not documented`);
        if (body instanceof z.ZodType) assert.equal(documented.content['application/json'].schema.type, 'object', `${r.method} ${r.path} ${status}`);
        if (body === null) assert.equal(documented.content, undefined);
      }
      assert.equal(op.responses['401'].$ref, '#/components/responses/Error');
    }
    const machine = doc.paths['/machines/{id}'].get.responses['200'].content['application/json'].schema;
    assert.deepEqual(machine.properties.cost.properties.amount.type, 'string', 'money is a decimal string');
    assert.ok(machine.required.includes('status'));
  });

  it('answers 500 response_schema_mismatch, naming the route and the issues, when a body does not match its schema', async () => {
    const log = pino({ level: 'silent' });
    const ctx = { config: loadConfig({ AUTOVIBE_VALIDATE_RESPONSES: '1' }), log } as unknown as ApiContext;
    const group = new RouteGroup(ctx);
    const declared = z.strictObject({ id: z.string(), amount: R.decimal });
    group.get('/wrong', { permission: 'catalog.read', resource: 'none' }, { 200: declared }, (_req, res) => void res.json({ id: 7, amount: 1.5 }));
    group.get('/right', { permission: 'catalog.read', resource: 'none' }, { 200: declared }, (_req, res) => void res.json({ id: 'x', amount: '1.50' }));
    group.post('/undeclared', { permission: 'catalog.read', resource: 'none' }, { 202: declared }, (_req, res) => void res.json({ id: 'x', amount: '1' }));
    const app = express();
    app.use((req, _res, next) => {
      req.requestId = 'r-1';
      req.principal = { apiKeyId: 'k', userId: 'u', name: 'tester', role: 'admin', projectIds: null } as never;
      next();
    });
    app.use(group.router);
    app.use(errorMiddleware(log));
    const server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    try {
      const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const wrong = await fetch(`${base}/wrong`);
      assert.equal(wrong.status, 500);
      const body = (await wrong.json()) as any;
      assert.equal(body.error.code, 'response_schema_mismatch');
      assert.match(body.error.message, /^GET \/v1\/wrong answered 200 with a body/);
      assert.deepEqual(body.error.details.issues.map((i: any) => i.path).sort(), ['amount', 'id']);
      assert.equal((await fetch(`${base}/right`)).status, 200);
      const undeclared = await fetch(`${base}/undeclared`, { method: 'POST' });
      assert.equal(undeclared.status, 500);
      assert.match(((await undeclared.json()) as any).error.message, /status 200 is not a declared response/);

      // Off (the default): answers go out unchecked.
      const off = new RouteGroup({ ...ctx, config: loadConfig({}) } as ApiContext);
      assert.equal(loadConfig({}).validateResponses, false);
      off.get('/wrong', { permission: 'catalog.read', resource: 'none' }, { 200: declared }, (_req, res) => void res.json({ id: 7 }));
      const offApp = express();
      offApp.use((req, _res, next) => {
        req.principal = { apiKeyId: 'k', userId: 'u', name: 'tester', role: 'admin', projectIds: null } as never;
        next();
      });
      offApp.use(off.router);
      const offServer = offApp.listen(0, '127.0.0.1');
      await new Promise((r) => offServer.once('listening', r));
      try {
        assert.equal((await fetch(`http://127.0.0.1:${(offServer.address() as AddressInfo).port}/wrong`)).status, 200);
      } finally {
        offServer.close();
      }
    } finally {
      server.close();
    }
  });
});

/** The served document is the generated one plus each operation's `x-permission`. */
function openApiDocumentWithPermissions(served: any) {
  const doc: any = openApiDocument();
  for (const [path, ops] of Object.entries(served.paths as Record<string, Record<string, any>>)) {
    for (const [method, op] of Object.entries(ops)) {
      for (const k of ['x-permission', 'x-deployment-wide']) if (k in op) doc.paths[path][method][k] = op[k];
    }
  }
  return doc;
}

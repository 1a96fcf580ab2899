import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { linearSignatureMatches } from '../../domain/tickets.js';
import { finalCheckpointOfObjective } from '../../store/objectives.js';
import { linearIssueDelivery, startLinearPeer, type LinearPeer } from '../support/linear-peer.js';
import { projectWithBudget, startTestPlatform, waitFor, type TestPlatform } from '../support/platform.js';

const API_KEY = 'lin_api_peerKey0123456789abcdefABCDEF01234567';
const HOOK_SECRET = 'lin_wh_secret_7f3c2a9e5d1b4c86';
const PUBLIC = 'https://autovibe.example.com';

/**
 * The Linear integration through the running platform against a local peer executing Linear's
 * GraphQL operations (test/support/linear-peer.ts): hooks with a Linear-Signature over the body
 * and a fresh webhookTimestamp are the only ones accepted; an issue labelled for AutoVibe starts
 * a linked objective whose status changes move the issue (issueUpdate stateId) and are commented
 * (commentCreate) with exact cost and checkpoint link; an objective created with `ticket: true`
 * gets its issue; an issue canceled in Linear cancels its objective.
 */
describe('api: Linear integration (local Linear GraphQL peer)', function () {
  this.timeout(300_000);
  let p: TestPlatform;
  let linear: LinearPeer;
  let project: string;
  let hookUrl: string;

  before(async () => {
    linear = await startLinearPeer({ apiKey: API_KEY });
    p = await startTestPlatform({
      label: 'linear',
      env: {
        AUTOVIBE_WEBHOOK_ALLOW_PRIVATE: '1',
        AUTOVIBE_WEBHOOK_MAX_ATTEMPTS: '5',
        AUTOVIBE_WEBHOOK_RETRY_INITIAL_MS: '100',
        AUTOVIBE_WEBHOOK_RETRY_MAX_S: '1',
        AUTOVIBE_PUBLIC_URL: `${PUBLIC}/`,
      },
    });
    project = await projectWithBudget(p, '5.00');
  });
  after(async () => {
    await p?.stop();
    await linear?.stop();
  });

  const put = (config: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
    p.api('PUT', `/v1/projects/${project}/integrations/linear`, { config: { apiUrl: linear.url, teamId: linear.teamId, ...config }, ...extra });
  const hook = async (h: { headers: Record<string, string>; body: string }) => {
    const res = await fetch(hookUrl.replace(PUBLIC, p.apiUrl), { method: 'POST', headers: h.headers, body: h.body });
    return { status: res.status, body: (await res.json()) as any };
  };
  const ended = (id: string) =>
    waitFor(async () => {
      const o = await p.api('GET', `/v1/objectives/${id}`);
      return ['completed', 'failed', 'cancelled'].includes(o.body.status) ? o.body : null;
    }, `objective ${id} to end`);
  const stateName = (issueId: string) => linear.states.find((s) => s.id === linear.issues.get(issueId)?.stateId)?.name;
  const commentsOn = (issueId: string) => linear.comments.filter((c) => c.issueId === issueId).map((c) => c.body);

  it('checks Linear-Signature as Linear signs it (hex HMAC-SHA256 of the raw body)', () => {
    const body = Buffer.from('{"action":"create","type":"Issue"}');
    const sig = crypto.createHmac('sha256', 's3cret').update(body).digest('hex');
    assert.equal(linearSignatureMatches('s3cret', body, sig), true);
    assert.equal(linearSignatureMatches('other', body, sig), false);
    assert.equal(linearSignatureMatches('s3cret', Buffer.from('{}'), sig), false);
    assert.equal(linearSignatureMatches('s3cret', body, `sha256=${sig}`), false, 'no prefix in Linear-Signature');
    assert.equal(linearSignatureMatches('s3cret', body, undefined), false);
  });

  it('keeps the API key and signing secret, never shows them; bad settings are a 400 naming the field', async () => {
    for (const [config, field] of [
      [{ teamId: undefined }, 'config.teamId'],
      [{ apiUrl: 'http://169.254.169.254/graphql' }, 'config.apiUrl'],
      [{ tokenType: 'password' }, 'config.tokenType'],
      [{ stateMap: { done: 'Done' } }, 'config.stateMap'],
    ] as const) {
      const res = await put(config);
      assert.equal(res.status, 400, JSON.stringify(res.body));
      assert.match(res.body.error.message, new RegExp(`^${field.replaceAll('.', '\\.')}`));
    }
    const res = await put({ triggerLabel: 'AutoVibe' }, { token: API_KEY, webhookSecret: HOOK_SECRET });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual([res.body.kind, res.body.hasToken, res.body.hasWebhookSecret, res.body.config.stateMap.cancelled], ['linear', true, true, 'Canceled']);
    hookUrl = res.body.hookUrl;
    assert.equal(hookUrl, `${PUBLIC}/hooks/linear/${res.body.id}`);
    const text = JSON.stringify([res.body, (await p.api('GET', `/v1/projects/${project}/integrations/linear`)).body, await p.db('audit_log')]);
    assert.ok(!text.includes(API_KEY) && !text.includes(HOOK_SECRET), 'no secret is shown or audited');
  });

  it('refuses forged, missing, wrongly keyed or stale deliveries with 401 and starts nothing', async () => {
    const issue = linear.addIssue({ title: 'forged', description: 'echo forged', labelled: true });
    const good = linearIssueDelivery(HOOK_SECRET, linear, { action: 'create', issue });
    const { 'linear-signature': _, ...unsigned } = good.headers;
    for (const [what, h] of [
      ['forged', { headers: { ...good.headers, 'linear-signature': 'b'.repeat(64) }, body: good.body }],
      ['missing', { headers: unsigned, body: good.body }],
      ['other secret', linearIssueDelivery('not-the-secret', linear, { action: 'create', issue })],
      ['body changed', { headers: good.headers, body: good.body.replace('echo forged', 'echo pwned') }],
      ['stale (a replay)', linearIssueDelivery(HOOK_SECRET, linear, { action: 'create', issue, webhookTimestamp: Date.now() - 10 * 60_000 })],
    ] as const) {
      const res = await hook(h);
      assert.equal(res.status, 401, `${what}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.error.code, 'unauthenticated');
    }
    assert.equal((await p.db('integration_deliveries')).length, 0, 'nothing recorded');
    assert.equal((await p.db('objectives').where({ project_id: project })).length, 0, 'nothing started');
  });

  it('starts one objective from a labelled issue; moves the issue and comments progress (exact cost, checkpoint link) through retries', async () => {
    const issue = linear.addIssue({ title: 'Write the linear file', description: 'echo from-linear > linear.txt', labelled: true });
    const created = linearIssueDelivery(HOOK_SECRET, linear, { action: 'create', issue });
    const res = await hook(created);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.outcome, 'objective created');
    const objectiveId: string = res.body.objectiveId;
    assert.equal((await hook(created)).body.status, 'duplicate', 'a redelivery is not acted on');
    const plain = linear.addIssue({ title: 'unlabelled', description: 'true' });
    assert.match((await hook(linearIssueDelivery(HOOK_SECRET, linear, { action: 'create', issue: plain }))).body.outcome, /^ignored/);
    assert.equal((await p.api('GET', `/v1/objectives/${objectiveId}`)).body.title, `${issue.identifier} Write the linear file`);

    linear.failNext(2);
    const done = await ended(objectiveId);
    assert.equal(done.status, 'completed', JSON.stringify(done));
    await waitFor(async () => stateName(issue.id) === 'Done' && commentsOn(issue.id).some((c) => c.includes('**completed**')), 'the issue Done and commented');
    const comment = commentsOn(issue.id).find((c) => c.includes('**completed**'))!;
    const cost = /Cost so far: (\d+\.\d+) USD/.exec(comment);
    assert.ok(cost, comment);
    assert.equal(cost[1], (await p.api('GET', `/v1/machines/${done.machines[0]}`)).body.cost.amount, 'the exact cost of its machine');
    const checkpoint = await finalCheckpointOfObjective(p.db, objectiveId);
    assert.ok(checkpoint && comment.includes(`${PUBLIC}/#/projects/${project}/tree?checkpoint=${checkpoint}`), comment);
    const updates = linear.requests.filter((r) => r.field === 'issueUpdate' && r.variables.id === issue.id).map((r) => r.variables.input.stateId);
    const byName = (n: string) => linear.states.find((s) => s.name === n)!.id;
    assert.deepEqual([...new Set(updates)], [byName('In Progress'), byName('Done')], 'In Progress, then Done');
    assert.ok(
      linear.requests.every((r) => r.headers.authorization === API_KEY),
      'the personal API key as Authorization, as is',
    );
    const statuses = commentsOn(issue.id).map((c) => /\*\*(\w+)\*\*\s*\(was/.exec(c)?.[1]);
    assert.deepEqual(statuses, [...new Set(statuses)], 'each status once, whatever the retries');
    assert.ok(statuses.includes('running'));
  });

  it('an issue given the label later starts its objective; canceling the issue in Linear cancels it', async () => {
    const issue = linear.addIssue({ title: 'Long job', description: 'sleep 600' });
    issue.labelIds = [linear.label.id];
    const labelled = await hook(linearIssueDelivery(HOOK_SECRET, linear, { action: 'update', issue, updatedFrom: { labelIds: [] } }));
    assert.equal(labelled.body.outcome, 'objective created', JSON.stringify(labelled.body));
    const objectiveId: string = labelled.body.objectiveId;
    const running = await waitFor(async () => {
      const o = (await p.api('GET', `/v1/objectives/${objectiveId}`)).body;
      return o.status === 'running' && o.machines.length ? o : null;
    }, 'the objective to run');
    await waitFor(async () => (await p.api('GET', `/v1/machines/${running.machines[0]}`)).body.status === 'running', 'its machine to run');
    const from = issue.stateId;
    issue.stateId = linear.states.find((s) => s.type === 'canceled')!.id;
    const canceled = await hook(linearIssueDelivery(HOOK_SECRET, linear, { action: 'update', issue, updatedFrom: { stateId: from } }));
    assert.equal(canceled.status, 200, JSON.stringify(canceled.body));
    assert.match(canceled.body.outcome, /^objective cancelled/);
    assert.equal((await ended(objectiveId)).status, 'cancelled');
    await waitFor(async () => commentsOn(issue.id).some((c) => c.includes('**cancelled**')), 'the cancellation commented');
  });

  it('makes a Linear issue for an objective created with ticket: true (a client-chosen id), and follows it', async () => {
    const res = await p.api('POST', `/v1/projects/${project}/objectives`, {
      title: 'Made here',
      machineType: 'shell',
      command: 'echo made-here',
      ticket: true,
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    const create = await waitFor(async () => linear.requests.find((r) => r.field === 'issueCreate' && r.variables.input.title === 'Made here'), 'the issue');
    const input = create.variables.input;
    assert.equal(input.teamId, linear.teamId);
    assert.match(input.id, /^[0-9a-f-]{36}$/);
    assert.ok(input.description.includes(res.body.id) && input.description.includes('echo made-here'), input.description);
    const link = await waitFor(async () => p.db('integration_links').where({ kind: 'ticket', objective_id: res.body.id }).first(), 'the link');
    assert.equal(link.external_id, input.id);
    assert.equal(link.url, linear.issueUrl(linear.issues.get(input.id)!));
    assert.equal((await ended(res.body.id)).status, 'completed');
    await waitFor(async () => stateName(input.id) === 'Done' && commentsOn(input.id).some((c) => c.includes('**completed**')), 'the issue done');
    assert.equal(linear.requests.filter((r) => r.field === 'issueCreate' && r.variables.input.title === 'Made here').length, 1, 'one issue');
  });
});

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { createUserWithKey } from '../../store/auth.js';
import { finalCheckpointOfObjective } from '../../store/objectives.js';
import { adfText, jiraSignatureMatches } from '../../domain/tickets.js';
import { jiraIssueDelivery, startJiraPeer, type JiraPeer } from '../support/jira-peer.js';
import { projectWithBudget, startTestPlatform, waitFor, type TestPlatform } from '../support/platform.js';

const EMAIL = 'bot@autovibe.example.com';
const JIRA_TOKEN = 'ATATT3xFfGF0jiraPeerToken0123456789abcdef';
const HOOK_SECRET = 'jira-hook-secret-4d2a9c7e1b3f';
const PUBLIC = 'https://autovibe.example.com';

/**
 * The Jira integration through the running platform against a local peer speaking Jira Cloud's
 * REST v3 (test/support/jira-peer.ts): hooks signed with X-Hub-Signature are the only ones
 * accepted; an issue labelled for AutoVibe starts a linked objective whose status changes move
 * the issue (transitions) and are commented in ADF with exact cost and checkpoint link; an
 * objective created with `ticket: true` gets its issue; an issue closed in Jira cancels its
 * objective.
 */
describe('api: Jira integration (local Jira REST v3 peer)', function () {
  this.timeout(300_000);
  let p: TestPlatform;
  let jira: JiraPeer;
  let project: string;
  let hookUrl: string;
  let viewerKey: string;

  before(async () => {
    jira = await startJiraPeer({ projectKey: 'AV', email: EMAIL, token: JIRA_TOKEN });
    p = await startTestPlatform({
      label: 'jira',
      env: {
        AUTOVIBE_WEBHOOK_ALLOW_PRIVATE: '1',
        AUTOVIBE_WEBHOOK_MAX_ATTEMPTS: '5',
        AUTOVIBE_WEBHOOK_RETRY_INITIAL_MS: '100',
        AUTOVIBE_WEBHOOK_RETRY_MAX_S: '1',
        AUTOVIBE_PUBLIC_URL: `${PUBLIC}/`,
      },
    });
    project = await projectWithBudget(p, '5.00');
    viewerKey = (await createUserWithKey(p.db, 'viewer-of-project', 'viewer', [project])).key;
  });
  after(async () => {
    await p?.stop();
    await jira?.stop();
  });

  const put = (config: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
    p.api('PUT', `/v1/projects/${project}/integrations/jira`, { config: { baseUrl: jira.url, projectKey: 'AV', email: EMAIL, ...config }, ...extra });
  const hook = async (h: { headers: Record<string, string>; body: string }) => {
    const res = await fetch(hookUrl.replace(PUBLIC, p.apiUrl), { method: 'POST', headers: h.headers, body: h.body });
    return { status: res.status, body: (await res.json()) as any };
  };
  const objectiveOf = async (key: string) =>
    (await p.db('integration_links').where({ kind: 'ticket', external_id: key }).first())?.objective_id as string | undefined;
  const ended = (id: string) =>
    waitFor(async () => {
      const o = await p.api('GET', `/v1/objectives/${id}`);
      return ['completed', 'failed', 'cancelled'].includes(o.body.status) ? o.body : null;
    }, `objective ${id} to end`);
  const commentsOn = (key: string) => jira.comments.filter((c) => c.key === key).map((c) => adfText(c.body));

  it('checks X-Hub-Signature as Jira signs it (sha256=<hex HMAC-SHA256 of the body>)', () => {
    const body = Buffer.from('{"webhookEvent":"jira:issue_created"}');
    const sig = `sha256=${crypto.createHmac('sha256', 's3cret').update(body).digest('hex')}`;
    assert.equal(jiraSignatureMatches('s3cret', body, sig), true);
    assert.equal(jiraSignatureMatches('s3cret', body, sig.toUpperCase().replace('SHA256=', 'sha256=')), true, 'hex in either case');
    assert.equal(jiraSignatureMatches('other', body, sig), false);
    assert.equal(jiraSignatureMatches('s3cret', Buffer.from('{}'), sig), false);
    assert.equal(jiraSignatureMatches('s3cret', body, sig.slice('sha256='.length)), false, 'the sha256= prefix is required');
    assert.equal(jiraSignatureMatches('s3cret', body, undefined), false);
  });

  it('keeps the API token and webhook secret, never shows them; bad settings are a 400 naming the field', async () => {
    for (const [config, field] of [
      [{ projectKey: 'av' }, 'config.projectKey'],
      [{ baseUrl: 'http://169.254.169.254/' }, 'config.baseUrl'],
      [{ email: 'not-an-email' }, 'config.email'],
      [{ statusMap: { running: '' } }, 'config.statusMap.running'],
      [{ owner: 'octo' }, 'config'],
    ] as const) {
      const res = await put(config);
      assert.equal(res.status, 400, JSON.stringify(res.body));
      assert.match(res.body.error.message, new RegExp(`^${field.replaceAll('.', '\\.')}`));
    }
    const res = await put({ triggerLabel: 'autovibe' }, { token: JIRA_TOKEN, webhookSecret: HOOK_SECRET });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(
      [res.body.kind, res.body.hasToken, res.body.hasWebhookSecret, res.body.config.work, res.body.config.statusMap.completed],
      ['jira', true, true, 'command', 'Done'],
    );
    hookUrl = res.body.hookUrl;
    assert.equal(hookUrl, `${PUBLIC}/hooks/jira/${res.body.id}`);
    const read = await p.api('GET', `/v1/projects/${project}/integrations/jira`, undefined, { key: viewerKey });
    assert.equal(read.status, 200, JSON.stringify(read.body));
    const text = JSON.stringify([res.body, read.body, await p.db('audit_log').where({ subject_type: 'integration' })]);
    assert.ok(!text.includes(JIRA_TOKEN) && !text.includes(HOOK_SECRET), 'no secret is shown or audited');
  });

  it('refuses forged, missing or wrongly keyed signatures with 401 and starts nothing', async () => {
    const issue = jira.addIssue({ summary: 'forged', description: 'echo forged > forged.txt', labels: ['autovibe'] });
    const good = jiraIssueDelivery(HOOK_SECRET, jira, { event: 'jira:issue_created', issue });
    const { 'x-hub-signature': _, ...unsigned } = good.headers;
    for (const [what, h] of [
      ['forged', { headers: { ...good.headers, 'x-hub-signature': `sha256=${'a'.repeat(64)}` }, body: good.body }],
      ['missing', { headers: unsigned, body: good.body }],
      ['other secret', jiraIssueDelivery('not-the-secret', jira, { event: 'jira:issue_created', issue })],
      ['body changed', { headers: good.headers, body: good.body.replace('forged.txt', 'pwned.txt') }],
    ] as const) {
      const res = await hook(h);
      assert.equal(res.status, 401, `${what}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.error.code, 'unauthenticated');
    }
    assert.equal((await p.db('integration_deliveries')).length, 0, 'nothing recorded');
    assert.equal((await p.db('objectives').where({ project_id: project })).length, 0, 'nothing started');
  });

  it('starts one objective from a labelled issue; moves the issue and comments progress (ADF, exact cost, checkpoint link) through retries', async () => {
    const issue = jira.addIssue({ summary: 'Write the jira file', description: 'echo from-jira > jira.txt', labels: ['autovibe'] });
    const created = jiraIssueDelivery(HOOK_SECRET, jira, { event: 'jira:issue_created', issue });
    const res = await hook(created);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.outcome, 'objective created');
    const objectiveId: string = res.body.objectiveId;
    assert.equal((await hook(created)).body.status, 'duplicate', 'a redelivery is not acted on');
    const other = jira.addIssue({ summary: 'unlabelled', description: 'true' });
    assert.match((await hook(jiraIssueDelivery(HOOK_SECRET, jira, { event: 'jira:issue_created', issue: other }))).body.outcome, /^ignored/);
    const o = await p.api('GET', `/v1/objectives/${objectiveId}`);
    assert.equal(o.body.title, `${issue.key} Write the jira file`);
    assert.equal(await objectiveOf(issue.key), objectiveId);

    jira.failNext(2);
    const done = await ended(objectiveId);
    assert.equal(done.status, 'completed', JSON.stringify(done));
    await waitFor(
      async () => issue.status === 'Done' && commentsOn(issue.key).some((c) => c.includes(' is now completed')),
      `${issue.key} moved to Done and commented`,
    );
    const comment = jira.comments.find((c) => c.key === issue.key && adfText(c.body).includes(' is now completed'))!;
    assert.equal(comment.body.type, 'doc', 'an Atlassian Document');
    const text = JSON.stringify(comment.body);
    const cost = /Cost so far: (\d+\.\d+) USD/.exec(adfText(comment.body));
    assert.ok(cost, adfText(comment.body));
    const machineCosts = await Promise.all(done.machines.map((m: string) => p.api('GET', `/v1/machines/${m}`).then((r) => r.body.cost.amount as string)));
    assert.equal(cost[1], machineCosts[0], 'the exact cost of its machine');
    const checkpoint = await finalCheckpointOfObjective(p.db, objectiveId);
    assert.ok(checkpoint, 'the objective ended with a checkpoint');
    assert.ok(text.includes(`${PUBLIC}/#/projects/${project}/tree?checkpoint=${checkpoint}`), `the latest checkpoint linked: ${text}`);
    const transitions = jira.requests
      .filter((r) => r.method === 'POST' && r.path === `/rest/api/3/issue/${issue.key}/transitions`)
      .map((r) => r.body.transition.id);
    assert.deepEqual([...new Set(transitions)], ['21', '31'], 'In Progress, then Done');
    const calls = jira.requests.filter((r) => r.path.startsWith(`/rest/api/3/issue/${issue.key}/`));
    assert.ok(
      calls.every((r) => r.headers.authorization === `Basic ${Buffer.from(`${EMAIL}:${JIRA_TOKEN}`).toString('base64')}`),
      'Basic auth email:token',
    );
    const statuses = commentsOn(issue.key).map((c) => / is now (\w+)/.exec(c)?.[1]);
    assert.deepEqual(statuses, [...new Set(statuses)], 'each status once, whatever the retries');
    assert.ok(statuses.includes('running'));
  });

  it('an issue given the label later starts its objective; closing the issue in Jira cancels it', async () => {
    const issue = jira.addIssue({ summary: 'Long job', description: 'sleep 600' });
    issue.labels = ['autovibe'];
    const labelled = await hook(
      jiraIssueDelivery(HOOK_SECRET, jira, { event: 'jira:issue_updated', issue, changelog: [{ field: 'labels', fromString: '', toString: 'autovibe' }] }),
    );
    assert.equal(labelled.body.outcome, 'objective created', JSON.stringify(labelled.body));
    const objectiveId: string = labelled.body.objectiveId;
    const running = await waitFor(async () => {
      const o = (await p.api('GET', `/v1/objectives/${objectiveId}`)).body;
      return o.status === 'running' && o.machines.length ? o : null;
    }, 'the objective to run');
    await waitFor(async () => (await p.api('GET', `/v1/machines/${running.machines[0]}`)).body.status === 'running', 'its machine to run');
    const from = issue.status;
    issue.status = 'Cancelled';
    const closed = await hook(
      jiraIssueDelivery(HOOK_SECRET, jira, { event: 'jira:issue_updated', issue, changelog: [{ field: 'status', fromString: from, toString: 'Cancelled' }] }),
    );
    assert.equal(closed.status, 200, JSON.stringify(closed.body));
    assert.match(closed.body.outcome, /^objective cancelled/);
    assert.equal((await ended(objectiveId)).status, 'cancelled');
    await waitFor(async () => commentsOn(issue.key).some((c) => c.includes(' is now cancelled')), 'the cancellation commented');
    const again = await hook(
      jiraIssueDelivery(HOOK_SECRET, jira, {
        event: 'jira:issue_updated',
        issue,
        changelog: [{ field: 'status', fromString: 'Cancelled', toString: 'Cancelled' }],
      }),
    );
    assert.match(again.body.outcome, /^ignored: objective .* already ended/);
  });

  it('makes a Jira issue for an objective created with ticket: true, once though the first answer is lost, and follows it', async () => {
    const before = jira.issues.size;
    jira.loseNextCreateAnswer();
    const res = await p.api('POST', `/v1/projects/${project}/objectives`, {
      title: 'Made here',
      machineType: 'shell',
      command: 'echo made-here',
      ticket: true,
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    const create = await waitFor(
      async () => jira.requests.find((r) => r.method === 'POST' && r.path === '/rest/api/3/issue' && r.body.fields.summary === 'Made here'),
      'the issue',
    );
    assert.deepEqual([create.body.fields.project.key, create.body.fields.issuetype.name, create.body.fields.description.type], ['AV', 'Task', 'doc']);
    assert.ok(adfText(create.body.fields.description).includes(res.body.id));
    assert.ok(adfText(create.body.fields.description).includes('echo made-here'));
    assert.equal(jira.issues.size, before + 1, 'one issue, though the answer to its creation was lost');
    const key = [...jira.issues.values()].find((i) => i.summary === 'Made here')!.key;
    assert.equal(await waitFor(() => objectiveOf(key), 'the link'), res.body.id);
    assert.equal((await ended(res.body.id)).status, 'completed');
    await waitFor(async () => jira.issues.get(key)!.status === 'Done' && commentsOn(key).some((c) => c.includes(' is now completed')), 'the issue done');
    assert.equal(
      jira.requests.filter((r) => r.method === 'POST' && r.path === '/rest/api/3/issue' && r.body.fields.summary === 'Made here').length,
      1,
      'created once',
    );
    const searches = jira.requests.filter((r) => r.path.startsWith('/rest/api/3/search/jql?'));
    assert.ok(searches.length >= 2, 'the retry looked for the issue the first try made');
    assert.equal(new URL(searches.at(-1)!.path, jira.url).searchParams.get('jql'), `project = "AV" AND labels = "autovibe-${res.body.id}"`);
    assert.deepEqual(jira.issues.get(key)!.labels, [`autovibe-${res.body.id}`]);
    const audit = await p.db('audit_log').where({ action: 'objective.ticket_created', subject_id: res.body.id });
    assert.equal(audit.length, 1);

    const refused = await p.api('POST', `/v1/projects/${await projectWithBudget(p, '1.00')}/objectives`, {
      title: 'x',
      machineType: 'shell',
      command: 'true',
      ticket: true,
    });
    assert.equal(refused.status, 422, JSON.stringify(refused.body));
    assert.match(refused.body.error.message, /^ticket: .* no jira or linear integration/);
  });
});

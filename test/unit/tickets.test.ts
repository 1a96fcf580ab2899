import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import {
  adfText,
  jiraDecision,
  jiraProgressComment,
  JIRA_STATUS_DEFAULTS,
  linearDecision,
  linearIssueId,
  linearTimestampProblem,
  LINEAR_STATE_DEFAULTS,
  type JiraConfig,
  type JiraWebhookPayload,
  type LinearConfig,
  type LinearWebhookPayload,
} from '../../domain/tickets.js';

const common = { triggerLabel: 'autovibe', createTickets: false, machineType: 'shell', work: 'command' as const, progressComments: true };
const jira: JiraConfig = {
  baseUrl: 'https://acme.atlassian.net/',
  projectKey: 'AV',
  email: 'a@b.c',
  issueType: 'Task',
  statusMap: JIRA_STATUS_DEFAULTS,
  ...common,
};
const linear: LinearConfig = { apiUrl: 'https://api.linear.app/graphql', teamId: 'team-1', tokenType: 'apiKey', stateMap: LINEAR_STATE_DEFAULTS, ...common };

const doc = (text: string) => ({ version: 1, type: 'doc', content: [{ type: 'paragraph', content: [{ type: 'text', text }] }] });
const jiraIssue = (over: Partial<NonNullable<JiraWebhookPayload['issue']>['fields']> = {}, key = 'AV-7') => ({
  id: '10007',
  key,
  fields: { summary: 'Fix it', description: doc('echo fix'), labels: ['AutoVibe'], status: { name: 'To Do', statusCategory: { key: 'new' } }, ...over },
});

/** What a Jira or Linear webhook asks of the platform (domain/tickets.ts), without a platform. */
describe('unit: ticket decisions, ADF and Linear ids', () => {
  it('Jira: a created issue with the label (any case) starts; without it, or of another project, is ignored', () => {
    const start = jiraDecision(jira, { webhookEvent: 'jira:issue_created', issue: jiraIssue() });
    assert.deepEqual(start, {
      start: { externalId: 'AV-7', number: 7, key: 'AV-7', title: 'Fix it', body: 'echo fix', url: 'https://acme.atlassian.net/browse/AV-7' },
    });
    assert.ok('ignored' in jiraDecision(jira, { webhookEvent: 'jira:issue_created', issue: jiraIssue({ labels: ['bug'] }) }));
    assert.ok('ignored' in jiraDecision(jira, { webhookEvent: 'jira:issue_created', issue: jiraIssue({}, 'OPS-1') }));
    assert.ok('ignored' in jiraDecision({ ...jira, triggerLabel: null }, { webhookEvent: 'jira:issue_created', issue: jiraIssue() }), 'no label: none start');
    assert.ok('ignored' in jiraDecision(jira, { webhookEvent: 'comment_created', issue: jiraIssue() }));
  });

  it('Jira: an update adding the label starts; one keeping or removing it does not; a move to a done-category status cancels', () => {
    const labels = (fromString: string, toString: string): JiraWebhookPayload => ({
      webhookEvent: 'jira:issue_updated',
      issue: jiraIssue(),
      changelog: { items: [{ field: 'labels', fromString, toString }] },
    });
    assert.ok('start' in jiraDecision(jira, labels('bug', 'bug autovibe')));
    assert.ok('ignored' in jiraDecision(jira, labels('autovibe', 'autovibe bug')));
    assert.ok('ignored' in jiraDecision(jira, labels('autovibe', '')));
    const moved = (name: string, category: string): JiraWebhookPayload => ({
      webhookEvent: 'jira:issue_updated',
      issue: jiraIssue({ status: { name, statusCategory: { key: category } } }),
      changelog: { items: [{ field: 'status', fromString: 'In Progress', toString: name }] },
    });
    assert.deepEqual(jiraDecision(jira, moved('Closed', 'done')), { cancel: { externalId: 'AV-7', status: 'Closed' } });
    assert.ok('ignored' in jiraDecision(jira, moved('In Review', 'indeterminate')));
    assert.ok('cancel' in jiraDecision({ ...jira, statusMap: { ...jira.statusMap, cancelled: "Won't do" } }, moved("Won't do", 'indeterminate')));
  });

  it('Linear: create with the label starts; an update adding it starts; a canceled or completed state cancels; other teams are ignored', () => {
    const data = { id: 'uuid-1', identifier: 'ENG-12', title: 'Do', description: 'echo do', url: 'https://linear.app/x/issue/ENG-12', teamId: 'team-1' };
    const label = { id: 'l1', name: 'AutoVibe' };
    const p = (over: Partial<LinearWebhookPayload>): LinearWebhookPayload => ({
      type: 'Issue',
      action: 'create',
      data: { ...data, labels: [label], labelIds: ['l1'] },
      ...over,
    });
    assert.deepEqual(linearDecision(linear, p({})), {
      start: { externalId: 'uuid-1', number: 12, key: 'ENG-12', title: 'Do', body: 'echo do', url: 'https://linear.app/x/issue/ENG-12' },
    });
    assert.ok('ignored' in linearDecision(linear, p({ data: { ...data, labels: [], labelIds: [] } })));
    assert.ok('ignored' in linearDecision(linear, p({ data: { ...data, teamId: 'team-2', labels: [label] } })));
    assert.ok('ignored' in linearDecision(linear, p({ type: 'Comment' })));
    assert.ok('start' in linearDecision(linear, p({ action: 'update', updatedFrom: { labelIds: [] } })));
    assert.ok('ignored' in linearDecision(linear, p({ action: 'update', updatedFrom: { labelIds: ['l1'] } })), 'it had the label already');
    for (const type of ['canceled', 'completed']) {
      const d = p({ action: 'update', data: { ...data, state: { id: 's', name: type, type } }, updatedFrom: { stateId: 'before' } });
      assert.ok('cancel' in linearDecision(linear, d), type);
    }
    assert.ok(
      'ignored' in
        linearDecision(
          linear,
          p({ action: 'update', data: { ...data, state: { id: 's', name: 'In Review', type: 'started' } }, updatedFrom: { stateId: 'b' } }),
        ),
    );
  });

  it('Linear: webhookTimestamp must be present and within a minute of now', () => {
    const now = Date.now();
    assert.equal(linearTimestampProblem({ webhookTimestamp: now - 30_000 }, now), null);
    assert.match(linearTimestampProblem({ webhookTimestamp: now - 120_000 }, now)!, /replay/);
    assert.match(linearTimestampProblem({ webhookTimestamp: now + 120_000 }, now)!, /replay/);
    assert.match(linearTimestampProblem({}, now)!, /no webhookTimestamp/);
    assert.match(linearTimestampProblem({ webhookTimestamp: String(now) }, now)!, /no webhookTimestamp/);
  });

  it('reads ADF as text and writes progress comments in ADF; Linear issue ids are stable UUIDv4s per integration and objective', () => {
    const d = {
      type: 'doc',
      version: 1,
      content: [doc('line one').content[0], { type: 'bulletList', content: [{ type: 'listItem', content: [doc('item').content[0]] }] }],
    };
    assert.equal(adfText(d), 'line one\nitem');
    const c = jiraProgressComment({
      objective: { id: 'o1', title: 'T', status: 'completed', previous: 'running', progress: 1, error: null },
      link: 'https://x/#/projects/p/objectives',
      cost: { amount: '0.0123', currency: 'USD' },
      checkpoint: { id: 'cp1', link: 'https://x/#/projects/p/tree?checkpoint=cp1' },
    });
    assert.equal(c.type, 'doc');
    assert.match(adfText(c), /is now completed \(was running\)/);
    assert.match(adfText(c), /Cost so far: 0\.0123 USD/);
    assert.ok(JSON.stringify(c).includes('"href":"https://x/#/projects/p/tree?checkpoint=cp1"'));
    const id = linearIssueId('i1', 'o1');
    assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.equal(linearIssueId('i1', 'o1'), id);
    assert.notEqual(linearIssueId('i2', 'o1'), id);
    assert.notEqual(linearIssueId('i1', crypto.randomUUID()), id);
  });
});

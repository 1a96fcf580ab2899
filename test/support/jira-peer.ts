import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A local HTTP peer that speaks Jira Cloud's REST API v3 for the endpoints the platform calls
 * (https://developer.atlassian.com/cloud/jira/platform/rest/v3/): create an issue, get an issue's
 * transitions, transition it, comment on it. Request and response bodies are Jira's: fields of
 * `POST /rest/api/3/issue`, `{ transition: { id } }`, a comment `{ body: <Atlassian Document
 * Format> }` (a plain string body is refused with 400, as v3 does). It answers 401 without HTTP
 * Basic auth of the configured email and API token, 404 "Issue does not exist or you do not have
 * permission to see it." for an unknown key, and 400 for a transition the issue cannot take. Its
 * workflow is Jira's simplified one: To Do, In Progress, Done, plus Cancelled; every status can
 * go to every other. `GET /rest/api/3/search/jql` understands the JQL `project = "K" AND labels =
 * "l"` (either clause, quoted or not), answering `{ issues, isLast }`. A stand-in for <site>.atlassian.net in tests, named as such; it keeps every
 * request it received.
 */
export interface JiraRequest {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  body: any;
}

export interface JiraIssue {
  id: string;
  key: string;
  summary: string;
  description: any;
  labels: string[];
  status: string;
  issueType: string;
}

export interface JiraPeer {
  /** The site's base URL (as https://<your-domain>.atlassian.net). */
  url: string;
  projectKey: string;
  requests: JiraRequest[];
  issues: Map<string, JiraIssue>;
  comments: Array<{ key: string; id: string; body: any }>;
  /** Adds an issue as if made in Jira's UI; answers it. */
  addIssue(i: { summary: string; description?: string; labels?: string[] }): JiraIssue;
  /** Makes the next `n` calls answer 503 (an outage), to exercise retries. */
  failNext(n: number): void;
  /** The next issue creation is done but its answer is lost (the connection drops). */
  loseNextCreateAnswer(): void;
  stop(): Promise<void>;
}

export const JIRA_STATUSES = [
  { id: '10000', name: 'To Do', category: { id: 2, key: 'new', colorName: 'blue-gray', name: 'To Do' } },
  { id: '3', name: 'In Progress', category: { id: 4, key: 'indeterminate', colorName: 'yellow', name: 'In Progress' } },
  { id: '10001', name: 'Done', category: { id: 3, key: 'done', colorName: 'green', name: 'Done' } },
  { id: '10002', name: 'Cancelled', category: { id: 3, key: 'done', colorName: 'green', name: 'Done' } },
] as const;
/** Transition ids of the simplified workflow: one global transition into each status. */
const TRANSITION_IDS: Record<string, string> = { 'To Do': '11', 'In Progress': '21', Done: '31', Cancelled: '41' };

/** The ADF text of a plain string (for issues made in the "UI"). */
export const adfOf = (text: string) => ({ version: 1, type: 'doc', content: [{ type: 'paragraph', content: text ? [{ type: 'text', text }] : [] }] });

const isAdf = (b: any) => b && typeof b === 'object' && b.type === 'doc' && b.version === 1 && Array.isArray(b.content);

export async function startJiraPeer(o: { projectKey: string; email: string; token: string }): Promise<JiraPeer> {
  const requests: JiraRequest[] = [];
  const issues = new Map<string, JiraIssue>();
  const comments: Array<{ key: string; id: string; body: any }> = [];
  let failures = 0;
  let loseCreate = false;
  let nextIssue = 1;
  let nextId = 10_000;
  let origin = '';
  const basic = `Basic ${Buffer.from(`${o.email}:${o.token}`).toString('base64')}`;
  const account = { accountId: '5b10ac8d82e05b22cc7d4ef5', displayName: 'AutoVibe bot', active: true };
  const make = (summary: string, description: any, labels: string[], issueType = 'Task'): JiraIssue => {
    const n = nextIssue++;
    const issue = { id: String(nextId++), key: `${o.projectKey}-${n}`, summary, description, labels, status: 'To Do', issueType };
    issues.set(issue.key, issue);
    return issue;
  };
  const transitionsOf = (issue: JiraIssue) =>
    JIRA_STATUSES.filter((s) => s.name !== issue.status).map((s) => ({
      id: TRANSITION_IDS[s.name]!,
      name: s.name,
      to: { self: `${origin}/rest/api/3/status/${s.id}`, id: s.id, name: s.name, statusCategory: s.category },
      hasScreen: false,
      isGlobal: true,
      isInitial: false,
      isAvailable: true,
      isConditional: false,
      isLooped: false,
    }));

  const server = http.createServer((req, res) => {
    let text = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (text += c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://jira.local');
      let body: any = null;
      try {
        body = text ? JSON.parse(text) : null;
      } catch {
        body = text;
      }
      requests.push({ method: req.method ?? '', path: `${url.pathname}${url.search}`, headers: req.headers, body });
      const send = (status: number, payload?: unknown) => {
        if (payload === undefined) {
          res.writeHead(status);
          return res.end();
        }
        res.writeHead(status, { 'content-type': 'application/json;charset=UTF-8' });
        res.end(JSON.stringify(payload));
      };
      const problem = (status: number, errorMessages: string[], errors: Record<string, string> = {}) => send(status, { errorMessages, errors });
      if (failures > 0) {
        failures--;
        return problem(503, ['Service Unavailable']);
      }
      if (req.headers.authorization !== basic) return problem(401, ['Client must be authenticated to access this resource.']);
      if (req.method === 'POST' && url.pathname === '/rest/api/3/issue') {
        const f = body?.fields ?? {};
        if (f.project?.key !== o.projectKey) return problem(400, [], { project: 'Specify a valid project ID or key' });
        if (typeof f.summary !== 'string' || !f.summary.trim()) return problem(400, [], { summary: 'You must specify a summary of the issue.' });
        if (!f.issuetype?.name && !f.issuetype?.id) return problem(400, [], { issuetype: 'Specify an issue type' });
        if (f.description !== undefined && !isAdf(f.description))
          return problem(400, [], { description: 'Operation value must be an Atlassian Document (see the Atlassian Document Format)' });
        const issue = make(f.summary, f.description ?? null, f.labels ?? [], f.issuetype.name);
        if (loseCreate) {
          loseCreate = false;
          return req.socket.destroy();
        }
        return send(201, { id: issue.id, key: issue.key, self: `${origin}/rest/api/3/issue/${issue.id}` });
      }
      if (req.method === 'GET' && url.pathname === '/rest/api/3/search/jql') {
        const jql = url.searchParams.get('jql') ?? '';
        const clauses = jql.split(/\s+AND\s+/i).map((c) => /^\s*(project|labels)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|(\S+))\s*$/i.exec(c));
        if (!jql.trim() || clauses.some((c) => !c))
          return problem(400, [`Error in the JQL Query: this peer reads only project = "K" AND labels = "l" (${jql})`]);
        const want = Object.fromEntries(clauses.map((c) => [c![1]!.toLowerCase(), (c![2] ?? c![3]!).replace(/\\(.)/g, '$1')]));
        const found = [...issues.values()].filter(
          (i) => (!want.project || i.key.startsWith(`${want.project}-`)) && (!want.labels || i.labels.includes(want.labels)),
        );
        const max = Number(url.searchParams.get('maxResults') ?? 50);
        return send(200, {
          issues: found
            .slice(0, max)
            .map((i) => ({ expand: '', id: i.id, self: `${origin}/rest/api/3/issue/${i.id}`, key: i.key, fields: { summary: i.summary } })),
          isLast: found.length <= max,
        });
      }
      const m = /^\/rest\/api\/3\/issue\/([^/]+)\/(transitions|comment)$/.exec(url.pathname);
      if (!m) return problem(404, ['Not Found']);
      const issue = issues.get(decodeURIComponent(m[1]!));
      if (!issue) return problem(404, ['Issue does not exist or you do not have permission to see it.']);
      if (m[2] === 'transitions' && req.method === 'GET') return send(200, { expand: 'transitions', transitions: transitionsOf(issue) });
      if (m[2] === 'transitions' && req.method === 'POST') {
        const t = transitionsOf(issue).find((x) => x.id === String(body?.transition?.id ?? ''));
        if (!t) return problem(400, [`Transition id '${String(body?.transition?.id)}' is not valid for this issue.`]);
        issue.status = t.to.name;
        return send(204);
      }
      if (m[2] === 'comment' && req.method === 'POST') {
        if (!isAdf(body?.body)) return problem(400, [], { comment: 'Comment body is not valid!' });
        const id = String(nextId++);
        comments.push({ key: issue.key, id, body: body.body });
        const now = new Date().toISOString().replace('Z', '+0000');
        return send(201, {
          self: `${origin}/rest/api/3/issue/${issue.id}/comment/${id}`,
          id,
          author: account,
          body: body.body,
          updateAuthor: account,
          created: now,
          updated: now,
          jsdPublic: true,
        });
      }
      return problem(405, [`Method ${req.method} not allowed`]);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url: origin,
    projectKey: o.projectKey,
    requests,
    issues,
    comments,
    addIssue: (i) => make(i.summary, adfOf(i.description ?? ''), i.labels ?? []),
    failNext: (n) => void (failures = n),
    loseNextCreateAnswer: () => void (loseCreate = true),
    stop: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/**
 * A Jira Cloud issue webhook delivery (https://developer.atlassian.com/cloud/jira/platform/webhooks/):
 * `jira:issue_created` or `jira:issue_updated` with the issue (and a changelog for an update),
 * headers X-Atlassian-Webhook-Identifier and, for a webhook with a secret, X-Hub-Signature:
 * sha256=<hex HMAC-SHA256 of the raw body>.
 */
export function jiraIssueDelivery(
  secret: string,
  peer: JiraPeer,
  p: {
    event: 'jira:issue_created' | 'jira:issue_updated' | 'comment_created';
    issue: JiraIssue;
    changelog?: Array<{ field: string; fromString: string | null; toString: string | null }>;
  },
  identifier: string = crypto.randomUUID(),
): { headers: Record<string, string>; body: string } {
  const status = statusOf(p.issue.status);
  const payload = {
    timestamp: Date.now(),
    webhookEvent: p.event,
    ...(p.event === 'comment_created' ? {} : { issue_event_type_name: p.event === 'jira:issue_created' ? 'issue_created' : 'issue_generic' }),
    user: { accountId: '557058:f58131cb-b67d-43c7-b30d-6b58d40bd077', displayName: 'Mia Krystof', active: true },
    issue: {
      id: p.issue.id,
      self: `${peer.url}/rest/api/3/issue/${p.issue.id}`,
      key: p.issue.key,
      fields: {
        summary: p.issue.summary,
        description: p.issue.description,
        labels: p.issue.labels,
        issuetype: { id: '10001', name: p.issue.issueType },
        project: { id: '10000', key: peer.projectKey, name: 'AutoVibe' },
        status: { id: status.id, name: status.name, statusCategory: status.category },
      },
    },
    ...(p.changelog
      ? {
          changelog: {
            id: String(Math.floor(Math.random() * 1e6)),
            items: p.changelog.map((c) => ({
              field: c.field,
              fieldtype: 'jira',
              fieldId: c.field,
              from: null,
              fromString: c.fromString,
              to: null,
              toString: c.toString,
            })),
          },
        }
      : {}),
  };
  const body = JSON.stringify(payload);
  return {
    headers: {
      'content-type': 'application/json; charset=utf-8',
      'user-agent': 'Atlassian Webhook HTTP Client',
      'x-atlassian-webhook-identifier': identifier,
      'x-atlassian-webhook-retry': '0',
      'x-hub-signature': `sha256=${crypto.createHmac('sha256', secret).update(body).digest('hex')}`,
    },
    body,
  };
}

const statusOf = (name: string) => JIRA_STATUSES.find((s) => s.name === name) ?? JIRA_STATUSES[0];

import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { buildSchema, graphql, type GraphQLSchema } from 'graphql';

/**
 * A local HTTP peer that speaks Linear's GraphQL API (https://linear.app/developers/graphql) for
 * the operations the platform sends: `issueCreate`, `issueUpdate`, `commentCreate`, `issue(id)`
 * and a team's workflow `states`. Requests are executed by graphql-js against a subset of
 * Linear's schema (the same type, input and field names), so a query Linear would reject as
 * invalid is rejected here too, with GraphQL's `errors`. Without `Authorization: <the API key>`
 * (a personal key, no "Bearer") it answers 400 with Linear's AUTHENTICATION_ERROR; an unknown
 * issue is "Entity not found: Issue". A stand-in for api.linear.app in tests, named as such; it
 * keeps every request it received.
 */
export interface LinearRequest {
  headers: http.IncomingHttpHeaders;
  query: string;
  variables: Record<string, any>;
  /** The first field of the operation (issueCreate, commentCreate, ...). */
  field: string;
}

export interface LinearIssueRecord {
  id: string;
  identifier: string;
  number: number;
  title: string;
  description: string | null;
  stateId: string;
  labelIds: string[];
}

export interface LinearPeer {
  /** The GraphQL endpoint (as https://api.linear.app/graphql). */
  url: string;
  teamId: string;
  teamKey: string;
  states: Array<{ id: string; name: string; type: string }>;
  label: { id: string; name: string };
  requests: LinearRequest[];
  issues: Map<string, LinearIssueRecord>;
  comments: Array<{ id: string; issueId: string; body: string }>;
  /** Adds an issue as if made in Linear's app; answers it. */
  addIssue(i: { title: string; description?: string; labelled?: boolean }): LinearIssueRecord;
  /** The issue's web URL. */
  issueUrl(i: LinearIssueRecord): string;
  failNext(n: number): void;
  stop(): Promise<void>;
}

const SCHEMA = `
type Query {
  issue(id: String!): Issue!
  team(id: String!): Team!
}
type Mutation {
  issueCreate(input: IssueCreateInput!): IssuePayload!
  issueUpdate(id: String!, input: IssueUpdateInput!): IssuePayload!
  commentCreate(input: CommentCreateInput!): CommentPayload!
}
input IssueCreateInput {
  id: String
  teamId: String!
  title: String
  description: String
  stateId: String
  labelIds: [String!]
  priority: Int
}
input IssueUpdateInput {
  title: String
  description: String
  stateId: String
  labelIds: [String!]
  priority: Int
}
input CommentCreateInput {
  id: String
  issueId: String
  body: String
}
type IssuePayload {
  lastSyncId: Float!
  success: Boolean!
  issue: Issue
}
type CommentPayload {
  lastSyncId: Float!
  success: Boolean!
  comment: Comment
}
type Issue {
  id: ID!
  identifier: String!
  number: Float!
  title: String!
  description: String
  url: String!
  state: WorkflowState!
  team: Team!
  labels: IssueLabelConnection!
}
type IssueLabel {
  id: ID!
  name: String!
}
type IssueLabelConnection {
  nodes: [IssueLabel!]!
}
type WorkflowState {
  id: ID!
  name: String!
  type: String!
}
type WorkflowStateConnection {
  nodes: [WorkflowState!]!
}
type Team {
  id: ID!
  key: String!
  name: String!
  states: WorkflowStateConnection!
}
type Comment {
  id: ID!
  body: String!
  url: String!
  issue: Issue
}
`;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export async function startLinearPeer(o: { apiKey: string; teamKey?: string; workspace?: string }): Promise<LinearPeer> {
  const teamKey = o.teamKey ?? 'ENG';
  const workspace = o.workspace ?? 'autovibe-test';
  const teamId = crypto.randomUUID();
  const states = [
    { name: 'Backlog', type: 'backlog' },
    { name: 'Todo', type: 'unstarted' },
    { name: 'In Progress', type: 'started' },
    { name: 'Done', type: 'completed' },
    { name: 'Canceled', type: 'canceled' },
  ].map((s) => ({ id: crypto.randomUUID(), ...s }));
  const label = { id: crypto.randomUUID(), name: 'autovibe' };
  const requests: LinearRequest[] = [];
  const issues = new Map<string, LinearIssueRecord>();
  const comments: Array<{ id: string; issueId: string; body: string }> = [];
  let failures = 0;
  let next = 1;
  let syncId = 1000;
  const team = { id: teamId, key: teamKey, name: 'Engineering', states: { nodes: states } };
  const issueUrl = (i: LinearIssueRecord) =>
    `https://linear.app/${workspace}/issue/${i.identifier}/${i.title
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .slice(0, 40)}`;
  const present = (i: LinearIssueRecord) => ({
    ...i,
    url: issueUrl(i),
    state: states.find((s) => s.id === i.stateId),
    team,
    labels: { nodes: i.labelIds.map((id) => (id === label.id ? label : { id, name: id })) },
  });
  const notFound = (what: string) => new Error(`Entity not found: ${what}`);
  const make = (input: { id?: string | null; title: string; description?: string | null; stateId?: string | null; labelIds?: string[] | null }) => {
    const id = input.id ?? crypto.randomUUID();
    if (!UUID.test(id)) throw new Error('Argument Validation Error: id must be a UUID');
    if (issues.has(id)) throw new Error('Entity already exists: Issue');
    const number = next++;
    const issue: LinearIssueRecord = {
      id,
      identifier: `${teamKey}-${number}`,
      number,
      title: input.title,
      description: input.description ?? null,
      stateId: input.stateId ?? states[1]!.id,
      labelIds: input.labelIds ?? [],
    };
    issues.set(id, issue);
    return issue;
  };
  const root = {
    issue: ({ id }: { id: string }) => {
      const i = issues.get(id) ?? [...issues.values()].find((x) => x.identifier === id);
      if (!i) throw notFound('Issue');
      return present(i);
    },
    team: ({ id }: { id: string }) => {
      if (id !== teamId && id !== teamKey) throw notFound('Team');
      return team;
    },
    issueCreate: ({ input }: { input: any }) => {
      if (input.teamId !== teamId) throw notFound('Team');
      if (!input.title) throw new Error('Argument Validation Error: title should not be empty');
      if (input.stateId && !states.some((s) => s.id === input.stateId)) throw notFound('WorkflowState');
      return { lastSyncId: syncId++, success: true, issue: present(make(input)) };
    },
    issueUpdate: ({ id, input }: { id: string; input: any }) => {
      const i = issues.get(id);
      if (!i) throw notFound('Issue');
      if (input.stateId !== undefined) {
        if (!states.some((s) => s.id === input.stateId)) throw notFound('WorkflowState');
        i.stateId = input.stateId;
      }
      if (typeof input.title === 'string') i.title = input.title;
      if (input.description !== undefined) i.description = input.description;
      if (Array.isArray(input.labelIds)) i.labelIds = input.labelIds;
      return { lastSyncId: syncId++, success: true, issue: present(i) };
    },
    commentCreate: ({ input }: { input: any }) => {
      const i = input.issueId ? issues.get(input.issueId) : undefined;
      if (!i) throw notFound('Issue');
      if (typeof input.body !== 'string' || !input.body) throw new Error('Argument Validation Error: body should not be empty');
      const id = input.id ?? crypto.randomUUID();
      comments.push({ id, issueId: i.id, body: input.body });
      return { lastSyncId: syncId++, success: true, comment: { id, body: input.body, url: `${issueUrl(i)}#comment-${id.slice(0, 8)}`, issue: present(i) } };
    },
  };
  const schema: GraphQLSchema = buildSchema(SCHEMA);

  const server = http.createServer((req, res) => {
    let text = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (text += c));
    req.on('end', () => {
      const send = (status: number, payload: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
        res.end(JSON.stringify(payload));
      };
      const url = new URL(req.url ?? '/', 'http://linear.local');
      if (req.method !== 'POST' || url.pathname !== '/graphql') return send(404, { errors: [{ message: 'Not found' }] });
      let body: any = null;
      try {
        body = JSON.parse(text);
      } catch {
        return send(400, { errors: [{ message: 'Body is not JSON', extensions: { type: 'invalid input', code: 'INVALID_INPUT' } }] });
      }
      const query = String(body?.query ?? '');
      const field = /\{\s*(\w+)/.exec(query)?.[1] ?? '';
      requests.push({ headers: req.headers, query, variables: body?.variables ?? {}, field });
      if (failures > 0) {
        failures--;
        return send(503, { errors: [{ message: 'Service unavailable', extensions: { code: 'INTERNAL_SERVER_ERROR' } }] });
      }
      if (req.headers.authorization !== o.apiKey) {
        return send(400, {
          errors: [
            {
              message: 'Authentication required, not authenticated',
              extensions: {
                type: 'authentication error',
                code: 'AUTHENTICATION_ERROR',
                userPresentableMessage: 'You need to authenticate to access this operation.',
              },
            },
          ],
        });
      }
      void graphql({ schema, source: query, rootValue: root, variableValues: body?.variables ?? {} }).then(
        (r) => send(r.errors?.length && !r.data ? 400 : 200, r),
        (e: Error) => send(500, { errors: [{ message: e.message }] }),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/graphql`,
    teamId,
    teamKey,
    states,
    label,
    requests,
    issues,
    comments,
    addIssue: (i) => make({ title: i.title, description: i.description ?? null, labelIds: i.labelled ? [label.id] : [] }),
    issueUrl,
    failNext: (n) => void (failures = n),
    stop: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/**
 * A Linear webhook delivery for an Issue (https://linear.app/developers/webhooks): the body with
 * action, type, data (the issue), updatedFrom (for an update), url, webhookTimestamp (ms); the
 * headers Linear-Delivery, Linear-Event and Linear-Signature (hex HMAC-SHA256 of the raw body
 * with the webhook's signing secret).
 */
export function linearIssueDelivery(
  secret: string,
  peer: LinearPeer,
  p: { action: 'create' | 'update' | 'remove'; issue: LinearIssueRecord; updatedFrom?: Record<string, unknown>; webhookTimestamp?: number },
  deliveryId: string = crypto.randomUUID(),
): { headers: Record<string, string>; body: string } {
  const i = p.issue;
  const state = peer.states.find((s) => s.id === i.stateId)!;
  const now = new Date().toISOString();
  const payload = {
    action: p.action,
    actor: { id: crypto.randomUUID(), type: 'user', name: 'Mia Krystof' },
    createdAt: now,
    data: {
      id: i.id,
      createdAt: now,
      updatedAt: now,
      number: i.number,
      title: i.title,
      description: i.description,
      priority: 0,
      identifier: i.identifier,
      url: peer.issueUrl(i),
      teamId: peer.teamId,
      stateId: i.stateId,
      labelIds: i.labelIds,
      state: { id: state.id, color: '#f2c94c', name: state.name, type: state.type },
      team: { id: peer.teamId, key: peer.teamKey, name: 'Engineering' },
      labels: i.labelIds.map((id) => (id === peer.label.id ? { id, color: '#5e6ad2', name: peer.label.name } : { id, color: '#000000', name: id })),
    },
    ...(p.updatedFrom ? { updatedFrom: { updatedAt: now, ...p.updatedFrom } } : {}),
    url: peer.issueUrl(i),
    type: 'Issue',
    organizationId: '00000000-0000-4000-8000-0000000000aa',
    webhookTimestamp: p.webhookTimestamp ?? Date.now(),
    webhookId: '00000000-0000-4000-8000-0000000000bb',
  };
  const body = JSON.stringify(payload);
  return {
    headers: {
      'content-type': 'application/json; charset=utf-8',
      'user-agent': 'Linear-Webhook',
      'linear-delivery': deliveryId,
      'linear-event': 'Issue',
      'linear-signature': crypto.createHmac('sha256', secret).update(body).digest('hex'),
    },
    body,
  };
}

import { trackerRequest, TrackerApiError, type TrackerAccess } from './tracker-http.js';

/**
 * Linear's GraphQL API (https://linear.app/developers/graphql), the operations the platform
 * sends: issueCreate, issueUpdate (its workflow state), commentCreate, a team's workflow states
 * and one issue. A personal API key goes as `Authorization: <key>`; an OAuth token as Bearer.
 */
export interface LinearAccess extends TrackerAccess {
  apiUrl: string;
  token: string | null;
  tokenType: 'apiKey' | 'oauth';
}

async function graphql<T>(a: LinearAccess, name: string, query: string, variables: Record<string, unknown>): Promise<T> {
  const headers: Record<string, string> = a.token ? { authorization: a.tokenType === 'oauth' ? `Bearer ${a.token}` : a.token } : {};
  const res = await trackerRequest(a, 'Linear', 'POST', a.apiUrl, headers, { query, variables });
  const errors = (res.body as { errors?: Array<{ message?: string }> } | null)?.errors;
  if (res.status >= 200 && res.status < 300 && !errors?.length) return (res.body as { data: T }).data;
  const d = errors?.map((e) => e.message).join('; ') ?? (typeof res.body === 'string' ? res.body : '');
  throw new TrackerApiError(`Linear answered ${res.status} to ${name}${d ? `: ${d.slice(0, 500)}` : ''}`, res.status, res.body);
}

export interface LinearIssue {
  id: string;
  identifier: string;
  url: string;
}

const ISSUE_CREATE = `mutation IssueCreate($input: IssueCreateInput!) {
  issueCreate(input: $input) { success issue { id identifier url } }
}`;
const ISSUE = `query Issue($id: String!) { issue(id: $id) { id identifier url } }`;
const ISSUE_UPDATE = `mutation IssueUpdate($id: String!, $input: IssueUpdateInput!) {
  issueUpdate(id: $id, input: $input) { success issue { id state { id name } } }
}`;
const COMMENT_CREATE = `mutation CommentCreate($input: CommentCreateInput!) {
  commentCreate(input: $input) { success comment { id url } }
}`;
const TEAM_STATES = `query TeamStates($id: String!) { team(id: $id) { states { nodes { id name type } } } }`;

/** issueCreate(input: { id, teamId, title, description }) → the issue. */
export async function createLinearIssue(a: LinearAccess, input: { id: string; teamId: string; title: string; description: string }): Promise<LinearIssue> {
  const d = await graphql<{ issueCreate: { success: boolean; issue: LinearIssue | null } }>(a, 'issueCreate', ISSUE_CREATE, { input });
  if (!d.issueCreate.success || !d.issueCreate.issue) throw new TrackerApiError('Linear did not create the issue (success: false)', 200, d);
  return d.issueCreate.issue;
}

/** issue(id) → the issue, or null when Linear has none with that id. */
export async function linearIssue(a: LinearAccess, id: string): Promise<LinearIssue | null> {
  try {
    return (await graphql<{ issue: LinearIssue | null }>(a, 'issue', ISSUE, { id })).issue;
  } catch (e) {
    if (e instanceof TrackerApiError && e.status !== null && e.status < 500 && /not found/i.test(e.message)) return null;
    throw e;
  }
}

/** issueUpdate(id, input: { stateId }). */
export async function setLinearIssueState(a: LinearAccess, id: string, stateId: string): Promise<void> {
  const d = await graphql<{ issueUpdate: { success: boolean } }>(a, 'issueUpdate', ISSUE_UPDATE, { id, input: { stateId } });
  if (!d.issueUpdate.success) throw new TrackerApiError('Linear did not update the issue (success: false)', 200, d);
}

/** commentCreate(input: { issueId, body }) → the comment. */
export async function createLinearComment(a: LinearAccess, issueId: string, body: string): Promise<{ id: string; url: string | null }> {
  const d = await graphql<{ commentCreate: { success: boolean; comment: { id: string; url?: string | null } | null } }>(a, 'commentCreate', COMMENT_CREATE, {
    input: { issueId, body },
  });
  if (!d.commentCreate.success || !d.commentCreate.comment) throw new TrackerApiError('Linear did not create the comment (success: false)', 200, d);
  return { id: d.commentCreate.comment.id, url: d.commentCreate.comment.url ?? null };
}

/** The workflow states of a team: id, name and type (triage, backlog, unstarted, started, completed, canceled). */
export async function linearTeamStates(a: LinearAccess, teamId: string): Promise<Array<{ id: string; name: string; type: string }>> {
  const d = await graphql<{ team: { states: { nodes: Array<{ id: string; name: string; type: string }> } } | null }>(a, 'team', TEAM_STATES, { id: teamId });
  return d.team?.states.nodes ?? [];
}

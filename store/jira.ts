import type { AdfDoc } from '../domain/tickets.js';
import { trackerRequest, TrackerApiError, type TrackerAccess } from './tracker-http.js';

/**
 * Jira Cloud's REST API v3, the calls the platform makes
 * (https://developer.atlassian.com/cloud/jira/platform/rest/v3/): create an issue, list and do an
 * issue's transitions, comment on it. An API token goes as HTTP Basic auth with the account's
 * email; without an email the token is sent as an OAuth bearer token.
 */
export interface JiraAccess extends TrackerAccess {
  baseUrl: string;
  email: string | null;
  token: string | null;
}

const authorization = (a: JiraAccess): Record<string, string> =>
  !a.token ? {} : a.email ? { authorization: `Basic ${Buffer.from(`${a.email}:${a.token}`).toString('base64')}` } : { authorization: `Bearer ${a.token}` };

/** Jira's error answer: `{ errorMessages: [...], errors: { field: message } }`. */
function detail(body: unknown): string {
  const b = body as { errorMessages?: unknown; errors?: unknown; message?: unknown } | null;
  if (typeof body === 'string') return body.slice(0, 300);
  const parts = [
    ...(Array.isArray(b?.errorMessages) ? b!.errorMessages.map(String) : []),
    ...(b?.errors && typeof b.errors === 'object' ? Object.entries(b.errors as Record<string, unknown>).map(([k, v]) => `${k}: ${String(v)}`) : []),
    ...(typeof b?.message === 'string' ? [b.message] : []),
  ];
  return parts.join('; ').slice(0, 500);
}

async function call<T>(a: JiraAccess, method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
  const url = `${a.baseUrl.replace(/\/+$/, '')}${path}`;
  const res = await trackerRequest(a, 'Jira', method, url, authorization(a), body);
  if (res.status >= 200 && res.status < 300) return res.body as T;
  const d = detail(res.body);
  throw new TrackerApiError(`Jira answered ${res.status} to ${method} ${path}${d ? `: ${d}` : ''}`, res.status, res.body);
}

const issuePath = (key: string) => `/rest/api/3/issue/${encodeURIComponent(key)}`;

/** POST /rest/api/3/issue → `{ id, key, self }` */
export function createJiraIssue(
  a: JiraAccess,
  f: { projectKey: string; summary: string; issueType: string; description: AdfDoc; labels?: string[] },
): Promise<{ id: string; key: string; self: string }> {
  return call(a, 'POST', '/rest/api/3/issue', {
    fields: {
      project: { key: f.projectKey },
      summary: f.summary,
      issuetype: { name: f.issueType },
      description: f.description,
      ...(f.labels?.length ? { labels: f.labels } : {}),
    },
  });
}

export interface JiraTransition {
  id: string;
  name: string;
  to?: { id?: string; name?: string };
}

/** GET /rest/api/3/issue/{key}/transitions: the transitions the issue can take now. */
export async function jiraTransitions(a: JiraAccess, key: string): Promise<JiraTransition[]> {
  const r = await call<{ transitions?: JiraTransition[] }>(a, 'GET', `${issuePath(key)}/transitions`);
  return r?.transitions ?? [];
}

/** POST /rest/api/3/issue/{key}/transitions `{ transition: { id } }` (204). */
export async function transitionJiraIssue(a: JiraAccess, key: string, transitionId: string): Promise<void> {
  await call(a, 'POST', `${issuePath(key)}/transitions`, { transition: { id: transitionId } });
}

/** POST /rest/api/3/issue/{key}/comment `{ body: <ADF> }` → `{ id, self }` */
export function createJiraComment(a: JiraAccess, key: string, body: AdfDoc): Promise<{ id: string; self?: string }> {
  return call(a, 'POST', `${issuePath(key)}/comment`, { body });
}

/** A JQL string literal. */
export const jqlString = (s: string) => `"${s.replace(/["\\]/g, (c) => `\\${c}`)}"`;

/** GET /rest/api/3/search/jql?jql=…&fields=summary → the first page of matching issues (id, key). */
export async function searchJiraIssues(a: JiraAccess, jql: string, maxResults = 10): Promise<Array<{ id: string; key: string }>> {
  const q = new URLSearchParams({ jql, fields: 'summary', maxResults: String(maxResults) });
  const r = await call<{ issues?: Array<{ id: string; key: string }> }>(a, 'GET', `/rest/api/3/search/jql?${q.toString()}`);
  return r?.issues ?? [];
}

import { trackerRequest, TrackerApiError } from './tracker-http.js';

/**
 * GitHub's REST API, the few calls the platform makes (https://docs.github.com/en/rest): open a
 * pull request, find one by its head branch, comment on an issue or pull request. Every call
 * sends `Authorization: Bearer <token>`, `Accept: application/vnd.github+json` and
 * `X-GitHub-Api-Version: 2022-11-28` through the trackers' one HTTP call (store/tracker-http.ts:
 * the address checked as webhook addresses are, the answer read up to 1 MiB). The token is never
 * in an error message.
 */
export interface GithubAccess {
  apiBase: string;
  token: string | null;
  allowPrivate: boolean;
  timeoutMs: number;
}

export const GITHUB_API_VERSION = '2022-11-28';

/** GitHub answered with an error status (or could not be reached: status null). */
export class GithubApiError extends TrackerApiError {
  override name = 'GithubApiError';
}

/** One call; the parsed JSON answer of a 2xx, else GithubApiError with GitHub's message. */
export async function githubRequest<T = any>(a: GithubAccess, method: 'GET' | 'POST' | 'PATCH', path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = {
    accept: 'application/vnd.github+json',
    'x-github-api-version': GITHUB_API_VERSION,
    ...(a.token ? { authorization: `Bearer ${a.token}` } : {}),
  };
  let res: { status: number; body: any };
  try {
    res = await trackerRequest(a, 'GitHub', method, `${a.apiBase.replace(/\/+$/, '')}${path}`, headers, body);
  } catch (e) {
    throw e instanceof TrackerApiError ? new GithubApiError(e.message, e.status, e.body) : e;
  }
  if (res.status >= 200 && res.status < 300) return res.body as T;
  const parsed = res.body as { message?: unknown; errors?: Array<{ message?: string; code?: string }> } | null;
  const detail = [typeof parsed?.message === 'string' ? parsed.message : null, ...(parsed?.errors ?? []).map((e) => e.message ?? e.code)]
    .filter(Boolean)
    .join('; ');
  throw new GithubApiError(`GitHub answered ${res.status} to ${method} ${path}${detail ? `: ${detail}` : ''}`, res.status, res.body);
}

/** The fields of a pull request the platform reads. */
export interface GithubPullRequest {
  number: number;
  html_url: string;
  state: string;
  head: { ref: string };
  base: { ref: string };
}

const repoPath = (owner: string, repo: string) => `/repos/${encodeURIComponent(owner)}/${encodeURIComponent(repo)}`;

/** POST /repos/{owner}/{repo}/pulls */
export function createPullRequest(
  a: GithubAccess,
  owner: string,
  repo: string,
  pr: { title: string; head: string; base: string; body: string },
): Promise<GithubPullRequest> {
  return githubRequest(a, 'POST', `${repoPath(owner, repo)}/pulls`, pr);
}

/** GET /repos/{owner}/{repo}/pulls?head=owner:branch&state=all: the pull requests from a branch, newest first. */
export function pullRequestsFrom(a: GithubAccess, owner: string, repo: string, branch: string): Promise<GithubPullRequest[]> {
  const q = new URLSearchParams({ head: `${owner}:${branch}`, state: 'all' });
  return githubRequest(a, 'GET', `${repoPath(owner, repo)}/pulls?${q}`);
}

/** POST /repos/{owner}/{repo}/issues/{n}/comments (issues and pull requests alike). */
export function createIssueComment(a: GithubAccess, owner: string, repo: string, issue: number, body: string): Promise<{ id: number; html_url: string }> {
  return githubRequest(a, 'POST', `${repoPath(owner, repo)}/issues/${issue}/comments`, { body });
}

import http from 'node:http';
import https from 'node:https';
import { webhookUrlProblem } from '../domain/webhooks.js';
import { guardedLookup } from './outbound-http.js';

/**
 * GitHub's REST API, the few calls the platform makes (https://docs.github.com/en/rest): open a
 * pull request, find one by its head branch, comment on an issue or pull request. Every call
 * sends `Authorization: Bearer <token>`, `Accept: application/vnd.github+json` and
 * `X-GitHub-Api-Version: 2022-11-28`; the address is checked as webhook addresses are (no
 * metadata service; no private address unless the deployment allows it). The token is never in
 * an error message.
 */
export interface GithubAccess {
  apiBase: string;
  token: string | null;
  allowPrivate: boolean;
  timeoutMs: number;
}

export const GITHUB_API_VERSION = '2022-11-28';

/** GitHub answered with an error status (or could not be reached: status null). */
export class GithubApiError extends Error {
  override name = 'GithubApiError';
  constructor(
    message: string,
    readonly status: number | null,
    readonly body: unknown,
  ) {
    super(message);
  }
}

const MAX_ANSWER = 1024 * 1024;

/** One call; the parsed JSON answer of a 2xx, else GithubApiError with GitHub's message. */
export function githubRequest<T = any>(a: GithubAccess, method: 'GET' | 'POST' | 'PATCH', path: string, body?: unknown): Promise<T> {
  const url = `${a.apiBase.replace(/\/+$/, '')}${path}`;
  const problem = webhookUrlProblem(url, a.allowPrivate);
  if (problem) return Promise.reject(new GithubApiError(`GitHub API base ${a.apiBase} ${problem}`, null, null));
  const target = new URL(url);
  const lib = target.protocol === 'https:' ? https : http;
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise<T>((resolve, reject) => {
    const req = lib.request(
      target,
      {
        method,
        headers: {
          accept: 'application/vnd.github+json',
          'x-github-api-version': GITHUB_API_VERSION,
          'user-agent': 'AutoVibe',
          ...(a.token ? { authorization: `Bearer ${a.token}` } : {}),
          ...(payload !== undefined ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {}),
        },
        lookup: guardedLookup(a.allowPrivate),
        timeout: a.timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size <= MAX_ANSWER) chunks.push(c);
        });
        res.on('error', (e) => reject(new GithubApiError(`GitHub ${method} ${path}: ${e.message}`, null, null)));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown = null;
          try {
            parsed = text ? JSON.parse(text) : null;
          } catch {
            parsed = text.slice(0, 500);
          }
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 300) return resolve(parsed as T);
          const message = (parsed as { message?: unknown } | null)?.message;
          const errors = (parsed as { errors?: Array<{ message?: string; code?: string }> } | null)?.errors;
          const detail = [typeof message === 'string' ? message : null, ...(errors ?? []).map((e) => e.message ?? e.code)].filter(Boolean).join('; ');
          reject(new GithubApiError(`GitHub answered ${status} to ${method} ${path}${detail ? `: ${detail}` : ''}`, status, parsed));
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${a.timeoutMs} ms`)));
    req.on('error', (e) => reject(new GithubApiError(`GitHub ${method} ${path}: ${e.message}`, null, null)));
    req.end(payload);
  });
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

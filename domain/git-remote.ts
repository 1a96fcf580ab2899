/**
 * Rules for a project's git remote (README "Git remotes"): its URL and the branch names pushed
 * to and fetched from it. Pure, so the request schemas give a 400 naming the problem.
 */
import { checkRepoUrl, REPO_URL_SCHEMES, type RepoUrlScheme } from './repo-url.js';

/** Schemes a remote may use: credentials go over http(s) as Basic auth; git:// has none; ssh keys are not kept. */
export const GIT_REMOTE_SCHEMES: readonly RepoUrlScheme[] = REPO_URL_SCHEMES.filter((s) => s !== 'ssh');

/** Why `url` cannot be a git remote (no credentials in it, a remote URL of https, http or git), or null. */
export function gitRemoteUrlProblem(url: string): string | null {
  const check = checkRepoUrl(url, GIT_REMOTE_SCHEMES);
  if (check.ok) return null;
  return check.reason.replace('a credentials reference instead', 'username and token fields instead');
}

/**
 * Why `name` is not a branch name git accepts (the rules of `git check-ref-format --branch`), or null.
 * git checks it again before it runs.
 */
export function branchNameProblem(name: string): string | null {
  if (!name) return 'is required';
  if (name.length > 200) return 'at most 200 characters';
  if (name.startsWith('-')) return 'must not start with "-"';
  if (name === '@') return 'must not be "@"';
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u0020\u007f~^:?*[\\]/.test(name)) return 'must not contain spaces, control characters or any of ~ ^ : ? * [ \\';
  if (name.includes('..')) return 'must not contain ".."';
  if (name.includes('@{')) return 'must not contain "@{"';
  if (name.startsWith('/') || name.endsWith('/') || name.includes('//')) return 'must not start or end with "/" or contain "//"';
  if (name.endsWith('.')) return 'must not end with "."';
  for (const part of name.split('/')) {
    if (part.startsWith('.')) return 'no part (between slashes) may start with "."';
    if (part.endsWith('.lock')) return 'no part (between slashes) may end with ".lock"';
  }
  if (name.startsWith('refs/')) return 'give the branch name without refs/ (e.g. feature/x)';
  return null;
}

/** One branch of a scheduled fetch: a new checkpoint, the tip already one, or why it failed. */
export interface ScheduledFetchOutcome {
  branch: string;
  status: 'created' | 'unchanged' | 'failed';
  checkpointId: string | null;
  commit: string | null;
  error: string | null;
}

/** The Temporal Schedule that fetches a project's remote branches. */
export const gitFetchScheduleId = (projectId: string): string => `git-fetch-${projectId}`;

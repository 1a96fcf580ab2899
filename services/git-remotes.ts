/**
 * Use cases of a project's git remote (README "Git remotes"): set, read and remove it (the token
 * is stored and never shown back), push a checkpoint as a branch, and fetch a branch's tip into
 * the evolution tree as an `imported` checkpoint. The token reaches only the host-side git
 * command that talks to the remote (store/git.ts), never a sandbox or the project's repository.
 */
import crypto from 'node:crypto';
import { ConflictError, GitRemoteError, InputError, NotFoundError } from '../domain/errors.js';
import { ScheduleOverlapPolicy } from '@temporalio/client';
import { gitFetchScheduleId, GIT_REMOTE_SCHEMES, type ScheduledFetchOutcome } from '../domain/git-remote.js';
import { runVisibility } from '../domain/search-attributes.js';
import { scheduledGitFetch, type ScheduledGitFetchInput } from '../workflows/index.js';
import { appendAudit } from '../store/audit.js';
import { listCheckpoints, recordCheckpoint, type Checkpoint } from '../store/checkpoints.js';
import { fetchBranch, nearestKnownAncestor, pushCommit, validRefName, type RemoteAccess } from '../store/git.js';
import { deleteGitRemote, getGitRemote, putGitRemote, type GitRemote } from '../store/git-remotes.js';
import type { Project } from '../store/projects.js';
import { requireCheckpoint } from './checkpoints.js';
import { actorOfCaller, type Caller, type ServiceContext } from './context.js';
import { requireProject } from './projects.js';
import { fetchGitRemoteBody, pushCheckpointBody, putGitRemoteBody } from './schemas.js';
import { repoMirror, withLocalRepo } from '../store/shared-storage.js';

/** The periodic fetch of a remote: what and how often, the schedule's next run, the last run's outcomes. */
export interface FetchScheduleView {
  branches: string[];
  everyMinutes: number;
  scheduleId: string;
  /** From the Temporal Schedule; null when it cannot be read now. */
  nextRunAt: string | null;
  lastRunAt: string | null;
  lastResult: ScheduledFetchOutcome[] | null;
}

/** A remote as callers see it: whether a token is kept, never the token. */
export interface GitRemoteView {
  projectId: string;
  url: string;
  username: string | null;
  hasToken: boolean;
  fetch: FetchScheduleView | null;
  updatedBy: string;
  createdAt: string;
  updatedAt: string;
}

async function view(ctx: ServiceContext, r: GitRemote): Promise<GitRemoteView> {
  let fetch: FetchScheduleView | null = null;
  if (r.fetch) {
    const scheduleId = gitFetchScheduleId(r.projectId);
    const next = await ctx.temporal.schedule
      .getHandle(scheduleId)
      .describe()
      .then(
        (d) => d.info.nextActionTimes[0]?.toISOString() ?? null,
        (err: Error) => {
          ctx.log.warn({ projectId: r.projectId, err: err.message }, 'git fetch schedule could not be read');
          return null;
        },
      );
    fetch = { ...r.fetch, scheduleId, nextRunAt: next, lastRunAt: r.lastFetchAt, lastResult: r.lastFetchResult };
  }
  return {
    projectId: r.projectId,
    url: r.url,
    username: r.username,
    hasToken: r.token !== null,
    fetch,
    updatedBy: r.updatedBy,
    createdAt: r.createdAt,
    updatedAt: r.updatedAt,
  };
}

/**
 * Makes the project's git-fetch Temporal Schedule match `fetch`: created, updated in place, or
 * deleted (null). Each run starts scheduledGitFetch (workflows/git-fetch.ts) for the branches;
 * a run still going when the next is due makes that one skip.
 */
async function syncFetchSchedule(ctx: ServiceContext, project: Project, fetch: GitRemote['fetch']): Promise<void> {
  const scheduleId = gitFetchScheduleId(project.id);
  const handle = ctx.temporal.schedule.getHandle(scheduleId);
  const exists = await handle.describe().then(
    () => true,
    (err: Error) => {
      if (err.name === 'ScheduleNotFoundError') return false;
      throw err;
    },
  );
  if (!fetch) {
    if (exists) await handle.delete();
    return;
  }
  const action = {
    type: 'startWorkflow' as const,
    workflowType: scheduledGitFetch,
    workflowId: scheduleId,
    taskQueue: ctx.config.taskQueue,
    ...runVisibility(
      'git fetch',
      { project: project.id, costCenter: project.costCenterId },
      { searchAttributes: ctx.config.searchAttributes, details: { branches: fetch.branches.join(', '), everyMinutes: fetch.everyMinutes } },
    ),
    memo: { projectId: project.id, branches: fetch.branches, everyMinutes: fetch.everyMinutes },
    args: [{ projectId: project.id, branches: fetch.branches }] as [ScheduledGitFetchInput],
  };
  const spec = { intervals: [{ every: `${fetch.everyMinutes}m` as const }] };
  const policies = { overlap: ScheduleOverlapPolicy.SKIP };
  if (exists) await handle.update((prev) => ({ ...prev, spec, action, policies: { ...prev.policies, ...policies } }));
  else await ctx.temporal.schedule.create({ scheduleId, spec, action, policies });
}

/** Schemes a remote may use in this deployment: the repoUrl schemes it allows, less ssh. */
const allowedSchemes = (ctx: ServiceContext) => ctx.config.repos.schemes.filter((s) => GIT_REMOTE_SCHEMES.includes(s));

async function requireRemote(ctx: ServiceContext, project: Project): Promise<GitRemote> {
  const remote = await getGitRemote(ctx.db, project.id);
  if (!remote) throw new NotFoundError(`project ${project.id} has no git remote; set one with PUT /v1/projects/${project.id}/git-remote`);
  return remote;
}

const access = (ctx: ServiceContext, r: GitRemote): RemoteAccess => ({
  url: r.url,
  username: r.username,
  token: r.token,
  schemes: allowedSchemes(ctx),
  timeoutMs: ctx.config.repos.cloneTimeoutMs,
});

export async function setProjectGitRemote(ctx: ServiceContext, caller: Caller, projectId: string, input: unknown): Promise<GitRemoteView> {
  const project = await requireProject(ctx, projectId);
  const body = putGitRemoteBody.parse(input);
  const scheme = new URL(body.url).protocol.replace(':', '');
  const schemes = allowedSchemes(ctx);
  if (!(schemes as string[]).includes(scheme))
    throw new InputError(`url: scheme ${scheme} is not allowed in this deployment; allowed: ${schemes.join(', ') || 'none'}`, { field: 'url' });
  if (scheme === 'git' && (body.token || body.username))
    throw new InputError('token: git:// sends no credentials; use https:// for a remote that needs them', { field: 'token' });
  // The change and its audit record commit together.
  const remote = await ctx.db.transaction(async (trx) => {
    const stored = await putGitRemote(trx, {
      projectId: project.id,
      url: body.url,
      username: body.username ?? null,
      token: body.token ?? null,
      updatedBy: caller.principal.userId,
      fetch: body.fetch ?? null,
    });
    await appendAudit(trx, {
      actor: actorOfCaller(caller),
      action: 'project.git_remote_set',
      subjectType: 'project',
      subjectId: project.id,
      projectId: project.id,
      details: { url: stored.url, username: stored.username, hasToken: stored.token !== null, fetch: stored.fetch },
    });
    return stored;
  });
  await syncFetchSchedule(ctx, project, remote.fetch);
  return view(ctx, remote);
}

export async function projectGitRemote(ctx: ServiceContext, projectId: string): Promise<GitRemoteView> {
  return view(ctx, await requireRemote(ctx, await requireProject(ctx, projectId)));
}

export async function removeProjectGitRemote(ctx: ServiceContext, caller: Caller, projectId: string): Promise<void> {
  const project = await requireProject(ctx, projectId);
  const remote = await requireRemote(ctx, project);
  await ctx.db.transaction(async (trx) => {
    await deleteGitRemote(trx, project.id);
    await appendAudit(trx, {
      actor: actorOfCaller(caller),
      action: 'project.git_remote_deleted',
      subjectType: 'project',
      subjectId: project.id,
      projectId: project.id,
      details: { url: remote.url },
    });
  });
  await syncFetchSchedule(ctx, project, null);
}

export interface PushResult {
  checkpointId: string;
  projectId: string;
  remote: string;
  branch: string;
  commit: string;
  previousCommit: string | null;
  status: 'pushed' | 'up_to_date';
  forced: boolean;
  pushedAt: string;
}

/**
 * Pushes a checkpoint's commit to `refs/heads/<branch>` of its project's remote. A push that is
 * not a fast forward is refused (409 non_fast_forward) unless `force`; the remote's refusal of
 * anything else (credentials, hooks, network) is a 502 quoting it, without the token.
 */
export async function pushCheckpoint(ctx: ServiceContext, caller: Caller, checkpointId: string, input: unknown): Promise<PushResult> {
  const checkpoint = await requireCheckpoint(ctx, checkpointId);
  const body = pushCheckpointBody.parse(input);
  const project = await withLocalRepo(ctx.db, ctx.config, await requireProject(ctx, checkpoint.projectId), [checkpoint.commit]);
  const remote = await requireRemote(ctx, project);
  if (!(await validRefName(`refs/heads/${body.branch}`)))
    throw new InputError(`branch: git refuses ${JSON.stringify(body.branch)} as a branch name`, { field: 'branch' });
  const outcome = await pushCommit(project.repoPath, access(ctx, remote), checkpoint.commit, body.branch, body.force);
  if (outcome.status === 'rejected')
    throw new ConflictError(
      `the remote's branch ${body.branch} has commits the checkpoint does not (${outcome.reason}); push with force: true to replace them`,
      'non_fast_forward',
      { branch: body.branch, remote: remote.url },
    );
  if (outcome.status === 'failed') throw new GitRemoteError(`the remote ${remote.url} refused the push: ${outcome.message}`);
  const result: PushResult = {
    checkpointId: checkpoint.id,
    projectId: project.id,
    remote: remote.url,
    branch: body.branch,
    commit: checkpoint.commit,
    previousCommit: outcome.previous,
    status: outcome.status,
    forced: outcome.status === 'pushed' && outcome.forced,
    pushedAt: new Date().toISOString(),
  };
  await appendAudit(ctx.db, {
    actor: actorOfCaller(caller),
    action: 'checkpoint.pushed',
    subjectType: 'checkpoint',
    subjectId: checkpoint.id,
    projectId: project.id,
    details: {
      remote: remote.url,
      branch: body.branch,
      commit: checkpoint.commit,
      previousCommit: result.previousCommit,
      forced: result.forced,
      status: result.status,
    },
    ...(caller.idempotencyKey ? { idempotencyKey: `checkpoint.pushed:${caller.principal.apiKeyId}:${caller.idempotencyKey}` } : {}),
  });
  return result;
}

export interface FetchResult {
  projectId: string;
  remote: string;
  branch: string;
  commit: string;
  /** The checkpoint of the fetched tip: new, or the one that already had that commit. */
  checkpoint: Checkpoint;
  created: boolean;
}

/** The same id for the same commit of a project, so a repeated fetch finds the checkpoint it made. */
function importedCheckpointId(projectId: string, commit: string): string {
  const h = crypto.createHash('sha256').update(`${projectId}\0${commit}`).digest('hex');
  return `checkpoint-${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/**
 * Fetches a branch of the project's remote and records its tip as an `imported` checkpoint whose
 * parent is the checkpoint of the nearest commit it descends from (else the project's root). A tip
 * that already is a checkpoint's commit records nothing new.
 */
export async function fetchProjectBranch(ctx: ServiceContext, caller: Caller, projectId: string, input: unknown): Promise<FetchResult> {
  return fetchProjectBranchAs(ctx, actorOfCaller(caller), projectId, input);
}

/** fetchProjectBranch on behalf of `actor` (a caller's, or the fetch schedule's `system:git-fetch-schedule`). */
export async function fetchProjectBranchAs(ctx: ServiceContext, actor: string, projectId: string, input: unknown): Promise<FetchResult> {
  const project = await withLocalRepo(ctx.db, ctx.config, await requireProject(ctx, projectId));
  const body = fetchGitRemoteBody.parse(input);
  const remote = await requireRemote(ctx, project);
  const outcome = await fetchBranch(project.repoPath, access(ctx, remote), body.branch);
  if (outcome.status === 'missing') throw new NotFoundError(`branch ${body.branch} not found at the remote ${remote.url}`);
  if (outcome.status === 'failed') throw new GitRemoteError(`the remote ${remote.url} refused the fetch: ${outcome.message}`);
  const tip = outcome.tip;
  const checkpoints = await listCheckpoints(ctx.db, project.id);
  const byCommit = new Map<string, Checkpoint>();
  // The oldest checkpoint of a commit stands for it (a root and a later no-change checkpoint share one).
  for (const c of [...checkpoints].sort((a, b) => a.createdAt.localeCompare(b.createdAt))) if (!byCommit.has(c.commit)) byCommit.set(c.commit, c);
  const existing = byCommit.get(tip);
  const base = { projectId: project.id, remote: remote.url, branch: body.branch, commit: tip };
  if (existing) return { ...base, checkpoint: existing, created: false };
  const ancestor = await nearestKnownAncestor(project.repoPath, tip, new Set(byCommit.keys()));
  const parentId = ancestor ? byCommit.get(ancestor)!.id : project.rootCheckpointId;
  const checkpoint = await recordCheckpoint(
    ctx.db,
    project.repoPath,
    {
      id: importedCheckpointId(project.id, tip),
      projectId: project.id,
      parentId,
      machineId: null,
      commit: tip,
      kind: 'imported',
      trigger: `fetched ${body.branch}`,
    },
    { actor, details: { parentId, commit: tip, kind: 'imported', remote: remote.url, branch: body.branch } },
    repoMirror(ctx.config),
  );
  return { ...base, checkpoint, created: true };
}

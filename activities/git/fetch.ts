import { GitRemoteError, InputError, NotFoundError } from '../../domain/errors.js';
import type { ScheduledFetchOutcome } from '../../domain/git-remote.js';
import { recordScheduledFetch } from '../../store/git-remotes.js';
import { fetchProjectBranchAs } from '../../services/git-remotes.js';
import type { ActivityDeps } from '../deps.js';

/** The audit actor of the imports a project's fetch schedule makes. */
export const FETCH_SCHEDULE_ACTOR = 'system:git-fetch-schedule';

/** Activities of the scheduled git fetch (workflows/git-fetch.ts). */
export function createGitFetchActivities({ db, config, log, temporal }: ActivityDeps) {
  return {
    /**
     * Fetches one branch of the project's remote with the same use case as the REST fetch. What the
     * remote or the project answered (no remote, no such branch, refused) is the outcome, not a
     * failure: retrying would meet the same answer. Idempotent (a fetched tip is one checkpoint).
     */
    async fetchScheduledBranch(input: { projectId: string; branch: string }): Promise<ScheduledFetchOutcome> {
      try {
        const r = await fetchProjectBranchAs({ db, config, log, temporal }, FETCH_SCHEDULE_ACTOR, input.projectId, { branch: input.branch });
        return { branch: input.branch, status: r.created ? 'created' : 'unchanged', checkpointId: r.checkpoint.id, commit: r.commit, error: null };
      } catch (err) {
        if (err instanceof NotFoundError || err instanceof GitRemoteError || err instanceof InputError) {
          log.warn({ projectId: input.projectId, branch: input.branch, err: err.message }, 'scheduled git fetch failed');
          return { branch: input.branch, status: 'failed', checkpointId: null, commit: null, error: err.message };
        }
        throw err;
      }
    },

    /** Keeps the outcomes as the remote's last scheduled fetch. */
    async recordScheduledFetch(input: { projectId: string; at: string; outcomes: ScheduledFetchOutcome[] }): Promise<void> {
      await recordScheduledFetch(db, input.projectId, new Date(input.at), input.outcomes);
    },
  };
}

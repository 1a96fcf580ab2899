import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import type { ScheduledFetchOutcome } from '../domain/git-remote.js';
import { shortActivity } from './activity-options.js';

export interface ScheduledGitFetchInput {
  projectId: string;
  branches: string[];
}

/**
 * Started by a project's git-fetch Temporal Schedule (`git-fetch-<projectId>`): fetches each
 * branch of the project's remote through the same use case as POST /projects/:id/git-remote/fetch
 * (a new tip becomes an `imported` checkpoint), then keeps the outcomes as the remote's last fetch.
 * A branch that fails is reported and the others still run.
 */
export async function scheduledGitFetch(input: ScheduledGitFetchInput): Promise<ScheduledFetchOutcome[]> {
  // A fetch is bounded by the clone timeout (minutes); its failure is an outcome, not an error.
  const fetching = proxyActivities<Activities>(shortActivity('10 minutes'));
  const book = proxyActivities<Activities>(shortActivity());
  const outcomes: ScheduledFetchOutcome[] = [];
  for (const branch of input.branches) outcomes.push(await fetching.fetchScheduledBranch({ projectId: input.projectId, branch }));
  await book.recordScheduledFetch({ projectId: input.projectId, at: new Date(Date.now()).toISOString(), outcomes });
  return outcomes;
}

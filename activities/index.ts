import type { ActivityDeps } from './deps.js';
import { createFxService } from '../fx/service.js';
import { createAgentRunActivities } from './agent-run.js';
import { createCoordinationActivities } from './coordination.js';
import { createArtifactPassingActivities } from './artifact-passing.js';
import { createMachineRunActivities } from './machine-run.js';
import { createObjectiveActivities } from './objectives.js';
import { createPipelineActivities } from './pipelines.js';
import { createCacheActivities } from './cache.js';
import { createProviders } from './compute/index.js';
import { createReconcileActivities } from './reconcile.js';
import { createSnapshotActivities } from './snapshots.js';
import { createPaymentActivities } from './payments/index.js';
import { createWebhookActivities } from './notify/webhooks.js';
import { createIntegrationActivities } from './notify/integrations.js';
import { createGitFetchActivities } from './git/fetch.js';
import { createBackupActivities } from './backups.js';
import { createForecastActivities } from './forecasts.js';
import { createReallocationActivities } from './reallocation.js';
import { createAlertActivities } from './alerts.js';

export type { ActivityDeps } from './deps.js';
export type { ReservationOutcome, RunCommandResult } from './machine-run.js';
export type { RunAgentInput, RunAgentResult } from './agent-run.js';
export type { CacheLookupInput, CacheLookupResult } from './cache.js';

/** Every activity the worker registers, built from the process's real dependencies. */
export function createActivities(input: Omit<ActivityDeps, 'providers'> & { providers?: ActivityDeps['providers'] }) {
  // One rate cache and one set of providers for every activity of the process.
  const deps: ActivityDeps = { ...input, providers: input.providers ?? createProviders(input.config), fx: input.fx ?? createFxService(input) };
  return {
    ...createMachineRunActivities(deps),
    ...createAgentRunActivities(deps),
    ...createObjectiveActivities(deps),
    ...createPipelineActivities(deps),
    ...createCoordinationActivities(deps),
    ...createArtifactPassingActivities(deps),
    ...createCacheActivities(deps),
    ...createReconcileActivities(deps),
    ...createSnapshotActivities(deps),
    ...createPaymentActivities(deps),
    ...createWebhookActivities(deps),
    ...createIntegrationActivities(deps),
    ...createGitFetchActivities(deps),
    ...createBackupActivities(deps),
    ...createForecastActivities(deps),
    ...createReallocationActivities(deps),
    ...createAlertActivities(deps),
  };
}

export type Activities = ReturnType<typeof createActivities>;

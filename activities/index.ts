import type { ActivityDeps } from './deps.js';
import { createFxService } from '../fx/service.js';
import { createAgentRunActivities } from './agent-run.js';
import { createMachineRunActivities } from './machine-run.js';
import { createObjectiveActivities } from './objectives.js';
import { createPipelineActivities } from './pipelines.js';

export type { ActivityDeps } from './deps.js';
export type { ReservationOutcome, RunCommandResult } from './machine-run.js';
export type { RunAgentInput, RunAgentResult } from './agent-run.js';

/** Every activity the worker registers, built from the process's real dependencies. */
export function createActivities(given: ActivityDeps) {
  // One rate cache for every activity of the process.
  const deps = { ...given, fx: given.fx ?? createFxService(given) };
  return {
    ...createMachineRunActivities(deps),
    ...createAgentRunActivities(deps),
    ...createObjectiveActivities(deps),
    ...createPipelineActivities(deps),
  };
}

export type Activities = ReturnType<typeof createActivities>;

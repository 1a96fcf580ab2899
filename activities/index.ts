import type { ActivityDeps } from './deps.js';
import { createAgentRunActivities } from './agent-run.js';
import { createMachineRunActivities } from './machine-run.js';
import { createObjectiveActivities } from './objectives.js';
import { createPipelineActivities } from './pipelines.js';
import { createPaymentActivities } from './payments/index.js';

export type { ActivityDeps } from './deps.js';
export type { ReservationOutcome, RunCommandResult } from './machine-run.js';
export type { RunAgentInput, RunAgentResult } from './agent-run.js';

/** Every activity the worker registers, built from the process's real dependencies. */
export function createActivities(deps: ActivityDeps) {
  return {
    ...createMachineRunActivities(deps),
    ...createAgentRunActivities(deps),
    ...createObjectiveActivities(deps),
    ...createPipelineActivities(deps),
    ...createPaymentActivities(deps),
  };
}

export type Activities = ReturnType<typeof createActivities>;

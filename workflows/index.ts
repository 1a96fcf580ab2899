export { machineRun, reservationUpdate, terminateSignal, checkpointSignal, extendSignal, stateQuery } from './machine.js';
export type { Extension, MachineRunInput, MachineRunResult, MachineRunState } from './machine.js';
export {
  objective,
  dependencyChangedSignal,
  objectiveStateQuery,
  pauseObjectiveSignal,
  resumeObjectiveSignal,
  cancelObjectiveSignal,
  linkObjectiveUpdate,
} from './objective.js';
export type { ObjectiveInput, ObjectiveState } from './objective.js';
export { pipeline, cancelPipelineSignal, pipelineStateQuery } from './pipeline.js';
export type { PipelineInput, PipelineState, PipelineStepInput } from './pipeline.js';
export { project, acquireSignal, releaseSignal, rescheduleSignal, reprioritizeSignal, coordinatorStateQuery } from './project.js';
export type { ProjectCoordinatorInput, ProjectCoordinatorState } from './project.js';
export { resourceGrantedSignal } from './coordination.js';
export { reconcileInstances } from './reconcile.js';
export type { ReconcileInput, ReconcileResult } from './reconcile.js';
export { snapshotLifecycle, snapshotBackup, snapshotPrune } from './snapshot.js';
export type { SnapshotBackupResult, SnapshotLifecycleResult, SnapshotPruneInput, SnapshotPruneResult } from './snapshot.js';
export { paymentCascade, approvePaymentSignal, paymentStateQuery, renewalTopup } from './payment-cascade.js';
export type { PaymentCascadeInput, PaymentCascadeState, RenewalTopupInput } from './payment-cascade.js';
export { webhookDispatcher, redeliverWebhookSignal, wakeWebhookSignal } from './webhook.js';
export type { WebhookDispatcherInput } from './webhook.js';
export { integrationDispatcher, wakeIntegrationSignal } from './integration.js';
export type { IntegrationDispatcherInput } from './integration.js';
export { scheduledGitFetch } from './git-fetch.js';
export type { ScheduledGitFetchInput } from './git-fetch.js';
export { platformBackup } from './backup.js';
export { forecastRefresh } from './forecast.js';
export type { ForecastRefreshInput, ForecastRefreshResult } from './forecast.js';
export { budgetReallocation } from './reallocation.js';
export type { BudgetReallocationInput, BudgetReallocationResult } from './reallocation.js';
export { alertEvaluation } from './alert-evaluation.js';
export type { AlertEvaluationInput } from './alert-evaluation.js';

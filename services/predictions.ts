/** Cost prediction (README "Cost prediction"): predict a run before it starts; how good the predictions were. */
import { z } from 'zod';
import { MACHINE_TYPE_SCOPE, PROJECT_SCOPE } from '../domain/budget.js';
import { InputError } from '../domain/errors.js';
import { ceilToMinor } from '../domain/metering.js';
import { formatAmount } from '../domain/money.js';
import { accuracyByType, MIN_PREDICTION_RUNS, predictRun, type Prediction, type PredictionVerdict } from '../domain/prediction.js';
import { budgetStatus, projectBudgets } from '../store/budgets.js';
import { appendAudit } from '../store/audit.js';
import { getPredictionSettings, pastRuns, putPredictionSettings, settledPredictions } from '../store/predictions.js';
import type { Project } from '../store/projects.js';
import { actorOfCaller, type Caller, type ServiceContext } from './context.js';
import { requireProject } from './projects.js';

/** A machine's predicted cost and duration from the settled runs of its type (project first, else deployment). */
export async function predictMachine(ctx: ServiceContext, project: Project, type: string, operationClass: string | null): Promise<PredictionVerdict> {
  const [projectRuns, deploymentRuns] = await Promise.all([
    pastRuns(ctx.db, { machineType: type, currency: project.currency, projectId: project.id }),
    pastRuns(ctx.db, { machineType: type, currency: project.currency }),
  ]);
  return predictRun({ projectRuns, deploymentRuns, operationClass });
}

/** The interval's upper bound as a money limit (rounded up to the currency's smallest unit). */
export function predictedLimit(p: Prediction, project: Project): bigint {
  return ceilToMinor(p.cost.p90, project.currency);
}

const describe = (p: Prediction, project: Project) => {
  const f = (u: bigint) => formatAmount(ceilToMinor(u, project.currency), project.currency);
  return `predicted cost ${f(p.cost.p10)}–${f(p.cost.p90)} ${project.currency} (80 % interval, median ${f(p.cost.p50)}, from ${p.basis} ${p.scope} runs)`;
};

/**
 * Refuses (422 predicted_over_limit) a run whose predicted lower bound (p10) already exceeds its
 * money limit or the remaining amount of one of the project's budgets it draws on (the project's
 * and its machine type's, in the project's currency).
 */
export async function refuseIfPredictedOver(ctx: ServiceContext, project: Project, type: string, p: Prediction, limit: bigint): Promise<void> {
  const low = p.cost.p10;
  const f = (u: bigint) => `${formatAmount(u, project.currency)} ${project.currency}`;
  if (low > limit) {
    throw new InputError(
      `${describe(p, project)}: even its lower bound exceeds limits.money ${f(limit)}; raise the limit or leave out refuseIfPredictedOver`,
      { field: 'limits.money', predictedLow: formatAmount(low, project.currency), limit: formatAmount(limit, project.currency), currency: project.currency },
      'predicted_over_limit',
    );
  }
  const now = new Date();
  for (const b of await projectBudgets(ctx.db, project.id)) {
    if (b.currency !== project.currency) continue;
    if (!(b.scopeType === PROJECT_SCOPE || (b.scopeType === MACHINE_TYPE_SCOPE && b.scopeId === `${project.id}:${type}`))) continue;
    const status = await budgetStatus(ctx.db, b, now);
    if (low > status.remaining) {
      throw new InputError(
        `${describe(p, project)}: even its lower bound exceeds the ${f(status.remaining)} remaining of budget ${b.id} (${b.scopeType} ${b.scopeId}, ${b.period}); raise the budget or leave out refuseIfPredictedOver`,
        {
          field: 'refuseIfPredictedOver',
          budgetId: b.id,
          predictedLow: formatAmount(low, project.currency),
          remaining: formatAmount(status.remaining, project.currency),
          currency: project.currency,
        },
        'predicted_over_limit',
      );
    }
  }
}

export const predictionAccuracyQuery = z.strictObject({ projectId: z.string().min(1).max(200).optional() });

/** Mean absolute error and 80 %-interval coverage per machine type, over the settled predictions the caller may see. */
export async function predictionAccuracy(ctx: ServiceContext, caller: Caller, input: z.input<typeof predictionAccuracyQuery>) {
  const q = predictionAccuracyQuery.parse(input);
  if (q.projectId) await requireProject(ctx, q.projectId);
  const scored = await settledPredictions(ctx.db, { ...(q.projectId ? { projectId: q.projectId } : {}), projectIds: caller.principal.projectIds });
  return {
    minimumRuns: MIN_PREDICTION_RUNS,
    items: accuracyByType(scored).map((a) => ({
      machineType: a.machineType,
      runs: a.runs,
      cost: { mae: formatAmount(a.costMae, a.currency as Project['currency']), currency: a.currency, coverage: a.costCoverage },
      durationSeconds: { mae: a.durationMaeSeconds, coverage: a.durationCoverage },
    })),
  };
}

/** Whether a request refuses early: its own `refuseIfPredictedOver`, else its project's setting (default no). */
export async function refusesEarly(ctx: ServiceContext, projectId: string, requested: boolean | undefined): Promise<boolean> {
  if (requested !== undefined) return requested;
  return (await getPredictionSettings(ctx.db, projectId))?.refuseIfPredictedOver ?? false;
}

export const putPredictionSettingsBody = z.strictObject({ refuseIfPredictedOver: z.boolean({ error: 'must be true or false' }) });

/** Sets whether the project's machines are refused early when their predicted lower bound does not fit (audited). */
export async function setPredictionSettings(ctx: ServiceContext, caller: Caller, projectId: string, input: z.input<typeof putPredictionSettingsBody>) {
  const body = putPredictionSettingsBody.parse(input);
  await requireProject(ctx, projectId);
  await putPredictionSettings(ctx.db, projectId, body);
  await appendAudit(ctx.db, {
    actor: actorOfCaller(caller),
    action: 'prediction.settings_changed',
    subjectType: 'project',
    subjectId: projectId,
    projectId,
    details: { ...body },
  });
  return { refuseIfPredictedOver: body.refuseIfPredictedOver };
}

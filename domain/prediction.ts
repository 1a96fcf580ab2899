/**
 * Cost prediction (README "Cost prediction"): a run's cost and duration before it starts, from the
 * settled runs of the same machine type (and operation class, when the router classified it) —
 * the project's own history first, else the deployment's. The prediction is the median and an
 * 80 % interval (10th to 90th percentile) of that history, by nearest rank, so every figure is one
 * that actually happened: with n runs sorted ascending, the q-quantile is run number ⌈q·n⌉.
 * Fewer than MIN_PREDICTION_RUNS runs: no prediction, and the reason says so. Pure.
 */

/** Fewer settled runs than this in every scope: no prediction. */
export const MIN_PREDICTION_RUNS = 5;
/** The newest runs a prediction looks at. */
export const PREDICTION_WINDOW = 200;

export interface PastRun {
  /** Settled cost in the currency of the prediction, in ledger units. */
  cost: bigint;
  durationSeconds: number;
  /** The router's class of the run, when it was routed. */
  operationClass: string | null;
}

export type PredictionScope = 'project' | 'deployment';

export interface Prediction {
  cost: { p10: bigint; p50: bigint; p90: bigint };
  durationSeconds: { p10: number; p50: number; p90: number };
  /** How many past runs it rests on. */
  basis: number;
  scope: PredictionScope;
  /** The class the history was narrowed to (null: all runs of the type). */
  operationClass: string | null;
}

export type PredictionVerdict = { ok: true; prediction: Prediction } | { ok: false; reason: string };

/** The q-quantile (0 < q ≤ 1) of ascending values by nearest rank: the ⌈q·n⌉-th value. */
export function nearestRank<T>(sorted: readonly T[], q: number): T {
  if (!sorted.length) throw new Error('nearestRank of no values');
  // The small epsilon keeps q·n that is an integer in floating point (0.1·10) from rounding up.
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(q * sorted.length - 1e-9)));
  return sorted[rank - 1]!;
}

function summarize(runs: readonly PastRun[], scope: PredictionScope, operationClass: string | null): Prediction {
  const costs = runs.map((r) => r.cost).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const durations = runs.map((r) => r.durationSeconds).sort((a, b) => a - b);
  return {
    cost: { p10: nearestRank(costs, 0.1), p50: nearestRank(costs, 0.5), p90: nearestRank(costs, 0.9) },
    durationSeconds: { p10: nearestRank(durations, 0.1), p50: nearestRank(durations, 0.5), p90: nearestRank(durations, 0.9) },
    basis: runs.length,
    scope,
    operationClass,
  };
}

/**
 * Predicts from the project's and the deployment's runs of the machine's type (newest first, at
 * most PREDICTION_WINDOW of each are used). Scopes in order, the first with enough runs wins:
 * project runs of the class, project runs, deployment runs of the class, deployment runs (the
 * class ones only when `operationClass` is known).
 */
export function predictRun(input: {
  projectRuns: readonly PastRun[];
  deploymentRuns: readonly PastRun[];
  operationClass: string | null;
  minRuns?: number;
}): PredictionVerdict {
  const min = input.minRuns ?? MIN_PREDICTION_RUNS;
  const cls = input.operationClass;
  const candidates: [PredictionScope, string | null, readonly PastRun[]][] = [];
  for (const [scope, runs] of [
    ['project', input.projectRuns],
    ['deployment', input.deploymentRuns],
  ] as const) {
    if (cls) candidates.push([scope, cls, runs.filter((r) => r.operationClass === cls)]);
    candidates.push([scope, null, runs]);
  }
  for (const [scope, c, runs] of candidates) {
    if (runs.length >= min) return { ok: true, prediction: summarize(runs.slice(0, PREDICTION_WINDOW), scope, c) };
  }
  return {
    ok: false,
    reason: `fewer than ${min} settled runs of this type (project: ${input.projectRuns.length}, deployment: ${input.deploymentRuns.length})`,
  };
}

/** A run's actual against its prediction, as the accuracy report counts it. */
export interface Scored {
  machineType: string;
  /** The currency of the cost figures (the project's). */
  currency: string;
  predicted: { p10: bigint; p50: bigint; p90: bigint; durationP10: number; durationP50: number; durationP90: number };
  actual: { cost: bigint; durationSeconds: number };
}

export interface Accuracy {
  machineType: string;
  currency: string;
  runs: number;
  /** Mean absolute error of the median cost, in ledger units (rounded half up). */
  costMae: bigint;
  durationMaeSeconds: number;
  /** Share of actual costs inside [p10, p90] (0..1). */
  costCoverage: number;
  durationCoverage: number;
}

/** Mean absolute error and 80 %-interval coverage per machine type (and currency), in name order. */
export function accuracyByType(scored: readonly Scored[]): Accuracy[] {
  const byType = new Map<string, Scored[]>();
  for (const s of scored) {
    const key = `${s.machineType} ${s.currency}`;
    byType.set(key, [...(byType.get(key) ?? []), s]);
  }
  return [...byType.keys()].sort().map((key) => {
    const runs = byType.get(key)!;
    const { machineType, currency } = runs[0]!;
    const n = runs.length;
    const absCost = runs.reduce((sum, s) => sum + abs(s.actual.cost - s.predicted.p50), 0n);
    const absDuration = runs.reduce((sum, s) => sum + Math.abs(s.actual.durationSeconds - s.predicted.durationP50), 0);
    const costInside = runs.filter((s) => s.actual.cost >= s.predicted.p10 && s.actual.cost <= s.predicted.p90).length;
    const durationInside = runs.filter(
      (s) => s.actual.durationSeconds >= s.predicted.durationP10 && s.actual.durationSeconds <= s.predicted.durationP90,
    ).length;
    return {
      machineType,
      currency,
      runs: n,
      costMae: (2n * absCost + BigInt(n)) / (2n * BigInt(n)),
      durationMaeSeconds: absDuration / n,
      costCoverage: costInside / n,
      durationCoverage: durationInside / n,
    };
  });
}

const abs = (v: bigint) => (v < 0n ? -v : v);

/**
 * The router (README "Machine selection (type: auto)"): which agent machine type gets a task of a
 * given operation class. A Thompson-sampling bandit over Beta posteriors per class × type: the
 * prior comes from the capability table (a score 0..1 worth PRIOR_WEIGHT pseudo-runs), the
 * evidence from settled machines (success = completed). Each candidate's sampled success
 * probability is weighed against its expected cost by the project's quality knob; a share of
 * decisions (the exploration budget) is picked uniformly instead, for a continuous A/B.
 * Pure: randomness comes in as a function, so tests and the offline harness replay exactly.
 */
import { formatAmount } from '../money.js';
import { MACHINE_TYPE_SPECS, priceOf, tokenCost, type MachineTypeId } from '../machine-types.js';
import type { AgentType, PriceTables } from '../metering.js';
import { OPERATION_CLASSES, type OperationClass } from './classify.js';

export type CapabilityTable = Record<string, Partial<Record<OperationClass, number>>>;

/**
 * Default capability scores (prior success probability) per machine type and class: an informed
 * guess from what each tool is built for (domain/machine-types.ts capabilities), not a measurement.
 * AUTOVIBE_ROUTING_CAPABILITIES overrides entries (config/index.ts).
 */
export const DEFAULT_CAPABILITIES: CapabilityTable = {
  'claude-code': { architecture: 0.8, feature: 0.8, bugfix: 0.8, performance: 0.7, documentation: 0.8, tests: 0.8, 'bulk-change': 0.7 },
  'gemini-pro': { architecture: 0.75, feature: 0.7, bugfix: 0.65, performance: 0.6, documentation: 0.8, tests: 0.65, 'bulk-change': 0.6 },
  aider: { architecture: 0.55, feature: 0.7, bugfix: 0.7, performance: 0.6, documentation: 0.65, tests: 0.7, 'bulk-change': 0.75 },
  'deepseek-coder': { architecture: 0.5, feature: 0.65, bugfix: 0.65, performance: 0.55, documentation: 0.65, tests: 0.7, 'bulk-change': 0.7 },
  'qwen-coder': { architecture: 0.35, feature: 0.5, bugfix: 0.5, performance: 0.4, documentation: 0.6, tests: 0.6, 'bulk-change': 0.55 },
  'local-llama': { architecture: 0.3, feature: 0.45, bugfix: 0.45, performance: 0.35, documentation: 0.6, tests: 0.5, 'bulk-change': 0.45 },
};

/** How many runs' worth of evidence the capability prior counts as. */
export const PRIOR_WEIGHT = 4;

/** The token volume of a typical agent task: prices are compared at this usage. */
export const TYPICAL_TASK = { inputTokens: 200_000, outputTokens: 20_000 } as const;

export interface RoutingSettings {
  /** 0: cheapest that might do; 1: best regardless of cost. */
  quality: number;
  /** 0..1: share of decisions picked uniformly at random. */
  exploration: number;
}

export interface ArmEvidence {
  successes: number;
  failures: number;
}

export interface Candidate {
  type: string;
  /** Expected cost of a typical task in USD ledger units (from the type's default model price). */
  expectedCost: bigint;
}

export interface CandidateScore {
  type: string;
  capability: number;
  alpha: number;
  beta: number;
  /** Posterior mean. */
  mean: number;
  /** The Thompson draw. */
  sample: number;
  /** Expected cost relative to the dearest candidate, 0..1. */
  relativeCost: number;
  /** Decimal USD. */
  expectedCost: string;
  utility: number;
}

export interface RoutingDecision {
  chosen: string;
  mode: 'exploit' | 'explore' | 'only';
  reason: string;
  scores: CandidateScore[];
}

/** The capability of `type` for `cls`: the table's, else 0.5 (no opinion). */
export function capabilityOf(table: CapabilityTable, type: string, cls: OperationClass): number {
  const v = table[type]?.[cls];
  return typeof v === 'number' && v >= 0 && v <= 1 ? v : 0.5;
}

/** Beta posterior of an arm: the capability prior worth PRIOR_WEIGHT runs, plus the evidence. */
export function posterior(capability: number, ev: ArmEvidence): { alpha: number; beta: number; mean: number } {
  const alpha = 1 + capability * PRIOR_WEIGHT + ev.successes;
  const beta = 1 + (1 - capability) * PRIOR_WEIGHT + ev.failures;
  return { alpha, beta, mean: alpha / (alpha + beta) };
}

/** What a typical task costs on `type` at its default model's price (0 for local inference). */
export function expectedTaskCost(type: AgentType, prices: PriceTables): bigint {
  const spec = MACHINE_TYPE_SPECS[type as MachineTypeId];
  if (!spec.defaultModel) return 0n;
  const price = priceOf(prices[type] ?? {}, spec.defaultModel);
  return price ? tokenCost(price, TYPICAL_TASK) : 0n;
}

// ---- sampling from Beta(a, b) with a given uniform source: Gamma by Marsaglia–Tsang.

function normal(rand: () => number): number {
  const u = 1 - rand();
  const v = rand();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

function gamma(shape: number, rand: () => number): number {
  if (shape < 1) return gamma(shape + 1, rand) * Math.pow(1 - rand(), 1 / shape);
  const d = shape - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  for (;;) {
    let x: number;
    let v: number;
    do {
      x = normal(rand);
      v = 1 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const u = 1 - rand();
    if (Math.log(u) < 0.5 * x * x + d - d * v + d * Math.log(v)) return d * v;
  }
}

export function sampleBeta(alpha: number, beta: number, rand: () => number): number {
  const x = gamma(alpha, rand);
  const y = gamma(beta, rand);
  return x / (x + y);
}

/**
 * Utility of a candidate: sampled success probability minus the cost weight times its cost
 * relative to the dearest candidate. quality 1 ignores cost; quality 0 weighs cost fully.
 */
export function utility(sample: number, relativeCost: number, quality: number): number {
  return sample - (1 - quality) * relativeCost;
}

const fmtUsd = (units: bigint) => formatAmount(units, 'USD');

/**
 * Picks a machine type for a task of class `cls` among `candidates` (at least one).
 * `evidence` maps type → its arm; `rand` gives uniform numbers in [0, 1).
 */
export function chooseMachineType(input: {
  cls: OperationClass;
  candidates: readonly Candidate[];
  evidence: ReadonlyMap<string, ArmEvidence>;
  capabilities: CapabilityTable;
  settings: RoutingSettings;
  rand: () => number;
}): RoutingDecision {
  const { cls, candidates, settings, rand } = input;
  if (!candidates.length) throw new Error('no candidate machine type');
  const dearest = candidates.reduce((m, c) => (c.expectedCost > m ? c.expectedCost : m), 0n);
  const scores: CandidateScore[] = candidates.map((c) => {
    const capability = capabilityOf(input.capabilities, c.type, cls);
    const post = posterior(capability, input.evidence.get(c.type) ?? { successes: 0, failures: 0 });
    const sample = sampleBeta(post.alpha, post.beta, rand);
    const relativeCost = dearest > 0n ? Number((c.expectedCost * 1_000_000n) / dearest) / 1_000_000 : 0;
    return {
      type: c.type,
      capability,
      ...post,
      sample,
      relativeCost,
      expectedCost: fmtUsd(c.expectedCost),
      utility: utility(sample, relativeCost, settings.quality),
    };
  });
  if (candidates.length === 1) {
    return { chosen: candidates[0]!.type, mode: 'only', reason: `${cls}: ${candidates[0]!.type} is the only available agent type`, scores };
  }
  if (rand() < settings.exploration) {
    const pick = scores[Math.min(scores.length - 1, Math.floor(rand() * scores.length))]!;
    return {
      chosen: pick.type,
      mode: 'explore',
      reason: `${cls}: exploration (${Math.round(settings.exploration * 100)}% of decisions are picked at random to keep learning); picked ${pick.type}`,
      scores,
    };
  }
  const best = [...scores].sort((a, b) => b.utility - a.utility || a.type.localeCompare(b.type))[0]!;
  const runnerUp = [...scores].sort((a, b) => b.utility - a.utility || a.type.localeCompare(b.type))[1]!;
  const evidence = input.evidence.get(best.type) ?? { successes: 0, failures: 0 };
  return {
    chosen: best.type,
    mode: 'exploit',
    reason:
      `${cls}: ${best.type} has the best quality-for-cost at quality ${settings.quality} ` +
      `(success ~${best.mean.toFixed(2)} from capability ${best.capability} and ${evidence.successes}/${evidence.successes + evidence.failures} runs, ` +
      `relative cost ${best.relativeCost.toFixed(2)}; next ${runnerUp.type} at ${runnerUp.utility.toFixed(2)} vs ${best.utility.toFixed(2)})`,
    scores,
  };
}

export function isOperationClass(v: string): v is OperationClass {
  return (OPERATION_CLASSES as readonly string[]).includes(v);
}

/**
 * What a machine's end says about its type: completed is a success; failed, or stopped at its time,
 * money or call limit, a failure; refused (never ran) or terminated by request, nothing (null).
 */
export function routingSuccess(status: string, stopReason: string | null): boolean | null {
  if (status === 'completed') return true;
  if (status === 'failed') return false;
  if (status === 'terminated') return stopReason && /limit|budget/.test(stopReason) && !/by request/.test(stopReason) ? false : null;
  return null;
}

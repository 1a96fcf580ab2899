/**
 * Writes data/routing/outcomes.jsonl: a SIMULATED replay set of (task, machine type, outcome, cost)
 * for the offline routing harness (`npm run bench -- routing`). Not measured runs: see
 * data/routing/SOURCE.md. Deterministic (seeded), so the file is reproducible:
 *   npx tsx scripts/routing/make-outcomes.ts
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatAmount } from '../../domain/money.js';
import { defaultPriceTables, type AgentType } from '../../domain/metering.js';
import { MACHINE_TYPE_SPECS, priceOf, tokenCost } from '../../domain/machine-types.js';
import { parseLabelledTasks, type OperationClass } from '../../domain/routing/classify.js';

const DATA = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'data', 'routing');

/** The simulation's hidden per-class success rates: deliberately not the router's prior table. */
export const TRUE_SUCCESS: Record<AgentType, Record<OperationClass, number>> = {
  'claude-code': { architecture: 0.75, feature: 0.72, bugfix: 0.7, performance: 0.6, documentation: 0.9, tests: 0.8, 'bulk-change': 0.7 },
  'gemini-pro': { architecture: 0.7, feature: 0.62, bugfix: 0.58, performance: 0.5, documentation: 0.88, tests: 0.7, 'bulk-change': 0.6 },
  aider: { architecture: 0.45, feature: 0.6, bugfix: 0.6, performance: 0.45, documentation: 0.85, tests: 0.72, 'bulk-change': 0.75 },
  'deepseek-coder': { architecture: 0.4, feature: 0.55, bugfix: 0.55, performance: 0.42, documentation: 0.85, tests: 0.7, 'bulk-change': 0.72 },
  'qwen-coder': { architecture: 0.2, feature: 0.35, bugfix: 0.35, performance: 0.2, documentation: 0.75, tests: 0.5, 'bulk-change': 0.5 },
  'local-llama': { architecture: 0.15, feature: 0.3, bugfix: 0.3, performance: 0.15, documentation: 0.7, tests: 0.4, 'bulk-change': 0.35 },
};

/** Tokens a run of each class takes (input, output), before a per-run spread of ×0.5–×2. */
const TOKENS: Record<OperationClass, [number, number]> = {
  architecture: [300_000, 30_000],
  feature: [250_000, 25_000],
  bugfix: [200_000, 15_000],
  performance: [250_000, 20_000],
  documentation: [120_000, 15_000],
  tests: [200_000, 25_000],
  'bulk-change': [400_000, 40_000],
};

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function main(): void {
  const tasks = parseLabelledTasks(fs.readFileSync(path.join(DATA, 'tasks.jsonl'), 'utf8'));
  const rand = mulberry32(20261207);
  const prices = defaultPriceTables();
  const lines: string[] = [];
  for (const task of tasks) {
    // One difficulty per task shared by every type: outcomes are correlated (a hard task is hard for all).
    const difficulty = rand();
    const spread = 0.5 + 1.5 * rand();
    for (const type of Object.keys(TRUE_SUCCESS) as AgentType[]) {
      const p = TRUE_SUCCESS[type][task.class];
      // Success when the shared difficulty and this type's own luck stay under its rate.
      const success = 0.6 * difficulty + 0.4 * rand() < p;
      const [inTok, outTok] = TOKENS[task.class];
      // A failing run tends to use more tokens before it gives up.
      const factor = spread * (success ? 1 : 1.4);
      const usage = { inputTokens: Math.round(inTok * factor), outputTokens: Math.round(outTok * factor) };
      const spec = MACHINE_TYPE_SPECS[type];
      const price = priceOf(prices[type], spec.defaultModel!)!;
      // Compute: 10-40 minutes at the lightweight profile's 0.02 USD/hour (local inference pays only this).
      const minutes = 10 + 30 * rand();
      const compute = BigInt(Math.round((minutes / 60) * 0.02 * 1e6)) * 10n ** 12n;
      const cost = tokenCost(price, usage) + compute;
      lines.push(JSON.stringify({ task: task.text, class: task.class, type, success, cost: formatAmount(cost, 'USD'), currency: 'USD' }));
    }
  }
  fs.writeFileSync(path.join(DATA, 'outcomes.jsonl'), `${lines.join('\n')}\n`);
  process.stdout.write(`wrote ${lines.length} rows to data/routing/outcomes.jsonl\n`);
}

main();

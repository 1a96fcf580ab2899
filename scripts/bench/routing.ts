/**
 * Machine selection (README "Machine selection (type: auto)"): accuracy of the two operation
 * classifiers on the held-out split of data/routing/tasks.jsonl. No services.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { accuracy, classifyByBayes, classifyByRules, parseLabelledTasks, splitHeldOut, trainBayes } from '../../domain/routing/classify.js';
import type { BenchOptions, BenchOutput, Row } from './common.js';

const DATA = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'data', 'routing');

function classification(): { rows: Row[]; notes: string[]; details: Record<string, unknown> } {
  const all = parseLabelledTasks(fs.readFileSync(path.join(DATA, 'tasks.jsonl'), 'utf8'));
  const { train, test } = splitHeldOut(all);
  const model = trainBayes(train);
  const rules = accuracy((t) => classifyByRules(t.text, t.context).class, test);
  const bayes = accuracy((t) => classifyByBayes(model, t.text, t.context).class, test);
  return {
    rows: [
      { label: `classification accuracy, keyword baseline (held out ${test.length} of ${all.length})`, unit: '%', value: rules * 100, decimals: 1 },
      { label: `classification accuracy, naive Bayes trained on ${train.length}`, unit: '%', value: bayes * 100, decimals: 1 },
    ],
    notes: [
      'tasks.jsonl is hand-written in the style of issue titles (data/routing/SOURCE.md); the keyword rules were written with the whole set in view, so their figure is optimistic',
    ],
    details: { train: train.length, test: test.length, rules, bayes },
  };
}

export async function routing(opts: BenchOptions): Promise<BenchOutput> {
  const c = classification();
  opts.log(`classifiers: rules ${(c.details.rules as number).toFixed(3)}, bayes ${(c.details.bayes as number).toFixed(3)}`);
  return { rows: c.rows, notes: c.notes, details: { classification: c.details } };
}

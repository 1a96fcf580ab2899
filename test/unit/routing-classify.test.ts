import assert from 'node:assert/strict';
import fs from 'node:fs';
import {
  accuracy,
  classifyByBayes,
  classifyByRules,
  contextTokens,
  estimateComplexity,
  parseLabelledTasks,
  splitHeldOut,
  tokenize,
  trainBayes,
  type LabelledTask,
} from '../../domain/routing/classify.js';

const all = parseLabelledTasks(fs.readFileSync(new URL('../../data/routing/tasks.jsonl', import.meta.url), 'utf8'));

describe('routing: operation classification', () => {
  it('tokenizes to stems without stopwords', () => {
    assert.deepEqual(tokenize('Fixes the crashes in Tests'), ['fix', 'crash', 'test']);
  });

  it('the keyword baseline names the words that decided', () => {
    const c = classifyByRules('Speed up the slow dashboard query');
    assert.equal(c.class, 'performance');
    assert.equal(c.model, 'rules');
    assert.match(c.reason, /speed/);
    assert.match(c.reason, /slow/);
    assert.equal(classifyByRules('Write a tutorial for the CLI').class, 'documentation');
    assert.equal(classifyByRules('Rename the Foo class to Bar across the codebase').class, 'bulk-change');
    assert.equal(classifyByRules('Do the thing').reason, 'no keyword matched; default feature');
  });

  it('uses checkpoint context: paths hint the class, many files make a bulk change', () => {
    assert.equal(classifyByRules('Update this').class, 'feature');
    assert.equal(classifyByRules('Update this', { files: ['README.md', 'docs/guide.md'] }).class, 'documentation');
    const files = Array.from({ length: 40 }, (_, i) => `src/m${i}.ts`);
    const bulk = classifyByRules('Update this', { files });
    assert.equal(bulk.class, 'bulk-change');
    assert.match(bulk.reason, /40 files/);
    assert.deepEqual(contextTokens({ files: ['test/a.test.ts'], sizeBytes: 20, language: 'TypeScript' }).slice(-3), [
      'ctx:files-one',
      'ctx:size-small',
      'ctx:lang-typescript',
    ]);
  });

  it('estimates the complexity of a bug fix', () => {
    assert.equal(classifyByRules('Fix typo in the error message').complexity, 'low');
    assert.equal(classifyByRules('Fix the race condition causing a deadlock').complexity, 'high');
    assert.equal(estimateComplexity('Fix sorting of dates').complexity, 'medium');
    assert.equal(estimateComplexity('Fix sorting of dates', { files: Array.from({ length: 10 }, (_, i) => `f${i}`), sizeBytes: 2e7 }).complexity, 'high');
    assert.equal(classifyByRules('Add a CSV export').complexity, undefined);
  });

  it('the learned model learns from examples, context included', () => {
    const train: LabelledTask[] = [
      { text: 'zorp the widget', class: 'tests' },
      { text: 'zorp more widgets', class: 'tests' },
      { text: 'blarg the gadget', class: 'performance' },
      { text: 'change it', class: 'documentation', context: { files: ['manual.adoc'], language: 'asciidoc' } },
    ];
    const m = trainBayes(train);
    assert.equal(classifyByBayes(m, 'zorp').class, 'tests');
    assert.equal(classifyByBayes(m, 'blarg').class, 'performance');
    assert.equal(classifyByBayes(m, 'something', { language: 'asciidoc' }).class, 'documentation');
    assert.match(classifyByBayes(m, 'zorp').reason, /zorp/);
  });

  it('the labelled set is balanced and both models beat chance on the held-out split', () => {
    const { train, test } = splitHeldOut(all);
    assert.ok(all.length >= 250);
    assert.equal(train.length + test.length, all.length);
    const m = trainBayes(train);
    const bayes = accuracy((t) => classifyByBayes(m, t.text, t.context).class, test);
    const rules = accuracy((t) => classifyByRules(t.text, t.context).class, test);
    // 7 classes: chance is 1/7.
    assert.ok(bayes > 0.5, `bayes ${bayes}`);
    assert.ok(rules > 0.5, `rules ${rules}`);
  });

  it('refuses a labelled line without a known class, naming the line', () => {
    assert.throws(() => parseLabelledTasks('{"text":"x","class":"tests"}\n{"text":"y","class":"nope"}'), /line 2/);
  });
});

import assert from 'node:assert/strict';
import {
  buildRefinement,
  checkPattern,
  chooseArm,
  errorLinesOf,
  feedbackPattern,
  patternsOfFailure,
  refinedPrompt,
  summarizeFailure,
  type FailurePattern,
} from '../../domain/routing/refine.js';

describe('routing: prompt refinement from failure patterns', () => {
  it('keeps the distinct error lines of a log, the last ones, in order', () => {
    const log = ['compiling', 'Error: cannot find module x', 'ok', 'FAIL src/a.test.ts', 'Error: cannot find module x', 'done', 'AssertionError: 1 !== 2'].join(
      '\n',
    );
    assert.deepEqual(errorLinesOf(log), ['FAIL src/a.test.ts', 'Error: cannot find module x', 'AssertionError: 1 !== 2']);
    assert.deepEqual(errorLinesOf(log, 1), ['AssertionError: 1 !== 2']);
    assert.deepEqual(errorLinesOf('all good\nwritten'), []);
  });

  it('summarizes a failed machine and turns it into patterns', () => {
    const s = summarizeFailure({
      status: 'failed',
      stopReason: null,
      error: 'declared artifact report.txt was not produced',
      log: 'npm ERR! test failed\nbye',
      files: ['b.ts', 'a.ts', 'a.ts', '.aider.chat.history.md'],
    });
    assert.equal(s.summary, 'ended failed; error: declared artifact report.txt was not produced; touched 2 file(s): a.ts, b.ts');
    assert.deepEqual(s.files, ['a.ts', 'b.ts']);
    assert.deepEqual(s.errorLines, ['npm ERR! test failed']);
    assert.deepEqual(patternsOfFailure(s), [
      { kind: 'error', detail: 'declared artifact report.txt was not produced' },
      { kind: 'error', detail: 'npm ERR! test failed' },
      { kind: 'file', detail: 'a.ts' },
      { kind: 'file', detail: 'b.ts' },
    ]);
    const stopped = summarizeFailure({ status: 'stopped', stopReason: 'money limit reached', error: null, log: '', files: [] });
    assert.equal(stopped.summary, 'ended stopped (money limit reached)');
    assert.deepEqual(patternsOfFailure(stopped), [{ kind: 'stop', detail: 'money limit reached' }]);
  });

  it('builds instructions from a class’s patterns, the chosen type’s and the frequent ones first', () => {
    assert.equal(buildRefinement('tests', 'aider', []), null);
    const patterns: FailurePattern[] = [
      { kind: 'file', detail: 'src/greet.ts', machineType: 'claude-code', occurrences: 1 },
      { kind: 'file', detail: 'hello.txt', machineType: 'aider', occurrences: 1 },
      { ...checkPattern('npm test', 'ok 1\nnot ok 2 greets\n'), machineType: 'aider', occurrences: 2 },
      { ...feedbackPattern(1, 'the tests never ran'), machineType: 'claude-code', occurrences: 1 },
      { kind: 'error', detail: 'Error: boom', machineType: 'aider', occurrences: 3 },
    ];
    const text = buildRefinement('tests', 'aider', patterns)!;
    assert.equal(
      text,
      [
        'Earlier tests runs in this project did not succeed. Learn from them:',
        '- Completion checks failed last time; run them yourself before you finish and fix what they report:',
        '  - `npm test` — not ok 2 greets (2 times)',
        '- Failing runs changed these files; review them closely: hello.txt, src/greet.ts',
        '- Errors seen in failing runs; avoid them:',
        '  - Error: boom (3 times)',
        '- Reviewers said about earlier work:',
        '  - "the tests never ran"',
      ].join('\n'),
    );
    assert.equal(feedbackPattern(2, null).detail, 'rated 2/5 without a comment');
    assert.equal(refinedPrompt('Add tests', null), 'Add tests');
    assert.equal(refinedPrompt('Add tests', 'Note.'), 'Add tests\n\nNote.');
  });

  it('splits machines between the arms by the share', () => {
    assert.equal(
      chooseArm(1, () => 0.999),
      'refined',
    );
    assert.equal(
      chooseArm(0, () => 0),
      'plain',
    );
    assert.equal(
      chooseArm(0.5, () => 0.49),
      'refined',
    );
    assert.equal(
      chooseArm(0.5, () => 0.5),
      'plain',
    );
  });
});

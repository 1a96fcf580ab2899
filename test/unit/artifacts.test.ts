import assert from 'node:assert/strict';
import { ancestorsOf, hasInputs, inputsNote, resolveStepRefs, workspacePathProblem } from '../../domain/artifacts.js';

describe('artifact passing (domain)', () => {
  it('accepts only relative workspace paths that stay inside the workspace and out of .git', () => {
    for (const ok of ['a.txt', 'src/a.txt', '.autovibe/context/m.jsonl', 'a..b/c', '.gitignore', 'x/.git']) assert.equal(workspacePathProblem(ok), null, ok);
    for (const bad of ['', '/etc/passwd', '../x', 'a/../../x', 'a/..', './a', 'a//b', 'a/', '.git', '.git/config', 'a\\b', 'a\0b', 'x'.repeat(1025)]) {
      assert.ok(workspacePathProblem(bad), `${JSON.stringify(bad)} should be refused`);
    }
  });

  it('finds every ancestor of a step, through other steps, and nothing else', () => {
    const steps = [
      { id: 'a', dependsOn: [] },
      { id: 'b', dependsOn: ['a'] },
      { id: 'c', dependsOn: ['b'] },
      { id: 'd', dependsOn: [] },
      { id: 'e', dependsOn: ['c', 'd'] },
    ];
    assert.deepEqual([...ancestorsOf(steps, 'e')].sort(), ['a', 'b', 'c', 'd']);
    assert.deepEqual([...ancestorsOf(steps, 'c')].sort(), ['a', 'b']);
    assert.deepEqual([...ancestorsOf(steps, 'a')], []);
    assert.deepEqual(
      [
        ...ancestorsOf(
          [
            { id: 'x', dependsOn: ['y'] },
            { id: 'y', dependsOn: ['x'] },
          ],
          'x',
        ),
      ].sort(),
      ['x', 'y'],
    );
  });

  it('replaces step references by the machine and final checkpoint of that step, keeping ids as given', () => {
    const steps = { a: { machineId: 'machine-a', checkpointId: 'checkpoint-a' }, b: { machineId: 'machine-b', checkpointId: null } };
    const resolved = resolveStepRefs(
      {
        files: [
          { step: 'a', path: 'x', as: 'y' },
          { checkpointId: 'checkpoint-z', path: 'z' },
        ],
        conversations: [{ step: 'b' }, { machineId: 'machine-q' }],
        artifacts: [{ step: 'a', name: 'r.txt' }],
      },
      steps,
    );
    assert.deepEqual(resolved, {
      files: [
        { checkpointId: 'checkpoint-a', path: 'x', as: 'y' },
        { checkpointId: 'checkpoint-z', path: 'z' },
      ],
      conversations: [{ machineId: 'machine-b' }, { machineId: 'machine-q' }],
      artifacts: [{ machineId: 'machine-a', name: 'r.txt' }],
    });
    assert.throws(() => resolveStepRefs({ files: [{ step: 'b', path: 'x' }] }, steps), /step b has no final checkpoint/);
    assert.equal(hasInputs(resolved), true);
    assert.equal(hasInputs({ files: [], conversations: [] }), false);
    assert.equal(hasInputs(undefined), false);
  });

  it('tells an agent where its inputs are and how to fetch more', () => {
    const note = inputsNote([{ dest: '.autovibe/context/machine-1.conversation.jsonl', what: 'conversation history of machine machine-1' }]);
    assert.match(note, /- \.autovibe\/context\/machine-1\.conversation\.jsonl: conversation history of machine machine-1/);
    assert.match(note, /GET http:\/\/127\.0\.0\.1:8080\/autovibe\/v1\/checkpoints\/<checkpoint id>\/files\/<path>/);
  });
});

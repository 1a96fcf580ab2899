import assert from 'node:assert/strict';
import { createUserWithKey } from '../../store/auth.js';
import { projectWithBudget, startTestPlatform, waitFor, waitForMachine, type TestPlatform } from '../support/platform.js';

const detailsOf = (row: { details: unknown }) => (typeof row.details === 'string' ? JSON.parse(row.details) : row.details);

/**
 * Merging branches of the evolution tree with real git: two machines that edit the same line of a
 * file conflict (409 with the hunks, nothing recorded); a branch that adds another file merges
 * cleanly into a checkpoint with both changes and two parents; a shell machine whose command
 * rewrites the conflicted file resolves a conflict into a proposed merge that is accepted; a
 * machine that leaves the markers proposes a merge that accept refuses and reject marks.
 */
describe('api: merging checkpoints (real git conflicts, machine resolutions, accept and reject)', function () {
  this.timeout(300_000);
  let p: TestPlatform;
  let project: string;
  let other: string;
  let otherKey: string;
  let base: string;
  let editA: string;
  let editC: string;
  let addD: string;

  const machine = async (projectId: string, checkpointId: string | null, command: string): Promise<string> => {
    const m = await p.api('POST', '/v1/machines', {
      projectId,
      type: 'shell',
      command,
      ...(checkpointId ? { checkpointId } : {}),
      cache: false,
      limits: { money: '0.05', minutes: 2 },
    });
    assert.equal(m.status, 202, JSON.stringify(m.body));
    const done = await waitForMachine(p, m.body.id);
    assert.equal(done.status, 'completed', JSON.stringify(done));
    return done.checkpoints.at(-1);
  };
  const count = async () => Number((await p.db('checkpoints').where({ project_id: project }).count({ n: '*' }))[0]!.n);
  const file = async (checkpoint: string, path: string) => {
    const res = await fetch(`${p.apiUrl}/v1/checkpoints/${checkpoint}/files/${path}`, { headers: { authorization: `Bearer ${p.adminKey}` } });
    assert.equal(res.status, 200, `${path} of ${checkpoint}`);
    return res.text();
  };
  /** Asks a shell machine to resolve A ← C; waits for its proposed checkpoint. */
  const resolve = async (command: string) => {
    const res = await p.api('POST', `/v1/checkpoints/${editA}/merge-resolutions`, {
      from: editC,
      type: 'shell',
      command,
      limits: { money: '0.05', minutes: 2 },
    });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    assert.deepEqual(
      res.body.conflicts.map((c: any) => c.path),
      ['shared.txt'],
    );
    const done = await waitForMachine(p, res.body.machineId);
    assert.equal(done.status, 'completed', JSON.stringify(done));
    const proposed = await waitFor(async () => {
      const r = await p.api('GET', `/v1/checkpoints/${res.body.proposedCheckpointId}`);
      return r.status === 200 ? r.body : null;
    }, 'the proposed merge checkpoint');
    return { started: res.body, proposed };
  };

  before(async () => {
    p = await startTestPlatform({ label: 'merges' });
    project = await projectWithBudget(p, '5.00');
    other = await projectWithBudget(p, '5.00');
    otherKey = (await createUserWithKey(p.db, 'owner-of-other', 'owner', [other])).key;
    base = await machine(project, null, "printf 'line1\\nline2\\nline3\\n' > shared.txt");
    [editA, editC, addD] = await Promise.all([
      machine(project, base, "sed -i 's/^line2$/line2 from A/' shared.txt"),
      machine(project, base, "sed -i 's/^line2$/line2 from C/' shared.txt"),
      machine(project, base, 'echo from D > other.txt'),
    ]);
  });
  after(async () => {
    await p?.stop();
  });

  it('two branches editing the same line: 409 merge_conflict with the path and its ours/base/theirs hunk, nothing recorded', async () => {
    const before = await count();
    const res = await p.api('POST', `/v1/checkpoints/${editA}/merge`, { from: editC });
    assert.equal(res.status, 409, JSON.stringify(res.body));
    assert.equal(res.body.error.code, 'merge_conflict');
    assert.match(res.body.error.message, /conflicts in shared\.txt/);
    const [conflict] = res.body.error.details.conflicts;
    assert.equal(conflict.path, 'shared.txt');
    assert.deepEqual(conflict.types, ['contents']);
    assert.equal(conflict.hunks.length, 1);
    const [hunk] = conflict.hunks;
    assert.deepEqual(hunk.ours, { start: 2, count: 1, text: 'line2 from A\n' });
    assert.deepEqual(hunk.theirs, { start: 2, count: 1, text: 'line2 from C\n' });
    assert.deepEqual(hunk.base, { start: 2, count: 1, text: 'line2\n' });
    assert.deepEqual(hunk.conflicted, { start: 2, count: 7 }, 'ours, base marker, base, separator, theirs and the three markers');
    assert.equal(await count(), before, 'no checkpoint recorded');
    assert.equal((await p.db('audit_log').where({ action: 'checkpoint.merged', project_id: project })).length, 0);
  });

  it('a clean merge of different files: a merge checkpoint with both parents whose files carry both changes (audited, in the tree)', async () => {
    const res = await p.api('POST', `/v1/checkpoints/${editA}/merge`, { from: addD, message: 'bring D in' });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    const merged = res.body;
    assert.equal(merged.kind, 'merge');
    assert.equal(merged.status, 'ready');
    assert.equal(merged.parentId, editA);
    assert.equal(merged.mergeParentId, addD);
    assert.equal(await file(merged.id, 'shared.txt'), 'line1\nline2 from A\nline3\n');
    assert.equal(await file(merged.id, 'other.txt'), 'from D\n');
    const detail = await p.api('GET', `/v1/checkpoints/${merged.id}`);
    assert.equal(detail.body.mergeParentId, addD);
    const tree = await p.api('GET', `/v1/projects/${project}/checkpoints/tree`);
    const node = tree.body.nodes.find((n: any) => n.id === merged.id);
    assert.equal(node.mergeParentId, addD);
    assert.equal(node.parentId, editA);
    const audit = await p.db('audit_log').where({ action: 'checkpoint.merged', subject_id: merged.id });
    assert.equal(audit.length, 1);
    assert.equal(detailsOf(audit[0]).mergeParentId, addD);
    const again = await p.api('POST', `/v1/checkpoints/${merged.id}/merge`, { from: addD });
    assert.equal(again.status, 409);
    assert.equal(again.body.error.code, 'nothing_to_merge');
    const clean = await p.api('POST', `/v1/checkpoints/${editA}/merge-resolutions`, { from: addD, type: 'shell', command: 'true' });
    assert.equal(clean.status, 409);
    assert.equal(clean.body.error.code, 'no_conflicts');
  });

  it('a shell machine resolves the conflict: a proposed merge checkpoint with both parents, accepted into an ordinary merge', async () => {
    const { started, proposed } = await resolve("printf 'line1\\nline2 from A and C\\nline3\\n' > shared.txt");
    const conflicted = (await p.api('GET', `/v1/checkpoints/${started.conflictCheckpointId}`)).body;
    assert.equal(conflicted.status, 'conflicted');
    assert.match(await file(conflicted.id, 'shared.txt'), /^<<<<<<< [\s\S]*line2 from A\n\|\|\|\|\|\|\| [\s\S]*=======\nline2 from C\n>>>>>>> /m);
    assert.equal(proposed.status, 'proposed');
    assert.equal(proposed.kind, 'merge');
    assert.equal(proposed.parentId, editA);
    assert.equal(proposed.mergeParentId, editC);
    assert.equal(proposed.machineId, started.machineId);
    assert.equal(await file(proposed.id, 'shared.txt'), 'line1\nline2 from A and C\nline3\n');
    const machineRow = await p.db('machines').where({ id: started.machineId }).first();
    assert.equal(machineRow.parent_checkpoint_id, started.conflictCheckpointId, 'the machine started from the merge with its markers');
    const accepted = await p.api('POST', `/v1/checkpoints/${proposed.id}/accept`);
    assert.equal(accepted.status, 200, JSON.stringify(accepted.body));
    assert.equal(accepted.body.status, 'ready');
    assert.equal(accepted.body.mergeParentId, editC);
    const node = (await p.api('GET', `/v1/projects/${project}/checkpoints/tree`)).body.nodes.find((n: any) => n.id === proposed.id);
    assert.equal(node.status, 'ready');
    for (const action of ['checkpoint.merge_resolution_requested', 'checkpoint.merge_proposed', 'checkpoint.merge_accepted']) {
      const n = (await p.db('audit_log').where({ action, project_id: project })).length;
      assert.ok(n >= 1, `${action} audited`);
    }
    const twice = await p.api('POST', `/v1/checkpoints/${proposed.id}/accept`);
    assert.equal(twice.status, 409);
    assert.equal(twice.body.error.code, 'not_proposed');
  });

  it('a resolution that leaves the markers: accept refused with 409 naming the path; rejected, it is kept and marked', async () => {
    const { proposed } = await resolve('true');
    assert.equal(proposed.status, 'proposed');
    const accept = await p.api('POST', `/v1/checkpoints/${proposed.id}/accept`);
    assert.equal(accept.status, 409, JSON.stringify(accept.body));
    assert.equal(accept.body.error.code, 'merge_conflict_markers');
    assert.deepEqual(accept.body.error.details.paths, ['shared.txt']);
    const reject = await p.api('POST', `/v1/checkpoints/${proposed.id}/reject`);
    assert.equal(reject.status, 200, JSON.stringify(reject.body));
    assert.equal(reject.body.status, 'rejected');
    assert.equal((await p.api('GET', `/v1/checkpoints/${proposed.id}`)).body.status, 'rejected');
    const audit = await p.db('audit_log').where({ action: 'checkpoint.merge_rejected', subject_id: proposed.id });
    assert.equal(audit.length, 1);
    const merge = await p.api('POST', `/v1/checkpoints/${proposed.id}/merge`, { from: addD });
    assert.equal(merge.status, 409, 'a rejected checkpoint is not merged');
    assert.equal(merge.body.error.code, 'checkpoint_not_ready');
  });

  it("another project's checkpoint is 404 (in the path, or as from of this project's merge), and a bad from is refused saying what to give", async () => {
    const foreign = (await p.api('GET', `/v1/projects/${other}`)).body.rootCheckpointId;
    const asFrom = await p.api('POST', `/v1/checkpoints/${editA}/merge`, { from: foreign });
    assert.equal(asFrom.status, 404, JSON.stringify(asFrom.body));
    const byOther = await p.api('POST', `/v1/checkpoints/${editA}/merge`, { from: foreign }, { key: otherKey });
    assert.equal(byOther.status, 404, JSON.stringify(byOther.body));
    // A body reference the key cannot see is the platform's 422 (as for every body field).
    const hidden = await p.api('POST', `/v1/checkpoints/${foreign}/merge`, { from: editA }, { key: otherKey });
    assert.equal(hidden.status, 422, JSON.stringify(hidden.body));
    assert.match(hidden.body.error.message, /^from: /);
    const resolveForeign = await p.api('POST', `/v1/checkpoints/${editA}/merge-resolutions`, { from: foreign, type: 'shell', command: 'true' });
    assert.equal(resolveForeign.status, 404);
    const bad = await p.api('POST', `/v1/checkpoints/${editA}/merge`, { from: 'nope' });
    assert.equal(bad.status, 400, JSON.stringify(bad.body));
    assert.match(bad.body.error.message, /^from: must be a checkpoint id/);
    const self = await p.api('POST', `/v1/checkpoints/${editA}/merge`, { from: editA });
    assert.equal(self.status, 422, JSON.stringify(self.body));
    assert.match(self.body.error.message, /^from: a checkpoint cannot be merged into itself/);
    const notProposed = await p.api('POST', `/v1/checkpoints/${editA}/reject`);
    assert.equal(notProposed.status, 409);
    assert.equal(notProposed.body.error.code, 'not_proposed');
  });
});

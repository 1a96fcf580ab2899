import assert from 'node:assert/strict';
import { orderedAcquisition } from '../../domain/dag.js';
import { measureProgress } from '../../domain/objectives.js';
import { allocate, MACHINE_SLOT, resourceKey, waitForCycles, type Hold, type ResourceRequest, type SchedulingLimits } from '../../domain/scheduling.js';

const limits = (over: Partial<SchedulingLimits> = {}): SchedulingLimits => ({
  maxConcurrentMachines: 2,
  greedinessPermille: 1000,
  capacities: {},
  remaining: null,
  ...over,
});

let seq = 0;
function req(requestId: string, over: Partial<ResourceRequest> = {}): ResourceRequest {
  return { requestId, requester: `wf-${requestId}`, resource: MACHINE_SLOT, priority: 0, dependents: 0, cost: '100', seq: ++seq, label: requestId, ...over };
}
const granted = (pending: ResourceRequest[], holds: Hold[], l: SchedulingLimits) => allocate(pending, holds, l).grants.map((g) => g.requestId);

describe('scheduling: who gets a machine slot or a resource next', () => {
  it('ranks by priority, then dependents, then cost, then arrival, within the concurrent-machine limit', () => {
    const pending = [req('old-low'), req('cheap', { cost: '50' }), req('unblocks', { dependents: 3 }), req('urgent', { priority: 5 })];
    assert.deepEqual(granted(pending, [], limits({ maxConcurrentMachines: 3 })), ['urgent', 'unblocks', 'cheap']);
    assert.deepEqual(granted(pending, [], limits({ maxConcurrentMachines: 10 })), ['urgent', 'unblocks', 'cheap', 'old-low']);
    const held: Hold[] = [{ requestId: 'x', requester: 'wf-x', resource: MACHINE_SLOT, cost: '1', label: 'x' }];
    assert.deepEqual(granted(pending, held, limits({ maxConcurrentMachines: 2 })), ['urgent']);
    const waiting = allocate(pending, held, limits({ maxConcurrentMachines: 2 })).waiting;
    assert.match(waiting['old-low']!, /all 2 machine slots are in use/);
  });

  it('grants a machine only while its money limit fits what is left, letting cheaper work past a too-expensive one', () => {
    const pending = [req('big', { cost: '900', priority: 9 }), req('small', { cost: '100' })];
    const out = allocate(pending, [], limits({ maxConcurrentMachines: 5, remaining: 500n }));
    assert.deepEqual(
      out.grants.map((g) => g.requestId),
      ['small'],
    );
    assert.match(out.waiting.big!, /does not fit what is left of the budget/);
  });

  it('greediness caps what another concurrent machine may commit of what is left', () => {
    const four = () => ['a', 'b', 'c', 'd'].map((id) => req(id, { cost: '30' }));
    // Cautious (0.5): 30 of 100, then 30 ≤ half of 70, then 30 > half of 40.
    assert.deepEqual(granted(four(), [], limits({ maxConcurrentMachines: 10, remaining: 100n, greedinessPermille: 500 })), ['a', 'b']);
    // Greedy (1): everything that fits.
    assert.deepEqual(granted(four(), [], limits({ maxConcurrentMachines: 10, remaining: 100n, greedinessPermille: 1000 })), ['a', 'b', 'c']);
    // Nothing running: the first machine may use all that is left, whatever the greediness.
    assert.deepEqual(granted([req('only', { cost: '100' })], [], limits({ remaining: 100n, greedinessPermille: 0 })), ['only']);
  });

  it('named resources have their capacity (1 unless declared) and are independent of machine slots', () => {
    const db = resourceKey('db');
    const pending = [req('a', { resource: db, cost: '0' }), req('b', { resource: db, cost: '0' }), req('c', { resource: resourceKey('gpu'), cost: '0' })];
    assert.deepEqual(
      granted(pending, [], limits()),
      ['a', 'b', 'c'].filter((x) => x !== 'b'),
    );
    assert.deepEqual(granted(pending, [], limits({ capacities: { db: 2 } })), ['a', 'b', 'c']);
  });

  /**
   * Two claimers need the same two exclusive resources and hold what they get while waiting for
   * the rest (hold-and-wait, as machines do). Step them through the real allocator.
   */
  function simulate(needs: Record<string, string[]>, order: (r: string[]) => string[]) {
    let pending: ResourceRequest[] = [];
    let holds: Hold[] = [];
    const next = new Map(Object.entries(needs).map(([id, rs]) => [id, order(rs.map(resourceKey))]));
    const done: string[] = [];
    for (let round = 0; round < 20; round++) {
      // Everyone without an open request asks for its next resource, all in the same round.
      for (const [id, queue] of next) {
        if (!queue.length || pending.some((p) => p.requestId === id)) continue;
        pending.push(req(id, { resource: queue[0]!, cost: '0' }));
      }
      for (const g of allocate(pending, holds, limits()).grants) {
        pending = pending.filter((p) => !(p.requestId === g.requestId && p.resource === g.resource));
        holds.push({ requestId: g.requestId, requester: g.requester, resource: g.resource, cost: '0', label: g.requestId });
        next.get(g.requestId)!.shift();
      }
      // Whoever holds everything it needs does its work and releases.
      for (const [id, queue] of next) {
        if (queue.length || done.includes(id)) continue;
        done.push(id);
        holds = holds.filter((h) => h.requestId !== id);
      }
      if (done.length === next.size) return { done, deadlocks: [] as string[][] };
      const cycles = waitForCycles(pending, holds, limits());
      if (cycles.length) return { done, deadlocks: cycles };
    }
    return { done, deadlocks: [['no progress']] };
  }

  it('naive acquisition (each in its own declared order) deadlocks; the global order cannot', () => {
    const needs = { s1: ['gpu', 'db'], s2: ['db', 'gpu'] };
    const naive = simulate(needs, (rs) => rs);
    assert.deepEqual(naive.done, []);
    assert.equal(naive.deadlocks.length, 1);
    assert.deepEqual([...new Set(naive.deadlocks[0])].sort(), ['s1', 's2']);

    const ordered = simulate(needs, (rs) => orderedAcquisition(rs));
    assert.deepEqual(ordered.deadlocks, []);
    assert.deepEqual(ordered.done.sort(), ['s1', 's2']);
  });

  it('the global order also clears a ring of three', () => {
    const needs = { a: ['r1', 'r2'], b: ['r2', 'r3'], c: ['r3', 'r1'] };
    assert.equal(simulate(needs, (rs) => rs).deadlocks.length, 1);
    assert.deepEqual(simulate(needs, (rs) => orderedAcquisition(rs)).done.sort(), ['a', 'b', 'c']);
  });
});

describe('objective progress against completion criteria', () => {
  it('without criteria, an objective is done when its machine completes', () => {
    assert.deepEqual(measureProgress({}, { machineCompleted: true }), { progress: 1, complete: true, met: 1, total: 1 });
    assert.equal(measureProgress({}, { machineCompleted: false }).complete, false);
  });

  it('counts a check, each sub-task and a verdict as one criterion each, rounding down', () => {
    const criteria = { command: 'make test', subtasks: ['a', 'b'], verdict: true };
    const m = measureProgress(criteria, { machineCompleted: true, check: { passed: true }, subtasksDone: ['a'], verdict: { complete: false } });
    assert.deepEqual(m, { progress: 0.5, complete: false, met: 2, total: 4 });
    const third = measureProgress({ subtasks: ['a', 'b', 'c'] }, { machineCompleted: false, subtasksDone: ['a'] });
    assert.equal(third.progress, 0.3333);
    const all = measureProgress(criteria, { machineCompleted: false, check: { passed: true }, subtasksDone: ['b', 'a'], verdict: { complete: true } });
    assert.deepEqual(all, { progress: 1, complete: true, met: 4, total: 4 });
    // A machine that completed does not make a failing check pass.
    assert.equal(measureProgress({ command: 'false' }, { machineCompleted: true, check: { passed: false } }).complete, false);
  });
});

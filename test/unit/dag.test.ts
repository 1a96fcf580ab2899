import assert from 'node:assert/strict';
import {
  type DagNode,
  dependencyDepth,
  dependentsCount,
  findCycle,
  orderedAcquisition,
  readyNodes,
  topologicalLayers,
  validateDag,
  wouldCreateCycle,
} from '../../domain/dag.js';
import { InputError } from '../../domain/errors.js';
import { prng } from '../support/prng.js';

/** Builds nodes from a compact spec: { a: [], b: ['a'] } (insertion order is input order). */
function dag(spec: Record<string, string[]>): DagNode[] {
  return Object.entries(spec).map(([id, dependsOn]) => ({ id, dependsOn }));
}

function int(rand: () => number, lo: number, hi: number): number {
  return lo + Math.floor(rand() * (hi - lo + 1));
}

/** Asserts that `path` is closed and that each id in it really depends on the next one. */
function assertRealCycle(nodes: readonly DagNode[], path: readonly string[] | null, extraEdge?: [string, string]): void {
  assert.ok(path, 'expected a cycle');
  assert.ok(path.length >= 2, `cycle too short: ${path.join(',')}`);
  assert.equal(path[0], path[path.length - 1], `cycle does not close: ${path.join(',')}`);
  const deps = new Map(nodes.map((n) => [n.id, n.dependsOn]));
  for (let i = 0; i + 1 < path.length; i++) {
    const from: string = path[i]!;
    const to: string = path[i + 1]!;
    const isExtra = extraEdge !== undefined && extraEdge[0] === from && extraEdge[1] === to;
    if (!isExtra && !(deps.get(from) ?? []).includes(to)) assert.fail(`${from} → ${to} is not an edge (path ${path.join(',')})`);
  }
  // A simple cycle: no id repeats except the closing one.
  assert.equal(new Set(path.slice(0, -1)).size, path.length - 1, `cycle repeats a node: ${path.join(',')}`);
}

const diamond6 = dag({ a: [], b: ['a'], c: ['a'], d: ['b'], e: ['c'], f: ['d', 'e'] });

describe('domain/dag', () => {
  describe('findCycle', () => {
    it('finds a self-dependency (length 1)', () => {
      assert.deepEqual(findCycle(dag({ a: [], b: ['b'] })), ['b', 'b']);
    });

    it('finds a cycle of length 2', () => {
      assert.deepEqual(findCycle(dag({ a: ['b'], b: ['a'] })), ['a', 'b', 'a']);
    });

    it('finds a cycle of length 3 in dependency direction', () => {
      const nodes = dag({ a: ['b'], b: ['c'], c: ['a'] });
      assert.deepEqual(findCycle(nodes), ['a', 'b', 'c', 'a']);
      assertRealCycle(nodes, findCycle(nodes));
    });

    it('finds a cycle not reachable from the first node', () => {
      const nodes = dag({ root: [], x: ['root'], p: ['q'], q: ['r'], r: ['p'] });
      assert.deepEqual(findCycle(nodes), ['p', 'q', 'r', 'p']);
    });

    it('finds a cycle that is only reachable through nodes that are not on it', () => {
      const nodes = dag({ top: ['mid'], mid: ['x'], x: ['y'], y: ['x'] });
      assert.deepEqual(findCycle(nodes), ['x', 'y', 'x']);
    });

    it('returns null for a diamond', () => {
      assert.equal(findCycle(dag({ a: [], b: ['a'], c: ['a'], d: ['b', 'c'] })), null);
      assert.equal(findCycle(diamond6), null);
    });

    it('returns null for disconnected acyclic graphs and the empty graph', () => {
      assert.equal(findCycle(dag({ a: [], b: ['a'], x: [], y: ['x'], lone: [] })), null);
      assert.equal(findCycle([]), null);
    });

    it('ignores unknown dependencies', () => {
      assert.equal(findCycle(dag({ a: ['ghost'], b: ['a', 'ghost'] })), null);
    });

    it('is deterministic: a shortest cycle through the earliest cyclic node, ties by dependsOn order', () => {
      const spec = { a: ['b', 'd'], b: ['c'], c: ['a'], d: ['a'] };
      const first = findCycle(dag(spec));
      assert.deepEqual(findCycle(dag(spec)), first);
      // Shortest cycle through the earliest node on any cycle; ties by dependsOn order.
      assert.deepEqual(first, ['a', 'd', 'a']);
      assert.deepEqual(findCycle(dag({ a: ['b', 'c'], b: ['a'], c: ['a'] })), ['a', 'b', 'a']);
      assert.deepEqual(findCycle(dag({ a: ['c', 'b'], b: ['a'], c: ['a'] })), ['a', 'c', 'a']);
    });

    it('handles a long chain without overflowing the stack', () => {
      const n = 50_000;
      const nodes: DagNode[] = [];
      for (let i = 0; i < n; i++) nodes.push({ id: `n${i}`, dependsOn: i + 1 < n ? [`n${i + 1}`] : [] });
      assert.equal(findCycle(nodes), null);
      nodes[n - 1] = { id: `n${n - 1}`, dependsOn: ['n0'] };
      const cycle = findCycle(nodes);
      assert.equal(cycle?.length, n + 1);
      assertRealCycle(nodes, cycle);
    });
  });

  describe('validateDag', () => {
    it('returns no problems for a valid graph', () => {
      assert.deepEqual(validateDag(diamond6), []);
      assert.deepEqual(validateDag([]), []);
    });

    it('reports unknown dependencies with an actionable message', () => {
      const problems = validateDag(dag({ a: [], b: ['a', 'x'] }));
      assert.deepEqual(problems, [{ code: 'unknown_dependency', message: 'step "b" depends on unknown step "x"' }]);
    });

    it('reports each duplicated id once', () => {
      const nodes: DagNode[] = [
        { id: 'a', dependsOn: [] },
        { id: 'b', dependsOn: ['a'] },
        { id: 'a', dependsOn: [] },
        { id: 'a', dependsOn: [] },
      ];
      const problems = validateDag(nodes);
      assert.equal(problems.length, 1);
      assert.equal(problems[0]!.code, 'duplicate_id');
      assert.match(problems[0]!.message, /"a"/);
      assert.match(problems[0]!.message, /3/);
    });

    it('reports a self-dependency as such, not also as a cycle', () => {
      const problems = validateDag(dag({ a: ['a'] }));
      assert.deepEqual(
        problems.map((p) => p.code),
        ['self_dependency'],
      );
      assert.match(problems[0]!.message, /step "a" depends on itself/);
      assert.deepEqual(problems[0]!.path, ['a', 'a']);
    });

    it('reports a cycle with its path and a readable message', () => {
      const problems = validateDag(dag({ a: ['b'], b: ['c'], c: ['a'] }));
      assert.deepEqual(problems, [{ code: 'cycle', message: 'cycle: a → b → c → a', path: ['a', 'b', 'c', 'a'] }]);
    });

    it('reports one cycle per independent group, including ones far from the first node', () => {
      const nodes = dag({ start: [], a: ['b'], b: ['a'], m: ['start'], x: ['y'], y: ['z'], z: ['x'] });
      const problems = validateDag(nodes);
      assert.deepEqual(
        problems.map((p) => p.path),
        [
          ['a', 'b', 'a'],
          ['x', 'y', 'z', 'x'],
        ],
      );
    });

    it('reports every kind of problem together', () => {
      const nodes: DagNode[] = [
        { id: 'a', dependsOn: ['c'] },
        { id: 'b', dependsOn: ['b', 'nope'] },
        { id: 'c', dependsOn: ['a'] },
        { id: 'c', dependsOn: [] },
      ];
      assert.deepEqual(
        validateDag(nodes).map((p) => p.code),
        ['duplicate_id', 'self_dependency', 'unknown_dependency', 'cycle'],
      );
    });

    it('does not repeat a problem for a dependency listed twice', () => {
      assert.equal(validateDag(dag({ a: ['x', 'x'] })).length, 1);
    });
  });

  describe('topologicalLayers', () => {
    it('layers a 6-step diamond as a; b,c; d,e; f', () => {
      assert.deepEqual(topologicalLayers(diamond6), [['a'], ['b', 'c'], ['d', 'e'], ['f']]);
    });

    it('keeps input order within a layer', () => {
      const nodes = dag({ e: ['c'], c: ['a'], f: ['d', 'e'], b: ['a'], a: [], d: ['b'] });
      assert.deepEqual(topologicalLayers(nodes), [['a'], ['c', 'b'], ['e', 'd'], ['f']]);
    });

    it('places a node after its deepest dependency', () => {
      const layers = topologicalLayers(dag({ a: [], b: ['a'], c: ['b'], d: ['a', 'c'] }));
      assert.deepEqual(layers, [['a'], ['b'], ['c'], ['d']]);
    });

    it('puts disconnected roots in the first layer', () => {
      assert.deepEqual(topologicalLayers(dag({ x: [], a: [], y: ['x'] })), [['x', 'a'], ['y']]);
      assert.deepEqual(topologicalLayers([]), []);
    });

    it('each node depends only on earlier layers', () => {
      const nodes = dag({ a: [], b: ['a'], c: [], d: ['b', 'c'], e: ['a'], f: ['e', 'd'], g: [] });
      const layerOf = new Map<string, number>();
      topologicalLayers(nodes).forEach((layer, i) => layer.forEach((id) => layerOf.set(id, i)));
      assert.equal(layerOf.size, nodes.length);
      for (const n of nodes) for (const d of n.dependsOn) assert.ok(layerOf.get(d)! < layerOf.get(n.id)!);
    });

    it('throws on a cycle, naming it', () => {
      assert.throws(
        () => topologicalLayers(dag({ a: [], b: ['a', 'c'], c: ['b'] })),
        (err: unknown) => err instanceof InputError && /cycle: b → c → b/.test(err.message),
      );
    });

    it('throws on other invalid graphs', () => {
      assert.throws(() => topologicalLayers(dag({ a: ['a'] })), InputError);
      assert.throws(() => topologicalLayers(dag({ a: ['missing'] })), /unknown step "missing"/);
    });
  });

  describe('dependencyDepth and dependentsCount', () => {
    it('computes the longest path to a root', () => {
      const depth = dependencyDepth(dag({ a: [], b: ['a'], c: ['b'], d: ['a', 'c'], x: [] }));
      assert.deepEqual(
        [...depth],
        [
          ['a', 0],
          ['b', 1],
          ['c', 2],
          ['d', 3],
          ['x', 0],
        ],
      );
    });

    it('matches the layers of the 6-step diamond', () => {
      assert.deepEqual(Object.fromEntries(dependencyDepth(diamond6)), { a: 0, b: 1, c: 1, d: 2, e: 2, f: 3 });
    });

    it('counts transitive dependents once each', () => {
      assert.deepEqual(Object.fromEntries(dependentsCount(diamond6)), { a: 5, b: 2, c: 2, d: 1, e: 1, f: 0 });
      assert.deepEqual(Object.fromEntries(dependentsCount(dag({ a: [], b: ['a'], c: ['b'], d: ['a'], lone: [] }))), {
        a: 3,
        b: 1,
        c: 0,
        d: 0,
        lone: 0,
      });
    });

    it('throws on a cycle', () => {
      assert.throws(() => dependencyDepth(dag({ a: ['b'], b: ['a'] })), InputError);
      assert.throws(() => dependentsCount(dag({ a: ['b'], b: ['a'] })), InputError);
    });
  });

  describe('readyNodes', () => {
    it('progresses through a diamond', () => {
      const nodes = dag({ a: [], b: ['a'], c: ['a'], d: ['b', 'c'] });
      const done = new Set<string>();
      const running = new Set<string>();

      assert.deepEqual(readyNodes(nodes, done, running), ['a']);
      running.add('a');
      assert.deepEqual(readyNodes(nodes, done, running), []);
      running.delete('a');
      done.add('a');
      assert.deepEqual(readyNodes(nodes, done, running), ['b', 'c']);
      running.add('b').add('c');
      assert.deepEqual(readyNodes(nodes, done, running), []);
      running.delete('c');
      done.add('c');
      assert.deepEqual(readyNodes(nodes, done, running), [], 'd must wait for b');
      running.delete('b');
      done.add('b');
      assert.deepEqual(readyNodes(nodes, done, running), ['d']);
      done.add('d');
      assert.deepEqual(readyNodes(nodes, done, running), []);
    });

    it('keeps input order and never returns a node with an unfinished or unknown dependency', () => {
      const nodes = dag({ z: [], y: [], x: ['ghost'] });
      assert.deepEqual(readyNodes(nodes, new Set(), new Set()), ['z', 'y']);
    });
  });

  describe('wouldCreateCycle', () => {
    const chain = dag({ a: [], b: ['a'], c: ['b'], other: [] });

    it('returns the cycle an edge would close, starting with the new edge', () => {
      assert.deepEqual(wouldCreateCycle(chain, 'a', 'c'), ['a', 'c', 'b', 'a']);
      assert.deepEqual(wouldCreateCycle(chain, 'a', 'b'), ['a', 'b', 'a']);
    });

    it('returns null for safe edges', () => {
      assert.equal(wouldCreateCycle(chain, 'c', 'a'), null);
      assert.equal(wouldCreateCycle(chain, 'other', 'c'), null);
      assert.equal(wouldCreateCycle(chain, 'a', 'other'), null);
      assert.equal(wouldCreateCycle(chain, 'a', 'unknown'), null);
    });

    it('treats a node depending on itself as a cycle', () => {
      assert.deepEqual(wouldCreateCycle(chain, 'b', 'b'), ['b', 'b']);
    });

    it('agrees with findCycle on the graph with the edge added', () => {
      const nodes = dag({ a: [], b: ['a'], c: ['a'], d: ['b', 'c'], e: ['d'] });
      for (const from of ['a', 'b', 'c', 'd', 'e']) {
        for (const to of ['a', 'b', 'c', 'd', 'e']) {
          const added = nodes.map((n) => (n.id === from ? { id: n.id, dependsOn: [...n.dependsOn, to] } : n));
          const cycle = wouldCreateCycle(nodes, from, to);
          assert.equal(cycle !== null, findCycle(added) !== null, `${from} → ${to}`);
          if (cycle) {
            assert.deepEqual(cycle.slice(0, 2), [from, to]);
            assertRealCycle(nodes, cycle, [from, to]);
          }
        }
      }
    });
  });

  describe('orderedAcquisition', () => {
    it('sorts and deduplicates', () => {
      assert.deepEqual(orderedAcquisition(['machine:b', 'budget:p1', 'machine:a', 'budget:p1']), ['budget:p1', 'machine:a', 'machine:b']);
      assert.deepEqual(orderedAcquisition([]), []);
    });

    it('gives the same order whatever order the resources are requested in', () => {
      const rand = prng(7);
      const resources = ['Zeta', 'alpha', 'Beta', 'ä', 'a', 'b10', 'b9'];
      const canonical = orderedAcquisition(resources);
      assert.deepEqual(canonical, ['Beta', 'Zeta', 'a', 'alpha', 'b10', 'b9', 'ä']);
      for (let i = 0; i < 50; i++) {
        const shuffled = [...resources, ...resources].sort(() => rand() - 0.5);
        assert.deepEqual(orderedAcquisition(shuffled), canonical);
      }
    });

    it('does not modify its input', () => {
      const input = ['b', 'a'] as const;
      orderedAcquisition(input);
      assert.deepEqual(input, ['b', 'a']);
    });
  });

  describe('random DAGs (property)', () => {
    const SEED = 20261127;
    const CASES = 300;

    /** Nodes 0..n-1 where edges only go from a higher index to a lower one, shuffled input order. */
    function randomDag(rand: () => number): DagNode[] {
      const n = int(rand, 2, 25);
      const density = rand();
      const nodes: DagNode[] = [];
      for (let i = 0; i < n; i++) {
        const deps: string[] = [];
        for (let j = 0; j < i; j++) if (rand() < density) deps.push(`s${j}`);
        nodes.push({ id: `s${i}`, dependsOn: deps });
      }
      return nodes.sort(() => rand() - 0.5);
    }

    const index = (id: string): number => Number(id.slice(1));

    it('never finds a cycle and layers respect every edge', () => {
      const rand = prng(SEED);
      for (let c = 0; c < CASES; c++) {
        const nodes = randomDag(rand);
        assert.equal(findCycle(nodes), null, `case ${c}`);
        assert.deepEqual(validateDag(nodes), [], `case ${c}`);
        const layerOf = new Map<string, number>();
        topologicalLayers(nodes).forEach((layer, i) => layer.forEach((id) => layerOf.set(id, i)));
        const depth = dependencyDepth(nodes);
        for (const n of nodes) {
          assert.equal(layerOf.get(n.id), depth.get(n.id));
          for (const d of n.dependsOn) assert.ok(layerOf.get(d)! < layerOf.get(n.id)!, `case ${c}: ${n.id} → ${d}`);
        }
      }
    });

    it('always finds a real cycle after adding one back edge', () => {
      const rand = prng(SEED + 1);
      let checked = 0;
      for (let c = 0; c < CASES; c++) {
        const nodes = randomDag(rand);
        // Pick an existing path lo ← … ← hi by walking down from a random node with dependencies.
        const byId = new Map(nodes.map((n) => [n.id, n]));
        const withDeps = nodes.filter((n) => n.dependsOn.length > 0);
        if (withDeps.length === 0) continue;
        const hi = withDeps[int(rand, 0, withDeps.length - 1)]!;
        let lo = hi;
        do {
          const deps = lo.dependsOn;
          lo = byId.get(deps[int(rand, 0, deps.length - 1)]!)!;
        } while (lo.dependsOn.length > 0 && rand() < 0.7);
        assert.ok(index(lo.id) < index(hi.id));

        // Back edge: lo depends on hi (low index → high index), closing a cycle.
        const expected = wouldCreateCycle(nodes, lo.id, hi.id);
        assertRealCycle(nodes, expected, [lo.id, hi.id]);

        const withBack = nodes.map((n) => (n === lo ? { id: n.id, dependsOn: [...n.dependsOn, hi.id] } : n));
        const cycle = findCycle(withBack);
        assertRealCycle(withBack, cycle);
        assert.ok(cycle!.includes(lo.id) && cycle!.includes(hi.id), `case ${c}: the cycle must use the back edge`);
        assert.deepEqual(findCycle(withBack), cycle, 'deterministic');

        const problems = validateDag(withBack);
        assert.ok(problems.length >= 1 && problems.every((p) => p.code === 'cycle'), `case ${c}`);
        for (const p of problems) assertRealCycle(withBack, p.path ?? null);
        assert.throws(() => topologicalLayers(withBack), InputError);
        checked++;
      }
      assert.ok(checked > CASES / 2, `only ${checked} cases had edges`);
    });
  });
});

/**
 * Dependency graphs of objectives and pipeline steps.
 *
 * A node lists the ids it depends on; an edge "a → b" reads "a depends on b", so b must finish
 * before a can start. Everything here is pure and deterministic (no I/O, clock, randomness or Node
 * built-ins) because workflow code imports it: the same input always gives the same output, and
 * ties are broken by input order (nodes in the order given, dependencies in `dependsOn` order).
 *
 * Duplicate ids are reported by {@link validateDag}; the other functions use the first node with a
 * given id and ignore later ones. Dependencies on ids that are not in the list are reported by
 * {@link validateDag} and ignored by {@link findCycle} and {@link wouldCreateCycle}.
 */
import { InputError } from './errors.js';

export interface DagNode {
  id: string;
  dependsOn: readonly string[];
}

export type DagProblemCode = 'duplicate_id' | 'unknown_dependency' | 'self_dependency' | 'cycle';

export interface DagProblem {
  code: DagProblemCode;
  message: string;
  /** For `cycle` (and `self_dependency`): the closed path, e.g. ['a', 'b', 'a']. */
  path?: string[];
}

/** Nodes by position; `adj[i]` holds the positions of i's known dependencies (deduplicated, in order). */
interface Graph {
  ids: string[];
  pos: Map<string, number>;
  adj: number[][];
}

function buildGraph(nodes: readonly DagNode[]): Graph {
  const ids: string[] = [];
  const pos = new Map<string, number>();
  const kept: DagNode[] = [];
  for (const node of nodes) {
    if (pos.has(node.id)) continue;
    pos.set(node.id, ids.length);
    ids.push(node.id);
    kept.push(node);
  }
  const adj = kept.map((node) => {
    const out: number[] = [];
    const seen = new Set<number>();
    for (const dep of node.dependsOn) {
      const j = pos.get(dep);
      if (j === undefined || seen.has(j)) continue;
      seen.add(j);
      out.push(j);
    }
    return out;
  });
  return { ids, pos, adj };
}

/**
 * Strongly connected components (Tarjan, iterative so long chains cannot overflow the stack).
 * Returns a component number per node.
 */
function components(g: Graph): { comp: number[]; sizes: number[] } {
  const n = g.ids.length;
  const index = new Array<number>(n).fill(-1);
  const low = new Array<number>(n).fill(0);
  const onStack = new Array<boolean>(n).fill(false);
  const comp = new Array<number>(n).fill(-1);
  const sizes: number[] = [];
  const stack: number[] = [];
  let next = 0;

  for (let root = 0; root < n; root++) {
    if (index[root] !== -1) continue;
    const work: Array<{ v: number; i: number }> = [];
    const enter = (v: number): void => {
      index[v] = low[v] = next++;
      stack.push(v);
      onStack[v] = true;
      work.push({ v, i: 0 });
    };
    enter(root);
    while (work.length > 0) {
      const frame = work[work.length - 1]!;
      const deps = g.adj[frame.v]!;
      if (frame.i < deps.length) {
        const w = deps[frame.i++]!;
        if (index[w] === -1) enter(w);
        else if (onStack[w]) low[frame.v] = Math.min(low[frame.v]!, index[w]!);
        continue;
      }
      work.pop();
      if (low[frame.v] === index[frame.v]) {
        const c = sizes.length;
        let size = 0;
        let w: number;
        do {
          w = stack.pop()!;
          onStack[w] = false;
          comp[w] = c;
          size++;
        } while (w !== frame.v);
        sizes.push(size);
      }
      const parent = work[work.length - 1];
      if (parent) low[parent.v] = Math.min(low[parent.v]!, low[frame.v]!);
    }
  }
  return { comp, sizes };
}

/**
 * Shortest path from `from` to `to` following dependency edges, breadth first (neighbours in
 * `dependsOn` order), optionally staying inside one component. Returns positions including both
 * ends, or null. With `from === to` it looks for a way back (a cycle), not the empty path.
 */
function shortestPath(g: Graph, from: number, to: number, opts: { within?: { comp: number[]; c: number }; selfLoops?: boolean } = {}): number[] | null {
  const selfLoops = opts.selfLoops ?? true;
  const parent = new Map<number, number>([[from, -1]]);
  const queue = [from];
  for (let q = 0; q < queue.length; q++) {
    const u = queue[q]!;
    for (const v of g.adj[u]!) {
      if (v === u && !selfLoops) continue;
      if (opts.within && opts.within.comp[v] !== opts.within.c) continue;
      if (v === to) {
        const path = [to];
        for (let w = u; w !== -1; w = parent.get(w)!) path.push(w);
        return path.reverse();
      }
      if (parent.has(v)) continue;
      parent.set(v, u);
      queue.push(v);
    }
  }
  return null;
}

/**
 * One cycle per strongly connected component that contains a cycle, ordered by the earliest node
 * (input order) of each component. Each cycle is a shortest one through that earliest node.
 */
function cycles(g: Graph, selfLoops: boolean): number[][] {
  const { comp, sizes } = components(g);
  const out: number[][] = [];
  const reported = new Set<number>();
  for (let v = 0; v < g.ids.length; v++) {
    const c = comp[v]!;
    if (reported.has(c)) continue;
    const cyclic = sizes[c]! > 1 || (selfLoops && g.adj[v]!.includes(v));
    if (!cyclic) continue;
    reported.add(c);
    const path = shortestPath(g, v, v, { within: { comp, c }, selfLoops });
    // A component with a cycle always has a way back to each of its nodes.
    if (path) out.push(path);
  }
  return out;
}

const names = (g: Graph, path: number[]): string[] => path.map((i) => g.ids[i]!);

/**
 * Finds a dependency cycle, returned as a closed path where each id depends on the next one,
 * or null when there is none. Self-dependencies count (`['a', 'a']`).
 *
 * Deterministic: the cycle goes through the earliest node (input order) that lies on any cycle,
 * and is a shortest cycle through it (ties broken by `dependsOn` order).
 *
 * @example
 * findCycle([
 *   { id: 'a', dependsOn: ['b'] },
 *   { id: 'b', dependsOn: ['c'] },
 *   { id: 'c', dependsOn: ['a'] },
 * ]); // ['a', 'b', 'c', 'a']
 * findCycle([{ id: 'a', dependsOn: [] }, { id: 'b', dependsOn: ['a'] }]); // null
 */
export function findCycle(nodes: readonly DagNode[]): string[] | null {
  const g = buildGraph(nodes);
  const first = cycles(g, true)[0];
  return first ? names(g, first) : null;
}

/**
 * Everything wrong with a graph, as problems a user can fix; an empty list means it is a valid DAG.
 *
 * Reports, in this order: each duplicated id once; then per node (input order) a dependency on
 * itself and each dependency on an unknown id; then one cycle per group of mutually dependent
 * nodes (self-dependencies are not repeated as cycles).
 *
 * @example
 * validateDag([
 *   { id: 'a', dependsOn: ['c'] },
 *   { id: 'b', dependsOn: ['x'] },
 *   { id: 'c', dependsOn: ['a'] },
 * ]);
 * // [
 * //   { code: 'unknown_dependency', message: 'step "b" depends on unknown step "x"' },
 * //   { code: 'cycle', message: 'cycle: a → c → a', path: ['a', 'c', 'a'] },
 * // ]
 */
export function validateDag(nodes: readonly DagNode[]): DagProblem[] {
  const problems: DagProblem[] = [];

  const counts = new Map<string, number>();
  for (const node of nodes) counts.set(node.id, (counts.get(node.id) ?? 0) + 1);
  for (const [id, count] of counts) {
    if (count > 1) {
      problems.push({
        code: 'duplicate_id',
        message: `step id "${id}" is used by ${count} steps; each step needs a unique id`,
      });
    }
  }

  const g = buildGraph(nodes);
  for (const node of nodes) {
    const seen = new Set<string>();
    for (const dep of node.dependsOn) {
      if (seen.has(dep)) continue;
      seen.add(dep);
      if (dep === node.id) {
        problems.push({
          code: 'self_dependency',
          message: `step "${node.id}" depends on itself; remove "${node.id}" from its dependsOn`,
          path: [node.id, node.id],
        });
      } else if (!g.pos.has(dep)) {
        problems.push({ code: 'unknown_dependency', message: `step "${node.id}" depends on unknown step "${dep}"` });
      }
    }
  }

  for (const cycle of cycles(g, false)) {
    const path = names(g, cycle);
    problems.push({ code: 'cycle', message: `cycle: ${path.join(' → ')}`, path });
  }
  return problems;
}

/** Throws an InputError listing the problems unless the graph is a valid DAG. */
function requireValid(nodes: readonly DagNode[], what: string): Graph {
  const problems = validateDag(nodes);
  if (problems.length > 0) {
    throw new InputError(`${what}: ${problems.map((p) => p.message).join('; ')}`, { problems });
  }
  return buildGraph(nodes);
}

/** Longest path (in edges) from each node down to a node without dependencies. Graph must be valid. */
function depths(g: Graph): number[] {
  const n = g.ids.length;
  const dependents: number[][] = g.ids.map(() => []);
  const pending = g.adj.map((deps) => deps.length);
  g.adj.forEach((deps, v) => {
    for (const d of deps) dependents[d]!.push(v);
  });
  const depth = new Array<number>(n).fill(0);
  const queue: number[] = [];
  for (let v = 0; v < n; v++) if (pending[v] === 0) queue.push(v);
  for (let q = 0; q < queue.length; q++) {
    const u = queue[q]!;
    for (const v of dependents[u]!) {
      depth[v] = Math.max(depth[v]!, depth[u]! + 1);
      pending[v]!--;
      if (pending[v] === 0) queue.push(v);
    }
  }
  return depth;
}

/**
 * Groups ids into layers that can run one after another: every node depends only on nodes in
 * earlier layers, and each node sits in the earliest layer it can (its {@link dependencyDepth}).
 * Within a layer ids keep input order.
 *
 * Throws an InputError (with `details.problems`) when the graph is not valid, e.g. has a cycle.
 *
 * @example
 * topologicalLayers([
 *   { id: 'a', dependsOn: [] },
 *   { id: 'b', dependsOn: ['a'] },
 *   { id: 'c', dependsOn: ['a'] },
 *   { id: 'd', dependsOn: ['b', 'c'] },
 * ]); // [['a'], ['b', 'c'], ['d']]
 */
export function topologicalLayers(nodes: readonly DagNode[]): string[][] {
  const g = requireValid(nodes, 'cannot order steps');
  const depth = depths(g);
  const layers: string[][] = [];
  g.ids.forEach((id, v) => {
    const d = depth[v]!;
    while (layers.length <= d) layers.push([]);
    layers[d]!.push(id);
  });
  return layers;
}

/**
 * For each id, the length of the longest chain of dependencies below it: nodes without
 * dependencies are 0, a node is one more than its deepest dependency. Useful to start long
 * chains first. Throws an InputError when the graph is not valid.
 *
 * @example
 * dependencyDepth([
 *   { id: 'a', dependsOn: [] },
 *   { id: 'b', dependsOn: ['a'] },
 *   { id: 'c', dependsOn: ['a', 'b'] },
 * ]); // Map { 'a' => 0, 'b' => 1, 'c' => 2 }
 */
export function dependencyDepth(nodes: readonly DagNode[]): Map<string, number> {
  const g = requireValid(nodes, 'cannot compute dependency depth');
  const depth = depths(g);
  return new Map(g.ids.map((id, v) => [id, depth[v]!]));
}

/**
 * For each id, how many distinct nodes depend on it directly or transitively, i.e. how much work
 * is blocked until it finishes. Useful to start the most blocking work first. Throws an
 * InputError when the graph is not valid.
 *
 * @example
 * dependentsCount([
 *   { id: 'a', dependsOn: [] },
 *   { id: 'b', dependsOn: ['a'] },
 *   { id: 'c', dependsOn: ['b'] },
 *   { id: 'd', dependsOn: ['a'] },
 * ]); // Map { 'a' => 3, 'b' => 1, 'c' => 0, 'd' => 0 }
 */
export function dependentsCount(nodes: readonly DagNode[]): Map<string, number> {
  const g = requireValid(nodes, 'cannot count dependents');
  const dependents: number[][] = g.ids.map(() => []);
  g.adj.forEach((deps, v) => {
    for (const d of deps) dependents[d]!.push(v);
  });
  const counts = new Map<string, number>();
  g.ids.forEach((id, start) => {
    const seen = new Set<number>([start]);
    const queue = [start];
    for (let q = 0; q < queue.length; q++) {
      for (const v of dependents[queue[q]!]!) {
        if (seen.has(v)) continue;
        seen.add(v);
        queue.push(v);
      }
    }
    counts.set(id, seen.size - 1);
  });
  return counts;
}

/**
 * Ids that can start now: not done, not running, and every dependency done. Input order, each id
 * once. A dependency that is not done (including an unknown id) keeps a node waiting.
 *
 * @example
 * const nodes = [
 *   { id: 'a', dependsOn: [] },
 *   { id: 'b', dependsOn: ['a'] },
 *   { id: 'c', dependsOn: ['a'] },
 * ];
 * readyNodes(nodes, new Set(), new Set()); // ['a']
 * readyNodes(nodes, new Set(['a']), new Set(['b'])); // ['c']
 */
export function readyNodes(nodes: readonly DagNode[], done: ReadonlySet<string>, running: ReadonlySet<string>): string[] {
  const ready: string[] = [];
  const seen = new Set<string>();
  for (const node of nodes) {
    if (seen.has(node.id)) continue;
    seen.add(node.id);
    if (done.has(node.id) || running.has(node.id)) continue;
    if (node.dependsOn.every((dep) => done.has(dep))) ready.push(node.id);
  }
  return ready;
}

/**
 * Whether adding the edge "`from` depends on `to`" would close a cycle. Returns that cycle as a
 * closed path starting with the new edge (`[from, to, …, from]`, a shortest one), or null when the
 * edge is safe. Only cycles through the new edge are considered. Use it before linking existing
 * objectives.
 *
 * @example
 * const nodes = [
 *   { id: 'a', dependsOn: [] },
 *   { id: 'b', dependsOn: ['a'] },
 *   { id: 'c', dependsOn: ['b'] },
 * ];
 * wouldCreateCycle(nodes, 'a', 'c'); // ['a', 'c', 'b', 'a']
 * wouldCreateCycle(nodes, 'c', 'a'); // null (c already depends on a through b)
 */
export function wouldCreateCycle(nodes: readonly DagNode[], from: string, to: string): string[] | null {
  if (from === to) return [from, from];
  const g = buildGraph(nodes);
  const f = g.pos.get(from);
  const t = g.pos.get(to);
  if (f === undefined || t === undefined) return null;
  const back = shortestPath(g, t, f);
  return back ? [from, ...names(g, back)] : null;
}

/**
 * The order in which to acquire a set of resources (locks, machines, budgets): deduplicated and
 * sorted by plain code-unit comparison (not locale-aware, so every process agrees).
 *
 * Why this prevents deadlock: a deadlock needs a cycle of holders, each waiting for a resource the
 * next one holds. If everyone acquires in the same global order, a holder only ever waits for a
 * resource that sorts after everything it already holds. Following the waits around a cycle
 * would then need resources that sort strictly higher at every step and yet return to the start,
 * which is impossible, so no cycle of waits can form.
 *
 * @example
 * orderedAcquisition(['machine:b', 'budget:p1', 'machine:a', 'budget:p1']);
 * // ['budget:p1', 'machine:a', 'machine:b']
 */
export function orderedAcquisition<T extends string>(resources: readonly T[]): T[] {
  return [...new Set(resources)].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0));
}

/** One checkpoint as GET /v1/projects/:id/checkpoints/tree lists it. */
export interface TreeInput {
  id: string;
  parentId: string | null;
  machineId: string | null;
  kind: string;
  trigger: string;
  milestone: boolean;
  createdAt: string;
}

/**
 * The evolution tree laid out as a main line with branches, like a git graph: depth along x (one
 * step per checkpoint), one lane per branch along y. The main line (lane 0) is the longest path
 * from the root; at each fork the child with the tallest subtree continues its parent's lane and
 * every other child starts a branch on the nearest lane (alternately below and above) that is
 * free over the branch's whole extent. Arrays are indexed by node (parents before children).
 */
export interface TreeLayout {
  nodes: TreeInput[];
  index: Map<string, number>;
  parent: Int32Array;
  depth: Int32Array;
  lane: Int32Array;
  /** Children of each node, the continuing one first, then by lane order. */
  children: number[][];
  /** The child that continues each node's lane, or -1. */
  mainChild: Int32Array;
  /** Each branch (a run of lane-continuing checkpoints): its first and last node and length. */
  branches: Array<{ first: number; last: number; length: number; lane: number }>;
  /** Of each node, the index of its branch in `branches`. */
  branchOf: Int32Array;
  maxDepth: number;
  minLane: number;
  maxLane: number;
  /** (depth, lane) → node, for hit-testing. */
  at(depth: number, lane: number): number;
}

const cellKey = (depth: number, lane: number) => depth * 131_072 + (lane + 65_536);

export function layoutTree(input: TreeInput[], rootId: string | null): TreeLayout {
  // Only what hangs below the project's root is drawn (through the API that is everything; a view must not fall over anyway).
  const rootRow = input.find((n) => n.id === rootId) ?? input.find((n) => n.parentId === null);
  const byParent = new Map<string, TreeInput[]>();
  for (const n of input) {
    if (n.parentId === null || n === rootRow) continue;
    const kids = byParent.get(n.parentId);
    if (kids) kids.push(n);
    else byParent.set(n.parentId, [n]);
  }
  const rows: TreeInput[] = rootRow ? [rootRow] : [];
  for (let i = 0; i < rows.length; i++) rows.push(...(byParent.get(rows[i]!.id) ?? []));
  if (!rootRow) return emptyLayout();
  // Parents come before children in `rows` (breadth first from the root): depths forwards, subtree heights backwards.
  // (d3-hierarchy's stratify computes heights by walking up from every node: quadratic on a main line thousands deep.)
  const count = rows.length;
  const index = new Map<string, number>();
  rows.forEach((n, i) => index.set(n.id, i));
  const parent = new Int32Array(count).fill(-1);
  const depth = new Int32Array(count);
  const height = new Int32Array(count);
  const children: number[][] = rows.map(() => []);
  for (let i = 1; i < count; i++) {
    const p = index.get(rows[i]!.parentId!)!;
    parent[i] = p;
    depth[i] = depth[p]! + 1;
    children[p]!.push(i);
  }
  for (let i = count - 1; i > 0; i--) height[parent[i]!] = Math.max(height[parent[i]!]!, height[i]! + 1);
  // The child that continues its parent's lane: the tallest subtree, then the oldest.
  const mainChild = new Int32Array(count).fill(-1);
  for (let i = 0; i < count; i++) {
    let best = -1;
    for (const k of children[i]!) {
      if (best < 0 || height[k]! > height[best]! || (height[k] === height[best] && rows[k]!.createdAt < rows[best]!.createdAt)) best = k;
    }
    mainChild[i] = best;
  }

  // Branches: a node starts one when it is the root or not its parent's continuing child.
  const branches: TreeLayout['branches'] = [];
  const branchOf = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    const p = parent[i]!;
    if (p >= 0 && mainChild[p] === i) {
      const b = branchOf[p]!;
      branchOf[i] = b;
      branches[b]!.last = i;
      branches[b]!.length++;
    } else {
      branchOf[i] = branches.length;
      branches.push({ first: i, last: i, length: 1, lane: 0 });
    }
  }

  // Lanes, swept by where each branch starts: a lane is free for [from, to] when everything on it ends before `from`.
  const laneEnd = new Map<number, number>();
  const byStart = branches.map((_, b) => b).sort((a, b) => depth[branches[a]!.first]! - depth[branches[b]!.first]! || a - b);
  let minLane = 0;
  let maxLane = 0;
  for (const b of byStart) {
    const br = branches[b]!;
    const p = parent[br.first]!;
    const from = p < 0 ? 0 : depth[p]!;
    const to = depth[br.last]!;
    let chosen = 0;
    if (p >= 0) {
      const home = branches[branchOf[p]!]!.lane;
      for (let k = 1; ; k++) {
        const below = home + k;
        if ((laneEnd.get(below) ?? -1) < from) {
          chosen = below;
          break;
        }
        const above = home - k;
        if ((laneEnd.get(above) ?? -1) < from) {
          chosen = above;
          break;
        }
      }
    }
    br.lane = chosen;
    laneEnd.set(chosen, to);
    minLane = Math.min(minLane, chosen);
    maxLane = Math.max(maxLane, chosen);
  }
  const lane = new Int32Array(count);
  const cells = new Map<number, number>();
  let maxDepth = 0;
  for (let i = 0; i < count; i++) {
    lane[i] = branches[branchOf[i]!]!.lane;
    cells.set(cellKey(depth[i]!, lane[i]!), i);
    if (depth[i]! > maxDepth) maxDepth = depth[i]!;
  }
  for (const kids of children)
    if (kids.length > 1) kids.sort((a, b) => (mainChild[parent[a]!] === a ? -1 : mainChild[parent[b]!] === b ? 1 : lane[a]! - lane[b]!));

  return {
    nodes: rows,
    index,
    parent,
    depth,
    lane,
    children,
    mainChild,
    branches,
    branchOf,
    maxDepth,
    minLane,
    maxLane,
    at: (d, l) => cells.get(cellKey(d, l)) ?? -1,
  };
}

function emptyLayout(): TreeLayout {
  const none = new Int32Array(0);
  return {
    nodes: [],
    index: new Map(),
    parent: none,
    depth: none,
    lane: none,
    children: [],
    mainChild: none,
    branches: [],
    branchOf: none,
    maxDepth: 0,
    minLane: 0,
    maxLane: 0,
    at: () => -1,
  };
}

/** Where the arrow keys take the selection: ← parent, → the continuing child (else the first), ↑/↓ the sibling or nearest node in the lane above/below. */
export function neighbour(layout: TreeLayout, from: number, key: 'ArrowLeft' | 'ArrowRight' | 'ArrowUp' | 'ArrowDown'): number {
  if (key === 'ArrowLeft') return layout.parent[from]!;
  if (key === 'ArrowRight') return layout.mainChild[from]! >= 0 ? layout.mainChild[from]! : (layout.children[from]![0] ?? -1);
  const step = key === 'ArrowUp' ? -1 : 1;
  const p = layout.parent[from]!;
  if (p >= 0) {
    // The sibling on the nearest lane in that direction.
    let best = -1;
    for (const s of layout.children[p]!) {
      const d = (layout.lane[s]! - layout.lane[from]!) * step;
      if (d > 0 && (best < 0 || d < (layout.lane[best]! - layout.lane[from]!) * step)) best = s;
    }
    if (best >= 0) return best;
  }
  // Else whatever sits at the same depth on the nearest lane that direction.
  const d = layout.depth[from]!;
  for (let l = layout.lane[from]! + step; l >= layout.minLane && l <= layout.maxLane; l += step) {
    const n = layout.at(d, l);
    if (n >= 0) return n;
  }
  return -1;
}

import dagre from '@dagrejs/dagre';
import { useMemo } from 'preact/hooks';
import { toneOf } from './ui.js';

/** One box of a drawn DAG: what it is, its status (word and colour), and where clicking it goes. */
export interface DagNode {
  id: string;
  label: string;
  /** A second line under the label (a type, a progress). */
  detail?: string;
  status: string;
  href?: string | undefined;
}

export interface DagEdge {
  from: string;
  to: string;
}

const NODE_W = 176;
const NODE_H = 58;

interface Laid {
  width: number;
  height: number;
  nodes: Array<DagNode & { x: number; y: number }>;
  edges: Array<DagEdge & { points: Array<{ x: number; y: number }> }>;
}

/** Lays a DAG out left to right with dagre (dependencies before what depends on them). */
export function layoutDag(nodes: DagNode[], edges: DagEdge[]): Laid {
  const g = new dagre.graphlib.Graph();
  g.setGraph({ rankdir: 'LR', nodesep: 22, ranksep: 54, marginx: 10, marginy: 10 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const n of nodes) g.setNode(n.id, { width: NODE_W, height: NODE_H });
  const known = new Set(nodes.map((n) => n.id));
  const drawn = edges.filter((e) => known.has(e.from) && known.has(e.to));
  for (const e of drawn) g.setEdge(e.from, e.to);
  dagre.layout(g);
  const graph = g.graph() as { width?: number; height?: number };
  return {
    width: Math.max(graph.width ?? 0, NODE_W + 20),
    height: Math.max(graph.height ?? 0, NODE_H + 20),
    nodes: nodes.map((n) => {
      const p = g.node(n.id) as { x: number; y: number };
      return { ...n, x: p.x, y: p.y };
    }),
    edges: drawn.map((e) => ({ ...e, points: ((g.edge(e.from, e.to) as { points?: Array<{ x: number; y: number }> }).points ?? []).slice() })),
  };
}

const clip = (s: string, n: number) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);

/**
 * A DAG drawn as SVG: each node a box with its label, status word and a colour for the status
 * (the word carries the meaning), each edge an arrow from a dependency to what depends on it.
 * Nodes with an `href` are links (keyboard reachable). The SVG scales down on narrow screens;
 * views put a table of the same nodes next to it.
 */
export function DagSvg({ nodes, edges, label }: { nodes: DagNode[]; edges: DagEdge[]; label: string }) {
  const laid = useMemo(() => layoutDag(nodes, edges), [JSON.stringify(nodes), JSON.stringify(edges)]);
  // The texts are separated by spaces and the link's name is exactly what they show (axe: label-content-name-mismatch).
  const texts = (n: DagNode) => [clip(n.label, 22), n.status, ...(n.detail ? [clip(n.detail, 26)] : [])];
  const box = (n: Laid['nodes'][number]) => (
    <>
      <rect x={n.x - NODE_W / 2} y={n.y - NODE_H / 2} width={NODE_W} height={NODE_H} rx={8} class={`dag-box tone-${toneOf(n.status)}`} />
      <text x={n.x} y={n.y - 10} class="dag-label">
        {clip(n.label, 22)}
      </text>{' '}
      <text x={n.x} y={n.y + 7} class={`dag-status tone-${toneOf(n.status)}`}>
        {n.status}
      </text>
      {n.detail ? (
        <>
          {' '}
          <text x={n.x} y={n.y + 22} class="dag-detail">
            {clip(n.detail, 26)}
          </text>
        </>
      ) : null}
    </>
  );
  return (
    <div class="dag-wrap">
      <svg
        class="dag"
        role="group"
        aria-label={label}
        viewBox={`0 0 ${laid.width} ${laid.height}`}
        style={{ maxWidth: `${laid.width}px` }}
        xmlns="http://www.w3.org/2000/svg"
      >
        <defs>
          <marker id="dag-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
            <path d="M 0 0 L 10 5 L 0 10 z" class="dag-arrowhead" />
          </marker>
        </defs>
        {laid.edges.map((e) => (
          <path
            key={`${e.from}->${e.to}`}
            class="dag-edge"
            data-from={e.from}
            data-to={e.to}
            marker-end="url(#dag-arrow)"
            d={e.points.map((p, i) => `${i ? 'L' : 'M'} ${p.x.toFixed(1)} ${p.y.toFixed(1)}`).join(' ')}
          />
        ))}
        {laid.nodes.map((n) =>
          n.href ? (
            <a key={n.id} href={n.href} class="dag-node" data-node={n.id} data-status={n.status} aria-label={texts(n).join(' ')}>
              {box(n)}
            </a>
          ) : (
            <g key={n.id} class="dag-node" data-node={n.id} data-status={n.status} role="img" aria-label={texts(n).join(' ')}>
              {box(n)}
            </g>
          ),
        )}
      </svg>
    </div>
  );
}

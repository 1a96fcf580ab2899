import { select, type Selection } from 'd3-selection';
import { zoom, zoomIdentity, type ZoomBehavior, type ZoomTransform } from 'd3-zoom';
import type { TreeLayout } from './tree-layout.js';

/** World units: one checkpoint step along x, one lane along y. */
export const STEP = 24;
export const LANE = 26;
const PAD = 28;

const COLORS = {
  mainEdge: '#57606a',
  edge: '#8c959f',
  root: '#24292f',
  final: '#116329',
  other: '#0550ae',
  milestone: '#9a6700',
  selected: '#cf222e',
  compare: '#8250df',
  label: '#424a53',
};

/**
 * Draws a laid-out evolution tree on a <canvas> with d3-zoom's wheel/drag zoom and pan. Only what
 * is in view is drawn (all of it when the tree is fitted); draws are coalesced to one per frame.
 * After the first draw of each layout the canvas carries `data-drawn-count` (its node count) and
 * the page a `autovibe-tree-drawn` performance mark: what the tests and the benchmark wait for.
 */
export class TreeRenderer {
  private layout: TreeLayout | null = null;
  private transform: ZoomTransform = zoomIdentity;
  private readonly zoomer: ZoomBehavior<HTMLCanvasElement, unknown>;
  private readonly sel: Selection<HTMLCanvasElement, unknown, null, undefined>;
  private readonly resize: ResizeObserver;
  private frame = 0;
  private width = 0;
  private height = 0;
  private freshLayout = false;
  private fitted = false;
  selected = -1;
  compare = -1;

  constructor(
    private readonly canvas: HTMLCanvasElement,
    private readonly onPick: (node: number, e: MouseEvent) => void,
  ) {
    this.zoomer = zoom<HTMLCanvasElement, unknown>()
      .scaleExtent([0.005, 8])
      .on('zoom', (e: { transform: ZoomTransform }) => {
        this.transform = e.transform;
        this.schedule();
      });
    this.sel = select(canvas);
    this.sel.call(this.zoomer).on('dblclick.zoom', null);
    canvas.addEventListener('click', this.click);
    this.resize = new ResizeObserver(() => this.measure());
    this.resize.observe(canvas);
    this.measure();
  }

  destroy() {
    cancelAnimationFrame(this.frame);
    this.resize.disconnect();
    this.canvas.removeEventListener('click', this.click);
    this.sel.on('.zoom', null);
  }

  /** A new layout (or a new version of it): fitted into view the first time, kept where the user left it after. */
  setLayout(layout: TreeLayout) {
    this.layout = layout;
    this.freshLayout = true;
    if (!this.fitted && this.width > 0) this.fit();
    this.schedule();
  }

  setMarks(selected: number, compare: number) {
    this.selected = selected;
    this.compare = compare;
    this.schedule();
  }

  /** The whole tree in view. */
  fit() {
    const l = this.layout;
    if (!l || this.width === 0) return;
    this.fitted = true;
    const w = Math.max(l.maxDepth * STEP, 1);
    const h = Math.max((l.maxLane - l.minLane) * LANE, 1);
    const k = Math.min((this.width - 2 * PAD) / w, (this.height - 2 * PAD) / h, 2);
    this.zoomer.scaleExtent([Math.min(k / 2, 0.5), 8]);
    const x = (this.width - w * k) / 2;
    const y = (this.height - h * k) / 2 - l.minLane * LANE * k;
    this.zoomer.transform(this.sel, zoomIdentity.translate(x, y).scale(k));
  }

  zoomBy(factor: number) {
    this.zoomer.scaleBy(this.sel, factor);
  }

  /** Brings a node into view: zoomed in far enough to tell neighbours apart, centred when it was out of view. */
  reveal(node: number) {
    const l = this.layout;
    if (!l || node < 0 || this.width === 0) return;
    const { x, y } = this.screenPosition(node);
    const margin = 40;
    const outside = x < margin || y < margin || x > this.width - margin || y > this.height - margin;
    if (!outside && this.transform.k >= 0.6) return;
    const k = Math.max(this.transform.k, 1);
    const wx = l.depth[node]! * STEP;
    const wy = l.lane[node]! * LANE;
    this.zoomer.transform(this.sel, zoomIdentity.translate(this.width / 2 - wx * k, this.height / 2 - wy * k).scale(k));
  }

  /** Where a node is drawn, in CSS pixels from the canvas's top left corner. */
  screenPosition(node: number): { x: number; y: number } {
    const l = this.layout!;
    const [x, y] = this.transform.apply([l.depth[node]! * STEP, l.lane[node]! * LANE]);
    return { x, y };
  }

  /** The node under a point of the canvas (CSS pixels), or -1. */
  hit(px: number, py: number): number {
    const l = this.layout;
    if (!l) return -1;
    const [wx, wy] = this.transform.invert([px, py]);
    const d0 = Math.round(wx / STEP);
    const l0 = Math.round(wy / LANE);
    const reach = Math.max(this.radius() + 4, 7);
    let best = -1;
    let bestDist = reach * reach;
    for (let d = d0 - 1; d <= d0 + 1; d++) {
      for (let lane = l0 - 1; lane <= l0 + 1; lane++) {
        const n = l.at(d, lane);
        if (n < 0) continue;
        const s = this.screenPosition(n);
        const dist = (s.x - px) ** 2 + (s.y - py) ** 2;
        if (dist <= bestDist) {
          best = n;
          bestDist = dist;
        }
      }
    }
    return best;
  }

  private readonly click = (e: MouseEvent) => {
    if (e.defaultPrevented) return;
    const rect = this.canvas.getBoundingClientRect();
    const n = this.hit(e.clientX - rect.left, e.clientY - rect.top);
    if (n >= 0) this.onPick(n, e);
  };

  private measure() {
    const rect = this.canvas.getBoundingClientRect();
    const dpr = window.devicePixelRatio || 1;
    this.width = rect.width;
    this.height = rect.height;
    this.canvas.width = Math.round(rect.width * dpr);
    this.canvas.height = Math.round(rect.height * dpr);
    if (!this.fitted && this.layout) this.fit();
    this.schedule();
  }

  private radius(): number {
    return Math.max(1.2, Math.min(7, this.transform.k * STEP * 0.22));
  }

  private schedule() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.draw();
    });
  }

  private draw() {
    const l = this.layout;
    const ctx = this.canvas.getContext('2d');
    if (!ctx || !l || this.width === 0) return;
    const dpr = window.devicePixelRatio || 1;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, this.width, this.height);
    const { k, x: tx, y: ty } = this.transform;
    const W = this.width;
    const H = this.height;
    const n = l.nodes.length;
    const sx = new Float32Array(n);
    const sy = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      sx[i] = l.depth[i]! * STEP * k + tx;
      sy[i] = l.lane[i]! * LANE * k + ty;
    }
    const r = this.radius();
    const inView = (x: number, y: number) => x >= -r && x <= W + r && y >= -r && y <= H + r;

    // Edges: along a lane a straight line; into a branch down (or up) from the parent, then along.
    const main = new Path2D();
    const side = new Path2D();
    for (let i = 0; i < n; i++) {
      const p = l.parent[i]!;
      if (p < 0) continue;
      const x0 = sx[p]!;
      const y0 = sy[p]!;
      const x1 = sx[i]!;
      const y1 = sy[i]!;
      if (Math.max(x0, x1) < 0 || Math.min(x0, x1) > W || Math.max(y0, y1) < 0 || Math.min(y0, y1) > H) continue;
      const path = l.lane[i] === 0 ? main : side;
      path.moveTo(x0, y0);
      if (y0 !== y1) path.lineTo(x0, y1);
      path.lineTo(x1, y1);
    }
    ctx.lineWidth = Math.max(0.75, Math.min(2, k * 1.5));
    ctx.strokeStyle = COLORS.edge;
    ctx.stroke(side);
    ctx.strokeStyle = COLORS.mainEdge;
    ctx.stroke(main);

    // Nodes, one path per colour; squares when they are too small to tell from circles.
    const finals = new Path2D();
    const others = new Path2D();
    const milestones = new Path2D();
    const round = r >= 2.5;
    let visible = 0;
    for (let i = 0; i < n; i++) {
      const x = sx[i]!;
      const y = sy[i]!;
      if (!inView(x, y)) continue;
      visible++;
      const path = l.nodes[i]!.kind === 'final' ? finals : others;
      if (round) {
        path.moveTo(x + r, y);
        path.arc(x, y, r, 0, Math.PI * 2);
      } else path.rect(x - r, y - r, 2 * r, 2 * r);
      if (l.nodes[i]!.milestone) {
        const m = r + 3;
        milestones.moveTo(x, y - m);
        milestones.lineTo(x + m, y);
        milestones.lineTo(x, y + m);
        milestones.lineTo(x - m, y);
        milestones.closePath();
      }
    }
    ctx.fillStyle = COLORS.other;
    ctx.fill(others);
    ctx.fillStyle = COLORS.final;
    ctx.fill(finals);
    ctx.lineWidth = 2;
    ctx.strokeStyle = COLORS.milestone;
    ctx.stroke(milestones);
    if (n > 0 && inView(sx[0]!, sy[0]!)) {
      ctx.fillStyle = COLORS.root;
      ctx.beginPath();
      ctx.arc(sx[0]!, sy[0]!, r + 1, 0, Math.PI * 2);
      ctx.fill();
    }

    // Short ids next to the nodes once there is room for them.
    if (k >= 1.4 && visible <= 400) {
      ctx.fillStyle = COLORS.label;
      ctx.font = '11px system-ui, sans-serif';
      ctx.textAlign = 'center';
      for (let i = 0; i < n; i++) if (inView(sx[i]!, sy[i]!)) ctx.fillText(shortId(l.nodes[i]!.id), sx[i]!, sy[i]! - r - 4);
    }

    const ring = (i: number, color: string, dashed: boolean) => {
      if (i < 0 || i >= n) return;
      ctx.save();
      ctx.strokeStyle = color;
      ctx.lineWidth = 3;
      if (dashed) ctx.setLineDash([4, 3]);
      ctx.beginPath();
      ctx.arc(sx[i]!, sy[i]!, Math.max(r + 5, 8), 0, Math.PI * 2);
      ctx.stroke();
      ctx.restore();
    };
    ring(this.compare, COLORS.compare, true);
    ring(this.selected, COLORS.selected, false);

    this.canvas.dataset.visibleCount = String(visible);
    if (this.freshLayout) {
      this.freshLayout = false;
      this.canvas.dataset.drawnCount = String(n);
      performance.mark('autovibe-tree-drawn', { detail: { count: n, visible } });
    }
  }
}

/** The part of a checkpoint id that tells it apart (`checkpoint-1a2b3c…` → `1a2b3c`). */
export function shortId(id: string): string {
  return id.replace(/^checkpoint-/, '').slice(0, 6);
}

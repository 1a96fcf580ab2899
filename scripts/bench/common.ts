/**
 * Shared shapes and helpers of the benchmarks: result rows, summary statistics and the
 * printed table.
 */

export interface BenchOptions {
  /** Fewer runs and shorter phases: a smoke test of the benchmark, not a measurement. */
  quick: boolean;
  /** Progress messages (to stderr). */
  log: (message: string) => void;
}

export interface Stats {
  n: number;
  median: number;
  p90: number;
  min: number;
  max: number;
  mean: number;
}

/** One line of the table: a single figure, or a distribution of samples. */
export type Row = { label: string; unit: string; value: number; decimals?: number } | { label: string; unit: string; stats: Stats; decimals?: number };

export interface BenchOutput {
  rows: Row[];
  /** Caveats and context printed under the table and kept in the JSON. */
  notes?: string[];
  /** Raw samples, versions and settings: kept in the JSON only. */
  details?: Record<string, unknown>;
}

export type Benchmark = (opts: BenchOptions) => Promise<BenchOutput>;

/** Percentile by linear interpolation between closest ranks (q in [0, 1]). */
export function percentile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  const a = sorted[lo]!;
  const b = sorted[hi]!;
  return a + (b - a) * (pos - lo);
}

export function summarize(samples: readonly number[]): Stats {
  const sorted = [...samples].sort((x, y) => x - y);
  return {
    n: sorted.length,
    median: percentile(sorted, 0.5),
    p90: percentile(sorted, 0.9),
    min: sorted[0] ?? Number.NaN,
    max: sorted.at(-1) ?? Number.NaN,
    mean: sorted.length ? sorted.reduce((s, x) => s + x, 0) / sorted.length : Number.NaN,
  };
}

/** Stops what a benchmark started, in order, logging (not throwing) what fails to stop. */
export async function stopAll(stops: Array<[string, (() => Promise<void>) | undefined]>, log: (line: string) => void): Promise<void> {
  for (const [name, stop] of stops) {
    if (!stop) continue;
    try {
      await stop();
    } catch (err) {
      log(`stopping ${name} failed: ${(err as Error).message}`);
    }
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function fmt(x: number | undefined, decimals: number): string {
  if (x === undefined) return '';
  if (!Number.isFinite(x)) return String(x);
  return x.toLocaleString('en-US', { minimumFractionDigits: decimals, maximumFractionDigits: decimals });
}

export interface TableInput {
  name: string;
  rows: Row[];
  error?: string;
}

/** The results as a plain-text table, one line per row, benchmarks separated by a rule. */
export function formatTable(results: TableInput[]): string {
  const header = ['benchmark', 'measurement', 'value/median', 'p90', 'min', 'max', 'n', 'unit'];
  const lines: string[][] = [];
  const groups: string[][][] = [];
  for (const r of results) {
    const group: string[][] = [];
    if (r.error !== undefined) {
      group.push([r.name, `FAILED: ${r.error.split('\n')[0]}`, '', '', '', '', '', '']);
    }
    for (const row of r.rows) {
      const d = row.decimals ?? 1;
      if ('stats' in row) {
        const s = row.stats;
        group.push([r.name, row.label, fmt(s.median, d), fmt(s.p90, d), fmt(s.min, d), fmt(s.max, d), String(s.n), row.unit]);
      } else {
        group.push([r.name, row.label, fmt(row.value, d), '', '', '', '', row.unit]);
      }
    }
    // The benchmark's name on its first line only.
    group.forEach((cells, i) => {
      if (i > 0) cells[0] = '';
    });
    groups.push(group);
    lines.push(...group);
  }
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const numeric = new Set([2, 3, 4, 5, 6]);
  const render = (cells: string[]) =>
    cells
      .map((c, i) => (numeric.has(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  const rule = widths.map((w) => '-'.repeat(w)).join('  ');
  const out = [render(header), rule];
  groups.forEach((group, i) => {
    if (i > 0) out.push(rule);
    for (const cells of group) out.push(render(cells));
  });
  return out.join('\n');
}

/**
 * Which checkpoint snapshots to keep and which to prune.
 *
 * The retention grid is data: every checkpoint younger than the first tier is kept, then one per
 * bucket (day, week…) per tier, and beyond the last tier only what something still needs. Pure and
 * deterministic (the clock is an argument), so the prune workflow and unit tests can call it.
 *
 * A checkpoint is never pruned when something still needs it: the project's root, a milestone, a
 * checkpoint a live machine started from or wrote, one an objective or pipeline references, or an
 * ancestor of a kept checkpoint whose snapshot is stored as a delta against its parent (a restore
 * of the child replays the parent). Everything else — branches nobody references that have aged
 * out of the grid, and the checkpoints the grid thins out — is pruned.
 */

export type RetentionBucket = 'all' | 'day' | 'week' | 'month';

export interface RetentionTier {
  /** The tier covers checkpoints younger than this many days (and older than the tier before it). */
  maxAgeDays: number;
  /** `all` keeps every checkpoint; otherwise the newest checkpoint of each bucket is kept. */
  keep: RetentionBucket;
}

/** All for 7 days, one a day for 30 days, one a week for about 6 months; milestones forever. */
export const DEFAULT_RETENTION_GRID: readonly RetentionTier[] = [
  { maxAgeDays: 7, keep: 'all' },
  { maxAgeDays: 30, keep: 'day' },
  { maxAgeDays: 183, keep: 'week' },
];

export interface RetentionCheckpoint {
  id: string;
  parentId: string | null;
  /** ISO timestamp. */
  createdAt: string;
  milestone: boolean;
  /** The snapshot is a delta on the parent's: restoring it needs the parent's snapshot too. */
  deltaOnParent?: boolean;
}

export type KeepReason = 'root' | 'milestone' | 'referenced' | 'recent' | 'day' | 'week' | 'month' | 'ancestor';

export interface RetentionDecision {
  /** Kept checkpoints with every reason that applies, in input order. */
  keep: Array<{ id: string; reasons: KeepReason[] }>;
  /** Checkpoints whose snapshots may be deleted, in input order. */
  prune: string[];
}

const DAY_MS = 86_400_000;

/** The bucket a timestamp falls in: whole UTC days, weeks starting Monday, or calendar months. */
export function bucketOf(atMs: number, bucket: Exclude<RetentionBucket, 'all'>): string {
  const day = Math.floor(atMs / DAY_MS);
  if (bucket === 'day') return `d${day}`;
  // 1970-01-01 was a Thursday: shift by 3 so weeks start on Monday.
  if (bucket === 'week') return `w${Math.floor((day + 3) / 7)}`;
  const d = new Date(atMs);
  return `m${d.getUTCFullYear()}-${d.getUTCMonth()}`;
}

/** Checks a grid: ages strictly increasing and positive. */
export function validateGrid(grid: readonly RetentionTier[]): void {
  let last = 0;
  for (const tier of grid) {
    if (!(tier.maxAgeDays > last)) throw new Error(`retention grid: tier ages must increase (got ${tier.maxAgeDays} after ${last})`);
    last = tier.maxAgeDays;
  }
}

/**
 * Decides what to keep. `referenced` holds ids something live points at (live machines, objectives,
 * pipelines). Ids in `referenced` that are not in `checkpoints` are ignored.
 *
 * @example
 * decideRetention(checkpoints, { now: Date.parse('2026-11-27T00:00:00Z'), referenced: new Set(['checkpoint-a']) })
 */
export function decideRetention(
  checkpoints: readonly RetentionCheckpoint[],
  opts: { now: number; referenced: ReadonlySet<string>; grid?: readonly RetentionTier[] },
): RetentionDecision {
  const grid = opts.grid ?? DEFAULT_RETENTION_GRID;
  validateGrid(grid);
  const byId = new Map<string, RetentionCheckpoint>();
  for (const c of checkpoints) if (!byId.has(c.id)) byId.set(c.id, c);
  const reasons = new Map<string, Set<KeepReason>>();
  const add = (id: string, reason: KeepReason) => {
    let set = reasons.get(id);
    if (!set) reasons.set(id, (set = new Set()));
    set.add(reason);
  };

  // Newest of each bucket per tier: walk newest first, the first seen in a bucket wins.
  const newestFirst = [...byId.values()].sort((a, b) => Date.parse(b.createdAt) - Date.parse(a.createdAt) || (a.id < b.id ? -1 : 1));
  const seen = new Set<string>();
  for (const c of newestFirst) {
    const at = Date.parse(c.createdAt);
    if (Number.isNaN(at)) throw new Error(`checkpoint ${c.id} has an invalid createdAt: ${c.createdAt}`);
    if (c.parentId === null) add(c.id, 'root');
    if (c.milestone) add(c.id, 'milestone');
    if (opts.referenced.has(c.id)) add(c.id, 'referenced');
    const ageDays = (opts.now - at) / DAY_MS;
    const tierIndex = grid.findIndex((t) => ageDays < t.maxAgeDays);
    if (tierIndex < 0) continue;
    const tier = grid[tierIndex]!;
    if (tier.keep === 'all') {
      add(c.id, 'recent');
      continue;
    }
    const key = `${tierIndex}:${bucketOf(at, tier.keep)}`;
    if (seen.has(key)) continue;
    seen.add(key);
    add(c.id, tier.keep);
  }

  // A kept delta snapshot needs its parent's, and so on up the chain.
  for (const id of [...reasons.keys()]) {
    let c = byId.get(id);
    const guard = new Set<string>();
    while (c && c.deltaOnParent && c.parentId && !guard.has(c.id)) {
      guard.add(c.id);
      const parent = byId.get(c.parentId);
      if (!parent) break;
      add(parent.id, 'ancestor');
      c = parent;
    }
  }

  const keep: RetentionDecision['keep'] = [];
  const prune: string[] = [];
  for (const c of byId.values()) {
    const r = reasons.get(c.id);
    if (r) keep.push({ id: c.id, reasons: [...r] });
    else prune.push(c.id);
  }
  return { keep, prune };
}

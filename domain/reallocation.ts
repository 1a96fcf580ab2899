/**
 * Budget reallocation (README "Reallocation"): which projects of a cost center give part of their
 * budget's limit to which others, in bounded steps, each move with its explanation. Pure: the
 * figures come in, the plan goes out. Amounts are exact ledger units (bigint); ROI and utilisation
 * are compared as integers (millionths, basis points), never as floats.
 */
import { divRound, formatAmount, roundToMinor, type CurrencyCode } from './money.js';

const LEDGER_UNIT = 10n ** 18n;

/** A project uses "most of" its allocation from this share of it on (basis points of limit × periods). */
export const GREEDY_UTILISATION_BP = 8_000;
/** A period counts as "at its limit" when spent + reserved reached this share of the limit. */
export const HIT_BP = 9_000;
/** A project "under-uses" its allocation below this share. */
export const UNDERUSE_BP = 5_000;

export interface ReallocationSettings {
  enabled: boolean;
  /** Scheduled runs only preview (their moves are recorded, nothing changes). */
  dryRun: boolean;
  /** At most this percentage of a project's limit is given or taken in one run. */
  maxStepPercent: number;
  /** The days of spend, utilisation and ROI a run looks at. */
  lookbackDays: number;
  currency: CurrencyCode;
  /** No project's limit is lowered below this. */
  minAllocation: bigint;
  /** No project's limit is raised above this (null: no cap besides the cost center's limit). */
  maxAllocation: bigint | null;
}

/** What a run knows of one project of the scope. */
export interface Candidate {
  projectId: string;
  name: string;
  /** The project budget's limit now. */
  limit: bigint;
  /** Spent + reserved in the current period (a limit never goes below it). */
  usedNow: bigint;
  /** Periods looked at (the current one included) and how many of them reached HIT_BP of the limit. */
  periods: number;
  hits: number;
  /** Spent over the looked-at periods plus what is reserved now. */
  usedInPeriods: bigint;
  /** Spend over the look-back days (cost events, the ROI's denominator) and objectives completed in them. */
  spend: bigint;
  completed: number;
}

export type Role = 'receiver' | 'donor' | 'kept';

export interface Assessed extends Candidate {
  /** Used / (limit × periods), in basis points (0 when the limit is 0). */
  utilisationBp: number;
  /** Objectives completed per 1 unit of currency, in millionths; null without spend. */
  roiMillionths: bigint | null;
  role: Role;
  reason: string;
}

export interface Move {
  from: Assessed;
  to: Assessed;
  amount: bigint;
  fromBefore: bigint;
  toBefore: bigint;
  explanation: string;
}

export interface Plan {
  meanRoiMillionths: bigint | null;
  projects: Assessed[];
  moves: Move[];
}

/** Millionths as a decimal string with 6 places ("2.000000"). */
export const millionthsText = (m: bigint): string => `${m / 1_000_000n}.${(m % 1_000_000n).toString().padStart(6, '0')}`;
/** Basis points as a percentage with one decimal ("97.5"), rounded half-even. */
export const percentText = (bp: number): string => {
  const tenths = Number(divRound(BigInt(bp), 10n, 'half-even'));
  return `${Math.floor(tenths / 10)}.${tenths % 10}`;
};

function utilisation(c: Candidate): number {
  const capacity = c.limit * BigInt(c.periods);
  if (capacity <= 0n) return 0;
  return Number(divRound(c.usedInPeriods * 10_000n, capacity, 'down'));
}

function roi(c: Candidate): bigint | null {
  if (c.spend <= 0n) return null;
  return divRound(BigInt(c.completed) * LEDGER_UNIT * 1_000_000n, c.spend, 'half-even');
}

const cmp = (a: bigint, b: bigint) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * Each project's role: receivers run into their limit (a period at HIT_BP of it, or GREEDY_UTILISATION_BP
 * used) with ROI at or above the mean ROI of the projects with spend; donors under-use theirs
 * (below UNDERUSE_BP) or have ROI below the mean (or no spend). The mean is compared exactly
 * (ROI × n against the sum); it is shown rounded down to millionths.
 */
export function assess(candidates: readonly Candidate[]): { mean: bigint | null; projects: Assessed[] } {
  const base = candidates.map((c) => ({ ...c, utilisationBp: utilisation(c), roiMillionths: roi(c) }));
  const measured = base.flatMap((c) => (c.roiMillionths === null ? [] : [c.roiMillionths]));
  const n = BigInt(measured.length);
  const sum = measured.reduce((a, b) => a + b, 0n);
  const mean = n === 0n ? null : sum / n;
  const projects = base.map((c): Assessed => {
    const greedy = c.hits > 0 || c.utilisationBp >= GREEDY_UTILISATION_BP;
    const highRoi = c.roiMillionths !== null && c.roiMillionths * n >= sum;
    const lowRoi = c.roiMillionths === null || c.roiMillionths * n < sum;
    const under = c.utilisationBp < UNDERUSE_BP;
    const greedText = c.hits > 0 ? `at its limit in ${c.hits} of ${c.periods} periods` : `used ${percentText(c.utilisationBp)} % of its allocation`;
    if (greedy && highRoi) return { ...c, role: 'receiver', reason: `${greedText}, with ROI at or above the mean` };
    if (under) return { ...c, role: 'donor', reason: `under-uses its allocation (${percentText(c.utilisationBp)} %, below ${percentText(UNDERUSE_BP)} %)` };
    if (lowRoi) return { ...c, role: 'donor', reason: c.roiMillionths === null ? 'no spend to measure ROI on' : 'ROI below the mean' };
    return { ...c, role: 'kept', reason: greedy ? `${greedText}, but ROI below the mean` : 'uses its allocation with ROI at or above the mean' };
  });
  return { mean, projects };
}

/** One project's figures in an explanation. */
function figures(p: Assessed, currency: CurrencyCode, before: bigint, after: bigint): string {
  const roiText =
    p.roiMillionths === null
      ? 'no spend'
      : `ROI ${millionthsText(p.roiMillionths)} objectives per ${currency} (${p.completed} completed for ${formatAmount(p.spend, currency)} ${currency})`;
  return `${p.name} (${p.projectId}: ${roiText}, used ${percentText(p.utilisationBp)} % of its limit, at its limit in ${p.hits} of ${p.periods} periods; limit ${formatAmount(before, currency)} → ${formatAmount(after, currency)})`;
}

/**
 * The moves of one run: receivers (highest ROI first, then most limit hits, most used) take from
 * donors (lowest ROI first, then least used). A donor gives at most maxStepPercent of its limit and
 * never goes below what it spent and reserved this period or below minAllocation; a receiver takes
 * at most maxStepPercent of its limit and never goes above maxAllocation. Amounts are whole minor
 * units, rounded down. Every move takes from one project what it gives another: the sum of the
 * limits does not change.
 */
export function planMoves(candidates: readonly Candidate[], s: ReallocationSettings, lookback: string): Plan {
  const { mean, projects } = assess(candidates);
  const currency = s.currency;
  const step = (limit: bigint) => roundToMinor((limit * BigInt(s.maxStepPercent)) / 100n, currency, 'down');
  const floorOf = (p: Assessed) => (p.usedNow > s.minAllocation ? p.usedNow : s.minAllocation);
  const donors = projects
    .filter((p) => p.role === 'donor')
    .map((p) => {
      const room = p.limit - floorOf(p);
      const offer = roundToMinor(room < step(p.limit) ? room : step(p.limit), currency, 'down');
      return { p, left: offer > 0n ? offer : 0n };
    })
    .filter((d) => d.left > 0n)
    .sort(
      (a, b) => cmp(a.p.roiMillionths ?? -1n, b.p.roiMillionths ?? -1n) || a.p.utilisationBp - b.p.utilisationBp || a.p.projectId.localeCompare(b.p.projectId),
    );
  const receivers = projects
    .filter((p) => p.role === 'receiver')
    .map((p) => {
      let want = step(p.limit);
      if (s.maxAllocation !== null && p.limit + want > s.maxAllocation) want = s.maxAllocation - p.limit;
      return { p, left: want > 0n ? roundToMinor(want, currency, 'down') : 0n };
    })
    .filter((r) => r.left > 0n)
    .sort(
      (a, b) =>
        cmp(b.p.roiMillionths ?? -1n, a.p.roiMillionths ?? -1n) ||
        b.p.hits - a.p.hits ||
        b.p.utilisationBp - a.p.utilisationBp ||
        a.p.projectId.localeCompare(b.p.projectId),
    );
  const limits = new Map(projects.map((p) => [p.projectId, p.limit]));
  const moves: Move[] = [];
  for (const r of receivers) {
    for (const d of donors) {
      if (r.left === 0n) break;
      if (d.left === 0n) continue;
      const amount = r.left < d.left ? r.left : d.left;
      r.left -= amount;
      d.left -= amount;
      const fromBefore = limits.get(d.p.projectId)!;
      const toBefore = limits.get(r.p.projectId)!;
      limits.set(d.p.projectId, fromBefore - amount);
      limits.set(r.p.projectId, toBefore + amount);
      const explanation =
        `Moved ${formatAmount(amount, currency)} ${currency} of the period limit from ${figures(d.p, currency, fromBefore, fromBefore - amount)} ` +
        `to ${figures(r.p, currency, toBefore, toBefore + amount)}, over ${lookback}: ${r.p.name} ${r.p.reason}` +
        `${mean === null ? '' : ` (mean ROI ${millionthsText(mean)})`}; ${d.p.name} ${d.p.reason}.`;
      moves.push({ from: d.p, to: r.p, amount, fromBefore, toBefore, explanation });
    }
  }
  return { meanRoiMillionths: mean, projects, moves };
}

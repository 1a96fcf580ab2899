export const OBJECTIVE_STATUSES = ['waiting', 'paused', 'running', 'completed', 'failed', 'cancelled'] as const;
export type ObjectiveStatus = (typeof OBJECTIVE_STATUSES)[number];

/**
 * How an objective knows it is done. Every criterion given must hold:
 * - `command`: a shell check run on the objective's latest checkpoint must exit 0;
 * - `subtasks`: every named sub-task ticked off (by a user, or by a machine's verdict file);
 * - `verdict`: the machine's own verdict file says the work is complete.
 * With none given, an objective is done when its machine completes.
 */
export interface CompletionCriteria {
  command?: string;
  subtasks?: string[];
  verdict?: boolean;
}

/** Where a machine writes its verdict, relative to the workspace. */
export const VERDICT_FILE = '.autovibe/verdict.json';

export interface Measurement {
  /** Did the machine complete (exit 0 / the agent finished)? */
  machineCompleted: boolean;
  check?: { passed: boolean };
  subtasksDone?: string[];
  verdict?: { complete: boolean } | null;
}

/**
 * Progress in 0..1: the share of criteria met, where sub-tasks count one each and a check or a
 * verdict counts one. Rounded down to 4 decimals so it never shows done before it is.
 */
export function measureProgress(criteria: CompletionCriteria, m: Measurement): { progress: number; complete: boolean; met: number; total: number } {
  let total = 0;
  let met = 0;
  if (criteria.command !== undefined) {
    total++;
    if (m.check?.passed) met++;
  }
  for (const name of criteria.subtasks ?? []) {
    total++;
    if (m.subtasksDone?.includes(name)) met++;
  }
  if (criteria.verdict) {
    total++;
    if (m.verdict?.complete) met++;
  }
  if (total === 0) {
    total = 1;
    if (m.machineCompleted) met = 1;
  }
  return { progress: Math.floor((met * 10_000) / total) / 10_000, complete: met === total, met, total };
}

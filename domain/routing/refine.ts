/**
 * Prompt refinement (README "Prompt refinement"): what a failed run says about the next one of its
 * kind. From an ended machine: a failure summary (its end, the error lines of its log, the files it
 * touched) and failure patterns keyed by kind and detail; from the patterns of a project's
 * operation class: the extra instructions a refined prompt gets. Pure and deterministic.
 */

export const PATTERN_KINDS = ['error', 'file', 'check', 'feedback', 'stop'] as const;
export type PatternKind = (typeof PATTERN_KINDS)[number];

export const PROMPT_ARMS = ['refined', 'plain'] as const;
export type PromptArm = (typeof PROMPT_ARMS)[number];

export interface FailurePattern {
  kind: PatternKind;
  detail: string;
  machineType: string;
  occurrences: number;
}

export interface FailureSummary {
  summary: string;
  stopReason: string | null;
  error: string | null;
  errorLines: string[];
  files: string[];
}

/** Lines of output that say something went wrong. */
const ERROR_LINE = /(error|fail|exception|traceback|assert|panic|fatal)|\b(cannot|not found|undefined|denied|timed out)\b|✗|✖|^\s*not ok\b/i;
/** At most this many error lines and files per summary. */
export const MAX_LINES = 5;
export const MAX_FILES = 10;
const MAX_DETAIL = 200;

/** A line cut to a pattern's detail: single spaces, at most 200 characters. */
export function normalizeLine(line: string): string {
  const s = line.replace(/\s+/g, ' ').trim();
  return s.length > MAX_DETAIL ? `${s.slice(0, MAX_DETAIL - 1)}…` : s;
}

/** The distinct error lines of a log, the last ones first kept (oldest first in the answer), at most `max`. */
export function errorLinesOf(log: string, max = MAX_LINES): string[] {
  const out: string[] = [];
  const lines = log.split(/\r?\n/).reverse();
  for (const raw of lines) {
    if (!ERROR_LINE.test(raw)) continue;
    const line = normalizeLine(raw);
    if (line.length < 4 || out.includes(line)) continue;
    out.push(line);
    if (out.length >= max) break;
  }
  return out.reverse();
}

/** Files agent CLIs keep for themselves in the workspace (aider's chat and input history): not the task's files. */
const AGENT_FILES = /(^|\/)\.aider[^/]*$/;

/** A machine's failure summary from its end, its log and the files it changed. */
export function summarizeFailure(m: {
  status: string;
  stopReason: string | null;
  error: string | null;
  log: string;
  files: readonly string[];
}): FailureSummary {
  const errorLines = errorLinesOf(`${m.log}\n${m.error ?? ''}`);
  const files = [...new Set(m.files)]
    .filter((f) => !AGENT_FILES.test(f))
    .sort()
    .slice(0, MAX_FILES);
  const parts = [`ended ${m.status}${m.stopReason ? ` (${m.stopReason})` : ''}`];
  if (m.error) parts.push(`error: ${normalizeLine(m.error)}`);
  else if (errorLines.length) parts.push(`last error: ${errorLines.at(-1)}`);
  if (files.length) parts.push(`touched ${files.length} file(s): ${files.join(', ')}`);
  return { summary: parts.join('; '), stopReason: m.stopReason, error: m.error ? normalizeLine(m.error) : null, errorLines, files };
}

/** The patterns a failure summary contributes (kind, detail). */
export function patternsOfFailure(s: FailureSummary): Array<{ kind: PatternKind; detail: string }> {
  return [
    ...(s.stopReason ? [{ kind: 'stop' as const, detail: s.stopReason }] : []),
    // The machine's own error first (what it ended with), then its log's error lines.
    ...[...new Set([...(s.error ? [s.error] : []), ...s.errorLines])].map((detail) => ({ kind: 'error' as const, detail })),
    ...s.files.map((detail) => ({ kind: 'file' as const, detail })),
  ];
}

/** A failed completion check as a pattern: its command and the end of its output. */
export function checkPattern(command: string, output: string): { kind: 'check'; detail: string } {
  const last =
    errorLinesOf(output, 1)[0] ??
    normalizeLine(
      output
        .split(/\r?\n/)
        .filter((l) => l.trim())
        .at(-1) ?? '',
    );
  return { kind: 'check', detail: normalizeLine(`\`${command}\`${last ? ` — ${last}` : ''}`) };
}

/** Ratings at or under this are negative feedback. */
export const NEGATIVE_RATING = 2;

/** A low rating as a pattern: its comment, else the rating. */
export function feedbackPattern(rating: number, comment: string | null): { kind: 'feedback'; detail: string } {
  return { kind: 'feedback', detail: normalizeLine(comment?.trim() ? comment : `rated ${rating}/5 without a comment`) };
}

/** Patterns per kind a refinement names, the most frequent first. */
const PER_KIND = 3;

/**
 * The instructions a refined prompt gets from a class's failure patterns (the chosen type's first,
 * then by occurrences): failed checks to run before finishing, files failing runs touched, errors
 * they hit, limits they ran into, what reviewers said. Null without patterns.
 */
export function buildRefinement(cls: string, chosenType: string, patterns: readonly FailurePattern[]): string | null {
  if (!patterns.length) return null;
  const ordered = [...patterns].sort(
    (a, b) =>
      Number(b.machineType === chosenType) - Number(a.machineType === chosenType) ||
      b.occurrences - a.occurrences ||
      a.kind.localeCompare(b.kind) ||
      a.detail.localeCompare(b.detail),
  );
  const of = (kind: PatternKind) => {
    const seen = new Set<string>();
    return ordered.filter((p) => p.kind === kind && !seen.has(p.detail) && seen.add(p.detail)).slice(0, PER_KIND);
  };
  const times = (p: FailurePattern) => (p.occurrences > 1 ? ` (${p.occurrences} times)` : '');
  const lines = [`Earlier ${cls} runs in this project did not succeed. Learn from them:`];
  const checks = of('check');
  if (checks.length) {
    lines.push('- Completion checks failed last time; run them yourself before you finish and fix what they report:');
    for (const p of checks) lines.push(`  - ${p.detail}${times(p)}`);
  }
  const files = of('file');
  if (files.length) lines.push(`- Failing runs changed these files; review them closely: ${files.map((p) => p.detail).join(', ')}`);
  const errors = of('error');
  if (errors.length) {
    lines.push('- Errors seen in failing runs; avoid them:');
    for (const p of errors) lines.push(`  - ${p.detail}${times(p)}`);
  }
  const stops = of('stop');
  if (stops.length) lines.push(`- Failing runs were stopped at a limit (${stops.map((p) => p.detail).join(', ')}); keep the work small and finish early.`);
  const feedback = of('feedback');
  if (feedback.length) {
    lines.push('- Reviewers said about earlier work:');
    for (const p of feedback) lines.push(`  - "${p.detail}"`);
  }
  return lines.length > 1 ? lines.join('\n') : null;
}

/** The prompt an agent gets: its own, plus the refinement for the refined arm. */
export function refinedPrompt(prompt: string, refinement: string | null): string {
  return refinement ? `${prompt}\n\n${refinement}` : prompt;
}

/** The A/B arm of a routed machine with patterns to refine with: refined with probability `share`. */
export function chooseArm(share: number, rand: () => number): PromptArm {
  return rand() < share ? 'refined' : 'plain';
}

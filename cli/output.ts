import Table from 'cli-table3';
import pc from 'picocolors';

/**
 * Whether to colour: never with NO_COLOR or --no-color; always with FORCE_COLOR; otherwise only on
 * a terminal. (picocolors' own default also colours whenever CI is set, even into a pipe or file.)
 */
function colorWanted(env = process.env, argv = process.argv): boolean {
  if ('NO_COLOR' in env || argv.includes('--no-color')) return false;
  if ('FORCE_COLOR' in env || argv.includes('--color')) return true;
  return Boolean(process.stdout.isTTY) && env.TERM !== 'dumb';
}

/** Output: JSON on stdout for scripts (`--json`), readable tables otherwise, coloured as `colorWanted` says. */
export const colors = pc.createColors(colorWanted());

export function printJson(data: unknown): void {
  process.stdout.write(`${JSON.stringify(data, null, 2)}\n`);
}

export type Column<T> = [header: string, value: (row: T) => unknown];

function cell(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

/** Rows as a table, one column per [header, value]. */
export function printTable<T>(rows: readonly T[], columns: Column<T>[]): void {
  if (rows.length === 0) {
    process.stdout.write(`${colors.dim('(none)')}\n`);
    return;
  }
  const table = new Table({
    head: columns.map(([h]) => colors.bold(h)),
    // cli-table3 colours its head and border itself; colours are ours to decide (NO_COLOR).
    style: { head: [], border: [] },
  });
  for (const row of rows) table.push(columns.map(([, value]) => status(cell(value(row)))));
  process.stdout.write(`${table.toString()}\n`);
}

/** One resource as a two-column table of its fields (objects in a field as JSON). */
export function printRecord(record: Record<string, unknown>, fields?: string[]): void {
  const table = new Table({ style: { head: [], border: [] } });
  for (const key of fields ?? Object.keys(record)) {
    if (!(key in record)) continue;
    table.push({ [colors.bold(key)]: status(cell(record[key])) });
  }
  process.stdout.write(`${table.toString()}\n`);
}

const STATUS_COLOURS: Record<string, (s: string) => string> = {
  completed: colors.green,
  succeeded: colors.green,
  active: colors.green,
  running: colors.cyan,
  pending: colors.yellow,
  provisioning: colors.yellow,
  paused: colors.yellow,
  failed: colors.red,
  refused: colors.red,
  terminated: colors.red,
  cancelled: colors.red,
  revoked: colors.red,
};

/** A status word in its colour; any other text as it is. */
export function status(text: string): string {
  return STATUS_COLOURS[text]?.(text) ?? text;
}

export function info(line: string): void {
  process.stderr.write(`${line}\n`);
}

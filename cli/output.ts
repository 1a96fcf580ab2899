import Table from 'cli-table3';
import pc from 'picocolors';

/**
 * Output: JSON on stdout for scripts (`--json`), readable tables otherwise. Colours come from
 * picocolors, which is off with NO_COLOR, --no-color or when stdout is not a terminal.
 */
export const colors = pc;

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
    process.stdout.write(`${pc.dim('(none)')}\n`);
    return;
  }
  const table = new Table({
    head: columns.map(([h]) => pc.bold(h)),
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
    table.push({ [pc.bold(key)]: status(cell(record[key])) });
  }
  process.stdout.write(`${table.toString()}\n`);
}

const STATUS_COLOURS: Record<string, (s: string) => string> = {
  completed: pc.green,
  succeeded: pc.green,
  active: pc.green,
  running: pc.cyan,
  pending: pc.yellow,
  provisioning: pc.yellow,
  paused: pc.yellow,
  failed: pc.red,
  refused: pc.red,
  terminated: pc.red,
  cancelled: pc.red,
  revoked: pc.red,
};

/** A status word in its colour; any other text as it is. */
export function status(text: string): string {
  return STATUS_COLOURS[text]?.(text) ?? text;
}

export function info(line: string): void {
  process.stderr.write(`${line}\n`);
}

import fs from 'node:fs';
import { Option, type Command } from 'commander';
import YAML from 'yaml';
import { apiClient, type Api } from './client.js';
import { resolveConnection, type Connection } from './config.js';
import { UsageError } from './errors.js';
import { printJson, printTable, type Column } from './output.js';

export interface Globals {
  json?: boolean;
  profile?: string;
}

export interface Ctx {
  api: Api;
  conn: Connection;
  json: boolean;
}

/** The client and output mode of the command being run (global options may come before or after it). */
export function ctxOf(cmd: Command): Ctx {
  const g = cmd.optsWithGlobals<Globals>();
  const conn = resolveConnection(g.profile);
  return { api: apiClient(conn), conn, json: Boolean(g.json) };
}

export function jsonMode(cmd: Command): boolean {
  return Boolean(cmd.optsWithGlobals<Globals>().json);
}

/** `--limit`, `--cursor`, `--all` of a list command. */
export function pageOptions(cmd: Command): Command {
  return cmd
    .option('--limit <n>', 'items per page (1-500)')
    .option('--cursor <cursor>', 'start after this cursor (nextCursor of an earlier page)')
    .option('--all', 'follow nextCursor through every page');
}

export interface Page<T> {
  items: T[];
  nextCursor?: string | null;
}

/**
 * A list: one page (its nextCursor shown so the next can be asked for), or every page with
 * `--all`. `--json` prints `{ items, nextCursor }` either way.
 */
export async function printList<T>(
  cmd: Command,
  fetchPage: (query: { limit?: string; cursor?: string }) => Promise<Page<T>>,
  columns: Column<T>[],
): Promise<void> {
  const o = cmd.opts<{ limit?: string; cursor?: string; all?: boolean }>();
  if (o.limit !== undefined && !/^\d+$/.test(o.limit)) throw new UsageError('--limit: must be a whole number');
  const items: T[] = [];
  let cursor = o.cursor;
  let next: string | null | undefined;
  do {
    const page = await fetchPage({ ...(o.limit ? { limit: o.limit } : {}), ...(cursor ? { cursor } : {}) });
    items.push(...page.items);
    next = page.nextCursor;
    cursor = next ?? undefined;
  } while (o.all && next);
  if (jsonMode(cmd)) return printJson({ items, nextCursor: next ?? null });
  printTable(items, columns);
  if (next) process.stderr.write(`more: --cursor ${next} (or --all)\n`);
}

/** Prints a resource: JSON, or the human form. */
export function show<T>(cmd: Command, data: T, human: (data: T) => void): void {
  if (jsonMode(cmd)) printJson(data);
  else human(data);
}

/** A YAML or JSON file (YAML is a superset of JSON); `-` reads stdin. */
export function readDataFile(file: string): unknown {
  let text: string;
  try {
    text = file === '-' ? fs.readFileSync(0, 'utf8') : fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new UsageError(`${file}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
  try {
    return YAML.parse(text);
  } catch (e) {
    throw new UsageError(`${file}: not valid YAML or JSON: ${(e as Error).message.split('\n')[0]}`);
  }
}

/** Money as the api takes it: a decimal string. */
export function moneyOption(name: string, description: string): Option {
  return new Option(name, description).argParser((v: string) => {
    if (!/^\d+(\.\d+)?$/.test(v)) throw new UsageError(`${name.split(' ')[0]}: must be a decimal amount like 10.00`);
    return v;
  });
}

export function intOption(name: string, description: string): Option {
  return new Option(name, description).argParser((v: string) => {
    if (!/^\d+$/.test(v)) throw new UsageError(`${name.split(' ')[0]}: must be a whole number`);
    return Number(v);
  });
}

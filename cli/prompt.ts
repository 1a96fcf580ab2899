import { input, select } from '@inquirer/prompts';
import { UsageError } from './errors.js';

/** Prompts only when someone can answer: stdin is a terminal. Scripts get a usage error instead. */
export function interactive(): boolean {
  return Boolean(process.stdin.isTTY);
}

/**
 * A required value: as given, else asked for (a choice list when `choices` can offer one), else
 * a usage error naming the flag.
 */
export async function need(
  value: string | undefined,
  what: { flag: string; message: string; choices?: () => Promise<Array<{ name: string; value: string }>> },
): Promise<string> {
  if (value !== undefined && value !== '') return value;
  if (!interactive()) throw new UsageError(`missing ${what.flag}`);
  const choices = what.choices ? await what.choices() : [];
  // Prompts write to stderr: stdout stays the command's output.
  const context = { output: process.stderr };
  if (choices.length > 0) return select({ message: what.message, choices }, context);
  return input({ message: what.message, required: true }, context);
}

/** All of stdin, trimmed: how secrets (tokens) are given, never as arguments a process list shows. */
export async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8').trim();
}

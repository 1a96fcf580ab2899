import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const BIN = path.resolve(import.meta.dirname, '..', '..', 'cli', 'bin.js');

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs the real `autovibe` binary as a child process (asynchronously: the platform under test
 * answers from this same process). The environment starts clean of AutoVibe and colour settings,
 * in its own working and config directory, so nothing of the developer's machine leaks in.
 */
export function runCli(args: string[], opts: { env?: Record<string, string | undefined>; cwd?: string; input?: string } = {}): Promise<Run> {
  const env: Record<string, string | undefined> = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('AUTOVIBE_') || k === 'NO_COLOR' || k === 'FORCE_COLOR') delete env[k];
  Object.assign(env, opts.env);
  const cwd = opts.cwd ?? fs.mkdtempSync(path.join(os.tmpdir(), 'autovibe-cli-cwd-'));
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: env as NodeJS.ProcessEnv, cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(opts.input ?? '');
  });
}

/** Parses stdout as JSON, saying what the command printed when it is not. */
export function json<T = any>(r: Run): T {
  try {
    return JSON.parse(r.stdout) as T;
  } catch {
    throw new Error(`not JSON (exit ${r.code}):\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  }
}

/**
 * Runs the binary in a pseudo-terminal (python3's pty, test/cli/pty-driver.py): stdin and stdout
 * are a terminal, as for a person. Each step waits for its regex in the output, then types its text.
 */
export async function runInPty(
  args: string[],
  opts: { env?: Record<string, string | undefined>; steps?: Array<[RegExp, string]> } = {},
): Promise<{ code: number | null; output: string; pending: unknown[] }> {
  const env: Record<string, string | undefined> = { ...process.env, TERM: 'xterm-256color' };
  for (const k of Object.keys(env)) if (k.startsWith('AUTOVIBE_') || k === 'NO_COLOR' || k === 'FORCE_COLOR' || k === 'CI') delete env[k];
  Object.assign(env, opts.env);
  const spec = {
    argv: [process.execPath, BIN, ...args],
    env: Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined)),
    cwd: fs.mkdtempSync(path.join(os.tmpdir(), 'autovibe-cli-pty-')),
    steps: (opts.steps ?? []).map(([re, text]) => [re.source, text]),
    timeout: 120,
  };
  const r = await new Promise<Run>((resolve, reject) => {
    const child = spawn('python3', [path.join(import.meta.dirname, 'pty-driver.py')], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(JSON.stringify(spec));
  });
  if (r.code !== 0) throw new Error(`pty driver failed (${r.code}): ${r.stderr}`);
  return JSON.parse(r.stdout);
}

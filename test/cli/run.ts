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
export function runInPty(
  args: string[],
  opts: { env?: Record<string, string | undefined>; steps?: Array<[RegExp, string]> } = {},
): Promise<{ code: number | null; output: string; pending: unknown[] }> {
  const env: Record<string, string | undefined> = { ...process.env, TERM: 'xterm-256color' };
  for (const k of Object.keys(env)) if (k.startsWith('AUTOVIBE_') || k === 'NO_COLOR' || k === 'FORCE_COLOR' || k === 'CI') delete env[k];
  Object.assign(env, opts.env);
  return runArgvInPty([process.execPath, BIN, ...args], { ...opts, env });
}

/** Any program in a pseudo-terminal (e.g. an interactive shell), with exactly the environment given. */
export async function runArgvInPty(
  argv: string[],
  opts: { env?: Record<string, string | undefined>; steps?: Array<[RegExp, string]>; cwd?: string; timeout?: number } = {},
): Promise<{ code: number | null; output: string; pending: unknown[] }> {
  const spec = {
    argv,
    env: Object.fromEntries(Object.entries(opts.env ?? {}).filter(([, v]) => v !== undefined)),
    cwd: opts.cwd ?? fs.mkdtempSync(path.join(os.tmpdir(), 'autovibe-cli-pty-')),
    steps: (opts.steps ?? []).map(([re, text]) => [re.source, text]),
    timeout: opts.timeout ?? 120,
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

/** The binary as a long-running child (e.g. `events follow`): its output so far, and a way to stop it. */
export function startCli(args: string[], opts: { env?: Record<string, string | undefined> } = {}) {
  const env: Record<string, string | undefined> = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('AUTOVIBE_') || k === 'NO_COLOR' || k === 'FORCE_COLOR') delete env[k];
  Object.assign(env, opts.env);
  const child = spawn(process.execPath, [BIN, ...args], {
    env: env as NodeJS.ProcessEnv,
    cwd: fs.mkdtempSync(path.join(os.tmpdir(), 'autovibe-cli-cwd-')),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const out = { stdout: '', stderr: '' };
  child.stdout.on('data', (d: Buffer) => (out.stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out.stderr += d.toString()));
  const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal })),
  );
  return {
    out,
    /** Waits until stdout matches (or the child ends, or the time runs out: then it fails with what it printed). */
    async waitFor(re: RegExp, timeoutMs = 60_000): Promise<RegExpExecArray> {
      const until = Date.now() + timeoutMs;
      let ended = false;
      void closed.then(() => (ended = true));
      for (;;) {
        const m = re.exec(out.stdout);
        if (m) return m;
        if (ended || Date.now() > until) throw new Error(`${ended ? 'ended' : 'timed out'} before ${re}:\nstdout: ${out.stdout}\nstderr: ${out.stderr}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    /** Sends a signal and resolves with how it ended. */
    stop(signal: NodeJS.Signals = 'SIGINT') {
      child.kill(signal);
      return closed;
    },
  };
}

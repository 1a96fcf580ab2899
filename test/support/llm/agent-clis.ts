/**
 * How tests run the real agent CLIs (installed by scripts/install-agent-clis) against a scripted
 * endpoint: where the binaries are, and the command line, environment and private HOME each needs
 * to run unattended, edit files, and print machine-readable output.
 *
 * @example
 *   const llm = await startScriptedEndpoint();
 *   const inv = agentInvocation('gemini', { endpointUrl: llm.url, workDir, homeDir, prompt: 'Create hello.txt' });
 *   const run = await runAgent(inv);
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AgentCli } from './endpoint.js';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

export function toolsDir(): string {
  return process.env.AUTOVIBE_TOOLS_DIR ?? path.join(repoRoot, '.autovibe/tools');
}

export function agentBinary(cli: AgentCli): string {
  if (cli === 'aider') return path.join(toolsDir(), 'aider-venv/bin/aider');
  return path.join(toolsDir(), 'npm/node_modules/.bin', cli);
}

/** Runs scripts/install-agent-clis (idempotent; quick when everything is installed). Rejects with its output on failure. */
export function installAgentClis(timeoutMs = 20 * 60_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(path.join(repoRoot, 'scripts/install-agent-clis'), [], {
      env: { ...process.env, AUTOVIBE_TOOLS_DIR: toolsDir() },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => (output += d.toString('utf8')));
    const timer = setTimeout(() => child.kill('SIGTERM'), timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`scripts/install-agent-clis failed (${code ?? signal}):\n${output}`));
    });
  });
}

export type OutputFormat = 'json' | 'stream-json' | 'text';

export interface InvocationOptions {
  /** Base URL of the endpoint, e.g. http://127.0.0.1:PORT (no /v1). */
  endpointUrl: string;
  workDir: string;
  /** A private, writable HOME for the CLI (it is populated with the settings the CLI needs). */
  homeDir: string;
  prompt: string;
  /** Claude Code: stream-json (default) or json; Qwen Code and Gemini CLI: json (default) or stream-json; Aider: text only. */
  format?: OutputFormat;
  /** Model name for the OpenAI-dialect CLIs (Qwen Code, Aider). */
  model?: string;
  /** Aider only: prices per token for its model metadata, so that it prints a cost. */
  aiderPrices?: { inputPerToken: number; outputPerToken: number };
}

export interface Invocation {
  cli: AgentCli;
  command: string;
  args: string[];
  env: Record<string, string>;
  cwd: string;
}

/** The command line and environment that make a CLI run unattended against the endpoint. */
export function agentInvocation(cli: AgentCli, o: InvocationOptions): Invocation {
  const model = o.model ?? 'scripted-model';
  fs.mkdirSync(o.homeDir, { recursive: true });
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
    HOME: o.homeDir,
    LANG: 'C.UTF-8',
    TERM: 'dumb',
    NO_COLOR: '1',
  };
  let args: string[];
  switch (cli) {
    case 'claude':
      args = ['-p', o.prompt, '--output-format', o.format ?? 'stream-json', '--verbose', '--permission-mode', 'bypassPermissions'];
      Object.assign(env, {
        ANTHROPIC_BASE_URL: o.endpointUrl,
        ANTHROPIC_API_KEY: 'test',
        DISABLE_TELEMETRY: '1',
        DISABLE_AUTOUPDATER: '1',
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
        // bypassPermissions is refused to root unless the CLI is told it runs in a sandbox.
        IS_SANDBOX: '1',
      });
      break;
    case 'qwen':
      args = ['-p', o.prompt, '--output-format', o.format ?? 'json', '--approval-mode', 'yolo'];
      writeJson(path.join(o.homeDir, '.qwen/settings.json'), { privacy: { usageStatisticsEnabled: false } });
      Object.assign(env, {
        OPENAI_BASE_URL: `${o.endpointUrl}/v1`,
        OPENAI_API_KEY: 'test',
        OPENAI_MODEL: model,
        QWEN_CODE_SUPPRESS_YOLO_WARNING: '1',
      });
      break;
    case 'gemini':
      args = ['-p', o.prompt, '--output-format', o.format ?? 'json', '--approval-mode', 'yolo'];
      writeJson(path.join(o.homeDir, '.gemini/settings.json'), {
        security: { auth: { selectedType: 'gemini-api-key' } },
        general: { enableAutoUpdate: false, enableAutoUpdateNotification: false },
        privacy: { usageStatisticsEnabled: false },
      });
      Object.assign(env, {
        GEMINI_API_KEY: 'test',
        GOOGLE_GEMINI_BASE_URL: o.endpointUrl,
        // Headless runs refuse an untrusted folder otherwise.
        GEMINI_CLI_TRUST_WORKSPACE: 'true',
      });
      break;
    case 'aider': {
      // Aider looks up model prices on the internet unless its cache is fresh: give it an empty one.
      writeJson(path.join(o.homeDir, '.aider/caches/model_prices_and_context_window.json'), {});
      args = [
        '--openai-api-base',
        `${o.endpointUrl}/v1`,
        '--openai-api-key',
        'test',
        '--model',
        `openai/${model}`,
        '--edit-format',
        'diff',
        '--message',
        o.prompt,
        '--yes-always',
        '--no-auto-commits',
        '--no-git',
        // Streaming, Aider counts tokens itself; without it, it prints the usage the API returned.
        '--no-stream',
        '--no-pretty',
        '--no-check-update',
        '--no-show-release-notes',
        '--analytics-disable',
        '--no-show-model-warnings',
      ];
      if (o.aiderPrices) {
        const meta = path.join(o.homeDir, 'aider-model-metadata.json');
        writeJson(meta, {
          [`openai/${model}`]: {
            max_tokens: 8192,
            max_input_tokens: 128000,
            max_output_tokens: 8192,
            input_cost_per_token: o.aiderPrices.inputPerToken,
            output_cost_per_token: o.aiderPrices.outputPerToken,
            litellm_provider: 'openai',
            mode: 'chat',
          },
        });
        args.push('--model-metadata-file', meta);
      }
      break;
    }
  }
  return { cli, command: agentBinary(cli), args, env, cwd: o.workDir };
}

export interface AgentRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

export function runAgent(inv: Invocation, timeoutMs = 180_000): Promise<AgentRun> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(inv.command, inv.args, { cwd: inv.cwd, env: inv.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, ms: Date.now() - started });
    });
  });
}

function writeJson(file: string, value: unknown): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, `${JSON.stringify(value, null, 2)}\n`);
}

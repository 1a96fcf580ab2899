import { apiRoot, type AgentAdapter, type AgentAdapter as Adapter, type AgentReport, type Upstream } from './types.js';

/**
 * Aider (`aider --message …`) against an OpenAI-compatible API. Three machine types use it:
 * `aider` (OpenAI), `deepseek-coder` (DeepSeek's API) and `local-llama` (a local llama.cpp or
 * Ollama server: nothing leaves the host).
 */
function aiderAdapter(type: Adapter['type'], upstream: (env: NodeJS.ProcessEnv) => Upstream): AgentAdapter {
  return {
    type,
    binary: 'aider-venv/bin/aider',
    install: 'scripts/install-agent-clis (pip install aider-chat into a venv)',
    upstream,
    invocation(ctx) {
      return {
        argv: [
          `${ctx.toolsDir}/${this.binary}`,
          '--message',
          ctx.prompt,
          '--model',
          `openai/${ctx.model}`,
          '--openai-api-base',
          `${ctx.baseUrl}/v1`,
          '--openai-api-key',
          'sandboxed',
          '--yes-always',
          '--no-auto-commits',
          '--no-git',
          '--no-check-update',
          '--no-show-model-warnings',
          '--no-pretty',
          '--no-stream',
          '--edit-format',
          'diff',
          '--analytics-disable',
        ],
        env: { AIDER_CHECK_UPDATE: 'false' },
        homeFiles: {},
      };
    },
    parseOutput: parseAiderOutput,
  };
}

const k = (n: string, unit?: string) => Math.round(Number(n) * (unit === 'k' ? 1000 : unit === 'M' ? 1_000_000 : 1));

/** Aider prints "Tokens: 1.2k sent, 345 received. Cost: $0.01 message, $0.02 session." per message. */
export function parseAiderOutput(stdout: string): AgentReport {
  const report: AgentReport = { turns: [], reportedUsage: null, reportedCostUsd: null, result: null, success: true };
  const re =
    /Tokens:\s*([\d.]+)(k|M)?\s*sent(?:,\s*[\d.]+(?:k|M)?\s*cache \w+)*,\s*([\d.]+)(k|M)?\s*received\.(?:\s*Cost:\s*\$([\d.]+)\s*message,\s*\$([\d.]+)\s*session)?/g;
  let input = 0;
  let output = 0;
  let seen = false;
  for (const m of stdout.matchAll(re)) {
    seen = true;
    input += k(m[1]!, m[2]);
    output += k(m[3]!, m[4]);
    if (m[6]) report.reportedCostUsd = Number(m[6]);
    report.turns.push({ text: '', toolCalls: [] });
  }
  if (seen) report.reportedUsage = { inputTokens: input, outputTokens: output };
  report.result = stdout.trim().split('\n').slice(-5).join('\n') || null;
  return report;
}

export const aider = aiderAdapter('aider', (env) =>
  env.OPENAI_API_KEY
    ? { ok: true, url: apiRoot(env.OPENAI_BASE_URL ?? 'https://api.openai.com'), headers: { authorization: `Bearer ${env.OPENAI_API_KEY}` } }
    : { ok: false, reason: 'set OPENAI_API_KEY (and OPENAI_BASE_URL for a compatible endpoint)' },
);

export const deepseekCoder = aiderAdapter('deepseek-coder', (env) =>
  env.DEEPSEEK_API_KEY
    ? { ok: true, url: apiRoot(env.DEEPSEEK_BASE_URL ?? 'https://api.deepseek.com'), headers: { authorization: `Bearer ${env.DEEPSEEK_API_KEY}` } }
    : { ok: false, reason: 'set DEEPSEEK_API_KEY' },
);

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|localhost|\[::1\])$/;

export const localLlama = aiderAdapter('local-llama', (env) => {
  const url = apiRoot(env.LOCAL_LLM_BASE_URL ?? 'http://127.0.0.1:8080');
  let host: string;
  try {
    host = new URL(url).hostname;
  } catch {
    return { ok: false, reason: `LOCAL_LLM_BASE_URL is not a URL: ${url}` };
  }
  // Privacy promise of this type: the model runs on this host, so no prompt ever leaves it.
  if (!LOOPBACK.test(host)) return { ok: false, reason: `LOCAL_LLM_BASE_URL must point at this host (loopback), not ${host}` };
  return { ok: true, url, headers: {} };
});

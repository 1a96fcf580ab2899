import { apiRoot, assistantTurn, jsonObjects, type AgentAdapter, type AgentReport } from './types.js';

/** Qwen Code (`qwen -p … --output-format json`) against an OpenAI-compatible endpoint, local by default. */
export const qwenCoder: AgentAdapter = {
  type: 'qwen-coder',
  binary: 'npm/node_modules/.bin/qwen',
  install: 'scripts/install-agent-clis (npm install @qwen-code/qwen-code)',
  upstream(env) {
    // Local inference by default (Ollama's OpenAI-compatible API).
    const url = apiRoot(env.QWEN_BASE_URL ?? 'http://127.0.0.1:11434');
    return { ok: true, url, headers: { authorization: `Bearer ${env.QWEN_API_KEY ?? 'local'}` } };
  },
  invocation(ctx) {
    return {
      argv: [`${ctx.toolsDir}/${this.binary}`, '-p', ctx.prompt, '--output-format', 'json', '--approval-mode', 'yolo'],
      env: {
        OPENAI_BASE_URL: `${ctx.baseUrl}/v1`,
        OPENAI_API_KEY: 'sandboxed',
        OPENAI_MODEL: ctx.model,
      },
      homeFiles: {},
    };
  },
  parseOutput(stdout) {
    return parseGeminiFamilyOutput(stdout);
  },
};

/**
 * Qwen Code is a fork of the Gemini CLI: both print a JSON result (or JSON lines with a final
 * `result`) carrying the response and per-model token stats.
 */
export function parseGeminiFamilyOutput(stdout: string): AgentReport {
  const report: AgentReport = { turns: [], reportedUsage: null, reportedCostUsd: null, result: null, success: false };
  for (const o of jsonObjects(stdout)) {
    const turn = assistantTurn(o);
    if (turn) report.turns.push(turn);
    const isResult = o.type === 'result' || 'response' in o || 'stats' in o;
    if (!isResult) continue;
    report.success = o.is_error !== true && !o.error;
    const text = o.result ?? o.response;
    if (typeof text === 'string') report.result = text;
    const models = o.stats?.models as Record<string, { tokens?: Record<string, number> }> | undefined;
    if (o.usage && (o.usage.input_tokens !== undefined || o.usage.prompt_tokens !== undefined)) {
      report.reportedUsage = {
        inputTokens: o.usage.input_tokens ?? o.usage.prompt_tokens ?? 0,
        outputTokens: o.usage.output_tokens ?? o.usage.completion_tokens ?? 0,
      };
    } else if (models) {
      let inputTokens = 0;
      let outputTokens = 0;
      for (const m of Object.values(models)) {
        inputTokens += m.tokens?.prompt ?? m.tokens?.input ?? 0;
        outputTokens += (m.tokens?.candidates ?? m.tokens?.output ?? 0) + (m.tokens?.thoughts ?? 0);
      }
      report.reportedUsage = { inputTokens, outputTokens };
    }
  }
  return report;
}

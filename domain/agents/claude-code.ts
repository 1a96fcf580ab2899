import { assistantTurn, jsonObjects, type AgentAdapter, type AgentReport } from './types.js';

/** Claude Code (`claude -p … --output-format stream-json`), talking the Anthropic Messages API. */
export const claudeCode: AgentAdapter = {
  type: 'claude-code',
  binary: 'npm/node_modules/.bin/claude',
  install: 'scripts/install-agent-clis (npm install @anthropic-ai/claude-code)',
  upstream(env) {
    if (!env.ANTHROPIC_API_KEY) return { ok: false, reason: 'set ANTHROPIC_API_KEY' };
    return {
      ok: true,
      url: (env.ANTHROPIC_BASE_URL ?? 'https://api.anthropic.com').replace(/\/+$/, ''),
      headers: { 'x-api-key': env.ANTHROPIC_API_KEY },
    };
  },
  invocation(ctx) {
    return {
      argv: [
        `${ctx.toolsDir}/${this.binary}`,
        '-p',
        ctx.prompt,
        '--output-format',
        'stream-json',
        '--verbose',
        '--permission-mode',
        'bypassPermissions',
        '--model',
        ctx.model,
      ],
      env: {
        ANTHROPIC_BASE_URL: ctx.baseUrl,
        // The real key stays with the metering proxy outside the sandbox.
        ANTHROPIC_API_KEY: 'sandboxed',
        DISABLE_TELEMETRY: '1',
        DISABLE_AUTOUPDATER: '1',
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
        IS_SANDBOX: '1',
      },
      homeFiles: {},
    };
  },
  parseOutput(stdout) {
    const report: AgentReport = { turns: [], reportedUsage: null, reportedCostUsd: null, result: null, success: false };
    for (const o of jsonObjects(stdout)) {
      const turn = assistantTurn(o);
      if (turn) report.turns.push(turn);
      else if (o.type === 'result') {
        report.success = o.subtype === 'success' && !o.is_error;
        report.result = typeof o.result === 'string' ? o.result : null;
        if (typeof o.total_cost_usd === 'number') report.reportedCostUsd = o.total_cost_usd;
        if (o.usage) {
          report.reportedUsage = {
            inputTokens: (o.usage.input_tokens ?? 0) + (o.usage.cache_read_input_tokens ?? 0) + (o.usage.cache_creation_input_tokens ?? 0),
            outputTokens: o.usage.output_tokens ?? 0,
          };
        }
      }
    }
    return report;
  },
};

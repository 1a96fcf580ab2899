import { parseGeminiFamilyOutput } from './qwen-coder.js';
import type { AgentAdapter } from './types.js';

/** Gemini CLI (`gemini -p … --output-format json`), talking the Gemini API. */
export const geminiPro: AgentAdapter = {
  type: 'gemini-pro',
  binary: 'npm/node_modules/.bin/gemini',
  install: 'scripts/install-agent-clis (npm install @google/gemini-cli)',
  upstream(env) {
    if (!env.GEMINI_API_KEY) return { ok: false, reason: 'set GEMINI_API_KEY' };
    return {
      ok: true,
      url: (env.GOOGLE_GEMINI_BASE_URL ?? 'https://generativelanguage.googleapis.com').replace(/\/+$/, ''),
      headers: { 'x-goog-api-key': env.GEMINI_API_KEY },
    };
  },
  invocation(ctx) {
    return {
      argv: [`${ctx.toolsDir}/${this.binary}`, '-p', ctx.prompt, '--output-format', 'json', '--yolo', '--model', ctx.model],
      env: {
        GEMINI_API_KEY: 'sandboxed',
        GOOGLE_GEMINI_BASE_URL: ctx.baseUrl,
        GEMINI_CLI_TRUST_WORKSPACE: 'true',
      },
      homeFiles: {
        '.gemini/settings.json': JSON.stringify({ security: { auth: { selectedType: 'gemini-api-key' } } }),
      },
    };
  },
  parseOutput: parseGeminiFamilyOutput,
};

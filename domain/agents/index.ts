import type { MachineTypeId } from '../machine-types.js';
import { aider, deepseekCoder, localLlama } from './aider.js';
import { claudeCode } from './claude-code.js';
import { geminiPro } from './gemini-pro.js';
import { qwenCoder } from './qwen-coder.js';
import type { AgentAdapter } from './types.js';

export type { AgentAdapter, AgentContext, AgentInvocation, AgentReport, AgentTurn, Upstream } from './types.js';

/** One adapter per model-backed machine type. */
export const ADAPTERS: Record<Exclude<MachineTypeId, 'shell'>, AgentAdapter> = {
  'claude-code': claudeCode,
  aider,
  'qwen-coder': qwenCoder,
  'deepseek-coder': deepseekCoder,
  'gemini-pro': geminiPro,
  'local-llama': localLlama,
};

import { divCeil, parseAmount } from './money.js';

/**
 * The machine types of the product: what each drives, what it is good at, which model API it
 * speaks, what its tokens cost, and its default daily budget. Adding a type is one entry here and
 * one adapter in activities/machines/adapters/.
 */
export const CAPABILITIES = ['focused edits', 'tests', 'review', 'docs', 'bulk changes', 'architecture', 'formatting', 'codemods'] as const;
export type Capability = (typeof CAPABILITIES)[number];

/** The wire protocol a type's tool speaks to its model; the metering proxy reads usage in it. */
export type ApiDialect = 'anthropic' | 'openai' | 'gemini';

export interface ModelPrice {
  /** USD per million input tokens, as a decimal string. */
  input: string;
  /** USD per million output tokens. */
  output: string;
}

export interface MachineTypeSpec {
  id: string;
  title: string;
  /** null for `shell`: no model at all. */
  dialect: ApiDialect | null;
  capabilities: Capability[];
  defaultModel: string | null;
  /** Prices by model; `*` applies to any model not listed. */
  prices: Record<string, ModelPrice>;
  /** Default daily budget per project for this type (USD), or null for none beyond the project's. */
  dailyBudget: string | null;
  /** Inference runs on the user's own hardware: API cost is zero, compute is still counted. */
  localInference: boolean;
}

const FREE: ModelPrice = { input: '0', output: '0' };

export const MACHINE_TYPE_SPECS = {
  shell: {
    id: 'shell',
    title: 'Shell commands (tests, formatters, codemods)',
    dialect: null,
    capabilities: ['tests', 'formatting', 'codemods', 'bulk changes'],
    defaultModel: null,
    prices: {},
    dailyBudget: null,
    localInference: false,
  },
  'claude-code': {
    id: 'claude-code',
    title: 'Claude Code',
    dialect: 'anthropic',
    capabilities: ['architecture', 'focused edits', 'review', 'tests'],
    defaultModel: 'claude-sonnet-4-5',
    prices: {
      'claude-sonnet-4-5': { input: '3', output: '15' },
      'claude-opus-4-1': { input: '15', output: '75' },
      'claude-haiku-4-5': { input: '1', output: '5' },
      '*': { input: '3', output: '15' },
    },
    dailyBudget: null,
    localInference: false,
  },
  aider: {
    id: 'aider',
    title: 'Aider',
    dialect: 'openai',
    capabilities: ['focused edits', 'bulk changes', 'tests'],
    defaultModel: 'gpt-4.1',
    prices: { 'gpt-4.1': { input: '2', output: '8' }, '*': { input: '2', output: '8' } },
    dailyBudget: '75.00',
    localInference: false,
  },
  'qwen-coder': {
    id: 'qwen-coder',
    title: 'Qwen Coder (local inference)',
    dialect: 'openai',
    capabilities: ['focused edits', 'tests', 'docs'],
    defaultModel: 'qwen2.5-coder',
    prices: { '*': FREE },
    dailyBudget: '50.00',
    localInference: true,
  },
  'deepseek-coder': {
    id: 'deepseek-coder',
    title: 'DeepSeek Coder',
    dialect: 'openai',
    capabilities: ['focused edits', 'bulk changes', 'tests'],
    defaultModel: 'deepseek-chat',
    prices: { 'deepseek-chat': { input: '0.27', output: '1.10' }, '*': { input: '0.27', output: '1.10' } },
    dailyBudget: null,
    localInference: false,
  },
  'gemini-pro': {
    id: 'gemini-pro',
    title: 'Gemini Pro',
    dialect: 'gemini',
    capabilities: ['architecture', 'docs', 'review'],
    defaultModel: 'gemini-2.5-pro',
    prices: {
      'gemini-2.5-pro': { input: '1.25', output: '10' },
      'gemini-2.5-flash': { input: '0.30', output: '2.50' },
      'gemini-2.5-flash-lite': { input: '0.10', output: '0.40' },
      '*': { input: '1.25', output: '10' },
    },
    dailyBudget: null,
    localInference: false,
  },
  'local-llama': {
    id: 'local-llama',
    title: 'Local LLaMA (no traffic leaves the host)',
    dialect: 'openai',
    capabilities: ['focused edits', 'docs'],
    defaultModel: 'llama3.1',
    prices: { '*': FREE },
    dailyBudget: null,
    localInference: true,
  },
} as const satisfies Record<string, MachineTypeSpec>;

export type MachineTypeId = keyof typeof MACHINE_TYPE_SPECS;
export const MACHINE_TYPE_IDS = Object.keys(MACHINE_TYPE_SPECS) as MachineTypeId[];

export function machineTypeSpec(id: MachineTypeId): MachineTypeSpec {
  return MACHINE_TYPE_SPECS[id];
}

export interface TokenUsage {
  inputTokens: number;
  outputTokens: number;
}

export function priceOf(spec: MachineTypeSpec, model: string): ModelPrice {
  return spec.prices[model] ?? spec.prices['*'] ?? FREE;
}

/**
 * What `usage` of `model` costs in USD ledger units, rounded up.
 * @example tokenCost(spec, 'claude-sonnet-4-5', { inputTokens: 1_000_000, outputTokens: 0 }) === parseAmount('3', 'USD')
 */
export function tokenCost(spec: MachineTypeSpec, model: string, usage: TokenUsage): bigint {
  const price = priceOf(spec, model);
  const raw = BigInt(usage.inputTokens) * parseAmount(price.input, 'USD') + BigInt(usage.outputTokens) * parseAmount(price.output, 'USD');
  return divCeil(raw, 1_000_000n);
}

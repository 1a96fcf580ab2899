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
  /** USD per million input tokens read from the provider's prompt cache (default: `input`). */
  cachedInput?: string;
  /** USD per million input tokens written to the prompt cache (default: `input`). */
  cacheWrite?: string;
  /**
   * The most input tokens one call can carry (the model's context window). The metering proxy
   * reserves min(request bytes, this) input tokens per call; default: the type's `callLimits`.
   */
  maxInputTokens?: number;
  /** The most output tokens one call can produce; a request asking for more is refused. Default: the type's. */
  maxOutputTokens?: number;
}

/** A type's per-call bounds for models whose price entry does not give its own. */
export interface CallLimits {
  maxInputTokens: number;
  maxOutputTokens: number;
}

export interface MachineTypeSpec {
  id: string;
  title: string;
  /** null for `shell`: no model at all. */
  dialect: ApiDialect | null;
  capabilities: Capability[];
  defaultModel: string | null;
  /**
   * Default prices by model (AUTOVIBE_MODEL_PRICES overrides them: config/index.ts). A model not
   * listed is refused; a key ending in `*` prices every model starting with what precedes it, and
   * a dated name (`claude-haiku-4-5-20251001`) is priced as its undated one.
   */
  prices: Record<string, ModelPrice>;
  /** Per-call bounds used when a model's price entry gives none. */
  callLimits: CallLimits;
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
    callLimits: { maxInputTokens: 0, maxOutputTokens: 0 },
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
      'claude-sonnet-4-5': { input: '3', output: '15', cachedInput: '0.30', cacheWrite: '3.75', maxOutputTokens: 64_000 },
      'claude-opus-4-1': { input: '15', output: '75', cachedInput: '1.50', cacheWrite: '18.75', maxOutputTokens: 32_000 },
      'claude-haiku-4-5': { input: '1', output: '5', cachedInput: '0.10', cacheWrite: '1.25', maxOutputTokens: 64_000 },
    },
    callLimits: { maxInputTokens: 200_000, maxOutputTokens: 32_000 },
    dailyBudget: null,
    localInference: false,
  },
  aider: {
    id: 'aider',
    title: 'Aider',
    dialect: 'openai',
    capabilities: ['focused edits', 'bulk changes', 'tests'],
    defaultModel: 'gpt-4.1',
    prices: { 'gpt-4.1': { input: '2', output: '8', cachedInput: '0.50' } },
    callLimits: { maxInputTokens: 1_047_576, maxOutputTokens: 32_768 },
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
    callLimits: { maxInputTokens: 131_072, maxOutputTokens: 32_768 },
    dailyBudget: '50.00',
    localInference: true,
  },
  'deepseek-coder': {
    id: 'deepseek-coder',
    title: 'DeepSeek Coder',
    dialect: 'openai',
    capabilities: ['focused edits', 'bulk changes', 'tests'],
    defaultModel: 'deepseek-chat',
    prices: { 'deepseek-chat': { input: '0.27', output: '1.10', cachedInput: '0.07' } },
    callLimits: { maxInputTokens: 128_000, maxOutputTokens: 8_192 },
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
      'gemini-2.5-pro': { input: '1.25', output: '10', cachedInput: '0.31' },
      'gemini-2.5-flash': { input: '0.30', output: '2.50', cachedInput: '0.075' },
      'gemini-2.5-flash-lite': { input: '0.10', output: '0.40', cachedInput: '0.025' },
    },
    callLimits: { maxInputTokens: 1_048_576, maxOutputTokens: 65_536 },
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
    callLimits: { maxInputTokens: 131_072, maxOutputTokens: 32_768 },
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
  /** All input tokens of the call, cached and cache-written ones included. */
  inputTokens: number;
  outputTokens: number;
  /** Of `inputTokens`, those read from the prompt cache. */
  cachedInputTokens?: number;
  /** Of `inputTokens`, those written to the prompt cache. */
  cacheWriteTokens?: number;
}

/**
 * The price entry of `model` in a type's price table, or null when the model is not priced:
 * exact name, then the name without a date suffix, then the longest `prefix*` key.
 */
export function priceOf(prices: Record<string, ModelPrice>, model: string): ModelPrice | null {
  if (Object.hasOwn(prices, model)) return prices[model]!;
  const undated = model.replace(/(-\d{8}|@\d{8}|-latest)$/, '');
  if (undated !== model && Object.hasOwn(prices, undated)) return prices[undated]!;
  let best: string | null = null;
  for (const key of Object.keys(prices)) {
    if (key.endsWith('*') && model.startsWith(key.slice(0, -1)) && (!best || key.length > best.length)) best = key;
  }
  return best ? prices[best]! : null;
}

/** A per-million price in USD ledger units: prices may carry more decimals than a USD amount (0.075). */
const priceUnits = (text: string) => parseAmount(text, 'ETH');
const perToken = (perMillion: string | undefined, fallback: string) => priceUnits(perMillion ?? fallback);

/**
 * What `usage` costs in USD ledger units at `price`, rounded up: uncached input, cache reads and
 * cache writes each at their own price.
 * @example tokenCost({ input: '3', output: '15' }, { inputTokens: 1_000_000, outputTokens: 0 }) === parseAmount('3', 'USD')
 */
export function tokenCost(price: ModelPrice, usage: TokenUsage): bigint {
  const cached = BigInt(usage.cachedInputTokens ?? 0);
  const written = BigInt(usage.cacheWriteTokens ?? 0);
  const plain = BigInt(usage.inputTokens) - cached - written;
  const raw =
    (plain > 0n ? plain : 0n) * perToken(price.input, '0') +
    cached * perToken(price.cachedInput, price.input) +
    written * perToken(price.cacheWrite, price.input) +
    BigInt(usage.outputTokens) * perToken(price.output, '0');
  return divCeil(raw, 1_000_000n);
}

/** The dearest of a price's input rates: what an input token can cost at most. */
export function maxInputPrice(price: ModelPrice): string {
  const rates = [price.input, price.cachedInput ?? price.input, price.cacheWrite ?? price.input];
  return rates.reduce((a, b) => (priceUnits(b) > priceUnits(a) ? b : a));
}

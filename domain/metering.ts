import {
  MACHINE_TYPE_IDS,
  MACHINE_TYPE_SPECS,
  maxInputPrice,
  priceOf,
  tokenCost,
  type CallLimits,
  type MachineTypeId,
  type ModelPrice,
} from './machine-types.js';
import { CURRENCIES, divCeil, formatAmount, parseAmount, runtimeCost, type CurrencyCode } from './money.js';

/**
 * Metering of model calls: which models are priced, what one call may cost at worst (what the
 * metering proxy reserves before sending it), and the smallest money limit that lets a machine
 * make at least one call. Every amount here is USD ledger units (prices are in USD).
 */
export type AgentType = Exclude<MachineTypeId, 'shell'>;
export const AGENT_TYPES = MACHINE_TYPE_IDS.filter((t): t is AgentType => t !== 'shell');

/** Prices by agent type, then by model. */
export type PriceTables = Record<AgentType, Record<string, ModelPrice>>;

/** The prices written in domain/machine-types.ts. */
export function defaultPriceTables(): PriceTables {
  return Object.fromEntries(AGENT_TYPES.map((t) => [t, { ...(MACHINE_TYPE_SPECS[t].prices as Record<string, ModelPrice>) }])) as unknown as PriceTables;
}

const DECIMAL = /^\d+(\.\d{1,12})?$/;

/**
 * The default tables with an operator's overrides applied (`{ "<type>": { "<model>": price | null } }`,
 * null removing a model). Returns every problem found, each naming its place in the document.
 */
export function applyPriceOverrides(base: PriceTables, overrides: unknown): { ok: true; tables: PriceTables } | { ok: false; problems: string[] } {
  const problems: string[] = [];
  const tables = Object.fromEntries(Object.entries(base).map(([t, p]) => [t, { ...p }])) as PriceTables;
  if (typeof overrides !== 'object' || overrides === null || Array.isArray(overrides)) {
    return { ok: false, problems: ['must be a JSON object: { "<machine type>": { "<model>": { "input": "3", "output": "15", … } } }'] };
  }
  for (const [type, models] of Object.entries(overrides)) {
    if (!(AGENT_TYPES as string[]).includes(type)) {
      problems.push(`${type}: not a model-backed machine type (one of ${AGENT_TYPES.join(', ')})`);
      continue;
    }
    if (typeof models !== 'object' || models === null || Array.isArray(models)) {
      problems.push(`${type}: must be an object of models`);
      continue;
    }
    for (const [model, price] of Object.entries(models as Record<string, unknown>)) {
      const at = `${type}.${model}`;
      if (price === null) {
        delete tables[type as AgentType][model];
        continue;
      }
      if (typeof price !== 'object' || Array.isArray(price)) {
        problems.push(`${at}: must be an object like { "input": "3", "output": "15" } or null`);
        continue;
      }
      const p = price as Record<string, unknown>;
      const known = ['input', 'output', 'cachedInput', 'cacheWrite', 'maxInputTokens', 'maxOutputTokens'];
      for (const k of Object.keys(p)) if (!known.includes(k)) problems.push(`${at}.${k}: unknown field (known: ${known.join(', ')})`);
      for (const k of ['input', 'output', 'cachedInput', 'cacheWrite']) {
        const v = p[k];
        if (v === undefined && (k === 'cachedInput' || k === 'cacheWrite')) continue;
        if (typeof v !== 'string' || !DECIMAL.test(v)) problems.push(`${at}.${k}: must be a decimal string of USD per million tokens, e.g. "3" or "0.30"`);
      }
      for (const k of ['maxInputTokens', 'maxOutputTokens']) {
        const v = p[k];
        if (v !== undefined && !(Number.isSafeInteger(v) && (v as number) > 0)) problems.push(`${at}.${k}: must be a positive whole number of tokens`);
      }
      tables[type as AgentType][model] = p as unknown as ModelPrice;
    }
  }
  return problems.length ? { ok: false, problems } : { ok: true, tables };
}

/** The per-call bounds of `model`: its price entry's, else the type's. */
export function callLimitsOf(type: AgentType, price: ModelPrice): CallLimits {
  const d = MACHINE_TYPE_SPECS[type].callLimits;
  return { maxInputTokens: price.maxInputTokens ?? d.maxInputTokens, maxOutputTokens: price.maxOutputTokens ?? d.maxOutputTokens };
}

/** What the proxy knows of a request before sending it. */
export interface CallRequest {
  model: string;
  /** Size of the (decoded) request body: no request carries more input tokens than bytes. */
  bodyBytes: number;
  /** The output cap the request asks for (`max_tokens`, …), or null when it names none. */
  requestedMaxOutput: number | null;
}

export type Reservation =
  | { ok: true; price: ModelPrice; inputTokens: number; outputTokens: number; usd: bigint }
  | { ok: false; code: 'model_not_priced' | 'output_over_limit'; reason: string };

/**
 * The worst case of one call, reserved before it is sent and charged when its response reports
 * no usage: min(body bytes, the model's context) input tokens at the dearest input rate, plus
 * the output it may produce (its own cap, or the model's) at the output rate.
 */
export function reserveCall(type: AgentType, prices: PriceTables, req: CallRequest): Reservation {
  const price = priceOf(prices[type], req.model);
  if (!price) return { ok: false, code: 'model_not_priced', reason: `model ${req.model} is not priced for ${type} (priced: ${pricedModels(prices, type)})` };
  const limits = callLimitsOf(type, price);
  if (req.requestedMaxOutput !== null && req.requestedMaxOutput > limits.maxOutputTokens) {
    return {
      ok: false,
      code: 'output_over_limit',
      reason: `the request asks for up to ${req.requestedMaxOutput} output tokens; ${req.model} calls may produce at most ${limits.maxOutputTokens} here`,
    };
  }
  const inputTokens = Math.min(req.bodyBytes, limits.maxInputTokens);
  const outputTokens = req.requestedMaxOutput ?? limits.maxOutputTokens;
  return { ok: true, price, inputTokens, outputTokens, usd: worstCost(price, inputTokens, outputTokens) };
}

function worstCost(price: ModelPrice, inputTokens: number, outputTokens: number): bigint {
  return tokenCost({ input: maxInputPrice(price), output: price.output }, { inputTokens, outputTokens });
}

function pricedModels(prices: PriceTables, type: AgentType): string {
  return Object.keys(prices[type]).join(', ') || 'none';
}

/** The most one call of `model` can be reserved (and charged) for: a full context and a full output. */
export function worstCallCost(type: AgentType, price: ModelPrice): bigint {
  const l = callLimitsOf(type, price);
  return worstCost(price, l.maxInputTokens, l.maxOutputTokens);
}

export interface MoneyLimitInput {
  type: MachineTypeId;
  /** The model asked for, or null for the type's default. */
  model: string | null;
  /** limits.money as given, in the project's currency; null when not given. */
  requested: bigint | null;
  /** The project's default per-machine limit. */
  projectDefault: bigint;
  currency: CurrencyCode;
  minutes: number;
  /** The compute profile's hourly price in USD ledger units. */
  hourlyPriceUsd: bigint;
  prices: PriceTables;
  /** USD ledger units → the project's currency, rounded up (identity for USD). */
  toCurrency(usd: bigint): bigint;
  /** The field named in messages, e.g. `limits.money` or `steps.2.limits.money`. */
  field?: string;
}

export type MoneyLimitVerdict =
  { ok: true; limit: bigint; minimum: bigint } | { ok: false; field: string; message: string; minimum: string | null; currency: CurrencyCode };

/**
 * The one check of a machine's money limit, at request time: the model must be priced, and the
 * limit must cover one worst-case call of its model plus compute for all its minutes — else the
 * proxy could refuse even the first call. Without a requested limit, the project's default is
 * raised to that minimum.
 */
export function checkMoneyLimit(input: MoneyLimitInput): MoneyLimitVerdict {
  const field = input.field ?? 'limits.money';
  const { currency } = input;
  // Shell machines make no model calls: their runtime alone is held to the limit while they run.
  if (input.type === 'shell') return { ok: true, limit: input.requested ?? input.projectDefault, minimum: 0n };
  const compute = input.toCurrency(runtimeCost(input.minutes * 60_000, input.hourlyPriceUsd));
  const model = input.model ?? MACHINE_TYPE_SPECS[input.type].defaultModel!;
  const price = priceOf(input.prices[input.type], model);
  if (!price) {
    return {
      ok: false,
      field: 'model',
      message: `model: ${model} is not priced for ${input.type} (priced: ${pricedModels(input.prices, input.type)}); an operator can price it in AUTOVIBE_MODEL_PRICES`,
      minimum: null,
      currency,
    };
  }
  const call = input.toCurrency(worstCallCost(input.type, price));
  const minimum = ceilToMinor(call + compute, currency);
  if (input.requested === null) return { ok: true, limit: input.projectDefault > minimum ? input.projectDefault : minimum, minimum };
  if (input.requested >= minimum) return { ok: true, limit: input.requested, minimum };
  const f = (u: bigint) => `${formatAmount(ceilToMinor(u, currency), currency)} ${currency}`;
  const what = `one ${input.type} call (${model}, worst case ${f(call)}) plus ${input.minutes} minutes of compute (${f(compute)})`;
  return {
    ok: false,
    field,
    message: `${field}: ${f(input.requested)} cannot cover ${what}; use at least ${formatAmount(minimum, currency)}`,
    minimum: formatAmount(minimum, currency),
    currency,
  };
}

/** Rounds ledger units up to the currency's smallest unit (a limit the API accepts). */
export function ceilToMinor(units: bigint, currency: CurrencyCode): bigint {
  const step = 10n ** BigInt(18 - CURRENCIES[currency].precision);
  return divCeil(units, step) * step;
}

/** USD ledger units of an hourly price string. */
export const usd = (text: string) => parseAmount(text, 'USD');

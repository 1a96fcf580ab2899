import type { ApiDialect } from '../../domain/machine-types.js';

/** Token usage of one model call, as the model API reported it. */
export interface CallUsage {
  model: string;
  /** All input tokens, cached and cache-written ones included. */
  inputTokens: number;
  outputTokens: number;
  /** Of the input, tokens read from the prompt cache (billed at the cached-input price). */
  cachedInputTokens?: number;
  /** Of the input, tokens written to the prompt cache (billed at the cache-write price). */
  cacheWriteTokens?: number;
}

const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : 0);

/**
 * Reads usage from a model API response body in one of the dialects, streaming (SSE) or not.
 * Returns null when the body carries no usage, or (Anthropic streams) only the partial usage of
 * `message_start` without the final `message_delta`: such a call is charged its worst case.
 */
export function usageFromResponse(dialect: ApiDialect, body: string, requestModel: string): CallUsage | null {
  const events = body.trimStart().startsWith('{') || body.trimStart().startsWith('[') ? parseJsonBody(body) : parseSse(body);
  let model = requestModel;
  let input = 0;
  let output = 0;
  let cached = 0;
  let written = 0;
  let seen = false;
  let final = dialect !== 'anthropic';
  for (const e of events) {
    if (!e || typeof e !== 'object') continue;
    const o = e as Record<string, any>;
    switch (dialect) {
      case 'openai':
        if (o.model) model = o.model;
        if (o.usage) {
          seen = true;
          input = num(o.usage.prompt_tokens);
          output = num(o.usage.completion_tokens);
          // OpenAI: prompt_tokens_details.cached_tokens; DeepSeek: prompt_cache_hit_tokens.
          cached = num(o.usage.prompt_tokens_details?.cached_tokens) || num(o.usage.prompt_cache_hit_tokens);
        }
        break;
      case 'anthropic': {
        // Non-streaming: { usage }; streaming: message_start.message.usage, then message_delta.usage (cumulative output).
        const u = o.type === 'message_start' ? o.message?.usage : o.usage;
        if (o.type === 'message_start' && o.message?.model) model = o.message.model;
        if (o.type === 'message' && o.model) model = o.model;
        if (u) {
          seen = true;
          const inTokens = num(u.input_tokens) + num(u.cache_creation_input_tokens) + num(u.cache_read_input_tokens);
          if (inTokens) {
            input = inTokens;
            cached = num(u.cache_read_input_tokens);
            written = num(u.cache_creation_input_tokens);
          }
          if (u.output_tokens !== undefined) output = num(u.output_tokens);
          if (o.type !== 'message_start') final = true;
        }
        break;
      }
      case 'gemini': {
        if (o.modelVersion) model = o.modelVersion;
        const u = o.usageMetadata;
        if (u) {
          seen = true;
          input = num(u.promptTokenCount);
          output = num(u.candidatesTokenCount) + num(u.thoughtsTokenCount);
          cached = num(u.cachedContentTokenCount);
        }
        break;
      }
    }
  }
  if (!seen || !final) return null;
  return {
    model,
    inputTokens: input,
    outputTokens: output,
    ...(cached ? { cachedInputTokens: Math.min(cached, input) } : {}),
    ...(written ? { cacheWriteTokens: Math.min(written, input - Math.min(cached, input)) } : {}),
  };
}

function parseJsonBody(body: string): unknown[] {
  try {
    const v = JSON.parse(body);
    return Array.isArray(v) ? v : [v];
  } catch {
    return [];
  }
}

function parseSse(body: string): unknown[] {
  const out: unknown[] = [];
  for (const line of body.split(/\r?\n/)) {
    if (!line.startsWith('data:')) continue;
    const data = line.slice(5).trim();
    if (!data || data === '[DONE]') continue;
    try {
      out.push(JSON.parse(data));
    } catch {
      // a partial or non-JSON event: nothing to count in it
    }
  }
  return out;
}

/** The model a request names (body `model`, or the Gemini path `/models/<model>:...`). */
export function requestModel(dialect: ApiDialect, path: string, body: Record<string, unknown> | null): string {
  if (dialect === 'gemini') {
    const m = /\/models\/([^/:]+)/.exec(path);
    if (m) return decodeURIComponent(m[1]!);
  }
  return typeof body?.model === 'string' ? body.model : 'unknown';
}

/**
 * What the metering proxy lets through, by dialect: only the endpoints the agent CLIs need.
 * `model` calls are metered and charged; `count` (token counting) is free at the provider and
 * forwarded uncharged. Anything else is refused. Exact paths: nothing else reaches the upstream.
 */
export type EndpointKind = 'model' | 'count';

const ALLOWED: Record<ApiDialect, Array<[RegExp, EndpointKind]>> = {
  anthropic: [
    [/^\/v1\/messages$/, 'model'],
    [/^\/v1\/messages\/count_tokens$/, 'count'],
  ],
  openai: [[/^\/v1\/chat\/completions$/, 'model']],
  gemini: [
    [/^\/v1(beta)?\/models\/[A-Za-z0-9._-]+:(generateContent|streamGenerateContent)$/, 'model'],
    [/^\/v1(beta)?\/models\/[A-Za-z0-9._-]+:countTokens$/, 'count'],
  ],
};

/** The kind of an allowed request, or null when the proxy refuses it. */
export function allowedEndpoint(dialect: ApiDialect, method: string, path: string): EndpointKind | null {
  if (method !== 'POST') return null;
  const pathname = path.split('?')[0]!;
  for (const [re, kind] of ALLOWED[dialect]) if (re.test(pathname)) return kind;
  return null;
}

/** Whether a request is a model call (counted against API-call limits and metered). */
export function isModelCall(dialect: ApiDialect, method: string, path: string): boolean {
  return allowedEndpoint(dialect, method, path) === 'model';
}

/** The output cap a request asks for, or null when it names none (the model's own cap applies). */
export function requestedMaxOutput(dialect: ApiDialect, body: Record<string, any> | null): number | null {
  const v = dialect === 'gemini' ? body?.generationConfig?.maxOutputTokens : (body?.max_completion_tokens ?? body?.max_tokens);
  return typeof v === 'number' && Number.isFinite(v) && v > 0 ? Math.ceil(v) : null;
}

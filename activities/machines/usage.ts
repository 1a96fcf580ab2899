import type { ApiDialect } from '../../domain/machine-types.js';

/** Token usage of one model call, as the model API reported it. */
export interface CallUsage {
  model: string;
  inputTokens: number;
  outputTokens: number;
}

const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : 0);

/**
 * Reads usage from a model API response body in one of the dialects, streaming (SSE) or not.
 * Returns null when the body carries no usage (e.g. a non-model request).
 */
export function usageFromResponse(dialect: ApiDialect, body: string, requestModel: string): CallUsage | null {
  const events = body.trimStart().startsWith('{') || body.trimStart().startsWith('[') ? parseJsonBody(body) : parseSse(body);
  let model = requestModel;
  let input = 0;
  let output = 0;
  let seen = false;
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
          if (inTokens) input = inTokens;
          if (u.output_tokens !== undefined) output = num(u.output_tokens);
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
        }
        break;
      }
    }
  }
  return seen ? { model, inputTokens: input, outputTokens: output } : null;
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

/** Whether a request is a model call (counted against API-call limits and metered). */
export function isModelCall(dialect: ApiDialect, method: string, path: string): boolean {
  if (method !== 'POST') return false;
  switch (dialect) {
    case 'openai':
      return /\/chat\/completions$|\/completions$|\/responses$/.test(path.split('?')[0]!);
    case 'anthropic':
      return /\/v1\/messages$/.test(path.split('?')[0]!);
    case 'gemini':
      return /:(generateContent|streamGenerateContent)$/.test(path.split('?')[0]!);
  }
}

/** The most output tokens a request may produce, for the reservation made before it is sent. */
export function maxOutputTokens(dialect: ApiDialect, body: Record<string, any> | null, fallback: number): number {
  const v = dialect === 'gemini' ? body?.generationConfig?.maxOutputTokens : (body?.max_tokens ?? body?.max_completion_tokens);
  return typeof v === 'number' && v > 0 ? v : fallback;
}

/**
 * A scripted model endpoint for tests: a local HTTP server that speaks the OpenAI, Anthropic and
 * Gemini APIs well enough for the real agent CLIs (Claude Code, Qwen Code, Gemini CLI, Aider) to
 * run against it. Its answers come from a script (a queue of turns: text or a tool call), each
 * with a fixed token usage, so a test can check both what the agent did to the files and the
 * tokens and cost the platform recorded.
 *
 * Requests are split in two kinds:
 * - `main`: the agent's own turn (the request advertises tools, or is the only kind the CLI
 *   sends, as Aider's). Each consumes the next scripted turn; once the script is used up the
 *   endpoint answers with the fallback text.
 * - `side`: the CLIs' helper calls (Claude Code's title/topic calls, Gemini CLI's routing and
 *   next-speaker classifiers, Qwen Code's follow-up helpers): answered with a short text (or a
 *   small JSON object when the request asks for JSON), never consuming the script.
 * Both report usage, and both count in `totals()`; the log tells them apart.
 *
 * @example
 *   const llm = await startScriptedEndpoint();
 *   llm.setScript(writeFileScript('claude', { path: '/tmp/w/hello.txt', content: 'hi\n' }));
 *   // ANTHROPIC_BASE_URL=llm.url claude -p ...
 *   llm.totals(); // { inputTokens, outputTokens, calls }
 *   await llm.stop();
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import zlib from 'node:zlib';

export type Dialect = 'openai' | 'anthropic' | 'gemini';
export type AgentCli = 'claude' | 'qwen' | 'gemini' | 'aider';

export interface Usage {
  inputTokens: number;
  outputTokens: number;
}

export interface TextTurn {
  kind: 'text';
  text: string;
  usage?: Usage;
}

export interface ToolTurn {
  kind: 'tool';
  /** The tool's name exactly as the CLI advertises it (e.g. `Write`, `write_file`). */
  name: string;
  args: Record<string, unknown>;
  /** Text sent before the tool call in the same message. */
  text?: string;
  usage?: Usage;
}

export type Turn = TextTurn | ToolTurn;

export type RequestKind = 'main' | 'side' | 'count_tokens' | 'models' | 'other';

export interface ToolSpec {
  name: string;
  /** The tool's JSON schema of arguments, as sent by the CLI. */
  parameters: unknown;
}

export interface LoggedRequest {
  seq: number;
  method: string;
  /** Path without the query string. */
  path: string;
  query: string;
  dialect: Dialect | null;
  kind: RequestKind;
  /** Why a model request was taken for a side call (or `tools` for a main one). */
  reason?: string;
  model?: string;
  stream: boolean;
  /** Names of the tools the request advertised. */
  toolNames: string[];
  tools: ToolSpec[];
  /** For `main`: index of the scripted turn answered (null when the script was used up). */
  turnIndex?: number | null;
  /** What was answered: a scripted turn, the fallback text, or a side answer. */
  reply?: { kind: 'text'; text: string } | { kind: 'tool'; name: string; args: Record<string, unknown>; text?: string; advertised: boolean };
  /** Usage reported in the response (absent for requests that report none). */
  usage?: Usage;
  status: number;
  body: unknown;
  /** Size of the request body as received (decoded when it was compressed). */
  bytes: number;
}

export interface Totals {
  inputTokens: number;
  outputTokens: number;
  /** Model responses that reported usage (main + side). */
  calls: number;
}

export interface ScriptedEndpointOptions {
  port?: number;
  /** Text answered to main requests once the script is used up. Default `Done.` */
  fallbackText?: string;
  /** Usage of the n-th main request (0-based, counting fallback answers too). Default 100 + n in, 20 out. */
  mainUsage?: (n: number) => Usage;
  /** Usage of the n-th side request (0-based). Default 50 + n in, 5 out. */
  sideUsage?: (n: number) => Usage;
  /** Override the main/side split; return null to use the default heuristics. */
  classify?: (dialect: Dialect, body: any, path: string) => { kind: 'main' | 'side'; reason: string } | null;
  /** Called on every request once answered (for debugging). */
  onRequest?: (entry: LoggedRequest) => void;
}

export interface ScriptedEndpoint {
  /** Base URL, e.g. http://127.0.0.1:PORT (no trailing slash, no /v1). */
  url: string;
  port: number;
  /** Replace the script: a queue of turns answered to main requests of any dialect, in order. */
  setScript(turns: Turn[]): void;
  /** Script for one dialect only; takes precedence over the shared script for that dialect. */
  setDialectScript(dialect: Dialect, turns: Turn[]): void;
  /** Turns not yet answered (shared script). */
  remaining(): number;
  requests: LoggedRequest[];
  /** While false, model responses carry no usage at all (as a metering bypass would); default true. */
  setUsageReported(on: boolean): void;
  /** Headers added to every answer from now on (e.g. a provider's rate-limit headers); {} for none. */
  setResponseHeaders(headers: Record<string, string>): void;
  /** Everything the endpoint reported as usage. Filter with `kind` to count only main or side calls. */
  totals(filter?: { kind?: 'main' | 'side'; dialect?: Dialect }): Totals;
  /** Clears the log and the counters (not the script). */
  reset(): void;
  stop(): Promise<void>;
}

/** Default usage per main turn: input 100 + n, output 20. */
export const defaultMainUsage = (n: number): Usage => ({ inputTokens: 100 + n, outputTokens: 20 });
/** Default usage per side call: input 50 + n, output 5. */
export const defaultSideUsage = (n: number): Usage => ({ inputTokens: 50 + n, outputTokens: 5 });

/** The dialect each CLI is driven with here. */
export const cliDialect: Record<AgentCli, Dialect> = {
  claude: 'anthropic',
  qwen: 'openai',
  gemini: 'gemini',
  aider: 'openai',
};

/**
 * The common script "write file X with content Y, then say done", in the tool vocabulary of one CLI.
 * `path` should be absolute: Claude Code, Qwen Code and Gemini CLI require absolute paths.
 * Aider has no tools: its turn is a SEARCH/REPLACE block (run aider with `--edit-format diff`)
 * naming the file relative to aider's working directory (`relativePath`, default the base name).
 *
 * @example writeFileScript('gemini', { path: `${dir}/hello.txt`, content: 'hello\n' })
 */
export function writeFileScript(cli: AgentCli, opts: { path: string; content: string; doneText?: string; relativePath?: string; usage?: Usage[] }): Turn[] {
  const done = opts.doneText ?? 'Done: the file is written.';
  const u = (i: number) => opts.usage?.[i];
  const withUsage = <T extends Turn>(t: T, i: number): T => (u(i) ? { ...t, usage: u(i) } : t);
  switch (cli) {
    case 'claude':
      return [withUsage({ kind: 'tool', name: 'Write', args: { file_path: opts.path, content: opts.content } }, 0), withUsage({ kind: 'text', text: done }, 1)];
    case 'qwen':
    case 'gemini':
      return [
        withUsage({ kind: 'tool', name: 'write_file', args: { file_path: opts.path, content: opts.content } }, 0),
        withUsage({ kind: 'text', text: done }, 1),
      ];
    case 'aider': {
      const rel = opts.relativePath ?? opts.path.split('/').pop()!;
      const content = opts.content.endsWith('\n') ? opts.content : `${opts.content}\n`;
      const text = `I will create ${rel}.\n\n${rel}\n\`\`\`\n<<<<<<< SEARCH\n=======\n${content}>>>>>>> REPLACE\n\`\`\`\n\n${done}\n`;
      return [withUsage({ kind: 'text', text }, 0)];
    }
  }
}

/** The common script "run this shell command, then say done", in the tool vocabulary of one CLI (not Aider). */
export function shellScript(cli: Exclude<AgentCli, 'aider'>, opts: { command: string; doneText?: string }): Turn[] {
  const done: Turn = { kind: 'text', text: opts.doneText ?? 'Done.' };
  if (cli === 'claude') return [{ kind: 'tool', name: 'Bash', args: { command: opts.command, description: 'Run the command' } }, done];
  return [{ kind: 'tool', name: 'run_shell_command', args: { command: opts.command, description: 'Run the command' } }, done];
}

export async function startScriptedEndpoint(opts: ScriptedEndpointOptions = {}): Promise<ScriptedEndpoint> {
  const mainUsage = opts.mainUsage ?? defaultMainUsage;
  const sideUsage = opts.sideUsage ?? defaultSideUsage;
  const fallbackText = opts.fallbackText ?? 'Done.';
  let shared: Turn[] = [];
  let sharedNext = 0;
  const perDialect = new Map<Dialect, { turns: Turn[]; next: number }>();
  let mainCount = 0;
  let sideCount = 0;
  let usageReported = true;
  let extraHeaders: Record<string, string> = {};
  let seq = 0;
  const requests: LoggedRequest[] = [];

  function nextTurn(dialect: Dialect): { turn: Turn | null; index: number | null } {
    const own = perDialect.get(dialect);
    if (own) {
      if (own.next < own.turns.length) return { turn: own.turns[own.next]!, index: own.next++ };
      return { turn: null, index: null };
    }
    if (sharedNext < shared.length) return { turn: shared[sharedNext]!, index: sharedNext++ };
    return { turn: null, index: null };
  }

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      try {
        handle(req, res, decode(Buffer.concat(chunks), req.headers['content-encoding']));
      } catch (err) {
        if (!res.headersSent) sendJson(res, 500, { error: { message: String(err) } });
        else res.end();
      }
    });
    req.on('error', () => res.destroy());
  });

  function handle(req: http.IncomingMessage, res: http.ServerResponse, raw: Buffer): void {
    // Merged into whatever writeHead sends below.
    for (const [k, v] of Object.entries(extraHeaders)) res.setHeader(k, v);
    const u = new URL(req.url ?? '/', 'http://local');
    const path = u.pathname.replace(/\/+$/, '') || '/';
    const method = req.method ?? 'GET';
    let body: any = undefined;
    if (raw.length) {
      try {
        body = JSON.parse(raw.toString('utf8'));
      } catch {
        body = raw.toString('utf8');
      }
    }
    const entry: LoggedRequest = {
      seq: ++seq,
      method,
      path,
      query: u.search,
      dialect: null,
      kind: 'other',
      stream: false,
      toolNames: [],
      tools: [],
      status: 200,
      body,
      bytes: raw.length,
    };
    const finish = () => {
      if (!usageReported && entry.usage) entry.usage = undefined;
      requests.push(entry);
      opts.onRequest?.(entry);
    };

    // --- OpenAI ---
    if (method === 'GET' && /^(\/v1)?\/models$/.test(path)) {
      entry.dialect = 'openai';
      entry.kind = 'models';
      sendJson(res, 200, { object: 'list', data: [{ id: 'scripted-model', object: 'model', created: 0, owned_by: 'autovibe' }] });
      return finish();
    }
    if (method === 'POST' && /^(\/v1)?\/chat\/completions$/.test(path)) {
      entry.dialect = 'openai';
      answerModel(entry, body, path);
      openaiRespond(res, entry, body);
      return finish();
    }
    // --- Anthropic ---
    if (method === 'POST' && path === '/v1/messages/count_tokens') {
      entry.dialect = 'anthropic';
      entry.kind = 'count_tokens';
      entry.model = body?.model;
      sendJson(res, 200, { input_tokens: estimateTokens(body) });
      return finish();
    }
    if (method === 'POST' && path === '/v1/messages') {
      entry.dialect = 'anthropic';
      answerModel(entry, body, path);
      anthropicRespond(res, entry, body);
      return finish();
    }
    // --- Gemini ---
    const g = /^\/(v1beta|v1|v1alpha)\/models\/([^:/]+):([A-Za-z]+)$/.exec(path);
    if (method === 'POST' && g) {
      entry.dialect = 'gemini';
      entry.model = decodeURIComponent(g[2]!);
      const op = g[3]!;
      if (op === 'countTokens') {
        entry.kind = 'count_tokens';
        sendJson(res, 200, { totalTokens: estimateTokens(body) });
        return finish();
      }
      if (op === 'generateContent' || op === 'streamGenerateContent') {
        entry.stream = op === 'streamGenerateContent';
        answerModel(entry, body, path, entry.model);
        geminiRespond(res, entry, body, u.searchParams.get('alt') === 'sse');
        return finish();
      }
      if (op === 'embedContent' || op === 'batchEmbedContents') {
        entry.kind = 'other';
        const vec = { values: [0, 0, 0, 0] };
        sendJson(res, 200, op === 'embedContent' ? { embedding: vec } : { embeddings: (body?.requests ?? [1]).map(() => vec) });
        return finish();
      }
    }
    if (method === 'GET' && /^\/(v1beta|v1)\/models$/.test(path)) {
      entry.dialect = 'gemini';
      entry.kind = 'models';
      sendJson(res, 200, { models: [] });
      return finish();
    }
    // --- anything else (Claude Code probes `/`) ---
    if (method === 'HEAD' || (method === 'GET' && path === '/')) {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '0' });
      res.end();
      return finish();
    }
    entry.status = 404;
    sendJson(res, 404, { error: { type: 'not_found_error', message: `scripted endpoint: no route for ${method} ${path}` } });
    finish();
  }

  /** Classifies a model request, picks its answer and usage, and fills the log entry. */
  function answerModel(entry: LoggedRequest, body: any, path: string, model?: string): void {
    const dialect = entry.dialect!;
    entry.model = model ?? (typeof body?.model === 'string' ? body.model : undefined);
    if (dialect !== 'gemini') entry.stream = body?.stream === true;
    entry.tools = toolsOf(dialect, body);
    entry.toolNames = entry.tools.map((t) => t.name);
    const cls = opts.classify?.(dialect, body, path) ?? defaultClassify(dialect, body, entry.tools);
    entry.kind = cls.kind;
    entry.reason = cls.reason;
    if (cls.kind === 'main') {
      const { turn, index } = nextTurn(dialect);
      entry.turnIndex = index;
      entry.usage = turn?.usage ?? mainUsage(mainCount);
      mainCount++;
      if (turn?.kind === 'tool') {
        entry.reply = { kind: 'tool', name: turn.name, args: turn.args, text: turn.text, advertised: entry.toolNames.includes(turn.name) };
      } else {
        entry.reply = { kind: 'text', text: turn?.text ?? fallbackText };
      }
    } else {
      entry.usage = sideUsage(sideCount);
      sideCount++;
      entry.reply = { kind: 'text', text: sideAnswer(dialect, body) };
    }
  }

  function openaiRespond(res: http.ServerResponse, entry: LoggedRequest, body: any): void {
    const id = `chatcmpl-scripted-${entry.seq}`;
    const created = Math.floor(Date.now() / 1000);
    const model = entry.model ?? 'scripted-model';
    const usage = {
      prompt_tokens: entry.usage!.inputTokens,
      completion_tokens: entry.usage!.outputTokens,
      total_tokens: entry.usage!.inputTokens + entry.usage!.outputTokens,
    };
    const reply = entry.reply!;
    const preText: string | undefined = reply.text;
    const toolCall =
      reply.kind === 'tool'
        ? { id: `call_scripted_${entry.seq}`, type: 'function', function: { name: reply.name, arguments: JSON.stringify(reply.args) } }
        : undefined;
    const finishReason = toolCall ? 'tool_calls' : 'stop';
    if (!entry.stream) {
      sendJson(res, 200, {
        id,
        object: 'chat.completion',
        created,
        model,
        choices: [
          {
            index: 0,
            message: { role: 'assistant', content: preText ?? null, ...(toolCall ? { tool_calls: [toolCall] } : {}) },
            finish_reason: finishReason,
          },
        ],
        ...(usageReported ? { usage } : {}),
      });
      return;
    }
    const sse = startSse(res);
    const chunk = (choices: unknown[], extra: Record<string, unknown> = {}) =>
      sse.data({ id, object: 'chat.completion.chunk', created, model, choices, ...extra });
    chunk([{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }]);
    if (preText) for (const piece of splitText(preText)) chunk([{ index: 0, delta: { content: piece }, finish_reason: null }]);
    if (toolCall) {
      chunk([
        {
          index: 0,
          delta: { tool_calls: [{ index: 0, id: toolCall.id, type: 'function', function: { name: toolCall.function.name, arguments: '' } }] },
          finish_reason: null,
        },
      ]);
      chunk([{ index: 0, delta: { tool_calls: [{ index: 0, function: { arguments: toolCall.function.arguments } }] }, finish_reason: null }]);
    }
    // The finishing chunk carries the usage too (clients that ignore `stream_options` read it there);
    // with `stream_options.include_usage` OpenAI sends a last chunk with empty choices and the usage.
    const includeUsage = body?.stream_options?.include_usage === true;
    chunk([{ index: 0, delta: {}, finish_reason: finishReason }], includeUsage || !usageReported ? {} : { usage });
    if (includeUsage && usageReported) chunk([], { usage });
    sse.raw('data: [DONE]\n\n');
    res.end();
  }

  function anthropicRespond(res: http.ServerResponse, entry: LoggedRequest, _body: any): void {
    const id = `msg_scripted_${entry.seq}`;
    const model = entry.model ?? 'scripted-model';
    const reply = entry.reply!;
    const preText: string | undefined = reply.text;
    const toolId = `toolu_scripted_${entry.seq}`;
    const stopReason = reply.kind === 'tool' ? 'tool_use' : 'end_turn';
    const usage = {
      input_tokens: entry.usage!.inputTokens,
      output_tokens: entry.usage!.outputTokens,
      cache_creation_input_tokens: 0,
      cache_read_input_tokens: 0,
    };
    if (!entry.stream) {
      const content: unknown[] = [];
      if (preText) content.push({ type: 'text', text: preText });
      if (reply.kind === 'tool') content.push({ type: 'tool_use', id: toolId, name: reply.name, input: reply.args });
      sendJson(res, 200, {
        id,
        type: 'message',
        role: 'assistant',
        model,
        content,
        stop_reason: stopReason,
        stop_sequence: null,
        ...(usageReported ? { usage } : {}),
      });
      return;
    }
    const sse = startSse(res);
    const ev = (type: string, data: Record<string, unknown>) => sse.event(type, { type, ...data });
    // Input tokens in message_start, the (cumulative) output tokens in message_delta, as the API does.
    ev('message_start', {
      message: {
        id,
        type: 'message',
        role: 'assistant',
        model,
        content: [],
        stop_reason: null,
        stop_sequence: null,
        ...(usageReported ? { usage: { ...usage, output_tokens: 0 } } : {}),
      },
    });
    let index = 0;
    if (preText) {
      ev('content_block_start', { index, content_block: { type: 'text', text: '' } });
      for (const piece of splitText(preText)) ev('content_block_delta', { index, delta: { type: 'text_delta', text: piece } });
      ev('content_block_stop', { index });
      index++;
    }
    if (reply.kind === 'tool') {
      ev('content_block_start', { index, content_block: { type: 'tool_use', id: toolId, name: reply.name, input: {} } });
      ev('content_block_delta', { index, delta: { type: 'input_json_delta', partial_json: JSON.stringify(reply.args) } });
      ev('content_block_stop', { index });
    }
    ev('message_delta', {
      delta: { stop_reason: stopReason, stop_sequence: null },
      ...(usageReported ? { usage: { output_tokens: usage.output_tokens } } : {}),
    });
    ev('message_stop', {});
    res.end();
  }

  function geminiRespond(res: http.ServerResponse, entry: LoggedRequest, _body: any, sseMode: boolean): void {
    const reply = entry.reply!;
    const preText: string | undefined = reply.text;
    const usageMetadata = {
      promptTokenCount: entry.usage!.inputTokens,
      candidatesTokenCount: entry.usage!.outputTokens,
      totalTokenCount: entry.usage!.inputTokens + entry.usage!.outputTokens,
    };
    const modelVersion = entry.model ?? 'scripted-model';
    const responseId = `scripted-${entry.seq}`;
    const parts: Record<string, unknown>[] = [];
    if (preText) parts.push({ text: preText });
    if (reply.kind === 'tool') parts.push({ functionCall: { name: reply.name, args: reply.args } });
    const whole = {
      candidates: [{ content: { role: 'model', parts }, finishReason: 'STOP', index: 0 }],
      ...(usageReported ? { usageMetadata } : {}),
      modelVersion,
      responseId,
    };
    if (!entry.stream) {
      sendJson(res, 200, whole);
      return;
    }
    // Streaming: text in pieces, then the function call, then finishReason + usageMetadata on the last chunk.
    const chunks: Record<string, unknown>[] = [];
    const textPieces = preText ? splitText(preText) : [];
    for (const piece of textPieces) chunks.push({ candidates: [{ content: { role: 'model', parts: [{ text: piece }] }, index: 0 }], modelVersion, responseId });
    if (reply.kind === 'tool')
      chunks.push({ candidates: [{ content: { role: 'model', parts: [parts[parts.length - 1]] }, index: 0 }], modelVersion, responseId });
    if (chunks.length === 0) chunks.push({ candidates: [{ content: { role: 'model', parts: [{ text: '' }] }, index: 0 }], modelVersion, responseId });
    const last = chunks[chunks.length - 1] as any;
    last.candidates[0].finishReason = 'STOP';
    if (usageReported) last.usageMetadata = usageMetadata;
    if (!sseMode) {
      sendJson(res, 200, chunks);
      return;
    }
    const sse = startSse(res);
    for (const c of chunks) sse.raw(`data: ${JSON.stringify(c)}\r\n\r\n`);
    res.end();
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    setScript(turns) {
      shared = [...turns];
      sharedNext = 0;
    },
    setResponseHeaders(headers) {
      extraHeaders = { ...headers };
    },
    setUsageReported(on) {
      usageReported = on;
    },
    setDialectScript(dialect, turns) {
      perDialect.set(dialect, { turns: [...turns], next: 0 });
    },
    remaining() {
      return shared.length - sharedNext;
    },
    totals(filter = {}) {
      const t: Totals = { inputTokens: 0, outputTokens: 0, calls: 0 };
      for (const r of requests) {
        if (!r.usage) continue;
        if (filter.kind && r.kind !== filter.kind) continue;
        if (filter.dialect && r.dialect !== filter.dialect) continue;
        t.inputTokens += r.usage.inputTokens;
        t.outputTokens += r.usage.outputTokens;
        t.calls++;
      }
      return t;
    },
    reset() {
      requests.length = 0;
      mainCount = 0;
      sideCount = 0;
      usageReported = true;
    },
    stop() {
      return new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

/** Tools a request advertises, normalized to name + parameter schema. */
export function toolsOf(dialect: Dialect, body: any): ToolSpec[] {
  const out: ToolSpec[] = [];
  const tools: any[] = Array.isArray(body?.tools) ? body.tools : [];
  for (const t of tools) {
    if (dialect === 'openai') {
      if (t?.function?.name) out.push({ name: t.function.name, parameters: t.function.parameters });
    } else if (dialect === 'anthropic') {
      if (t?.name) out.push({ name: t.name, parameters: t.input_schema ?? null });
    } else {
      for (const f of t?.functionDeclarations ?? t?.function_declarations ?? []) {
        if (f?.name) out.push({ name: f.name, parameters: f.parametersJsonSchema ?? f.parameters ?? null });
      }
    }
  }
  return out;
}

/**
 * Default main/side split: a request is the agent's turn when it advertises tools and does not ask
 * for a JSON answer. Aider sends no tools: a tool-less OpenAI request whose system prompt is Aider's
 * is a main request too.
 */
function defaultClassify(dialect: Dialect, body: any, tools: ToolSpec[]): { kind: 'main' | 'side'; reason: string } {
  if (dialect === 'gemini') {
    const gc = body?.generationConfig ?? body?.config ?? {};
    if (gc.responseMimeType === 'application/json' || gc.responseJsonSchema || gc.responseSchema) return { kind: 'side', reason: 'json-response' };
    return tools.length ? { kind: 'main', reason: 'tools' } : { kind: 'side', reason: 'no-tools' };
  }
  if (dialect === 'openai') {
    if (body?.response_format && body.response_format.type !== 'text') return { kind: 'side', reason: 'json-response' };
    if (tools.length) return { kind: 'main', reason: 'tools' };
    if (isAiderRequest(body)) return { kind: 'main', reason: 'aider' };
    return { kind: 'side', reason: 'no-tools' };
  }
  return tools.length ? { kind: 'main', reason: 'tools' } : { kind: 'side', reason: 'no-tools' };
}

function isAiderRequest(body: any): boolean {
  const msgs: any[] = Array.isArray(body?.messages) ? body.messages : [];
  const sys = msgs.find((m) => m?.role === 'system');
  const text = typeof sys?.content === 'string' ? sys.content : JSON.stringify(sys?.content ?? '');
  return /SEARCH\/REPLACE|expert software developer/i.test(text) && !/commit message/i.test(text) && !/summar/i.test(text.slice(0, 300));
}

/** A short answer for a helper call; a JSON object when the request asks for JSON. */
function sideAnswer(dialect: Dialect, body: any): string {
  let schema: any;
  let wantsJson = false;
  if (dialect === 'gemini') {
    const gc = body?.generationConfig ?? {};
    schema = gc.responseJsonSchema ?? gc.responseSchema;
    wantsJson = gc.responseMimeType === 'application/json' || !!schema;
  } else if (dialect === 'openai') {
    const rf = body?.response_format;
    schema = rf?.json_schema?.schema;
    wantsJson = !!rf && rf.type !== 'text';
  }
  if (!wantsJson) return 'OK';
  return JSON.stringify(schema ? exampleOf(schema) : {});
}

/**
 * A small value matching a JSON schema. Enums prefer values that end a conversation or pick the
 * default path: Gemini CLI's next-speaker check gets `user`, its router gets `flash`.
 */
export function exampleOf(schema: any): unknown {
  if (!schema || typeof schema !== 'object') return null;
  const type = String(schema.type ?? (schema.properties ? 'object' : 'string')).toLowerCase();
  if (Array.isArray(schema.enum) && schema.enum.length) {
    for (const pref of ['user', 'flash', 'false', 'no']) if (schema.enum.includes(pref)) return pref;
    return schema.enum[0];
  }
  switch (type) {
    case 'object': {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(schema.properties ?? {})) out[k] = exampleOf(v);
      return out;
    }
    case 'array':
      return [];
    case 'integer':
    case 'number':
      // Gemini CLI's numerical router wants complexity_score in 1..100.
      return typeof schema.minimum === 'number' ? schema.minimum : 1;
    case 'boolean':
      return false;
    default:
      return 'scripted';
  }
}

function estimateTokens(body: unknown): number {
  return Math.max(1, Math.ceil(JSON.stringify(body ?? '').length / 4));
}

function splitText(text: string): string[] {
  if (text.length <= 40) return [text];
  const mid = text.lastIndexOf(' ', Math.floor(text.length / 2));
  const at = mid > 0 ? mid : Math.floor(text.length / 2);
  return [text.slice(0, at), text.slice(at)];
}

function decode(raw: Buffer, encoding: string | string[] | undefined): Buffer {
  const enc = String(encoding ?? '').toLowerCase();
  if (enc === 'gzip') return zlib.gunzipSync(raw);
  if (enc === 'deflate') return zlib.inflateSync(raw);
  if (enc === 'br') return zlib.brotliDecompressSync(raw);
  if (enc === 'zstd' && 'zstdDecompressSync' in zlib) return (zlib as any).zstdDecompressSync(raw);
  return raw;
}

function sendJson(res: http.ServerResponse, status: number, value: unknown): void {
  const text = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function startSse(res: http.ServerResponse) {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
  return {
    raw: (s: string) => res.write(s),
    data: (v: unknown) => res.write(`data: ${JSON.stringify(v)}\n\n`),
    event: (name: string, v: unknown) => res.write(`event: ${name}\ndata: ${JSON.stringify(v)}\n\n`),
  };
}

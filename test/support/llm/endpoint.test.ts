/**
 * The scripted model endpoint, first on its own (each dialect over plain HTTP), then with the
 * REAL agent CLIs pointed at it: each must write the scripted file, and the usage it reports in
 * its machine-readable output must equal what the endpoint reported.
 *
 * The CLIs are installed by scripts/install-agent-clis into $AUTOVIBE_TOOLS_DIR (default
 * .autovibe/tools); the first run downloads them from npm and PyPI (about a minute).
 * Set AUTOVIBE_UPDATE_CAPTURES=1 to refresh the captured outputs in test/support/llm/captured/.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { agentInvocation, installAgentClis, runAgent, type OutputFormat } from './agent-clis.js';
import {
  defaultMainUsage,
  shellScript,
  startScriptedEndpoint,
  writeFileScript,
  type AgentCli,
  type LoggedRequest,
  type ScriptedEndpoint,
  type Totals,
} from './endpoint.js';

const capturedDir = path.join(path.dirname(fileURLToPath(import.meta.url)), 'captured');

async function post(url: string, body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  return { status: res.status, type: res.headers.get('content-type') ?? '', text: await res.text() };
}

/** `data:` payloads of an SSE body, parsed (except [DONE]). */
function sseData(text: string): any[] {
  return text
    .split(/\r?\n/)
    .filter((l) => l.startsWith('data: ') && l !== 'data: [DONE]')
    .map((l) => JSON.parse(l.slice(6)));
}

function sseEvents(text: string): string[] {
  return text
    .split(/\r?\n/)
    .filter((l) => l.startsWith('event: '))
    .map((l) => l.slice(7));
}

describe('scripted LLM endpoint', function () {
  let llm: ScriptedEndpoint;
  beforeEach(async () => {
    llm = await startScriptedEndpoint();
  });
  afterEach(async () => {
    await llm.stop();
  });

  const writeTool = { type: 'function', function: { name: 'write_file', parameters: { type: 'object' } } };

  it('OpenAI: streams text and tool calls with usage in the last chunk, and answers non-streaming', async () => {
    llm.setScript([
      { kind: 'tool', name: 'write_file', args: { file_path: '/x/a.txt', content: 'A' } },
      { kind: 'text', text: 'All done now, the file a.txt holds the letter A as asked.' },
    ]);
    const first = await post(`${llm.url}/v1/chat/completions`, {
      model: 'm',
      stream: true,
      stream_options: { include_usage: true },
      tools: [writeTool],
      messages: [{ role: 'user', content: 'go' }],
    });
    assert.equal(first.status, 200);
    assert.match(first.type, /text\/event-stream/);
    assert.ok(first.text.trimEnd().endsWith('data: [DONE]'));
    const chunks = sseData(first.text);
    const call = chunks.flatMap((c) => c.choices.flatMap((ch: any) => ch.delta?.tool_calls ?? []));
    assert.equal(call[0].function.name, 'write_file');
    assert.deepEqual(JSON.parse(call.map((c: any) => c.function.arguments ?? '').join('')), { file_path: '/x/a.txt', content: 'A' });
    assert.equal(chunks.find((c) => c.choices[0]?.finish_reason)?.choices[0].finish_reason, 'tool_calls');
    const last = chunks[chunks.length - 1];
    assert.deepEqual(last.choices, []);
    assert.deepEqual(last.usage, { prompt_tokens: 100, completion_tokens: 20, total_tokens: 120 });

    // Without stream_options the finishing chunk (the last one) still carries the usage.
    const second = sseData((await post(`${llm.url}/v1/chat/completions`, { model: 'm', stream: true, tools: [writeTool], messages: [] })).text);
    assert.equal(second.map((c) => c.choices[0]?.delta?.content ?? '').join(''), 'All done now, the file a.txt holds the letter A as asked.');
    assert.deepEqual(second[second.length - 1].usage, { prompt_tokens: 101, completion_tokens: 20, total_tokens: 121 });

    // Script used up: the fallback text, non-streaming.
    const third = JSON.parse((await post(`${llm.url}/v1/chat/completions`, { model: 'm', tools: [writeTool], messages: [] })).text);
    assert.equal(third.choices[0].message.content, 'Done.');
    assert.equal(third.usage.prompt_tokens, 102);
    assert.equal(llm.requests[2]!.turnIndex, null);

    const models = await fetch(`${llm.url}/v1/models`);
    assert.equal(((await models.json()) as any).data[0].object, 'model');
    assert.deepEqual(llm.totals(), { inputTokens: 303, outputTokens: 60, calls: 3 });
  });

  it('Anthropic: streams message_start … message_delta (usage) … message_stop, answers count_tokens and probes', async () => {
    llm.setScript(writeFileScript('claude', { path: '/x/b.txt', content: 'B' }));
    const tools = [{ name: 'Write', input_schema: { type: 'object' } }];
    const r = await post(`${llm.url}/v1/messages?beta=true`, { model: 'claude-x', stream: true, max_tokens: 100, tools, messages: [] });
    assert.deepEqual(sseEvents(r.text), ['message_start', 'content_block_start', 'content_block_delta', 'content_block_stop', 'message_delta', 'message_stop']);
    const data = sseData(r.text);
    assert.equal(data[0].message.usage.input_tokens, 100);
    assert.deepEqual(data[1].content_block, { type: 'tool_use', id: data[1].content_block.id, name: 'Write', input: {} });
    assert.deepEqual(JSON.parse(data[2].delta.partial_json), { file_path: '/x/b.txt', content: 'B' });
    assert.equal(data[4].delta.stop_reason, 'tool_use');
    assert.equal(data[4].usage.output_tokens, 20);
    assert.equal(llm.requests[0]!.reply?.kind === 'tool' && llm.requests[0]!.reply.advertised, true);

    const done = JSON.parse((await post(`${llm.url}/v1/messages`, { model: 'claude-x', max_tokens: 100, tools, messages: [] })).text);
    assert.equal(done.content[0].text, 'Done: the file is written.');
    assert.equal(done.stop_reason, 'end_turn');
    assert.equal(done.usage.input_tokens, 101);

    // A tool-less request (title generation and the like) is a side call: short text, own usage.
    const side = JSON.parse((await post(`${llm.url}/v1/messages`, { model: 'claude-haiku', max_tokens: 50, messages: [] })).text);
    assert.equal(side.content[0].text, 'OK');
    assert.equal(llm.requests[2]!.kind, 'side');

    const count = JSON.parse((await post(`${llm.url}/v1/messages/count_tokens`, { model: 'claude-x', messages: [] })).text);
    assert.ok(count.input_tokens > 0);
    assert.equal((await fetch(`${llm.url}/`, { method: 'HEAD' })).status, 200);
    assert.equal((await fetch(`${llm.url}/api/whatever`)).status, 404);

    assert.deepEqual(llm.totals({ kind: 'main' }), { inputTokens: 201, outputTokens: 40, calls: 2 });
    assert.deepEqual(llm.totals({ kind: 'side' }), { inputTokens: 50, outputTokens: 5, calls: 1 });
    assert.deepEqual(llm.totals(), { inputTokens: 251, outputTokens: 45, calls: 3 });
  });

  it('Gemini: streams candidates with a functionCall and usageMetadata last; answers JSON classifier calls', async () => {
    llm.setScript(writeFileScript('gemini', { path: '/x/c.txt', content: 'C' }));
    const tools = [{ functionDeclarations: [{ name: 'write_file', parametersJsonSchema: { type: 'object' } }] }];
    // A routing call: JSON answer matching the schema, the score within its range.
    const route = JSON.parse(
      (
        await post(`${llm.url}/v1beta/models/flash-lite:generateContent`, {
          contents: [],
          generationConfig: {
            responseMimeType: 'application/json',
            responseJsonSchema: {
              type: 'OBJECT',
              properties: { complexity_reasoning: { type: 'STRING' }, complexity_score: { type: 'INTEGER' } },
            },
          },
        })
      ).text,
    );
    const answer = JSON.parse(route.candidates[0].content.parts[0].text);
    assert.ok(answer.complexity_score >= 1);
    assert.deepEqual(route.usageMetadata, { promptTokenCount: 50, candidatesTokenCount: 5, totalTokenCount: 55 });

    const r = await post(`${llm.url}/v1beta/models/pro:streamGenerateContent?alt=sse`, { contents: [], tools });
    const chunks = sseData(r.text);
    const last = chunks[chunks.length - 1];
    assert.deepEqual(last.candidates[0].content.parts[0].functionCall, { name: 'write_file', args: { file_path: '/x/c.txt', content: 'C' } });
    assert.equal(last.candidates[0].finishReason, 'STOP');
    assert.deepEqual(last.usageMetadata, { promptTokenCount: 100, candidatesTokenCount: 20, totalTokenCount: 120 });
    assert.equal(llm.requests[1]!.model, 'pro');
    assert.equal(llm.requests[1]!.stream, true);

    const text = JSON.parse((await post(`${llm.url}/v1beta/models/pro:generateContent`, { contents: [], tools })).text);
    assert.equal(text.candidates[0].content.parts[0].text, 'Done: the file is written.');
    assert.deepEqual(llm.totals(), { inputTokens: 251, outputTokens: 45, calls: 3 });
    assert.deepEqual(
      llm.requests.map((q) => q.kind),
      ['side', 'main', 'main'],
    );
  });
});

/** Token usage a CLI printed in its machine-readable output. */
interface Reported {
  inputTokens: number;
  outputTokens: number;
  /** Model calls the CLI counted, where it says. */
  calls?: number;
  /** Where in the output the numbers were read, for the report. */
  fields: string;
  /** The CLI's own cost figure, where it prints one (USD). */
  costUsd?: number;
}

function jsonLines(stdout: string): any[] {
  return stdout
    .split('\n')
    .filter((l) => l.trim().startsWith('{'))
    .map((l) => JSON.parse(l));
}

function sumModels(models: Record<string, any>, pick: (m: any) => [number, number, number?]): [number, number, number] {
  let i = 0;
  let o = 0;
  let c = 0;
  for (const m of Object.values(models)) {
    const [a, b, n] = pick(m);
    i += a;
    o += b;
    c += n ?? 0;
  }
  return [i, o, c];
}

function reportedUsage(cli: AgentCli, format: OutputFormat, stdout: string): Reported {
  if (cli === 'claude') {
    const result = jsonLines(stdout).find((e) => e.type === 'result');
    assert.ok(result, 'Claude Code printed no result line');
    assert.equal(result.subtype, 'success');
    const u = result.usage;
    const [mi, mo] = sumModels(result.modelUsage, (m) => [m.inputTokens + m.cacheReadInputTokens + m.cacheCreationInputTokens, m.outputTokens]);
    assert.equal(mi, u.input_tokens + u.cache_read_input_tokens + u.cache_creation_input_tokens, 'modelUsage agrees with usage');
    assert.equal(mo, u.output_tokens);
    return {
      inputTokens: u.input_tokens + u.cache_read_input_tokens + u.cache_creation_input_tokens,
      outputTokens: u.output_tokens,
      fields: 'result.usage.{input_tokens,cache_*_input_tokens,output_tokens} (= sum of result.modelUsage.*)',
      costUsd: result.total_cost_usd,
    };
  }
  if (cli === 'qwen') {
    const events = format === 'json' ? (JSON.parse(stdout) as any[]) : jsonLines(stdout);
    const result = events.find((e) => e.type === 'result');
    assert.ok(result, 'Qwen Code printed no result');
    assert.equal(result.subtype, 'success');
    if (format === 'stream-json') {
      // The stream-json result line has usage but no stats.
      return { inputTokens: result.usage.input_tokens, outputTokens: result.usage.output_tokens, fields: 'result.usage.{input_tokens,output_tokens}' };
    }
    const [si, so, calls] = sumModels(result.stats.models, (m) => [m.tokens.prompt, m.tokens.candidates, m.api.totalRequests]);
    assert.equal(si, result.usage.input_tokens, 'stats.models agrees with usage');
    assert.equal(so, result.usage.output_tokens);
    return {
      inputTokens: result.usage.input_tokens,
      outputTokens: result.usage.output_tokens,
      calls,
      fields:
        'result.usage.{input_tokens,output_tokens} (= sum of result.stats.models.*.tokens.{prompt,candidates}); calls = sum of stats.models.*.api.totalRequests',
    };
  }
  if (cli === 'gemini') {
    if (format === 'json') {
      const out = JSON.parse(stdout);
      const [i, o, calls] = sumModels(out.stats.models, (m) => [m.tokens.prompt, m.tokens.candidates + m.tokens.thoughts, m.api.totalRequests]);
      return {
        inputTokens: i,
        outputTokens: o,
        calls,
        fields: 'sum of stats.models.*.tokens.{prompt,candidates+thoughts}; calls = stats.models.*.api.totalRequests',
      };
    }
    const result = jsonLines(stdout).find((e) => e.type === 'result');
    assert.ok(result, 'Gemini CLI printed no result line');
    assert.equal(result.status, 'success');
    return { inputTokens: result.stats.input_tokens, outputTokens: result.stats.output_tokens, fields: 'result.stats.{input_tokens,output_tokens}' };
  }
  // Aider: "Tokens: 100 sent, 20 received. Cost: $0.00060 message, $0.00060 session."
  const m = /Tokens: ([\d.]+k?) sent, ([\d.]+k?) received\.(?: Cost: \$([\d.]+) message, \$([\d.]+) session\.)?/.exec(stdout);
  assert.ok(m, 'Aider printed no "Tokens: … sent, … received." line');
  const n = (s: string) => (s.endsWith('k') ? Math.round(parseFloat(s) * 1000) : Number(s));
  return {
    inputTokens: n(m[1]!),
    outputTokens: n(m[2]!),
    fields: 'stdout line "Tokens: N sent, M received. Cost: $X message, $Y session."',
    costUsd: m[4] ? Number(m[4]) : undefined,
  };
}

function requestSummary(requests: LoggedRequest[]) {
  return requests.map((r) => ({
    seq: r.seq,
    method: r.method,
    path: r.path + r.query,
    dialect: r.dialect,
    kind: r.kind,
    reason: r.reason,
    model: r.model,
    stream: r.stream,
    toolNames: r.toolNames,
    reply: r.reply && (r.reply.kind === 'tool' ? { kind: 'tool', name: r.reply.name, advertised: r.reply.advertised } : { kind: 'text' }),
    usage: r.usage,
    // The schema of the tool the script called, as the CLI advertised it.
    scriptedToolSchema: r.reply?.kind === 'tool' ? r.tools.find((t) => t.name === (r.reply as { name: string }).name)?.parameters : undefined,
  }));
}

function saveCapture(name: string, content: string): void {
  const file = path.join(capturedDir, name);
  if (fs.existsSync(file) && process.env.AUTOVIBE_UPDATE_CAPTURES !== '1') return;
  fs.mkdirSync(capturedDir, { recursive: true });
  fs.writeFileSync(file, content);
}

interface CliCase {
  cli: AgentCli;
  format: OutputFormat;
  capture: string;
  /** Which scripted tool makes the file: the CLI's file-writing tool (default) or its shell tool. */
  tool?: 'write' | 'shell';
  /** Also save the endpoint's view of the requests (paths, kinds, tool names, the scripted tool's schema) as `<name>.requests.json`. */
  saveRequests?: string;
}

const cliCases: CliCase[] = [
  { cli: 'claude', format: 'stream-json', capture: 'claude.jsonl', saveRequests: 'claude' },
  { cli: 'qwen', format: 'json', capture: 'qwen.json', saveRequests: 'qwen' },
  { cli: 'qwen', format: 'stream-json', capture: 'qwen.jsonl' },
  { cli: 'gemini', format: 'json', capture: 'gemini.json', saveRequests: 'gemini' },
  { cli: 'gemini', format: 'stream-json', capture: 'gemini.jsonl' },
  { cli: 'aider', format: 'text', capture: 'aider.txt', saveRequests: 'aider' },
  { cli: 'claude', format: 'stream-json', tool: 'shell', capture: 'claude-shell.jsonl', saveRequests: 'claude-shell' },
  { cli: 'qwen', format: 'json', tool: 'shell', capture: 'qwen-shell.json', saveRequests: 'qwen-shell' },
  { cli: 'gemini', format: 'json', tool: 'shell', capture: 'gemini-shell.json', saveRequests: 'gemini-shell' },
];

const aiderPrices = { inputPerToken: 0.000003, outputPerToken: 0.000015 };

describe('real agent CLIs against the scripted LLM endpoint', function () {
  this.timeout(5 * 60_000);
  let llm: ScriptedEndpoint;
  let root: string;

  before(async function () {
    this.timeout(25 * 60_000);
    await installAgentClis();
  });
  beforeEach(async () => {
    llm = await startScriptedEndpoint();
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'autovibe-llm-'));
  });
  afterEach(async () => {
    await llm.stop();
    fs.rmSync(root, { recursive: true, force: true });
  });

  for (const c of cliCases) {
    const how = c.tool === 'shell' ? 'its shell tool' : 'its file tool';
    it(`${c.cli} (--output-format ${c.format}) writes the scripted file with ${how} and reports the endpoint's usage`, async () => {
      const workDir = path.join(root, 'work');
      fs.mkdirSync(workDir);
      const file = path.join(workDir, 'hello.txt');
      const content = `hello from the scripted ${c.cli}\n`;
      const script =
        c.tool === 'shell' && c.cli !== 'aider'
          ? shellScript(c.cli, { command: `printf 'hello from the scripted ${c.cli}\\n' > hello.txt` })
          : writeFileScript(c.cli, { path: file, content });
      llm.setScript(script);

      const inv = agentInvocation(c.cli, {
        endpointUrl: llm.url,
        workDir,
        homeDir: path.join(root, 'home'),
        prompt: 'Create hello.txt as instructed.',
        format: c.format,
        aiderPrices,
      });
      const run = await runAgent(inv);
      const context = `exit ${run.code ?? run.signal}\n--- stdout\n${run.stdout.slice(-4000)}\n--- stderr\n${run.stderr.slice(-4000)}`;
      assert.equal(run.code, 0, context);

      // The agent did what the script told it to.
      assert.equal(fs.readFileSync(file, 'utf8'), content, context);
      const main = llm.requests.filter((r) => r.kind === 'main');
      assert.equal(llm.remaining(), 0, 'every scripted turn was asked for');
      assert.equal(main.length, script.length, `one main request per scripted turn:\n${JSON.stringify(requestSummary(llm.requests), null, 1)}`);
      for (const r of main) {
        if (r.reply?.kind === 'tool') assert.ok(r.reply.advertised, `${c.cli} advertises no tool named ${r.reply.name}: ${r.toolNames.join(', ')}`);
      }
      const expectedMain: Totals = { inputTokens: 0, outputTokens: 0, calls: script.length };
      script.forEach((_, i) => {
        expectedMain.inputTokens += defaultMainUsage(i).inputTokens;
        expectedMain.outputTokens += defaultMainUsage(i).outputTokens;
      });
      assert.deepEqual(llm.totals({ kind: 'main' }), expectedMain);

      // What the CLI reports equals what the endpoint reported, side calls included.
      const totals = llm.totals();
      const reported = reportedUsage(c.cli, c.format, run.stdout);
      assert.equal(reported.inputTokens, totals.inputTokens, `input tokens (${reported.fields})`);
      assert.equal(reported.outputTokens, totals.outputTokens, `output tokens (${reported.fields})`);
      if (reported.calls !== undefined) assert.equal(reported.calls, totals.calls, 'model calls');
      if (c.cli === 'aider') {
        const cost = totals.inputTokens * aiderPrices.inputPerToken + totals.outputTokens * aiderPrices.outputPerToken;
        assert.ok(reported.costUsd !== undefined && Math.abs(reported.costUsd - cost) < 1e-9, `aider cost ${reported.costUsd} vs ${cost}`);
      }
      if (c.cli === 'claude') assert.ok(typeof reported.costUsd === 'number' && reported.costUsd > 0, 'Claude Code reports its own total_cost_usd');

      saveCapture(c.capture, run.stdout);
      if (c.saveRequests) saveCapture(`${c.saveRequests}.requests.json`, `${JSON.stringify(requestSummary(llm.requests), null, 2)}\n`);
    });
  }
});

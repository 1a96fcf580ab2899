import assert from 'node:assert/strict';
import { allowedEndpoint, isModelCall, requestedMaxOutput, requestModel, usageFromResponse } from '../../activities/machines/usage.js';
import { parseAiderOutput } from '../../domain/agents/aider.js';
import { MACHINE_TYPE_SPECS, priceOf, tokenCost } from '../../domain/machine-types.js';
import { loadConfig } from '../../config/index.js';
import { applyPriceOverrides, checkMoneyLimit, defaultPriceTables, reserveCall, worstCallCost } from '../../domain/metering.js';
import { parseAmount } from '../../domain/money.js';

const sse = (events: unknown[]) => events.map((e) => `data: ${JSON.stringify(e)}\n\n`).join('');

describe('usage read from model API responses', () => {
  it('OpenAI: non-streaming and streaming (usage in the last chunk)', () => {
    assert.deepEqual(usageFromResponse('openai', JSON.stringify({ model: 'm1', usage: { prompt_tokens: 11, completion_tokens: 7 } }), 'req'), {
      model: 'm1',
      inputTokens: 11,
      outputTokens: 7,
    });
    const stream =
      sse([
        { model: 'm2', choices: [{ delta: { content: 'hi' } }] },
        { model: 'm2', choices: [{ delta: {}, finish_reason: 'stop' }] },
        { model: 'm2', choices: [], usage: { prompt_tokens: 120, completion_tokens: 33 } },
      ]) + 'data: [DONE]\n\n';
    assert.deepEqual(usageFromResponse('openai', stream, 'req'), { model: 'm2', inputTokens: 120, outputTokens: 33 });
  });

  it('Anthropic: message_start input (with cache) and the last cumulative message_delta output', () => {
    const stream = [
      'event: message_start',
      `data: ${JSON.stringify({ type: 'message_start', message: { model: 'claude-x', usage: { input_tokens: 50, cache_read_input_tokens: 10, output_tokens: 1 } } })}`,
      '',
      `data: ${JSON.stringify({ type: 'content_block_delta', delta: { type: 'text_delta', text: 'x' } })}`,
      `data: ${JSON.stringify({ type: 'message_delta', usage: { output_tokens: 5 } })}`,
      `data: ${JSON.stringify({ type: 'message_delta', usage: { output_tokens: 42 } })}`,
      `data: ${JSON.stringify({ type: 'message_stop' })}`,
    ].join('\n');
    assert.deepEqual(usageFromResponse('anthropic', stream, 'req'), { model: 'claude-x', inputTokens: 60, outputTokens: 42, cachedInputTokens: 10 });
    // A stream cut after message_start has only the partial usage: treated as none (charged its worst case).
    assert.equal(usageFromResponse('anthropic', stream.split('\n').slice(0, 3).join('\n'), 'req'), null);
    const whole = { type: 'message', model: 'claude-y', usage: { input_tokens: 9, output_tokens: 3 } };
    assert.deepEqual(usageFromResponse('anthropic', JSON.stringify(whole), 'req'), { model: 'claude-y', inputTokens: 9, outputTokens: 3 });
  });

  it('Gemini: usageMetadata of the last chunk, thoughts counted as output', () => {
    const stream = sse([
      { candidates: [{ content: { parts: [{ text: 'a' }] } }], usageMetadata: { promptTokenCount: 10, candidatesTokenCount: 1 } },
      {
        candidates: [{ content: { parts: [{ text: 'b' }] } }],
        usageMetadata: { promptTokenCount: 10, candidatesTokenCount: 4, thoughtsTokenCount: 6 },
        modelVersion: 'gemini-z',
      },
    ]);
    assert.deepEqual(usageFromResponse('gemini', stream, 'req'), { model: 'gemini-z', inputTokens: 10, outputTokens: 10 });
  });

  it('returns null when a response carries no usage', () => {
    assert.equal(usageFromResponse('openai', '{"error":{"message":"nope"}}', 'm'), null);
    assert.equal(usageFromResponse('anthropic', 'not json', 'm'), null);
  });

  it('knows model calls, their model and their output cap', () => {
    assert.equal(isModelCall('anthropic', 'POST', '/v1/messages'), true);
    assert.equal(isModelCall('anthropic', 'POST', '/v1/messages/count_tokens'), false);
    assert.equal(isModelCall('anthropic', 'GET', '/'), false);
    assert.equal(isModelCall('openai', 'POST', '/v1/chat/completions'), true);
    assert.equal(isModelCall('gemini', 'POST', '/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse'), true);
    assert.equal(requestModel('gemini', '/v1beta/models/gemini-2.5-flash:generateContent', null), 'gemini-2.5-flash');
    assert.equal(requestModel('openai', '/v1/chat/completions', { model: 'qwen' }), 'qwen');
    assert.equal(requestedMaxOutput('anthropic', { max_tokens: 999 }), 999);
    assert.equal(requestedMaxOutput('gemini', { generationConfig: { maxOutputTokens: 77 } }), 77);
    assert.equal(requestedMaxOutput('openai', {}), null);
  });

  it('lets through only the model endpoints of each dialect', () => {
    assert.equal(allowedEndpoint('anthropic', 'POST', '/v1/messages?beta=true'), 'model');
    assert.equal(allowedEndpoint('anthropic', 'POST', '/v1/messages/count_tokens'), 'count');
    for (const [method, path] of [
      ['GET', '/'],
      ['HEAD', '/'],
      ['GET', '/v1/models'],
      ['POST', '/v1/files'],
      ['POST', '/v1/messages/batches'],
      ['POST', '/v1/messages/../files'],
      ['POST', 'http://elsewhere/v1/messages'],
      ['GET', '/v1/messages'],
    ] as const) {
      assert.equal(allowedEndpoint('anthropic', method, path), null, `${method} ${path}`);
    }
    assert.equal(allowedEndpoint('openai', 'POST', '/v1/chat/completions'), 'model');
    assert.equal(allowedEndpoint('openai', 'POST', '/v1/embeddings'), null);
    assert.equal(allowedEndpoint('openai', 'POST', '/v1/responses'), null);
    assert.equal(allowedEndpoint('gemini', 'POST', '/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse'), 'model');
    assert.equal(allowedEndpoint('gemini', 'POST', '/v1beta/models/gemini-2.5-pro:countTokens'), 'count');
    assert.equal(allowedEndpoint('gemini', 'POST', '/v1beta/files'), null);
    assert.equal(allowedEndpoint('gemini', 'POST', '/v1beta/cachedContents'), null);
  });
});

describe('token prices', () => {
  it('prices a million tokens at the listed rate, exactly, and rounds fractions up', () => {
    const sonnet = priceOf(MACHINE_TYPE_SPECS['claude-code'].prices, 'claude-sonnet-4-5')!;
    assert.equal(tokenCost(sonnet, { inputTokens: 1_000_000, outputTokens: 0 }), parseAmount('3', 'USD'));
    assert.equal(tokenCost(sonnet, { inputTokens: 0, outputTokens: 2_000_000 }), parseAmount('30', 'USD'));
    // Cache reads at 0.30/M and cache writes at 3.75/M, the rest of the input at 3/M.
    assert.equal(
      tokenCost(sonnet, { inputTokens: 3_000_000, cachedInputTokens: 1_000_000, cacheWriteTokens: 1_000_000, outputTokens: 0 }),
      parseAmount('7.05', 'USD'),
    );
    // A dated name is priced as its model; an unknown model is not priced at all.
    assert.equal(priceOf(MACHINE_TYPE_SPECS['claude-code'].prices, 'claude-haiku-4-5-20251001')?.input, '1');
    assert.equal(priceOf(MACHINE_TYPE_SPECS['claude-code'].prices, 'claude-future'), null);
    // One token at $0.27/M is 0.00000027 USD exactly.
    assert.equal(tokenCost(priceOf(MACHINE_TYPE_SPECS['deepseek-coder'].prices, 'deepseek-chat')!, { inputTokens: 1, outputTokens: 0 }), 270_000_000_000n);
    const local = priceOf(MACHINE_TYPE_SPECS['qwen-coder'].prices, 'anything')!;
    assert.equal(tokenCost(local, { inputTokens: 5_000, outputTokens: 5_000 }), 0n, 'local inference has no API cost');
  });
});

describe('metering: reservations, price configuration and the minimum money limit', () => {
  const tables = defaultPriceTables();
  const USD = (s: string) => parseAmount(s, 'USD');

  it('reserves min(body bytes, context) input at the dearest input rate plus the output cap; refuses unpriced models and oversized caps', () => {
    const r = reserveCall('claude-code', tables, { model: 'claude-sonnet-4-5', bodyBytes: 100_000, requestedMaxOutput: 32_000 });
    assert.ok(r.ok);
    // 100k × 3.75/M (cache write is the dearest input) + 32k × 15/M = 0.375 + 0.48
    assert.equal(r.usd, parseAmount('0.855', 'ETH'));
    // Prices may have more decimals than USD amounts.
    assert.equal(tokenCost({ input: '0.075', output: '0' }, { inputTokens: 1_000_000, outputTokens: 0 }), parseAmount('0.075', 'ETH'));
    const big = reserveCall('claude-code', tables, { model: 'claude-sonnet-4-5', bodyBytes: 5_000_000, requestedMaxOutput: null });
    assert.ok(big.ok);
    assert.equal(big.inputTokens, 200_000, 'never more than the context');
    assert.equal(big.outputTokens, 64_000);
    assert.equal(big.usd, worstCallCost('claude-code', tables['claude-code']['claude-sonnet-4-5']!));
    const unknown = reserveCall('claude-code', tables, { model: 'claude-future', bodyBytes: 10, requestedMaxOutput: 10 });
    assert.equal(unknown.ok, false);
    assert.match((unknown as { reason: string }).reason, /model claude-future is not priced for claude-code/);
    const over = reserveCall('deepseek-coder', tables, { model: 'deepseek-chat', bodyBytes: 10, requestedMaxOutput: 100_000 });
    assert.equal(over.ok === false && over.code, 'output_over_limit');
  });

  it('applies operator prices over the defaults and names every problem', () => {
    const ok = applyPriceOverrides(tables, { 'claude-code': { 'claude-future': { input: '2', output: '10', cacheWrite: '2.50' }, 'claude-opus-4-1': null } });
    assert.ok(ok.ok);
    assert.equal(ok.tables['claude-code']['claude-future']!.cacheWrite, '2.50');
    assert.equal(ok.tables['claude-code']['claude-opus-4-1'], undefined);
    assert.equal(tables['claude-code']['claude-future'], undefined, 'the defaults are not changed');
    const bad = applyPriceOverrides(tables, { shell: {}, aider: { 'gpt-x': { input: 2, output: '-1', maxOutputTokens: 0, colour: 'red' } } });
    assert.equal(bad.ok, false);
    assert.deepEqual((bad as { problems: string[] }).problems, [
      'shell: not a model-backed machine type (one of claude-code, aider, qwen-coder, deepseek-coder, gemini-pro, local-llama)',
      'aider.gpt-x.colour: unknown field (known: input, output, cachedInput, cacheWrite, maxInputTokens, maxOutputTokens)',
      'aider.gpt-x.input: must be a decimal string of USD per million tokens, e.g. "3" or "0.30"',
      'aider.gpt-x.output: must be a decimal string of USD per million tokens, e.g. "3" or "0.30"',
      'aider.gpt-x.maxOutputTokens: must be a positive whole number of tokens',
    ]);
  });

  it('reads prices from AUTOVIBE_MODEL_PRICES at start, refusing a bad document with a clear message', () => {
    const config = loadConfig({
      AUTOVIBE_MODEL_PRICES: JSON.stringify({ 'gemini-pro': { 'gemini-3-pro': { input: '2', output: '12', cachedInput: '0.20' } } }),
    });
    assert.equal(config.modelPrices['gemini-pro']['gemini-3-pro']!.output, '12');
    assert.equal(config.modelPrices['gemini-pro']['gemini-2.5-pro']!.input, '1.25', 'defaults kept');
    assert.throws(
      () => loadConfig({ AUTOVIBE_MODEL_PRICES: '{"aider":{"gpt-x":{"input":"cheap","output":"1"}}}' }),
      /^ConfigError: invalid configuration: AUTOVIBE_MODEL_PRICES: aider\.gpt-x\.input: must be a decimal string/,
    );
    assert.throws(() => loadConfig({ AUTOVIBE_MODEL_PRICES: '{nope' }), /invalid configuration: AUTOVIBE_MODEL_PRICES: .*JSON/);
  });

  it('refuses a limit below one worst-case call plus compute, naming the minimum; raises the default to it', () => {
    const base = {
      type: 'claude-code' as const,
      model: null,
      projectDefault: USD('0.50'),
      currency: 'USD' as const,
      minutes: 30,
      hourlyPriceUsd: USD('0.02'),
      prices: tables,
      toCurrency: (u: bigint) => u,
    };
    // 200k × 3.75/M + 64k × 15/M = 0.75 + 0.96 = 1.71, plus 30 minutes at 0.02/h = 0.01
    const low = checkMoneyLimit({ ...base, requested: USD('0.01') });
    assert.deepEqual(low, {
      ok: false,
      field: 'limits.money',
      message:
        'limits.money: 0.01 USD cannot cover one claude-code call (claude-sonnet-4-5, worst case 1.71 USD) plus 30 minutes of compute (0.01 USD); use at least 1.72',
      minimum: '1.72',
      currency: 'USD',
    });
    assert.deepEqual(checkMoneyLimit({ ...base, requested: USD('1.72') }), { ok: true, limit: USD('1.72'), minimum: USD('1.72') });
    assert.deepEqual(checkMoneyLimit({ ...base, requested: null }), { ok: true, limit: USD('1.72'), minimum: USD('1.72') });
    assert.equal((checkMoneyLimit({ ...base, requested: null, projectDefault: USD('5.00') }) as { limit: bigint }).limit, USD('5.00'));
    const unpriced = checkMoneyLimit({ ...base, model: 'claude-future', requested: USD('100') });
    assert.equal(unpriced.ok === false && unpriced.field, 'model');
    // Local inference: compute only.
    assert.equal((checkMoneyLimit({ ...base, type: 'qwen-coder', requested: null, projectDefault: 0n }) as { limit: bigint }).limit, USD('0.01'));
  });
});

describe('aider output', () => {
  it('sums the tokens of every message and keeps the session cost', () => {
    const out = [
      'Aider v0.86.1',
      'Tokens: 2.3k sent, 150 received. Cost: $0.0069 message, $0.0069 session.',
      'Applied edit to hello.txt',
      'Tokens: 1.1k sent, 1.2k cache hit, 80 received. Cost: $0.0030 message, $0.0099 session.',
    ].join('\n');
    const r = parseAiderOutput(out);
    assert.deepEqual(r.reportedUsage, { inputTokens: 3400, outputTokens: 230 });
    assert.equal(r.reportedCostUsd, 0.0099);
    assert.equal(r.turns.length, 2);
  });
});

import assert from 'node:assert/strict';
import { isModelCall, maxOutputTokens, requestModel, usageFromResponse } from '../../activities/machines/usage.js';
import { parseAiderOutput } from '../../domain/agents/aider.js';
import { MACHINE_TYPE_SPECS, tokenCost } from '../../domain/machine-types.js';
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
    assert.deepEqual(usageFromResponse('anthropic', stream, 'req'), { model: 'claude-x', inputTokens: 60, outputTokens: 42 });
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
    assert.equal(maxOutputTokens('anthropic', { max_tokens: 999 }, 5), 999);
    assert.equal(maxOutputTokens('gemini', { generationConfig: { maxOutputTokens: 77 } }, 5), 77);
    assert.equal(maxOutputTokens('openai', {}, 5), 5);
  });
});

describe('token prices', () => {
  it('prices a million tokens at the listed rate, exactly, and rounds fractions up', () => {
    const spec = MACHINE_TYPE_SPECS['claude-code'];
    assert.equal(tokenCost(spec, 'claude-sonnet-4-5', { inputTokens: 1_000_000, outputTokens: 0 }), parseAmount('3', 'USD'));
    assert.equal(tokenCost(spec, 'claude-sonnet-4-5', { inputTokens: 0, outputTokens: 2_000_000 }), parseAmount('30', 'USD'));
    // An unknown model falls back to the type's '*' price.
    assert.equal(tokenCost(spec, 'claude-future', { inputTokens: 1_000_000, outputTokens: 0 }), parseAmount('3', 'USD'));
    // One token at $0.27/M is 0.00000027 USD exactly.
    assert.equal(tokenCost(MACHINE_TYPE_SPECS['deepseek-coder'], 'deepseek-chat', { inputTokens: 1, outputTokens: 0 }), 270_000_000_000n);
    assert.equal(tokenCost(MACHINE_TYPE_SPECS['qwen-coder'], 'anything', { inputTokens: 5_000, outputTokens: 5_000 }), 0n, 'local inference has no API cost');
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

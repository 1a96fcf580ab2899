import { StringDecoder } from 'node:string_decoder';
import { Context } from '@temporalio/activity';
import type { Logger } from 'pino';
import type { Db } from '../../store/db.js';
import { insertLogChunks, storedLogBytes, type LogStream, type NewLogChunk } from '../../store/machine-logs.js';

/** Output is written in batches this often, or sooner once this many bytes wait. */
const FLUSH_MS = 200;
const FLUSH_BYTES = 64 * 1024;

export interface LogSink {
  write(stream: LogStream, chunk: Buffer | string): void;
  /** Writes what is left (and the truncation count); safe to call twice. */
  close(): Promise<void>;
}

/**
 * A machine's output on its way to the database while the command runs (see store/machine-logs.ts):
 * batched, bounded at `limitBytes` per machine (then one marker line, and a count of what was
 * dropped at the end), and keyed by this activity's run and attempt so a retry never duplicates.
 * A failed write is retried with the next batch; the run itself never fails for its log.
 */
export async function openLogSink(db: Db, log: Pick<Logger, 'warn'>, o: { machineId: string; limitBytes: number }): Promise<LogSink> {
  const info = Context.current().info;
  const run = `${info.workflowExecution?.runId ?? info.workflowType ?? 'standalone'}:${info.activityId}`;
  const attempt = info.attempt;
  let used = await storedLogBytes(db, o.machineId, run);
  let pending: NewLogChunk[] = [];
  let pendingBytes = 0;
  let dropped = 0;
  let timer: NodeJS.Timeout | null = null;
  let chain = Promise.resolve();
  let closed = false;
  const decoders = new Map<LogStream, StringDecoder>();

  const push = (stream: LogStream, text: string, counted: boolean) => {
    // Postgres text holds no NUL.
    const clean = text.replaceAll('\u0000', '\uFFFD');
    if (!clean) return;
    const bytes = Buffer.byteLength(clean);
    if (counted) used += bytes;
    const last = pending.at(-1);
    if (last && last.stream === stream && last.bytes + bytes <= FLUSH_BYTES) {
      last.text += clean;
      last.bytes += bytes;
    } else pending.push({ machineId: o.machineId, run, attempt, stream, text: clean, bytes, at: new Date() });
    pendingBytes += bytes;
    if (pendingBytes >= FLUSH_BYTES) void flush();
    else timer ??= setTimeout(flush, FLUSH_MS);
  };

  const flush = () => {
    if (timer) clearTimeout(timer);
    timer = null;
    const batch = pending;
    pending = [];
    pendingBytes = 0;
    if (!batch.length) return chain;
    chain = chain.then(async () => {
      try {
        await insertLogChunks(db, batch);
      } catch (err) {
        log.warn({ machineId: o.machineId, err: (err as Error).message }, 'machine log write failed; retrying with the next batch');
        pending = [...batch, ...pending];
        pendingBytes += batch.reduce((n, c) => n + c.bytes, 0);
        timer ??= setTimeout(flush, FLUSH_MS * 5);
      }
    });
    return chain;
  };

  if (attempt > 1) push('system', `[attempt ${attempt}: this step started over; its output replaces the earlier attempt's]\n`, false);

  return {
    write(stream, chunk) {
      if (closed) return;
      let decoder = decoders.get(stream);
      if (!decoder) decoders.set(stream, (decoder = new StringDecoder('utf8')));
      const text = typeof chunk === 'string' ? chunk : decoder.write(chunk);
      const bytes = Buffer.byteLength(text);
      if (used + bytes > o.limitBytes) {
        if (dropped === 0)
          push('system', `\n[log truncated: this machine's output reached its ${o.limitBytes}-byte log limit; further output is dropped]\n`, false);
        dropped += bytes;
        return;
      }
      push(stream, text, true);
    },
    async close() {
      if (closed) return chain;
      closed = true;
      for (const [stream, decoder] of decoders) {
        const rest = decoder.end();
        if (rest && used + Buffer.byteLength(rest) <= o.limitBytes) push(stream, rest, true);
      }
      if (dropped > 0) push('system', `[log truncated: ${dropped} bytes of output dropped]\n`, false);
      await flush();
      // One more try for a batch that failed just now.
      if (pending.length) await flush();
      if (timer) clearTimeout(timer);
    },
  };
}

/** A one-line summary of an agent's model call for its log: the model, tokens, and the tools it called. */
export function describeTurn(call: {
  seq: number;
  model: string;
  status: number;
  usage?: { inputTokens: number; outputTokens: number } | null;
  responseText?: string;
}): string {
  const tools = new Set<string>();
  const text = call.responseText ?? '';
  // Anthropic `tool_use` blocks, OpenAI chat `function` calls and Responses `function_call` items.
  for (const re of [
    /"type"\s*:\s*"tool_use"[^{}]*?"name"\s*:\s*"([^"]{1,100})"/g,
    /"function"\s*:\s*\{\s*"name"\s*:\s*"([^"]{1,100})"/g,
    /"type"\s*:\s*"function_call"[^{}]*?"name"\s*:\s*"([^"]{1,100})"/g,
  ]) {
    for (const m of text.matchAll(re)) tools.add(m[1]!);
  }
  const usage = call.usage ? `, ${call.usage.inputTokens} tokens in, ${call.usage.outputTokens} out` : '';
  return `[turn ${call.seq}] ${call.model}: HTTP ${call.status}${usage}${tools.size ? `; tool calls: ${[...tools].join(', ')}` : ''}\n`;
}

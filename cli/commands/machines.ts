import fs from 'node:fs';
import type { Command } from 'commander';
import { ok, type Api, type BodyOf } from '../client.js';
import { CliError, EXIT, UsageError } from '../errors.js';
import { colors, info, printJson, printRecord, printTable, status } from '../output.js';
import { Progress } from '../progress.js';
import { need } from '../prompt.js';
import { ctxOf, intOption, moneyOption, pageOptions, printList, show, type Ctx } from '../runtime.js';
import { projectChoices } from './projects.js';

const FINAL = ['completed', 'failed', 'terminated', 'refused'];

type Machine = Awaited<ReturnType<typeof getMachine>>;
async function getMachine(api: Api, id: string, query: { waitFor?: string; timeout?: number } = {}) {
  return ok(api.GET('/machines/{id}', { params: { path: { id }, query } }));
}

function machineSummary(m: Machine): Record<string, unknown> {
  return {
    id: m.id,
    project: m.projectId,
    type: m.type,
    ...(m.routing ? { routing: `auto → ${m.type}: ${m.routing.reason}` } : {}),
    status: m.status,
    exitCode: m.exitCode,
    stopReason: m.stopReason,
    ...(m.error ? { error: m.error } : {}),
    ...(m.failureSummary ? { failure: m.failureSummary.summary } : {}),
    cost: `${m.cost.amount} ${m.cost.currency}`,
    limits: m.limits,
    command: m.command ?? m.prompt,
    provider: m.provider,
    checkpoints: m.checkpoints.join(', '),
    created: m.createdAt,
    ended: m.endedAt,
  };
}

/** The outcome line of an ended machine. */
function outcome(m: Machine): string {
  const exit = m.exitCode === null ? '' : ` (exit ${m.exitCode})`;
  const why = m.status === 'completed' ? '' : `: ${m.error ?? m.stopReason ?? 'no reason given'}`;
  return `machine ${m.id} ${status(m.status)}${exit}${why}`;
}

/**
 * Streams a machine's log (GET /logs?follow=true, which ends when the machine has ended and all is
 * sent) to stdout, or to stderr under --json; a status line on stderr meanwhile. Resolves with the
 * machine as it ended.
 */
async function follow(ctx: Ctx, id: string): Promise<Machine> {
  const progress = new Progress();
  const out = ctx.json ? (s: string) => process.stderr.write(s) : (s: string) => progress.write(s);
  let last = '';
  const showStatus = (s: string) => {
    if (s !== last) progress.update(`machine ${id} ${s}`);
    last = s;
  };
  // Leaving the follow leaves the machine running: say how to stop it.
  const interrupted = () => {
    progress.done(`stopped following; machine ${id} keeps running (autovibe machines terminate ${id})`);
    process.exit(130);
  };
  process.once('SIGINT', interrupted);
  showStatus((await getMachine(ctx.api, id)).status);
  // On a terminal the status line follows the machine; without one, only changes are printed.
  const poll = setInterval(() => {
    getMachine(ctx.api, id).then(
      (m) => !FINAL.includes(m.status) && showStatus(m.status),
      () => undefined,
    );
  }, 1000).unref();
  try {
    const stream = await ok(ctx.api.GET('/machines/{id}/logs', { params: { path: { id }, query: { follow: 'true' } }, parseAs: 'stream' }));
    if (stream) {
      const decoder = new TextDecoder();
      for await (const bytes of stream as unknown as AsyncIterable<Uint8Array>) out(decoder.decode(bytes, { stream: true }));
      out(decoder.decode());
    }
  } finally {
    clearInterval(poll);
    process.off('SIGINT', interrupted);
  }
  // The log ends once the machine has ended; its final row may still be settling for a moment.
  const ended = await getMachine(ctx.api, id, { waitFor: FINAL.join(','), timeout: 30 });
  progress.done(outcome(ended));
  return ended;
}

/** Exit 7 unless the machine completed. */
function exitFor(m: Machine): void {
  if (m.status !== 'completed') throw new CliError(outcome(m), EXIT.machineFailed);
}

export function registerMachines(program: Command): void {
  const machines = program.command('machines').description('Intelligent Machines: run, watch, stop');

  pageOptions(
    machines
      .command('list')
      .description('machines, newest first')
      .option('--project <id>', 'only this project')
      .option('--status <status>', 'only this status (e.g. running)'),
  ).action(async (o: { project?: string; status?: string }, cmd: Command) => {
    const { api } = ctxOf(cmd);
    const filter = { ...(o.project ? { projectId: o.project } : {}), ...(o.status ? { status: o.status } : {}) };
    await printList(cmd, (query) => ok(api.GET('/machines', { params: { query: { ...filter, ...query } } })), [
      ['id', (m) => m.id],
      ['project', (m) => m.projectId],
      ['type', (m) => m.type],
      ['status', (m) => m.status],
      ['exit', (m) => m.exitCode],
      ['cost', (m) => `${m.cost.amount} ${m.cost.currency}`],
      ['created', (m) => m.createdAt],
    ]);
  });

  machines
    .command('get <id>')
    .description('status, cost, checkpoints and stop reason of a machine')
    .option('--wait', 'wait (up to 60 s) until it has ended')
    .option('--wait-for <statuses>', 'wait (up to 60 s) until its status is one of these (comma-separated, e.g. running)')
    .action(async (id: string, o: { wait?: boolean; waitFor?: string }, cmd: Command) => {
      const { api } = ctxOf(cmd);
      const waitFor = o.waitFor ?? (o.wait ? FINAL.join(',') : undefined);
      const m = await getMachine(api, id, waitFor ? { waitFor, timeout: 60 } : {});
      show(cmd, m, () => printRecord(machineSummary(m)));
    });

  machines
    .command('run')
    .description('start a machine; --follow streams its log and exits with its outcome (0 completed, 7 otherwise)')
    .option('--project <id>', 'project (chosen from a list on a terminal)')
    .option('--type <type>', 'machine type: shell, auto (the router picks an agent type), claude-code, aider, …', 'shell')
    .option('--command <command>', 'shell command (shell machines)')
    .option('--prompt <prompt>', 'task for an agent machine')
    .option('--model <model>', 'model of an agent machine')
    .option('--checkpoint <id>', 'start from this checkpoint (default: the project root)')
    .addOption(moneyOption('--money <amount>', 'money limit, e.g. 0.10'))
    .addOption(intOption('--minutes <n>', 'time limit in minutes'))
    .addOption(intOption('--api-calls <n>', 'model-call limit (agent machines)'))
    .option('--no-cache', 'run even when an identical completed run could be reused')
    .option('--network <mode>', "network of this machine: none, registries or allowlist (default: the project's policy)")
    .option('--allow-host <host>', 'with --network allowlist: a host (name, *.suffix, optional :port), repeatable', (v: string, prev: string[] = []) => [
      ...prev,
      v,
    ])
    .option('--refuse-if-predicted-over', "refuse now when even the predicted cost's lower bound exceeds the limit or a budget's remaining amount")
    .option('--limit-from-prediction', 'without --money: limit the run to its predicted upper bound (when above the minimum)')
    .option('--idempotency-key <key>', 'retry-safe: the same key never starts a second machine')
    .option('-f, --follow', 'stream the log until the machine ends')
    .action(
      async (
        o: {
          project?: string;
          type: string;
          refuseIfPredictedOver?: boolean;
          limitFromPrediction?: boolean;
          command?: string;
          prompt?: string;
          model?: string;
          checkpoint?: string;
          money?: string;
          minutes?: number;
          apiCalls?: number;
          cache: boolean;
          network?: string;
          allowHost?: string[];
          idempotencyKey?: string;
          follow?: boolean;
        },
        cmd: Command,
      ) => {
        const ctx = ctxOf(cmd);
        const projectId = await need(o.project, { flag: '--project', message: 'Project', choices: () => projectChoices(ctx.api) });
        const work =
          o.type === 'shell'
            ? { command: await need(o.command, { flag: '--command', message: 'Command' }) }
            : { prompt: await need(o.prompt, { flag: '--prompt', message: 'Prompt' }) };
        const body = {
          projectId,
          type: o.type,
          ...work,
          ...(o.model ? { model: o.model } : {}),
          ...(o.checkpoint ? { checkpointId: o.checkpoint } : {}),
          limits: { ...(o.money ? { money: o.money } : {}), ...(o.minutes ? { minutes: o.minutes } : {}), ...(o.apiCalls ? { apiCalls: o.apiCalls } : {}) },
          ...(o.cache === false ? { cache: false } : {}),
          ...(o.refuseIfPredictedOver ? { refuseIfPredictedOver: true } : {}),
          ...(o.limitFromPrediction ? { limitFromPrediction: true } : {}),
          ...(o.network || o.allowHost ? { network: { mode: o.network ?? 'allowlist', ...(o.allowHost ? { hosts: o.allowHost } : {}) } } : {}),
        } as BodyOf<'/machines', 'post'>;
        const accepted = await ok(ctx.api.POST('/machines', { body, headers: o.idempotencyKey ? { 'idempotency-key': o.idempotencyKey } : {} }));
        if (!o.follow) return show(cmd, accepted, (a) => process.stdout.write(`${a.id} ${status(a.status)}\n`));
        if (!ctx.json) process.stderr.write(`${colors.dim(`machine ${accepted.id} started`)}\n`);
        const ended = await follow(ctx, accepted.id);
        if (ctx.json) printJson(ended);
        exitFor(ended);
      },
    );

  machines
    .command('logs <id>')
    .description("a machine's output; --follow streams it until the machine ends (then exits with its outcome)")
    .option('-f, --follow', 'stream until the machine ends')
    .option('--stream <streams>', 'stdout, stderr, agent, system (comma-separated)')
    .action(async (id: string, o: { follow?: boolean; stream?: string }, cmd: Command) => {
      const ctx = ctxOf(cmd);
      if (o.follow && !o.stream) return exitFor(await follow(ctx, id));
      const query = { ...(o.stream ? { stream: o.stream } : {}), ...(o.follow ? { follow: 'true' } : {}) };
      const text = await ok(ctx.api.GET('/machines/{id}/logs', { params: { path: { id }, query }, parseAs: 'text' }));
      process.stdout.write(text ?? '');
    });

  machines
    .command('artifacts <id> [name]')
    .description("a machine's artifacts (conversation, tool output, declared files); with a name, that artifact's bytes (-o to save them)")
    .option('-o, --output <file>', 'write the artifact to this file instead of stdout')
    .action(async (id: string, name: string | undefined, o: { output?: string }, cmd: Command) => {
      const { api } = ctxOf(cmd);
      if (name === undefined) {
        const list = await ok(api.GET('/machines/{id}/artifacts', { params: { path: { id } } }));
        return show(cmd, list, (v) =>
          printTable(v.items, [
            ['name', (a) => a.name],
            ['size', (a) => a.size],
            ['sha256', (a) => a.sha256.slice(0, 16)],
            ['checkpoint', (a) => a.checkpointId],
            ['created', (a) => a.createdAt],
          ]),
        );
      }
      const bytes = Buffer.from(
        (await ok(api.GET('/machines/{id}/artifacts/{name}', { params: { path: { id, name } }, parseAs: 'arrayBuffer' }))) as ArrayBuffer,
      );
      if (!o.output) return void process.stdout.write(bytes);
      fs.writeFileSync(o.output, bytes);
      info(`${bytes.length} bytes written to ${o.output}`);
    });

  const control = (name: string, description: string, run: (api: Api, id: string) => Promise<unknown>) =>
    machines
      .command(`${name} <id>`)
      .description(description)
      .action(async (id: string, _o, cmd: Command) => {
        const { api } = ctxOf(cmd);
        const result = await run(api, id);
        show(cmd, result, (r) => printRecord(r as Record<string, unknown>));
      });
  control('terminate', 'stop a machine cleanly (final checkpoint, cost settled)', (api, id) =>
    ok(api.POST('/machines/{id}/terminate', { params: { path: { id } } })),
  );
  control('checkpoint', 'take a checkpoint of a running machine now', (api, id) => ok(api.POST('/machines/{id}/checkpoint', { params: { path: { id } } })));

  machines
    .command('rate <id>')
    .description("rate a machine's work 1 (poor) to 5 (excellent); a repeat replaces your earlier rating")
    .addOption(intOption('--rating <n>', 'rating, 1 to 5').makeOptionMandatory())
    .option('--comment <text>', 'what was good or bad (at most 2000 characters)')
    .action(async (id: string, o: { rating: number; comment?: string }, cmd: Command) => {
      const { api } = ctxOf(cmd);
      if (o.rating < 1 || o.rating > 5) throw new UsageError(`--rating: ${o.rating} must be from 1 to 5`);
      if (o.comment !== undefined && o.comment.length > 2000) throw new UsageError(`--comment: ${o.comment.length} characters, at most 2000`);
      const body = { rating: o.rating, ...(o.comment !== undefined ? { comment: o.comment } : {}) };
      const r = await ok(api.POST('/machines/{id}/feedback', { params: { path: { id } }, body }));
      show(cmd, r, (v) => printRecord(v as Record<string, unknown>));
    });
  machines
    .command('feedback <id>')
    .description('every rating given on a machine (one per key)')
    .action(async (id: string, _o, cmd: Command) => {
      const { api } = ctxOf(cmd);
      const r = await ok(api.GET('/machines/{id}/feedback', { params: { path: { id } } }));
      show(cmd, r, (v) =>
        printTable(v.items, [
          ['rating', (f) => f.rating],
          ['by', (f) => f.createdBy],
          ['updated', (f) => f.updatedAt],
          ['comment', (f) => f.comment ?? ''],
        ]),
      );
    });

  machines
    .command('extend <id>')
    .description('give a paused machine more money, time or API calls')
    .addOption(moneyOption('--money <amount>', 'more money'))
    .addOption(intOption('--minutes <n>', 'more minutes'))
    .addOption(intOption('--api-calls <n>', 'more model calls'))
    .action(async (id: string, o: { money?: string; minutes?: number; apiCalls?: number }, cmd: Command) => {
      const { api } = ctxOf(cmd);
      const body = {
        ...(o.money ? { money: o.money } : {}),
        ...(o.minutes ? { minutes: o.minutes } : {}),
        ...(o.apiCalls ? { apiCalls: o.apiCalls } : {}),
      } as BodyOf<'/machines/{id}/extend', 'post'>;
      const r = await ok(api.POST('/machines/{id}/extend', { params: { path: { id } }, body }));
      show(cmd, r, (v) => printRecord(v as Record<string, unknown>));
    });
}

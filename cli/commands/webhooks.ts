import { Option, type Command } from 'commander';
import { ok, type BodyOf } from '../client.js';
import { UsageError } from '../errors.js';
import { colors, printRecord, status } from '../output.js';
import { need, readStdin } from '../prompt.js';
import { ctxOf, pageOptions, printList, show } from '../runtime.js';

interface WebhookRow {
  id: string;
  projectId: string | null;
  kind: string;
  url: string;
  channel: string | null;
  events: string[];
  status: string;
  consecutiveFailures: number;
  disabledReason: string | null;
}

const columns: Array<[string, (w: WebhookRow) => unknown]> = [
  ['id', (w) => w.id],
  ['project', (w) => w.projectId ?? 'deployment'],
  ['kind', (w) => w.kind],
  ['url', (w) => (w.channel ? `${w.channel} via ${w.url}` : w.url)],
  ['events', (w) => w.events.join(', ')],
  ['status', (w) => status(w.status)],
  ['failures', (w) => w.consecutiveFailures],
];

const events = (list: string | undefined) =>
  list
    ?.split(',')
    .map((s) => s.trim())
    .filter(Boolean);

/** webhooks list|get|create|update|enable|disable|rotate-secret|delete|deliveries|redeliver */
export function registerWebhooks(program: Command): void {
  const webhooks = program.command('webhooks').description('outgoing webhooks and Slack: endpoints, delivery log, redelivery');

  pageOptions(webhooks.command('list').description('endpoints (never their secrets)').option('--project <id>', 'only this project')).action(
    async (o: { project?: string }, cmd: Command) => {
      const { api } = ctxOf(cmd);
      await printList(cmd, (query) => ok(api.GET('/webhooks', { params: { query: { ...(o.project ? { projectId: o.project } : {}), ...query } } })), columns);
    },
  );

  const printEndpoint = (cmd: Command, w: WebhookRow & Record<string, unknown>) =>
    show(cmd, w, () =>
      printRecord({ ...w, events: w.events.join(', '), projectId: w.projectId ?? 'deployment' }, [
        'id',
        'projectId',
        'kind',
        'url',
        'channel',
        'description',
        'events',
        'status',
        'disabledReason',
        'consecutiveFailures',
        'failingSince',
        'cursor',
        'createdAt',
      ]),
    );

  webhooks
    .command('get <id>')
    .description('one endpoint: status, failures, cursor')
    .action(async (id: string, _o, cmd: Command) => {
      const { api } = ctxOf(cmd);
      printEndpoint(cmd, await ok(api.GET('/webhooks/{id}', { params: { path: { id } } })));
    });

  const printSecret = (cmd: Command, w: { id: string; secret: string }) =>
    show(cmd, w, () => {
      process.stderr.write(`${w.id}\n${colors.yellow('the signing secret is shown only now:')}\n`);
      process.stdout.write(`${w.secret}\n`);
    });

  webhooks
    .command('create')
    .description('create an endpoint; prints its signing secret (whsec_…) once')
    .option('--project <id>', 'the project (admins: leave out for a deployment-wide endpoint)')
    .option('--url <url>', 'where to POST (https; a Slack incoming-webhook URL for --kind slack; the Slack Web API base for slack-bot)')
    .option('--events <kinds>', 'comma-separated kinds or families, e.g. machine.*,alert.*')
    .addOption(
      new Option('--kind <kind>', 'webhook (signed JSON), slack (incoming webhook, Block Kit) or slack-bot (bot token and channel)')
        .choices(['webhook', 'slack', 'slack-bot'])
        .default('webhook'),
    )
    .option('--channel <channel>', 'slack-bot: the channel to post to, e.g. #alerts')
    .option('--token-stdin', 'slack-bot: read the bot token from stdin (or set AUTOVIBE_SLACK_BOT_TOKEN); never give it as an argument')
    .option('--description <text>', 'a note')
    .action(
      async (
        o: { project?: string; url?: string; events?: string; kind: string; channel?: string; tokenStdin?: boolean; description?: string },
        cmd: Command,
      ) => {
        const { api } = ctxOf(cmd);
        const bot = o.kind === 'slack-bot';
        const token = bot ? (o.tokenStdin ? await readStdin() : process.env.AUTOVIBE_SLACK_BOT_TOKEN || undefined) : undefined;
        if (bot && !token) throw new UsageError('a slack-bot endpoint needs its bot token: --token-stdin, or set AUTOVIBE_SLACK_BOT_TOKEN');
        const body = {
          ...(o.project ? { projectId: o.project } : {}),
          kind: o.kind,
          ...(bot ? (o.url ? { url: o.url } : {}) : { url: await need(o.url, { flag: '--url', message: 'URL' }) }),
          ...(bot ? { channel: await need(o.channel, { flag: '--channel', message: 'Slack channel (e.g. #alerts)' }), token } : {}),
          events: events(await need(o.events, { flag: '--events', message: 'Event kinds (comma-separated, e.g. machine.*,alert.*)' })),
          ...(o.description ? { description: o.description } : {}),
        } as BodyOf<'/webhooks', 'post'>;
        printSecret(cmd, await ok(api.POST('/webhooks', { body })));
      },
    );

  const patch = async (cmd: Command, id: string, body: BodyOf<'/webhooks/{id}', 'patch'>) => {
    const { api } = ctxOf(cmd);
    printEndpoint(cmd, await ok(api.PATCH('/webhooks/{id}', { params: { path: { id } }, body })));
  };

  webhooks
    .command('update <id>')
    .description('change the url, events or description (a slack-bot endpoint: also its channel or token)')
    .option('--url <url>', 'new URL')
    .option('--events <kinds>', 'new comma-separated kinds or families')
    .option('--description <text>', 'new note')
    .option('--channel <channel>', 'slack-bot: new channel')
    .option('--token-stdin', 'slack-bot: read a new bot token from stdin')
    .action(async (id: string, o: { url?: string; events?: string; description?: string; channel?: string; tokenStdin?: boolean }, cmd: Command) => {
      if (o.url === undefined && o.events === undefined && o.description === undefined && o.channel === undefined && !o.tokenStdin)
        throw new UsageError('give --url, --events, --description, --channel or --token-stdin');
      await patch(cmd, id, {
        ...(o.url !== undefined ? { url: o.url } : {}),
        ...(o.events !== undefined ? { events: events(o.events) } : {}),
        ...(o.description !== undefined ? { description: o.description } : {}),
        ...(o.channel !== undefined ? { channel: o.channel } : {}),
        ...(o.tokenStdin ? { token: await readStdin() } : {}),
      } as BodyOf<'/webhooks/{id}', 'patch'>);
    });

  webhooks
    .command('enable <id>')
    .description('re-enable an endpoint (its failures forgotten); delivery goes on after its cursor')
    .action(async (id: string, _o, cmd: Command) => patch(cmd, id, { enabled: true }));

  webhooks
    .command('disable <id>')
    .description('stop delivering to an endpoint until it is enabled again')
    .action(async (id: string, _o, cmd: Command) => patch(cmd, id, { enabled: false }));

  webhooks
    .command('rotate-secret <id>')
    .description('a new signing secret, printed once; the old one also signs for 24 hours')
    .action(async (id: string, _o, cmd: Command) => {
      const { api } = ctxOf(cmd);
      printSecret(cmd, await ok(api.POST('/webhooks/{id}/rotate-secret', { params: { path: { id } } })));
    });

  webhooks
    .command('delete <id>')
    .description('delete an endpoint and its delivery log')
    .action(async (id: string, _o, cmd: Command) => {
      const { api } = ctxOf(cmd);
      await ok(api.DELETE('/webhooks/{id}', { params: { path: { id } } }));
      show(cmd, { id, status: 'deleted' }, () => process.stderr.write(`webhook ${id} deleted\n`));
    });

  pageOptions(webhooks.command('deliveries <id>').description('the delivery log, newest first, with each attempt')).action(
    async (id: string, _o, cmd: Command) => {
      const { api } = ctxOf(cmd);
      await printList(cmd, (query) => ok(api.GET('/webhooks/{id}/deliveries', { params: { path: { id }, query } })), [
        ['id', (d) => d.id],
        ['event', (d) => d.eventSeq],
        ['webhook-id', (d) => d.messageId],
        ['status', (d) => status(d.status)],
        ['attempts', (d) => d.attempts],
        ['last', (d) => d.attemptLog.at(-1)?.statusCode ?? d.attemptLog.at(-1)?.error ?? ''],
        ['redelivery of', (d) => d.redeliveryOf ?? ''],
        ['at', (d) => d.createdAt],
      ]);
    },
  );

  webhooks
    .command('redeliver <id> <deliveryId>')
    .description("send a delivery's event again (same webhook-id)")
    .action(async (id: string, deliveryId: string, _o, cmd: Command) => {
      const { api } = ctxOf(cmd);
      const d = await ok(api.POST('/webhooks/{id}/deliveries/{deliveryId}/redeliver', { params: { path: { id, deliveryId } } }));
      show(cmd, d, () => process.stdout.write(`${d.id} ${status(d.status)} (redelivery of ${d.redeliveryOf}, ${d.messageId})\n`));
    });
}

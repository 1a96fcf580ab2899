import { Option, type Command } from 'commander';
import { ok, type BodyOf } from '../client.js';
import { CliError, exitCodeOfStatus, UsageError } from '../errors.js';
import { colors, info, printJson, printRecord, printTable, status } from '../output.js';
import { need } from '../prompt.js';
import { ctxOf, intOption, jsonMode, moneyOption, pageOptions, printList, readDataFile, show } from '../runtime.js';
import { breakdownOptions, breakdownQuery, printForecast, printScopeBreakdown, projectChoices, type BreakdownOptions } from './projects.js';
import { collect, pairs } from './settings.js';

/** whoami, payments, cost centers, keys, audit, events and batch. */
export function registerAdmin(program: Command): void {
  program
    .command('whoami')
    .description('the calling key: role, projects, expiry, and its user')
    .action(async (_o, cmd: Command) => {
      const { api, conn } = ctxOf(cmd);
      const me = await ok(api.GET('/whoami'));
      show(cmd, { ...me, apiUrl: conn.apiUrl, profile: conn.profile, keySource: conn.keySource }, (v) =>
        printRecord({ ...v, user: `${me.user.name} (${me.user.id})`, projectIds: me.projectIds?.join(', ') ?? 'all' }, [
          'user',
          'name',
          'role',
          'projectIds',
          'prefix',
          'expiresAt',
          'apiUrl',
          'profile',
          'keySource',
        ]),
      );
    });

  const payments = program.command('payments').description('top-ups of the prepaid balance and their attempts');

  payments
    .command('topup [project]')
    .description('top up a project (owner): starts the payment cascade over its payment methods')
    .addOption(moneyOption('--amount <amount>', 'amount, e.g. 25.00'))
    .option('--currency <code>', 'currency', 'USD')
    .action(async (project: string | undefined, o: { amount?: string; currency: string }, cmd: Command) => {
      const { api } = ctxOf(cmd);
      const id = await need(project, { flag: '<project>', message: 'Project', choices: () => projectChoices(api) });
      const amount = await need(o.amount, { flag: '--amount', message: 'Amount' });
      const body = { amount, currency: o.currency } as BodyOf<'/projects/{id}/topups', 'post'>;
      const r = await ok(api.POST('/projects/{id}/topups', { params: { path: { id } }, body }));
      show(cmd, r, (v) => process.stdout.write(`${v.paymentId} ${status(v.status)}\n`));
    });

  pageOptions(payments.command('list [project]').description("a project's payments, newest first, with how many attempts each took")).action(
    async (project: string | undefined, _o, cmd: Command) => {
      const { api } = ctxOf(cmd);
      const id = await need(project, { flag: '<project>', message: 'Project', choices: () => projectChoices(api) });
      await printList(cmd, (query) => ok(api.GET('/projects/{id}/payments', { params: { path: { id }, query } })), [
        ['id', (p) => p.id],
        ['amount', (p) => `${p.amount} ${p.currency}`],
        ['status', (p) => p.status],
        ['paid by', (p) => p.paidBy],
        ['attempts', (p) => p.attempts.length],
        ['created', (p) => p.createdAt],
      ]);
    },
  );

  payments
    .command('get <id>')
    .description('a payment: status and every attempt')
    .option('--wait', 'wait (up to 60 s) until it has succeeded, failed or needs approval')
    .action(async (id: string, o: { wait?: boolean }, cmd: Command) => {
      const { api } = ctxOf(cmd);
      const query = o.wait ? { waitFor: 'succeeded,failed,manual_required', timeout: 60 } : {};
      const p = await ok(api.GET('/payments/{id}', { params: { path: { id }, query } }));
      show(cmd, p, () => {
        printRecord({ ...p, attempts: p.attempts.length }, ['id', 'projectId', 'amount', 'currency', 'status', 'paidBy', 'error', 'createdAt', 'endedAt']);
        printTable(p.attempts, [
          ['#', (a) => a.seq],
          ['method', (a) => a.method],
          ['status', (a) => a.status],
          ['tries', (a) => a.tries],
          ['error', (a) => a.error],
        ]);
      });
    });

  payments
    .command('balance [project]')
    .description('the prepaid balance of a project')
    .action(async (project: string | undefined, _o, cmd: Command) => {
      const { api } = ctxOf(cmd);
      const id = await need(project, { flag: '<project>', message: 'Project', choices: () => projectChoices(api) });
      const b = await ok(api.GET('/projects/{id}/balance', { params: { path: { id } } }));
      show(cmd, b, (v) => printRecord(v as Record<string, unknown>));
    });

  payments
    .command('approve <id>')
    .description('approve a payment waiting for manual approval (owner)')
    .action(async (id: string, _o, cmd: Command) => {
      const { api } = ctxOf(cmd);
      const r = await ok(api.POST('/payments/{id}/approve', { params: { path: { id } } }));
      show(cmd, r, (v) => process.stdout.write(`${v.paymentId} ${status(v.status)}\n`));
    });

  const methods = payments.command('methods').description('the ordered payment methods a top-up tries');
  const printMethods = (v: { projectId: string; methods: unknown[] }) =>
    printTable(
      v.methods.map((m, i) => ({ i, ...(m as Record<string, unknown>) }) as Record<string, unknown> & { i: number }),
      [
        ['#', (m) => m.i + 1],
        ['kind', (m) => m.kind],
        ['settings', (m) => Object.fromEntries(Object.entries(m).filter(([k]) => k !== 'i' && k !== 'kind'))],
      ],
    );
  methods
    .command('get [project]')
    .description("a project's payment methods, in the order they are tried")
    .action(async (project: string | undefined, _o, cmd: Command) => {
      const { api } = ctxOf(cmd);
      const id = await need(project, { flag: '<project>', message: 'Project', choices: () => projectChoices(api) });
      show(cmd, await ok(api.GET('/projects/{id}/payment-methods', { params: { path: { id } } })), printMethods);
    });
  methods
    .command('set [project]')
    .description(
      'set the methods in order (owner): --method kind[:setting=value,...] repeated, e.g. --method credits --method manual:timeoutSeconds=600 --method card:customer=cus_1,paymentMethod=pm_card_visa',
    )
    .option('--method <spec>', 'a method (repeatable, tried in the order given)', collect)
    .action(async (project: string | undefined, o: { method?: string[] }, cmd: Command) => {
      const { api } = ctxOf(cmd);
      const id = await need(project, { flag: '<project>', message: 'Project', choices: () => projectChoices(api) });
      if (!o.method?.length) throw new UsageError('missing --method (repeat it for each method, in order)');
      const list = o.method.map((spec) => {
        const [kind, settings] = spec.split(/:(.*)/s) as [string, string | undefined];
        const fields = settings ? pairs('--method', settings.split(','), (v) => (/^\d+$/.test(v) ? Number(v) : v)) : {};
        return { kind, ...fields };
      });
      const body = { methods: list } as BodyOf<'/projects/{id}/payment-methods', 'put'>;
      show(cmd, await ok(api.PUT('/projects/{id}/payment-methods', { params: { path: { id } }, body })), printMethods);
    });

  const credits = payments.command('credits').description('free credits a credits method pays from first');
  credits
    .command('grant [project]')
    .description('grant free credits until --expires-at (admin)')
    .addOption(moneyOption('--amount <amount>', 'amount, e.g. 50.00'))
    .option('--currency <code>', 'currency', 'USD')
    .option('--expires-at <time>', 'ISO 8601 expiry, e.g. 2030-01-01T00:00:00Z')
    .action(async (project: string | undefined, o: { amount?: string; currency: string; expiresAt?: string }, cmd: Command) => {
      const { api } = ctxOf(cmd);
      const id = await need(project, { flag: '<project>', message: 'Project', choices: () => projectChoices(api) });
      const body = {
        amount: await need(o.amount, { flag: '--amount', message: 'Amount' }),
        currency: o.currency,
        expiresAt: await need(o.expiresAt, { flag: '--expires-at', message: 'Expires at (ISO 8601)' }),
      } as BodyOf<'/projects/{id}/credits', 'post'>;
      show(cmd, await ok(api.POST('/projects/{id}/credits', { params: { path: { id } }, body })), (v) => printRecord(v as Record<string, unknown>));
    });
  credits
    .command('list [project]')
    .description('credits with what remains of each')
    .action(async (project: string | undefined, _o, cmd: Command) => {
      const { api } = ctxOf(cmd);
      const id = await need(project, { flag: '<project>', message: 'Project', choices: () => projectChoices(api) });
      const page = await ok(api.GET('/projects/{id}/credits', { params: { path: { id } } }));
      show(cmd, page, (v) =>
        printTable(v.items, [
          ['id', (c) => c.id],
          ['amount', (c) => `${c.amount} ${c.currency}`],
          ['remaining', (c) => c.remaining],
          ['expires', (c) => c.expiresAt],
        ]),
      );
    });

  const autoTopup = payments.command('auto-topup').description('a top-up whenever the prepaid balance runs low');
  autoTopup
    .command('set [project]')
    .description('top up --amount whenever the balance not held by running machines falls below --threshold (owner)')
    .addOption(moneyOption('--amount <amount>', 'amount, e.g. 25.00'))
    .option('--currency <code>', 'currency', 'USD')
    .addOption(moneyOption('--threshold <amount>', "in the project's currency (default: the amount)"))
    .action(async (project: string | undefined, o: { amount?: string; currency: string; threshold?: string }, cmd: Command) => {
      const { api } = ctxOf(cmd);
      const id = await need(project, { flag: '<project>', message: 'Project', choices: () => projectChoices(api) });
      const body = {
        amount: await need(o.amount, { flag: '--amount', message: 'Amount' }),
        currency: o.currency,
        ...(o.threshold ? { threshold: o.threshold } : {}),
      } as BodyOf<'/projects/{id}/auto-topup', 'put'>;
      show(cmd, await ok(api.PUT('/projects/{id}/auto-topup', { params: { path: { id } }, body })), (v) => printRecord(v as Record<string, unknown>));
    });
  autoTopup
    .command('off [project]')
    .description('stop the automatic top-up')
    .action(async (project: string | undefined, _o, cmd: Command) => {
      const { api } = ctxOf(cmd);
      const id = await need(project, { flag: '<project>', message: 'Project', choices: () => projectChoices(api) });
      await ok(api.DELETE('/projects/{id}/auto-topup', { params: { path: { id } } }));
      show(cmd, { projectId: id, autoTopup: null }, () => info(`automatic top-up of ${id} stopped`));
    });

  const costCenters = program.command('cost-centers').description('cost centers and departments');

  pageOptions(costCenters.command('list').description('cost centers').option('--department <name>', 'only this department')).action(
    async (o: { department?: string }, cmd: Command) => {
      const { api } = ctxOf(cmd);
      await printList(
        cmd,
        (query) => ok(api.GET('/cost-centers', { params: { query: { ...query, ...(o.department ? { department: o.department } : {}) } } })),
        [
          ['id', (c) => c.id],
          ['name', (c) => c.name],
          ['kind', (c) => c.kind],
          ['department', (c) => c.department],
        ],
      );
    },
  );

  costCenters
    .command('get <id>')
    .description('a cost center with its budget')
    .action(async (id: string, _o, cmd: Command) => {
      const { api } = ctxOf(cmd);
      const c = await ok(api.GET('/cost-centers/{id}', { params: { path: { id } } }));
      show(cmd, c, (v) => printRecord(v as Record<string, unknown>));
    });

  costCenters
    .command('create')
    .description('create a cost center (admin)')
    .option('--name <name>', 'name')
    .addOption(new Option('--kind <kind>', 'kind').choices(['development', 'testing', 'deployment']))
    .option('--department <name>', 'department')
    .action(async (o: { name?: string; kind?: string; department?: string }, cmd: Command) => {
      const { api } = ctxOf(cmd);
      const body = {
        name: await need(o.name, { flag: '--name', message: 'Name' }),
        kind: await need(o.kind, {
          flag: '--kind',
          message: 'Kind',
          choices: async () => ['development', 'testing', 'deployment'].map((k) => ({ name: k, value: k })),
        }),
        department: await need(o.department, { flag: '--department', message: 'Department' }),
      } as BodyOf<'/cost-centers', 'post'>;
      const c = await ok(api.POST('/cost-centers', { body }));
      show(cmd, c, (v) => printRecord(v as Record<string, unknown>));
    });

  costCenters
    .command('budget <id>')
    .description("set a cost center's budget (admin)")
    .addOption(moneyOption('--amount <amount>', 'the limit, e.g. 100.00'))
    .option('--currency <code>', 'currency', 'USD')
    .addOption(new Option('--period <period>', 'budget window').choices(['daily', 'weekly', 'monthly', 'total']).default('monthly'))
    .action(async (id: string, o: { amount?: string; currency: string; period: string }, cmd: Command) => {
      const { api } = ctxOf(cmd);
      const amount = await need(o.amount, { flag: '--amount', message: 'Budget amount' });
      const body = { amount, currency: o.currency, period: o.period } as BodyOf<'/cost-centers/{id}/budget', 'put'>;
      show(cmd, await ok(api.PUT('/cost-centers/{id}/budget', { params: { path: { id } }, body })), (v) => printRecord(v as Record<string, unknown>));
    });

  costCenters
    .command('costs <id>')
    .description("a cost center's cost events and totals per currency, and their grand total in one currency")
    .option('--currency <code>', 'the currency of the grand total', 'USD')
    .action(async (id: string, o: { currency: string }, cmd: Command) => {
      const { api } = ctxOf(cmd);
      const c = await ok(api.GET('/cost-centers/{id}/costs', { params: { path: { id }, query: { currency: o.currency } } }));
      show(cmd, c, (v) => {
        printTable(v.totals, [
          ['total', (t) => `${t.amount} ${t.currency}`],
          ['by category', (t) => t.byCategory],
        ]);
        printRecord({ grandTotal: `${v.grandTotal.amount} ${v.grandTotal.currency}` });
      });
    });

  costCenters
    .command('forecast <id>')
    .description("a cost center's stored spend forecast")
    .action(async (id: string, _o, cmd: Command) => {
      const { api } = ctxOf(cmd);
      show(cmd, await ok(api.GET('/cost-centers/{id}/forecast', { params: { path: { id } } })), printForecast);
    });

  breakdownOptions(
    costCenters.command('breakdown <id>').description('spend allocated to a cost center grouped by one dimension (project too) and currency'),
  ).action(async (id: string, o: BreakdownOptions, cmd: Command) => {
    const { api } = ctxOf(cmd);
    show(cmd, await ok(api.GET('/cost-centers/{id}/costs/breakdown', { params: { path: { id }, query: breakdownQuery(o) } })), printScopeBreakdown);
  });

  const reallocation = costCenters.command('reallocation').description("moving budget between a cost center's projects by ROI and use");
  reallocation
    .command('get <id>')
    .description("a cost center's reallocation settings")
    .action(async (id: string, _o, cmd: Command) => {
      const { api } = ctxOf(cmd);
      show(cmd, await ok(api.GET('/cost-centers/{id}/reallocation', { params: { path: { id } } })), (v) => printRecord(v as Record<string, unknown>));
    });
  reallocation
    .command('set <id>')
    .description("set a cost center's reallocation (admin); amounts in its budget's currency")
    .option('--enabled', 'run daily on the schedule')
    .option('--no-enabled', 'do not run (previews still work)')
    .option('--dry-run', 'scheduled runs only preview')
    .addOption(intOption('--max-step-percent <n>', 'at most this % of a project limit per run (1-50, default 10)'))
    .addOption(intOption('--lookback-days <n>', 'days of spend, use and ROI looked at (1-90, default 7)'))
    .addOption(moneyOption('--min-allocation <amount>', 'no project limit goes below this (default 0)'))
    .addOption(moneyOption('--max-allocation <amount>', 'no project limit goes above this'))
    .action(async (id: string, o: ReallocationOptions, cmd: Command) => {
      const { api } = ctxOf(cmd);
      const body = reallocationBody(o) as BodyOf<'/cost-centers/{id}/reallocation', 'put'>;
      show(cmd, await ok(api.PUT('/cost-centers/{id}/reallocation', { params: { path: { id } }, body })), (v) => printRecord(v as Record<string, unknown>));
    });
  reallocation
    .command('run <id>')
    .description('run the reallocation now (admin); --dry-run only previews the moves')
    .option('--dry-run', 'preview: change nothing')
    .action(async (id: string, o: { dryRun?: boolean }, cmd: Command) => {
      const { api } = ctxOf(cmd);
      const query = o.dryRun ? { dryRun: 'true' as const } : {};
      show(cmd, await ok(api.POST('/cost-centers/{id}/reallocation/runs', { params: { path: { id }, query } })), printReallocationRun);
    });
  reallocation
    .command('runs <id>')
    .description("a cost center's reallocation runs, newest first, with their moves")
    .addOption(intOption('--limit <n>', 'at most this many runs (default 20)'))
    .action(async (id: string, o: { limit?: number }, cmd: Command) => {
      const { api } = ctxOf(cmd);
      const query = o.limit !== undefined ? { limit: String(o.limit) } : {};
      show(cmd, await ok(api.GET('/cost-centers/{id}/reallocation/runs', { params: { path: { id }, query } })), (v) => {
        for (const run of v.items) printReallocationRun(run);
      });
    });

  costCenters
    .command('assign <project> <costCenter>')
    .description('allocate a project to a cost center ("none" to clear it)')
    .action(async (project: string, costCenter: string, _o, cmd: Command) => {
      const { api } = ctxOf(cmd);
      const body = { costCenterId: costCenter === 'none' ? null : costCenter };
      const p = await ok(api.PUT('/projects/{id}/cost-center', { params: { path: { id: project } }, body }));
      show(cmd, p, (v) => process.stdout.write(`${v.id} → ${v.costCenterId ?? 'no cost center'}\n`));
    });

  const keys = program.command('keys').description('API keys: roles, projects, rotation');
  const keyColumns = [
    ['id', (k) => k.id],
    ['name', (k) => k.name],
    ['role', (k) => k.role],
    ['prefix', (k) => k.prefix],
    ['projects', (k) => k.projectIds?.join(', ') ?? 'all'],
    ['status', (k) => k.status],
    ['expires', (k) => k.expiresAt],
    ['last used', (k) => k.lastUsedAt],
  ] satisfies Array<
    [
      string,
      (k: {
        id: string;
        name: string;
        role: string;
        prefix: string | null;
        projectIds: string[] | null;
        status: string;
        expiresAt: string | null;
        lastUsedAt: string | null;
      }) => unknown,
    ]
  >;

  pageOptions(keys.command('list').description('keys this key may manage (never their secrets)')).action(async (_o, cmd: Command) => {
    const { api } = ctxOf(cmd);
    await printList(cmd, (query) => ok(api.GET('/keys', { params: { query } })), keyColumns);
  });

  keys
    .command('get <id>')
    .description('one key: prefix, role, projects, expiry, last use')
    .action(async (id: string, _o, cmd: Command) => {
      const { api } = ctxOf(cmd);
      show(cmd, await ok(api.GET('/keys/{id}', { params: { path: { id } } })), (v) => printRecord(v as Record<string, unknown>));
    });

  keys
    .command('expire <id> <time>')
    .description('set the expiry of a key (ISO 8601), or "never" to clear it (a holder may only bring it forward)')
    .action(async (id: string, time: string, _o, cmd: Command) => {
      const { api } = ctxOf(cmd);
      const body = { expiresAt: time === 'never' ? null : time };
      show(cmd, await ok(api.PATCH('/keys/{id}', { params: { path: { id } }, body })), (v) =>
        process.stdout.write(`${v.id} expires ${v.expiresAt ?? 'never'}\n`),
      );
    });

  const printSecret = (cmd: Command, k: { id: string; key: string; role: string }) =>
    show(cmd, k, () => {
      process.stderr.write(`${colors.yellow('the secret is shown only now:')}\n`);
      process.stdout.write(`${k.key}\n`);
    });

  keys
    .command('create')
    .description('create a key; prints its secret once')
    .option('--name <name>', 'name')
    .addOption(new Option('--role <role>', 'role').choices(['viewer', 'operator', 'owner', 'admin', 'machine']))
    .option('--project <ids>', 'bind it to these projects (comma-separated); none: deployment-wide')
    .option('--expires-at <time>', 'ISO 8601 expiry')
    .action(async (o: { name?: string; role?: string; project?: string; expiresAt?: string }, cmd: Command) => {
      const { api } = ctxOf(cmd);
      const body = {
        name: await need(o.name, { flag: '--name', message: 'Key name' }),
        role: await need(o.role, {
          flag: '--role',
          message: 'Role',
          choices: async () => ['viewer', 'operator', 'owner', 'admin'].map((r) => ({ name: r, value: r })),
        }),
        ...(o.project ? { projectIds: o.project.split(',').map((s) => s.trim()) } : {}),
        ...(o.expiresAt ? { expiresAt: o.expiresAt } : {}),
      } as BodyOf<'/keys', 'post'>;
      printSecret(cmd, await ok(api.POST('/keys', { body })));
    });

  keys
    .command('rotate <id>')
    .description('a new secret for the same key; the old one stops working at once')
    .action(async (id: string, _o, cmd: Command) => {
      const { api } = ctxOf(cmd);
      printSecret(cmd, await ok(api.POST('/keys/{id}/rotate', { params: { path: { id } } })));
    });

  keys
    .command('revoke <id>')
    .description('revoke a key: it answers 401 from then on')
    .action(async (id: string, _o, cmd: Command) => {
      const { api } = ctxOf(cmd);
      await ok(api.DELETE('/keys/{id}', { params: { path: { id } } }));
      show(cmd, { id, status: 'revoked' }, () => process.stderr.write(`key ${id} revoked\n`));
    });

  const audit = program.command('audit').description('the audit log (append-only, hash-chained)');
  pageOptions(
    audit
      .command('list')
      .description('audit records, oldest first')
      .option('--project <id>', 'only this project')
      .option('--subject <id>', 'only this subject (machine, checkpoint, key, …)')
      .option('--action <action>', 'only this action, e.g. machine.started'),
  ).action(async (o: { project?: string; subject?: string; action?: string }, cmd: Command) => {
    const { api } = ctxOf(cmd);
    const filter = {
      ...(o.project ? { projectId: o.project } : {}),
      ...(o.subject ? { subjectId: o.subject } : {}),
      ...(o.action ? { action: o.action } : {}),
    };
    await printList(cmd, (query) => ok(api.GET('/audit', { params: { query: { ...filter, ...query } } })), [
      ['seq', (a) => a.seq],
      ['at', (a) => a.at],
      ['actor', (a) => a.actor],
      ['action', (a) => a.action],
      ['subject', (a) => `${a.subjectType} ${a.subjectId}`],
    ]);
  });
  audit
    .command('verify')
    .description('check the hash chain (admin)')
    .action(async (_o, cmd: Command) => {
      const { api } = ctxOf(cmd);
      const v = await ok(api.GET('/audit/verify'));
      show(cmd, v, (r) => process.stdout.write(r.intact ? `${colors.green('intact')}\n` : `${colors.red(`broken at ${r.brokenAt}`)}\n`));
    });

  const backups = program.command('backups').description('platform backups (admin): restore with `npm run restore` while the platform is stopped');
  backups
    .command('list')
    .description('complete backups in the primary and replica directories, newest first')
    .action(async (_o, cmd: Command) => {
      const { api } = ctxOf(cmd);
      const { items } = await ok(api.GET('/backups'));
      show(cmd, items, (rows) =>
        printTable(rows, [
          ['id', (b) => b.id],
          ['created', (b) => b.createdAt],
          ['rows', (b) => b.rows],
          ['repositories', (b) => b.repositories],
          ['where', (b) => b.locations.join('+')],
        ]),
      );
    });
  backups
    .command('create')
    .description('start a backup now (the scheduled workflow, run once)')
    .action(async (_o, cmd: Command) => {
      const { api } = ctxOf(cmd);
      const started = await ok(api.POST('/backups'));
      show(cmd, started, (b) => process.stderr.write(`backup ${b.id} started (workflow ${b.workflowId})\n`));
    });

  const events = program.command('events').description('the event feed: machine, objective, pipeline, payment and budget events');
  events
    .command('follow')
    .description('stream events as they happen (Server-Sent Events) until interrupted; --json prints one JSON object a line')
    .option('--project <id>', 'only this project')
    .option('--kinds <kinds>', 'kinds or families, e.g. machine.*,budget.set')
    .option('--cursor <seq>', 'resume after this seq (0: from the start)')
    .action(async (o: { project?: string; kinds?: string; cursor?: string }, cmd: Command) => {
      const { api } = ctxOf(cmd);
      const query = { ...(o.project ? { projectId: o.project } : {}), ...(o.kinds ? { kinds: o.kinds } : {}), ...(o.cursor ? { cursor: o.cursor } : {}) };
      const stream = await ok(api.GET('/events', { params: { query }, headers: { accept: 'text/event-stream' }, parseAs: 'stream' }));
      if (!stream) return;
      const decoder = new TextDecoder();
      let buffer = '';
      for await (const bytes of stream as unknown as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(bytes, { stream: true });
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const frame = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = frame
            .split('\n')
            .filter((l) => l.startsWith('data: '))
            .map((l) => l.slice(6))
            .join('\n');
          if (!data) continue; // a comment (heartbeat, "from <seq>")
          const e = JSON.parse(data) as { seq: number; at: string; kind: string; projectId: string | null; subjectId: string; data: unknown };
          if (jsonMode(cmd)) process.stdout.write(`${JSON.stringify(e)}\n`);
          else process.stdout.write(`${colors.dim(`${e.seq} ${e.at}`)} ${colors.bold(e.kind)} ${e.subjectId} ${JSON.stringify(e.data)}\n`);
        }
      }
    });
  pageOptions(
    events.command('list').description('one page of past events').option('--project <id>', 'only this project').option('--kinds <kinds>', 'kinds or families'),
  ).action(async (o: { project?: string; kinds?: string }, cmd: Command) => {
    const { api } = ctxOf(cmd);
    const filter = { ...(o.project ? { projectId: o.project } : {}), ...(o.kinds ? { kinds: o.kinds } : {}) };
    await printList(cmd, (query) => ok(api.GET('/events', { params: { query: { ...filter, ...query } } })), [
      ['seq', (e) => e.seq],
      ['at', (e) => e.at],
      ['kind', (e) => e.kind],
      ['subject', (e) => e.subjectId],
      ['data', (e) => e.data],
    ]);
  });

  program
    .command('batch <file>')
    .description(
      'send the operations of a YAML or JSON file ({ operations: [{ id?, method, path, body?, idempotencyKey? }] } or a list) in one POST /v1/batch; exits with the code of the first failed operation',
    )
    .action(async (file: string, _o, cmd: Command) => {
      const { api } = ctxOf(cmd);
      const data = readDataFile(file);
      const operations = Array.isArray(data) ? data : (data as { operations?: unknown } | null)?.operations;
      if (!Array.isArray(operations)) throw new UsageError(`${file}: must be a list of operations or { operations: [...] }`);
      const r = await ok(api.POST('/batch', { body: { operations } as BodyOf<'/batch', 'post'> }));
      if (jsonMode(cmd)) printJson(r);
      else
        printTable(
          r.results.map((res, i) => ({ ...res, op: operations[i] as { method?: string; path?: string } })),
          [
            ['#', (x) => x.id ?? ''],
            ['operation', (x) => `${x.op.method ?? ''} ${x.op.path ?? ''}`],
            ['status', (x) => (x.status < 300 ? colors.green(String(x.status)) : colors.red(String(x.status)))],
            ['result', (x) => summary(x.body)],
          ],
        );
      const failed = r.results.findIndex((res) => res.status >= 400);
      if (failed >= 0) {
        const res = r.results[failed]!;
        throw new CliError(`operation ${res.id ?? failed} failed: ${summary(res.body)} (${res.status})`, exitCodeOfStatus(res.status));
      }
    });
}

/** A result body in a few words: its error message, else its id and status. */
function summary(body: unknown): string {
  if (body && typeof body === 'object') {
    const b = body as { error?: { message?: string }; id?: string; status?: string };
    if (b.error?.message) return b.error.message;
    if (b.id) return [b.id, b.status].filter(Boolean).join(' ');
  }
  return body === null || body === undefined ? '' : JSON.stringify(body).slice(0, 80);
}

export interface ReallocationOptions {
  enabled?: boolean;
  dryRun?: boolean;
  maxStepPercent?: number;
  lookbackDays?: number;
  minAllocation?: string;
  maxAllocation?: string;
}

/** The PUT …/reallocation body of `reallocation set` (cost centers and departments). */
export function reallocationBody(o: ReallocationOptions) {
  if (o.enabled === undefined) throw new UsageError('reallocation set: give --enabled or --no-enabled');
  return {
    enabled: o.enabled,
    dryRun: o.dryRun === true,
    ...(o.maxStepPercent !== undefined ? { maxStepPercent: o.maxStepPercent } : {}),
    ...(o.lookbackDays !== undefined ? { lookbackDays: o.lookbackDays } : {}),
    ...(o.minAllocation !== undefined ? { minAllocation: o.minAllocation } : {}),
    ...(o.maxAllocation !== undefined ? { maxAllocation: o.maxAllocation } : {}),
  };
}

/** A reallocation run as text: its status, then each move's explanation. */
export function printReallocationRun(run: {
  id: string;
  status: string;
  dryRun: boolean;
  reason: string | null;
  moves: Array<{ status: string; explanation: string }>;
}) {
  printRecord({ id: run.id, status: run.status, dryRun: run.dryRun, moves: run.moves.length, ...(run.reason ? { reason: run.reason } : {}) });
  for (const m of run.moves) process.stdout.write(`${status(m.status)} ${m.explanation}\n`);
}

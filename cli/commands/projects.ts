import { Option, type Command } from 'commander';
import { ok, type Api, type BodyOf } from '../client.js';
import { printRecord, printTable } from '../output.js';
import { UsageError } from '../errors.js';
import { need } from '../prompt.js';
import { ctxOf, moneyOption, pageOptions, printList, show } from '../runtime.js';

type Budget = { limit: string; spent: string; reserved: string; remaining: string; currency: string; period: string } | null;

const budgetText = (b: Budget) => (b ? `${b.spent} / ${b.limit} ${b.currency} ${b.period} (reserved ${b.reserved})` : 'none');

/** Projects the key can see, as prompt choices. */
export async function projectChoices(api: Api): Promise<Array<{ name: string; value: string }>> {
  const page = await ok(api.GET('/projects', { params: { query: { limit: '100' } } }));
  return page.items.map((p) => ({ name: `${p.name} (${p.id})`, value: p.id }));
}

export function registerProjects(program: Command): void {
  const projects = program.command('projects').description('projects and their budgets');

  pageOptions(projects.command('list').description('projects this key can see')).action(async (_o, cmd: Command) => {
    const { api } = ctxOf(cmd);
    await printList(cmd, (query) => ok(api.GET('/projects', { params: { query } })), [
      ['id', (p) => p.id],
      ['name', (p) => p.name],
      ['currency', (p) => p.currency],
      ['budget (spent / limit)', (p) => budgetText(p.budget)],
      ['created', (p) => p.createdAt],
    ]);
  });

  projects
    .command('get [id]')
    .description('a project with its budget')
    .action(async (id: string | undefined, _o, cmd: Command) => {
      const { api } = ctxOf(cmd);
      const projectId = await need(id, { flag: '<id>', message: 'Project', choices: () => projectChoices(api) });
      const p = await ok(api.GET('/projects/{id}', { params: { path: { id: projectId } } }));
      show(cmd, p, () => printRecord({ ...p, budget: budgetText(p.budget) }));
    });

  projects
    .command('create')
    .description('create a project (a new git repository, or a clone of --repo-url)')
    .option('--name <name>', 'project name (asked for on a terminal)')
    .option('--repo-url <url>', 'clone this remote repository')
    .option('--currency <code>', 'budget currency (USD, EUR, …)')
    .addOption(moneyOption('--default-machine-money <amount>', "a machine's money limit when it names none"))
    .option('--idempotency-key <key>', 'retry-safe: the same key never creates a second project')
    .action(async (o: { name?: string; repoUrl?: string; currency?: string; defaultMachineMoney?: string; idempotencyKey?: string }, cmd: Command) => {
      const { api } = ctxOf(cmd);
      const name = await need(o.name, { flag: '--name', message: 'Project name' });
      const body = {
        name,
        ...(o.repoUrl ? { repoUrl: o.repoUrl } : {}),
        ...(o.currency ? { currency: o.currency } : {}),
        ...(o.defaultMachineMoney ? { defaultMachineMoney: o.defaultMachineMoney } : {}),
      } as BodyOf<'/projects', 'post'>;
      const p = await ok(api.POST('/projects', { body, headers: o.idempotencyKey ? { 'idempotency-key': o.idempotencyKey } : {} }));
      show(cmd, p, () => printRecord(p as Record<string, unknown>, ['id', 'name', 'currency', 'rootCheckpointId', 'createdAt']));
    });

  projects
    .command('costs [id]')
    .description("a project's cost events and totals, with cache hits and the money they saved")
    .action(async (id: string | undefined, _o, cmd: Command) => {
      const { api } = ctxOf(cmd);
      const projectId = await need(id, { flag: '<id>', message: 'Project', choices: () => projectChoices(api) });
      const c = await ok(api.GET('/projects/{id}/costs', { params: { path: { id: projectId } } }));
      show(cmd, c, (v) => {
        printTable(v.items, [
          ['machine', (x) => x.machineId],
          ['category', (x) => x.category],
          ['amount', (x) => `${x.amount} ${x.currency}`],
        ]);
        printRecord({
          total: `${v.totals.total.amount} ${v.totals.total.currency}`,
          byCategory: v.totals.byCategory,
          budget: budgetText(v.budget),
          cache: v.cache,
        });
      });
    });

  projects
    .command('recover <id>')
    .description(
      'point-in-time recovery (admin): the project as of --at, as a new project "<name> (as of …)" (default) or --in-place; --dry-run counts the rows per table',
    )
    .requiredOption('--at <time>', 'the moment, an ISO 8601 time such as 2026-12-07T15:30:00Z')
    .option('--in-place', 'rewrite the project itself (refused while it has work in flight); spend after --at stays, as adjustments')
    .option('--dry-run', 'only report what would change')
    .action(async (id: string, o: { at: string; inPlace?: boolean; dryRun?: boolean }, cmd: Command) => {
      const { api } = ctxOf(cmd);
      const body = { at: o.at, mode: o.inPlace ? 'in-place' : 'copy', dryRun: Boolean(o.dryRun) } as BodyOf<'/projects/{id}/recoveries', 'post'>;
      const r = await ok(api.POST('/projects/{id}/recoveries', { params: { path: { id } }, body }));
      show(cmd, r, (v) => {
        printRecord({
          recovery: v.id,
          mode: v.mode,
          at: v.at,
          dryRun: v.dryRun,
          project: v.projectId ?? '(dry run: none made)',
          name: v.projectName,
          checkpoints: `${v.checkpoints.kept} kept, ${v.checkpoints.removed} removed`,
          auditRecords: v.auditRecords,
        });
        printTable(
          Object.entries(v.tables).map(([table, c]) => ({ table, ...c })),
          [
            ['table', (t) => t.table],
            ['insert', (t) => t.insert],
            ['update', (t) => t.update],
            ['delete', (t) => t.delete],
          ],
        );
        for (const a of v.adjustments)
          process.stdout.write(`adjustment: ${a.category} ${a.amount} ${a.currency} (${a.events} cost events after --at, still spent)\n`);
      });
    });

  const budgets = program.command('budgets').description("a project's budget: limit, spent, reserved, remaining");

  budgets
    .command('get [project]')
    .description("a project's budget")
    .action(async (project: string | undefined, _o, cmd: Command) => {
      const { api } = ctxOf(cmd);
      const id = await need(project, { flag: '<project>', message: 'Project', choices: () => projectChoices(api) });
      const p = await ok(api.GET('/projects/{id}', { params: { path: { id } } }));
      show(cmd, p.budget, (b) => (b ? printTable([b], budgetColumns) : process.stdout.write(`project ${id} has no budget\n`)));
    });

  budgets
    .command('list [project]')
    .description("every budget of a project: its own and each machine type's, with spent, reserved and limit")
    .action(async (project: string | undefined, _o, cmd: Command) => {
      const { api } = ctxOf(cmd);
      const id = await need(project, { flag: '<project>', message: 'Project', choices: () => projectChoices(api) });
      const all = await ok(api.GET('/projects/{id}/budgets', { params: { path: { id } } }));
      show(cmd, all, (v) => {
        const rows = [
          ...(v.budget ? [{ scope: 'project', source: 'stored', ...v.budget }] : []),
          ...v.machineTypes.map((t) => ({ ...t, scope: `type ${t.machineType}` })),
        ];
        printTable(rows, [['scope', (b) => b.scope], ...budgetColumns, ['source', (b) => b.source]]);
        if (!v.budget) process.stderr.write(`project ${id} has no budget of its own: autovibe budgets set ${id} --amount …\n`);
      });
    });

  budgets
    .command('set [project]')
    .description("set a project's budget (owner)")
    .addOption(moneyOption('--amount <amount>', 'the limit, e.g. 10.00'))
    .option('--currency <code>', 'currency (default the project’s)')
    .addOption(new Option('--period <period>', 'budget window').choices(['daily', 'weekly', 'monthly', 'total']).default('daily'))
    .action(async (project: string | undefined, o: { amount?: string; currency?: string; period: string }, cmd: Command) => {
      const { api } = ctxOf(cmd);
      const id = await need(project, { flag: '<project>', message: 'Project', choices: () => projectChoices(api) });
      const amount = await need(o.amount, { flag: '--amount', message: 'Budget amount' });
      // The api needs the currency: the project's own unless another is named.
      const currency = o.currency ?? (await ok(api.GET('/projects/{id}', { params: { path: { id } } }))).currency;
      const body = { amount, period: o.period, currency } as BodyOf<'/projects/{id}/budget', 'put'>;
      const b = await ok(api.PUT('/projects/{id}/budget', { params: { path: { id } }, body }));
      show(cmd, b, (v) => printRecord(v as Record<string, unknown>));
    });

  budgets
    .command('set-type [project]')
    .description("set a project's daily budget for one machine type (owner)")
    .option('--type <type>', 'machine type, e.g. claude-code')
    .addOption(moneyOption('--amount <amount>', 'the daily limit, e.g. 2.00'))
    .option('--currency <code>', 'currency (default the project’s)')
    .action(async (project: string | undefined, o: { type?: string; amount?: string; currency?: string }, cmd: Command) => {
      const { api } = ctxOf(cmd);
      const id = await need(project, { flag: '<project>', message: 'Project', choices: () => projectChoices(api) });
      const type = await need(o.type, { flag: '--type', message: 'Machine type' });
      const amount = await need(o.amount, { flag: '--amount', message: 'Daily budget' });
      const currency = o.currency ?? (await ok(api.GET('/projects/{id}', { params: { path: { id } } }))).currency;
      const body = { amount, currency } as BodyOf<'/projects/{id}/machine-types/{type}/budget', 'put'>;
      const b = await ok(api.PUT('/projects/{id}/machine-types/{type}/budget', { params: { path: { id, type: type as 'shell' } }, body }));
      show(cmd, b, (v) => printRecord(v as Record<string, unknown>));
    });
}

const budgetColumns: Array<[string, (b: NonNullable<Budget>) => unknown]> = [
  ['limit', (b) => b.limit],
  ['spent', (b) => b.spent],
  ['reserved', (b) => b.reserved],
  ['remaining', (b) => b.remaining],
  ['currency', (b) => b.currency],
  ['period', (b) => b.period],
];

/** `--from`/`--to` as the api takes them: ISO times (a bare date is its UTC midnight). */
const timeOption = (name: string, description: string) =>
  new Option(name, description).argParser((v: string) => {
    const t = /^\d{4}-\d{2}-\d{2}$/.test(v) ? `${v}T00:00:00Z` : v;
    if (Number.isNaN(Date.parse(t))) throw new UsageError(`${name.split(' ')[0]}: must be a date (2026-12-01) or an ISO time (2026-12-01T10:00:00Z)`);
    return new Date(t).toISOString();
  });

/** `costs series`: a project's spend per hour or day and category. */
export function registerCosts(program: Command): void {
  const costs = program.command('costs').description("a project's spend");
  costs
    .command('series [project]')
    .description("spend per hour or day (UTC) and category, in the project's currency")
    .addOption(new Option('--bucket <bucket>', 'bucket size').choices(['hour', 'day']).default('day'))
    .addOption(timeOption('--from <time>', 'start (default: 48 hours or 30 days before --to)'))
    .addOption(timeOption('--to <time>', 'end, exclusive (default now)'))
    .action(async (project: string | undefined, o: { bucket: 'hour' | 'day'; from?: string; to?: string }, cmd: Command) => {
      const { api } = ctxOf(cmd);
      const id = await need(project, { flag: '<project>', message: 'Project', choices: () => projectChoices(api) });
      const query = { bucket: o.bucket, ...(o.from ? { from: o.from } : {}), ...(o.to ? { to: o.to } : {}) };
      const s = await ok(api.GET('/projects/{id}/costs/series', { params: { path: { id }, query } }));
      show(cmd, s, (v) => {
        const label = (start: string) => (v.bucket === 'day' ? start.slice(0, 10) : `${start.slice(0, 13).replace('T', ' ')}:00`);
        printTable(v.buckets, [
          [v.bucket === 'day' ? 'day (UTC)' : 'hour (UTC)', (b) => label(b.start)],
          ...v.categories.map((c): [string, (b: (typeof v.buckets)[number]) => unknown] => [c, (b) => b.byCategory[c] ?? '']),
          [`total ${v.currency}`, (b) => b.total],
        ]);
        process.stdout.write(`total ${v.total} ${v.currency}\n`);
      });
    });
  breakdownOptions(
    costs
      .command('breakdown [project]')
      .description('spend grouped by machine type, provider, model, category, cost center or objective (exact; the groups add up to the total)'),
  ).action(async (project: string | undefined, o: BreakdownOptions, cmd: Command) => {
    const { api } = ctxOf(cmd);
    const id = await need(project, { flag: '<project>', message: 'Project', choices: () => projectChoices(api) });
    const query = breakdownQuery(o);
    const b = await ok(api.GET('/projects/{id}/costs/breakdown', { params: { path: { id }, query } }));
    show(cmd, b, (v) => {
      printTable(v.groups, [
        [v.by, (g) => g.key ?? '(none)'],
        [`amount ${v.currency}`, (g) => g.amount],
        ['records', (g) => g.records],
      ]);
      process.stdout.write(`total ${v.total} ${v.currency}\n`);
    });
  });
  costs
    .command('variance [project]')
    .description('actual against allocated spend per day, week or month, per category, with the trend')
    .addOption(new Option('--period <period>', 'period').choices(['day', 'week', 'month']).default('day'))
    .option('--count <n>', 'how many periods (the current one included)')
    .action(async (project: string | undefined, o: { period: 'day' | 'week' | 'month'; count?: string }, cmd: Command) => {
      const { api } = ctxOf(cmd);
      const id = await need(project, { flag: '<project>', message: 'Project', choices: () => projectChoices(api) });
      const query = { period: o.period, ...(o.count ? { count: o.count } : {}) };
      const v0 = await ok(api.GET('/projects/{id}/costs/variance', { params: { path: { id }, query } }));
      show(cmd, v0, (v) => {
        printTable(v.periods, [
          ['start (UTC)', (p) => p.start.slice(0, 10)],
          [`actual ${v.currency}`, (p) => p.actual],
          ['allocated', (p) => p.allocated ?? ''],
          ['variance', (p) => p.variance ?? ''],
          ['%', (p) => p.variancePercent ?? ''],
        ]);
        process.stdout.write(`trend ${v.trend.perPeriod} ${v.currency} per ${v.period} (${v.trend.direction})\n`);
        for (const k of v.categories) process.stdout.write(`  ${k.category}: ${k.actual.join(' ')} (trend ${k.trend.perPeriod})\n`);
        for (const t of v.machineTypes) {
          const last = t.periods.at(-1);
          const budget = t.budget ? `${t.budget.limit} ${t.budget.currency} ${t.budget.period} (${t.budget.source})` : 'no budget';
          process.stdout.write(
            `  type ${t.machineType}: ${budget}; this ${v.period} ${last?.actual ?? '0'} of ${last?.allocated ?? '-'} (trend ${t.trend.perPeriod})\n`,
          );
        }
      });
    });
  costs
    .command('opportunities [project]')
    .description('where the project could have spent less: spot, cache, smaller models, idle warm capacity; each with evidence and estimated saving')
    .option('--days <n>', 'look-back in days', '30')
    .action(async (project: string | undefined, o: { days: string }, cmd: Command) => {
      const { api } = ctxOf(cmd);
      const id = await need(project, { flag: '<project>', message: 'Project', choices: () => projectChoices(api) });
      const r = await ok(api.GET('/projects/{id}/costs/opportunities', { params: { path: { id }, query: { days: o.days } } }));
      show(cmd, r, (v) => {
        printTable(v.items, [
          ['kind', (x) => x.kind],
          [`saving ${v.currency}`, (x) => x.saving],
          ['evidence', (x) => x.evidence.join(', ')],
          ['why', (x) => x.explanation],
        ]);
        process.stdout.write(`total estimated saving ${v.totalSaving} ${v.currency}\n`);
      });
    });
  costs
    .command('roi [project]')
    .description(
      'what the spend bought: objectives per unit of currency, bug-fix efficiency, completion-check pass rates, feedback and its correlation with spend',
    )
    .option('--days <n>', 'look-back in days (1-365)', '30')
    .action(async (project: string | undefined, o: { days: string }, cmd: Command) => {
      const { api } = ctxOf(cmd);
      if (!/^\d+$/.test(o.days)) throw new UsageError(`--days: "${o.days}" must be a whole number`);
      const id = await need(project, { flag: '<project>', message: 'Project', choices: () => projectChoices(api) });
      const r = await ok(api.GET('/projects/{id}/roi', { params: { path: { id }, query: { days: o.days } } }));
      show(cmd, r, (v) =>
        printRecord({
          [`spend (${v.days} days)`]: `${v.spend} ${v.currency}`,
          'objectives completed': v.objectives.completed,
          [`per 1 ${v.currency}`]: v.objectives.perUnit ?? '-',
          'spend per objective': v.objectives.spendPerCompleted ?? '-',
          'bug fixes': `${v.bugfix.completed} of ${v.bugfix.items} done, ${v.bugfix.spend} ${v.currency} (${v.bugfix.spendPerCompleted ?? '-'} per fix)`,
          'completion checks': `${v.checks.passed}/${v.checks.runs} passed; first ${v.checks.firstPassRate ?? '-'} → last ${v.checks.lastPassRate ?? '-'} (delta ${v.checks.delta ?? '-'})`,
          feedback: `${v.feedback.count} on ${v.feedback.machines} machines, mean ${v.feedback.meanRating ?? '-'}`,
          'spend ~ rating (Pearson r)': v.spendRatingCorrelation ?? '- (fewer than 3 rated machines)',
        }),
      );
    });
  costs
    .command('forecast [project]')
    .description("the project's stored spend forecast: daily with 80 %/95 % intervals, budget exhaustion, recommendations")
    .action(async (project: string | undefined, _o, cmd: Command) => {
      const { api } = ctxOf(cmd);
      const id = await need(project, { flag: '<project>', message: 'Project', choices: () => projectChoices(api) });
      show(cmd, await ok(api.GET('/projects/{id}/forecast', { params: { path: { id } } })), printForecast);
    });
}

const BREAKDOWN_BY = ['machineType', 'provider', 'model', 'category', 'costCenter', 'objective', 'project'] as const;
export type BreakdownOptions = { by: (typeof BREAKDOWN_BY)[number]; from?: string; to?: string };

/** --by, --from and --to of a breakdown command. */
export function breakdownOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--by <dimension>', 'what to group by').choices(BREAKDOWN_BY).default('category'))
    .addOption(timeOption('--from <time>', 'start (default: 30 days before --to)'))
    .addOption(timeOption('--to <time>', 'end, exclusive (default now)'));
}
export const breakdownQuery = (o: BreakdownOptions) => ({ by: o.by, ...(o.from ? { from: o.from } : {}), ...(o.to ? { to: o.to } : {}) });

/** A cost center's or department's breakdown as text: one row per group and currency, then the totals. */
export function printScopeBreakdown(v: {
  by: string;
  groups: Array<{ key: string | null; currency: string; amount: string; records: number }>;
  totals: Array<{ currency: string; amount: string }>;
}): void {
  printTable(v.groups, [
    [v.by, (g) => g.key ?? '(none)'],
    ['amount', (g) => `${g.amount} ${g.currency}`],
    ['records', (g) => g.records],
  ]);
  for (const t of v.totals) process.stdout.write(`total ${t.amount} ${t.currency}\n`);
}

/** A stored forecast as text: the next days with their intervals, the budget's exhaustion, the recommendations. */
export function printForecast(v: {
  currency: string;
  method: string;
  computedAt: string;
  daily: Array<{ date: string; mean: string; lo80: string; hi80: string; lo95: string; hi95: string }>;
  budget: { period: string; exhaustion: { expected: string | null; earliest80: string | null; latest80: string | null } } | null;
  recommendations: Array<{ message: string }>;
}): void {
  process.stdout.write(`forecast (${v.method}, computed ${v.computedAt}), ${v.currency}\n`);
  printTable(v.daily.slice(0, 14), [
    ['day', (d) => d.date],
    ['expected', (d) => d.mean],
    ['80 %', (d) => `${d.lo80} – ${d.hi80}`],
    ['95 %', (d) => `${d.lo95} – ${d.hi95}`],
  ]);
  if (v.budget) {
    const e = v.budget.exhaustion;
    process.stdout.write(
      `${v.budget.period} budget runs out: ${e.expected ?? 'not this period'}${e.expected ? ` (80 %: ${e.earliest80 ?? '?'} – ${e.latest80 ?? 'later'})` : ''}\n`,
    );
  }
  for (const r of v.recommendations) process.stdout.write(`* ${r.message}\n`);
}

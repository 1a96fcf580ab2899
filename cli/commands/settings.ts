import { Option, type Command } from 'commander';
import { ok, type BodyOf } from '../client.js';
import { ApiError, CliError, EXIT, exitCodeOfStatus, UsageError } from '../errors.js';
import { printJson, printRecord, printTable } from '../output.js';
import { need } from '../prompt.js';
import { ctxOf, intOption, jsonMode, moneyOption, pageOptions, printList, readDataFile, show } from '../runtime.js';
import { printReallocationRun, reallocationBody, type ReallocationOptions } from './admin.js';
import { breakdownOptions, breakdownQuery, printForecast, printScopeBreakdown, projectChoices, type BreakdownOptions } from './projects.js';

/** A repeatable option's values. */
export const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

/** `name=value` pairs (a repeatable option) as a record, the values parsed by `parse`. */
export function pairs<T>(flag: string, items: string[], parse: (v: string) => T): Record<string, T> {
  const out: Record<string, T> = {};
  for (const item of items) {
    const m = /^([^=]+)=(.*)$/.exec(item);
    if (!m) throw new UsageError(`${flag}: "${item}" must be name=value`);
    out[m[1]!.trim()] = parse(m[2]!.trim());
  }
  return out;
}

const wholeNumber = (flag: string) => (v: string) => {
  if (!/^\d+$/.test(v)) throw new UsageError(`${flag}: "${v}" must be a whole number`);
  return Number(v);
};

/**
 * Project settings (placement, scheduling, limit policy), the catalogue (machine types,
 * providers, exchange rates), alerts, departments, GraphQL and the OpenAPI document.
 */
export function registerSettings(program: Command): void {
  const placement = program.command('placement').description("where a project's machines run: rules per machine type, complexity, interruptibility");
  placement
    .command('get [project]')
    .description("a project's placement rules, then the defaults")
    .action(async (project: string | undefined, _o, cmd: Command) => {
      const { api } = ctxOf(cmd);
      const id = await need(project, { flag: '<project>', message: 'Project', choices: () => projectChoices(api) });
      const p = await ok(api.GET('/projects/{id}/placement', { params: { path: { id } } }));
      show(cmd, p, (v) => {
        const rows = [...v.rules.map((r) => ({ ...r, from: 'rule' })), ...v.defaults.map((r) => ({ ...r, from: 'default' }))];
        printTable(rows, [
          ['from', (r) => r.from],
          ['name', (r) => r.name],
          ['match', (r) => r.match],
          ['providers', (r) => r.providers.join(', ')],
          ['spot', (r) => r.spot],
        ]);
      });
    });
  placement
    .command('set [project]')
    .description('set the placement rules from a YAML or JSON file ({ rules: [{ name, match, providers, spot? }] } or a list)')
    .option('--file <file>', 'the rules (- for stdin)')
    .action(async (project: string | undefined, o: { file?: string }, cmd: Command) => {
      const { api } = ctxOf(cmd);
      const id = await need(project, { flag: '<project>', message: 'Project', choices: () => projectChoices(api) });
      const file = await need(o.file, { flag: '--file', message: 'Rules file (YAML or JSON)' });
      const data = readDataFile(file);
      const rules = Array.isArray(data) ? data : (data as { rules?: unknown } | null)?.rules;
      if (!Array.isArray(rules)) throw new UsageError(`${file}: must be a list of rules or { rules: [...] }`);
      const p = await ok(api.PUT('/projects/{id}/placement', { params: { path: { id } }, body: { rules } as BodyOf<'/projects/{id}/placement', 'put'> }));
      show(cmd, p, (v) => process.stdout.write(`${v.rules.length} placement rule(s) set on ${id}\n`));
    });

  const scheduling = program.command('scheduling').description("a project's concurrent-machine limit, greediness and named resources");
  const printScheduling = (s: { maxConcurrentMachines: number; greediness: number; resources: Record<string, number> }) =>
    printRecord({
      ...s,
      resources:
        Object.entries(s.resources)
          .map(([k, v]) => `${k}=${v}`)
          .join(', ') || '(none)',
    });
  scheduling
    .command('get [project]')
    .description('the limits, and what holds or waits for them now')
    .action(async (project: string | undefined, _o, cmd: Command) => {
      const { api } = ctxOf(cmd);
      const id = await need(project, { flag: '<project>', message: 'Project', choices: () => projectChoices(api) });
      show(cmd, await ok(api.GET('/projects/{id}/scheduling', { params: { path: { id } } })), printScheduling);
    });
  scheduling
    .command('set [project]')
    .description('change the concurrent-machine limit, greediness (0-1) or named resources (name=count, repeatable)')
    .option('--max-machines <n>', 'machines running at once (1-1000)', wholeNumber('--max-machines'))
    .option('--greediness <x>', 'how much of the budget one objective may take, 0 to 1')
    .option('--resource <name=count>', 'a named resource and how many may hold it (repeatable)', collect)
    .action(async (project: string | undefined, o: { maxMachines?: number; greediness?: string; resource?: string[] }, cmd: Command) => {
      const { api } = ctxOf(cmd);
      const id = await need(project, { flag: '<project>', message: 'Project', choices: () => projectChoices(api) });
      if (o.greediness !== undefined && !/^(0(\.\d+)?|1(\.0+)?)$/.test(o.greediness)) throw new UsageError('--greediness: must be a number from 0 to 1');
      const body = {
        ...(o.maxMachines !== undefined ? { maxConcurrentMachines: o.maxMachines } : {}),
        ...(o.greediness !== undefined ? { greediness: Number(o.greediness) } : {}),
        ...(o.resource ? { resources: pairs('--resource', o.resource, wholeNumber('--resource')) } : {}),
      } as BodyOf<'/projects/{id}/scheduling', 'put'>;
      if (Object.keys(body).length === 0) throw new UsageError('scheduling set: give --max-machines, --greediness or --resource');
      show(cmd, await ok(api.PUT('/projects/{id}/scheduling', { params: { path: { id } }, body })), printScheduling);
    });

  const predictions = program.command('predictions').description('cost prediction: how close it came; whether a project refuses early');
  predictions
    .command('set <project>')
    .description("refuse (or not) the project's machines whose predicted lower bound exceeds their limit or a budget's remaining amount")
    .option('--refuse-if-over', 'refuse early by default')
    .option('--no-refuse-if-over', 'do not refuse early by default')
    .action(async (id: string, o: { refuseIfOver?: boolean }, cmd: Command) => {
      if (o.refuseIfOver === undefined) throw new UsageError('predictions set: give --refuse-if-over or --no-refuse-if-over');
      const { api } = ctxOf(cmd);
      const body = { refuseIfPredictedOver: o.refuseIfOver };
      show(cmd, await ok(api.PUT('/projects/{id}/prediction', { params: { path: { id } }, body })), (r) => printRecord(r));
    });
  predictions
    .command('accuracy')
    .description('per machine type: mean absolute error of the predicted median, and the share of actuals inside the 80 % interval')
    .option('--project <id>', "only this project's machines")
    .action(async (o: { project?: string }, cmd: Command) => {
      const { api } = ctxOf(cmd);
      const query = o.project ? { projectId: o.project } : {};
      const v = await ok(api.GET('/predictions/accuracy', { params: { query } }));
      show(cmd, v, (r) =>
        printTable(r.items, [
          ['type', (a) => a.machineType],
          ['runs', (a) => a.runs],
          ['cost MAE', (a) => `${a.cost.mae} ${a.cost.currency}`],
          ['cost coverage', (a) => `${Math.round(a.cost.coverage * 100)} %`],
          ['duration MAE (s)', (a) => a.durationSeconds.mae.toFixed(1)],
          ['duration coverage', (a) => `${Math.round(a.durationSeconds.coverage * 100)} %`],
        ]),
      );
    });

  const routing = program
    .command('routing')
    .description("machine selection for type auto: the bandit's arms, recent decisions, a project's quality-vs-cost knob");
  routing
    .command('show')
    .description('arms (class × type: successes, failures, posterior mean), expected cost per type, and the newest decisions with their reasons')
    .option('--project <id>', "only this project's decisions, and its knob")
    .addOption(new Option('--limit <n>', 'decisions to show (1-200)').default('20'))
    .option('--all-arms', 'also the arms without evidence yet')
    .action(async (o: { project?: string; limit: string; allArms?: boolean }, cmd: Command) => {
      const { api } = ctxOf(cmd);
      if (!/^\d+$/.test(o.limit)) throw new UsageError(`--limit: "${o.limit}" must be a whole number`);
      const query = { limit: o.limit, ...(o.project ? { projectId: o.project } : {}) };
      const v = await ok(api.GET('/routing', { params: { query } }));
      show(cmd, v, (r) => {
        printRecord({ quality: r.settings.quality, exploration: r.settings.exploration, refinement: r.settings.refinement, source: r.settings.source });
        process.stdout.write('\n');
        printTable(
          r.arms.filter((a) => o.allArms || a.successes + a.failures > 0),
          [
            ['class', (a) => a.operationClass],
            ['type', (a) => a.machineType],
            ['capability', (a) => a.capability],
            ['successes', (a) => a.successes],
            ['failures', (a) => a.failures],
            ['mean', (a) => a.mean.toFixed(3)],
          ],
        );
        process.stdout.write('\n');
        printTable(r.decisions, [
          ['machine', (d) => d.machineId],
          ['class', (d) => d.operationClass],
          ['type', (d) => d.chosenType],
          ['mode', (d) => d.mode],
          ['outcome', (d) => d.outcome ?? (d.settledAt ? 'no evidence' : 'pending')],
          ['prompt', (d) => d.promptArm ?? ''],
          ['reason', (d) => d.reason],
        ]);
        if (r.refinement.arms.length) {
          process.stdout.write('\nprompt refinement A/B\n');
          printTable(r.refinement.arms, [
            ['arm', (a) => a.arm],
            ['machines', (a) => a.machines],
            ['successes', (a) => a.successes],
            ['failures', (a) => a.failures],
            ['success rate', (a) => (a.successRate === null ? '' : `${Math.round(a.successRate * 1000) / 10} %`)],
            ['mean cost', (a) => (a.meanCost ? `${a.meanCost} ${a.currency}` : '')],
          ]);
        }
        if (r.refinement.patterns.length) {
          process.stdout.write('\nfailure patterns\n');
          printTable(r.refinement.patterns, [
            ['class', (x) => x.operationClass],
            ['type', (x) => x.machineType],
            ['kind', (x) => x.kind],
            ['seen', (x) => x.occurrences],
            ['detail', (x) => x.detail],
          ]);
        }
      });
    });
  routing
    .command('set [project]')
    .description("set a project's quality-vs-cost knob (0 cheapest … 1 best), exploration budget (0-0.5) and/or refinement share (0-1)")
    .option('--quality <x>', 'quality versus cost, 0 to 1')
    .option('--exploration <x>', 'share of decisions picked at random, 0 to 0.5')
    .option('--refinement <x>', 'share of routed machines with known failure patterns given the refined prompt, 0 to 1')
    .action(async (project: string | undefined, o: { quality?: string; exploration?: string; refinement?: string }, cmd: Command) => {
      const { api } = ctxOf(cmd);
      const id = await need(project, { flag: '<project>', message: 'Project', choices: () => projectChoices(api) });
      const num = (flag: string, v: string) => {
        if (!/^\d+(\.\d+)?$/.test(v)) throw new UsageError(`${flag}: "${v}" must be a number from 0 to 1`);
        return Number(v);
      };
      const body = {
        ...(o.quality !== undefined ? { quality: num('--quality', o.quality) } : {}),
        ...(o.exploration !== undefined ? { exploration: num('--exploration', o.exploration) } : {}),
        ...(o.refinement !== undefined ? { refinement: num('--refinement', o.refinement) } : {}),
      };
      if (Object.keys(body).length === 0) throw new UsageError('routing set: give --quality, --exploration or --refinement');
      show(cmd, await ok(api.PUT('/projects/{id}/routing', { params: { path: { id } }, body })), (r) => printRecord(r));
    });

  const network = program
    .command('network')
    .description("what a project's machines may reach on the network: none, package registries only, or an allowlist of hosts");
  const printNetwork = (v: { mode: string; hosts: string[]; registryHosts: string[]; updatedBy: string | null; updatedAt: string | null }) =>
    printRecord({
      mode: v.mode,
      hosts: v.mode === 'allowlist' ? v.hosts.join(', ') : v.mode === 'registries' ? `(registries) ${v.registryHosts.join(', ')}` : '(no network)',
      updatedBy: v.updatedBy,
      updatedAt: v.updatedAt,
    });
  network
    .command('get [project]')
    .description("a project's network policy")
    .action(async (project: string | undefined, _o, cmd: Command) => {
      const { api } = ctxOf(cmd);
      const id = await need(project, { flag: '<project>', message: 'Project', choices: () => projectChoices(api) });
      show(cmd, await ok(api.GET('/projects/{id}/network-policy', { params: { path: { id } } })), printNetwork);
    });
  network
    .command('set [project]')
    .description('set the policy (owners): --mode none | registries | allowlist with --host (repeatable: name, *.suffix, optional :port)')
    .addOption(new Option('--mode <mode>', 'none, registries or allowlist').choices(['none', 'registries', 'allowlist']))
    .option('--host <host>', 'an allowed host (allowlist), repeatable', collect)
    .action(async (project: string | undefined, o: { mode?: string; host?: string[] }, cmd: Command) => {
      const { api } = ctxOf(cmd);
      const id = await need(project, { flag: '<project>', message: 'Project', choices: () => projectChoices(api) });
      const mode = await need(o.mode ?? (o.host ? 'allowlist' : undefined), {
        flag: '--mode',
        message: 'Network',
        choices: async () => ['none', 'registries', 'allowlist'].map((v) => ({ name: v, value: v })),
      });
      const body = { mode, ...(o.host ? { hosts: o.host } : {}) } as BodyOf<'/projects/{id}/network-policy', 'put'>;
      show(cmd, await ok(api.PUT('/projects/{id}/network-policy', { params: { path: { id } }, body })), printNetwork);
    });

  const limitPolicy = program.command('limit-policy').description('what machines of a project do at a limit: stop, or pause for a decision');
  limitPolicy
    .command('get [project]')
    .description("a project's limit policy")
    .action(async (project: string | undefined, _o, cmd: Command) => {
      const { api } = ctxOf(cmd);
      const id = await need(project, { flag: '<project>', message: 'Project', choices: () => projectChoices(api) });
      const p = await ok(api.GET('/projects/{id}', { params: { path: { id } } }));
      show(cmd, p.limitPolicy, (v) => printRecord(v as Record<string, unknown>));
    });
  limitPolicy
    .command('set [project]')
    .description('stop at a limit, or pause (and wait --pause-minutes for an extend before stopping)')
    .addOption(new Option('--policy <policy>', 'stop or pause').choices(['stop', 'pause']))
    .option('--pause-minutes <n>', 'how long a paused machine waits (1-10080)', wholeNumber('--pause-minutes'))
    .action(async (project: string | undefined, o: { policy?: string; pauseMinutes?: number }, cmd: Command) => {
      const { api } = ctxOf(cmd);
      const id = await need(project, { flag: '<project>', message: 'Project', choices: () => projectChoices(api) });
      const policy = await need(o.policy, {
        flag: '--policy',
        message: 'At a limit',
        choices: async () => ['stop', 'pause'].map((v) => ({ name: v, value: v })),
      });
      const body = { policy, ...(o.pauseMinutes !== undefined ? { pauseMinutes: o.pauseMinutes } : {}) } as BodyOf<'/projects/{id}/limit-policy', 'put'>;
      show(cmd, await ok(api.PUT('/projects/{id}/limit-policy', { params: { path: { id } }, body })), (v) => printRecord(v as Record<string, unknown>));
    });

  program
    .command('machine-types')
    .description('machine types, whether each can run here, and their prices')
    .action(async (_o, cmd: Command) => {
      const { api } = ctxOf(cmd);
      const t = await ok(api.GET('/machine-types'));
      show(cmd, t, (v) =>
        printTable(v.items, [
          ['type', (x) => x.id],
          ['title', (x) => x.title],
          ['available', (x) => (x.available ? 'yes' : `no: ${x.reason ?? ''}`)],
          ['default model', (x) => x.defaultModel],
        ]),
      );
    });

  program
    .command('providers')
    .description('compute providers and whether each can run machines here (with the reason when not)')
    .action(async (_o, cmd: Command) => {
      const { api } = ctxOf(cmd);
      const t = await ok(api.GET('/providers'));
      show(cmd, t, (v) =>
        printTable(v.items, [
          ['provider', (x) => x.id],
          ['available', (x) => (x.available ? 'yes' : 'no')],
          ['reason', (x) => x.reason],
          ['checked', (x) => x.checkedAt],
        ]),
      );
    });

  const alerts = program
    .command('alerts')
    .description('alerts (budget thresholds and forecasts, paused or overdue machines, rate limits, resources, failed payments, providers, your rules)');
  pageOptions(
    alerts
      .command('list')
      .description('alerts, newest first')
      .option('--project <id>', 'only this project')
      .addOption(new Option('--status <status>', 'only open or resolved ones').choices(['open', 'resolved']))
      .option('--kind <kind>', 'only this kind, e.g. budget_threshold, time_limit_exceeded, rate_limit_low, alert_rule'),
  ).action(async (o: { project?: string; status?: 'open' | 'resolved'; kind?: string }, cmd: Command) => {
    const { api } = ctxOf(cmd);
    const filters = {
      ...(o.project ? { projectId: o.project } : {}),
      ...(o.status ? { status: o.status } : {}),
      ...(o.kind ? { kind: o.kind as never } : {}),
    };
    await printList(cmd, (query) => ok(api.GET('/alerts', { params: { query: { ...query, ...filters } } })), [
      ['at', (a) => a.at],
      ['status', (a) => a.status],
      ['severity', (a) => a.severity],
      ['kind', (a) => a.kind],
      ['project', (a) => a.projectId],
      ['message', (a) => a.message],
    ]);
  });

  const rules = alerts.command('rules').description("a project's own alert rules: a threshold on one of its metrics");
  rules
    .command('add <project>')
    .description('add a rule, e.g. --metric spend_today --comparator ">" --threshold 50.00')
    .requiredOption(
      '--metric <metric>',
      'spend_today, spend_period_percent, machines_running, machines_failed_last_hour, reservations_open or balance_remaining',
    )
    .requiredOption('--comparator <op>', '>, >=, < or <=')
    .requiredOption('--threshold <value>', "money in the project's currency, a percentage, or a whole count")
    .addOption(new Option('--severity <severity>', 'how serious its alert is').choices(['info', 'warning', 'critical']).default('warning'))
    .option('--name <name>', 'what the alert calls it')
    .action(async (projectId: string, o: { metric: string; comparator: string; threshold: string; severity: string; name?: string }, cmd: Command) => {
      const { api } = ctxOf(cmd);
      const body = { metric: o.metric, comparator: o.comparator, threshold: o.threshold, severity: o.severity, ...(o.name ? { name: o.name } : {}) };
      const rule = await ok(api.POST('/projects/{id}/alert-rules', { params: { path: { id: projectId } }, body }));
      show(cmd, rule, (v) => printRecord(v));
    });
  rules
    .command('list <project>')
    .description("the project's alert rules")
    .action(async (projectId: string, _o, cmd: Command) => {
      const { api } = ctxOf(cmd);
      const r = await ok(api.GET('/projects/{id}/alert-rules', { params: { path: { id: projectId } } }));
      show(cmd, r, (v) =>
        printTable(v.items, [
          ['id', (x) => x.id],
          ['name', (x) => x.name],
          ['rule', (x) => `${x.metric} ${x.comparator} ${x.threshold}${x.currency ? ` ${x.currency}` : x.unit === 'percent' ? '%' : ''}`],
          ['severity', (x) => x.severity],
        ]),
      );
    });
  rules
    .command('delete <project> <rule>')
    .description('delete a rule (its open alert resolves)')
    .action(async (projectId: string, ruleId: string, _o, cmd: Command) => {
      const { api } = ctxOf(cmd);
      await ok(api.DELETE('/projects/{id}/alert-rules/{ruleId}', { params: { path: { id: projectId, ruleId } } }));
      show(cmd, { id: ruleId, status: 'deleted' }, () => process.stderr.write(`alert rule ${ruleId} deleted\n`));
    });

  const fx = program.command('fx').description('exchange rates');
  fx.command('rates')
    .description('live rates from a base currency, with their source and time')
    .option('--base <code>', 'base currency', 'USD')
    .action(async (o: { base: string }, cmd: Command) => {
      const { api } = ctxOf(cmd);
      const r = await ok(api.GET('/fx/rates', { params: { query: { base: o.base as 'USD' } } }));
      show(cmd, r, (v) =>
        printTable(v.items, [
          ['1 ' + v.base, (x) => `${x.rate} ${x.currency}`],
          ['source', (x) => x.source],
          ['as of', (x) => x.asOf],
        ]),
      );
    });

  const departments = program.command('departments').description('departments: budgets and cost roll-ups over their cost centers');
  departments
    .command('budget <name>')
    .description("set a department's budget (admin)")
    .addOption(moneyOption('--amount <amount>', 'the limit, e.g. 100.00'))
    .option('--currency <code>', 'currency', 'USD')
    .addOption(new Option('--period <period>', 'budget window').choices(['daily', 'weekly', 'monthly', 'total']).default('monthly'))
    .action(async (name: string, o: { amount?: string; currency: string; period: string }, cmd: Command) => {
      const { api } = ctxOf(cmd);
      const amount = await need(o.amount, { flag: '--amount', message: 'Budget amount' });
      const body = { amount, currency: o.currency, period: o.period } as BodyOf<'/departments/{name}/budget', 'put'>;
      show(cmd, await ok(api.PUT('/departments/{name}/budget', { params: { path: { name } }, body })), (v) => printRecord(v as Record<string, unknown>));
    });
  departments
    .command('forecast <name>')
    .description("a department's stored spend forecast")
    .action(async (name: string, _o, cmd: Command) => {
      const { api } = ctxOf(cmd);
      show(cmd, await ok(api.GET('/departments/{name}/forecast', { params: { path: { name } } })), printForecast);
    });
  const deptReallocation = departments.command('reallocation').description("moving budget between a department's projects by ROI and use");
  deptReallocation
    .command('get <name>')
    .description("a department's reallocation settings")
    .action(async (name: string, _o, cmd: Command) => {
      const { api } = ctxOf(cmd);
      show(cmd, await ok(api.GET('/departments/{name}/reallocation', { params: { path: { name } } })), (v) => printRecord(v as Record<string, unknown>));
    });
  deptReallocation
    .command('set <name>')
    .description("set a department's reallocation (admin); amounts in its budget's currency")
    .option('--enabled', 'run daily on the schedule')
    .option('--no-enabled', 'do not run (previews still work)')
    .option('--dry-run', 'scheduled runs only preview')
    .addOption(intOption('--max-step-percent <n>', 'at most this % of a project limit per run (1-50, default 10)'))
    .addOption(intOption('--lookback-days <n>', 'days of spend, use and ROI looked at (1-90, default 7)'))
    .addOption(moneyOption('--min-allocation <amount>', 'no project limit goes below this (default 0)'))
    .addOption(moneyOption('--max-allocation <amount>', 'no project limit goes above this'))
    .action(async (name: string, o: ReallocationOptions, cmd: Command) => {
      const { api } = ctxOf(cmd);
      const body = reallocationBody(o) as BodyOf<'/departments/{name}/reallocation', 'put'>;
      show(cmd, await ok(api.PUT('/departments/{name}/reallocation', { params: { path: { name } }, body })), (v) => printRecord(v as Record<string, unknown>));
    });
  deptReallocation
    .command('run <name>')
    .description('run the department reallocation now (admin); --dry-run only previews the moves')
    .option('--dry-run', 'preview: change nothing')
    .action(async (name: string, o: { dryRun?: boolean }, cmd: Command) => {
      const { api } = ctxOf(cmd);
      const query = o.dryRun ? { dryRun: 'true' as const } : {};
      show(cmd, await ok(api.POST('/departments/{name}/reallocation/runs', { params: { path: { name }, query } })), printReallocationRun);
    });
  deptReallocation
    .command('runs <name>')
    .description("a department's reallocation runs, newest first, with their moves")
    .addOption(intOption('--limit <n>', 'at most this many runs (default 20)'))
    .action(async (name: string, o: { limit?: number }, cmd: Command) => {
      const { api } = ctxOf(cmd);
      const query = o.limit !== undefined ? { limit: String(o.limit) } : {};
      show(cmd, await ok(api.GET('/departments/{name}/reallocation/runs', { params: { path: { name }, query } })), (v) => {
        for (const run of v.items) printReallocationRun(run);
      });
    });
  breakdownOptions(
    departments.command('breakdown <name>').description("spend allocated to a department's cost centers grouped by one dimension (project too) and currency"),
  ).action(async (name: string, o: BreakdownOptions, cmd: Command) => {
    const { api } = ctxOf(cmd);
    show(cmd, await ok(api.GET('/departments/{name}/costs/breakdown', { params: { path: { name }, query: breakdownQuery(o) } })), printScopeBreakdown);
  });
  departments
    .command('costs <name>')
    .description("a department's totals per currency and per cost center, and the grand total in one currency")
    .option('--currency <code>', 'the currency of the grand total', 'USD')
    .action(async (name: string, o: { currency: string }, cmd: Command) => {
      const { api } = ctxOf(cmd);
      const c = await ok(api.GET('/departments/{name}/costs', { params: { path: { name }, query: { currency: o.currency } } }));
      show(cmd, c, (v) => {
        printTable(v.totals, [
          ['total', (t) => `${t.amount} ${t.currency}`],
          ['by category', (t) => t.byCategory],
        ]);
        printTable(v.costCenters, [
          ['cost center', (x) => `${x.name} (${x.id})`],
          ['totals', (x) => x.totals.map((t) => `${t.amount} ${t.currency}`).join(', ')],
        ]);
        printRecord({ grandTotal: `${v.grandTotal.amount} ${v.grandTotal.currency}` });
      });
    });

  program
    .command('graphql <query>')
    .description('run a GraphQL query or mutation; prints its data as JSON (errors exit by their status)')
    .option('--variables <json>', 'variables as a JSON object')
    .action(async (query: string, o: { variables?: string }, cmd: Command) => {
      const { api } = ctxOf(cmd);
      let variables: Record<string, unknown> | undefined;
      if (o.variables !== undefined) {
        try {
          variables = JSON.parse(o.variables) as Record<string, unknown>;
        } catch {
          throw new UsageError('--variables: must be a JSON object');
        }
      }
      const { data, error, response } = await api.POST('/graphql', { body: { query, ...(variables ? { variables } : {}) } as BodyOf<'/graphql', 'post'> });
      const result = (data ?? error) as { data?: unknown; errors?: Array<{ message: string; extensions?: { status?: number } }> } | undefined;
      if (!result?.errors?.length && !response.ok) throw new ApiError(response.status, error as never);
      if (jsonMode(cmd) || !result?.errors?.length) printJson(jsonMode(cmd) ? result : result?.data);
      const first = result?.errors?.[0];
      if (first) {
        const statusOf = first.extensions?.status ?? (response.ok ? undefined : response.status);
        throw new CliError(first.message, statusOf ? exitCodeOfStatus(statusOf) : EXIT.generic);
      }
    });

  program
    .command('openapi')
    .description('the OpenAPI document of the api this CLI talks to')
    .action(async (_o, cmd: Command) => {
      const { api } = ctxOf(cmd);
      printJson(await ok(api.GET('/openapi.json')));
    });
}

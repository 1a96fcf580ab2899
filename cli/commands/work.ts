import { Option, type Command } from 'commander';
import { ok, type Api, type BodyOf } from '../client.js';
import { CliError, EXIT, UsageError } from '../errors.js';
import { colors, printJson, printRecord, printTable, status } from '../output.js';
import { Progress } from '../progress.js';
import { need } from '../prompt.js';
import { ctxOf, intOption, jsonMode, moneyOption, pageOptions, printList, readDataFile, show } from '../runtime.js';
import { collect } from './settings.js';
import { projectChoices } from './projects.js';
import { registerCheckpointMerges } from './merges.js';
import { registerCheckpointPush } from './remotes.js';
import { registerCheckpointPullRequest } from './integrations.js';

/** Checkpoints (the evolution tree, files, diffs), objectives and pipelines. */
export function registerWork(program: Command): void {
  const checkpoints = program.command('checkpoints').description('the evolution tree: checkpoints, their files and diffs');

  pageOptions(checkpoints.command('list [project]').description("a project's checkpoints, oldest first")).action(
    async (project: string | undefined, _o, cmd: Command) => {
      const { api } = ctxOf(cmd);
      const id = await need(project, { flag: '<project>', message: 'Project', choices: () => projectChoices(api) });
      await printList(cmd, (query) => ok(api.GET('/projects/{id}/checkpoints', { params: { path: { id }, query } })), [
        ['id', (c) => c.id],
        ['parent', (c) => c.parentId],
        ['machine', (c) => c.machineId],
        ['kind', (c) => c.kind],
        ['commit', (c) => c.commit.slice(0, 12)],
        ['created', (c) => c.createdAt],
      ]);
    },
  );

  checkpoints
    .command('tree [project]')
    .description("a project's whole evolution tree in one read: each branch as one line, its forks indented below it")
    .action(async (project: string | undefined, _o, cmd: Command) => {
      const { api } = ctxOf(cmd);
      const id = await need(project, { flag: '<project>', message: 'Project', choices: () => projectChoices(api) });
      const tree = await ok(api.GET('/projects/{id}/checkpoints/tree', { params: { path: { id } } }));
      show(cmd, tree, (t) => process.stdout.write(treeText(t.nodes)));
    });

  checkpoints
    .command('get <id>')
    .description('a checkpoint: parent, machine, milestone, snapshot')
    .action(async (id: string, _o, cmd: Command) => {
      const { api } = ctxOf(cmd);
      const c = await ok(api.GET('/checkpoints/{id}', { params: { path: { id } } }));
      show(cmd, c, () => printRecord({ ...c, files: `${c.files.length} (autovibe checkpoints files ${c.id})`, snapshot: c.snapshot?.status ?? null }));
    });

  checkpoints
    .command('files <id> [path]')
    .description("a checkpoint's files; with a path, that file's content")
    .action(async (id: string, file: string | undefined, _o, cmd: Command) => {
      const { api } = ctxOf(cmd);
      if (file !== undefined) {
        const bytes = await ok(api.GET('/checkpoints/{id}/files/{path}', { params: { path: { id, path: file } }, parseAs: 'arrayBuffer' }));
        process.stdout.write(Buffer.from(bytes as ArrayBuffer));
        return;
      }
      const c = await ok(api.GET('/checkpoints/{id}', { params: { path: { id } } }));
      show(cmd, c.files, (files) =>
        printTable(files, [
          ['path', (f) => f.path],
          ['size', (f) => f.size],
          ['sha256', (f) => f.sha256.slice(0, 16)],
        ]),
      );
    });

  checkpoints
    .command('diff <from> [to]')
    .description('paths added, modified and deleted from one checkpoint to another (default: from its parent)')
    .action(async (from: string, to: string | undefined, _o, cmd: Command) => {
      const { api } = ctxOf(cmd);
      let a = from;
      let b = to;
      if (b === undefined) {
        const c = await ok(api.GET('/checkpoints/{id}', { params: { path: { id: from } } }));
        if (!c.parentId) throw new UsageError(`checkpoint ${from} is a root: give two checkpoints`);
        a = c.parentId;
        b = from;
      }
      const d = await ok(api.GET('/checkpoints/{a}/diff/{b}', { params: { path: { a, b } } }));
      show(cmd, d, () => {
        const lines = [...d.added.map((p) => `A ${p}`), ...d.modified.map((p) => `M ${p}`), ...d.deleted.map((p) => `D ${p}`)];
        process.stdout.write(lines.length ? `${lines.join('\n')}\n` : '(no changes)\n');
      });
    });

  checkpoints
    .command('milestone <id>')
    .description('mark a checkpoint as a milestone (its snapshot is kept forever); --unset unmarks it')
    .option('--unset', 'unmark it')
    .action(async (id: string, o: { unset?: boolean }, cmd: Command) => {
      const { api } = ctxOf(cmd);
      const r = await ok(api.PUT('/checkpoints/{id}/milestone', { params: { path: { id } }, body: { milestone: !o.unset } }));
      show(cmd, r, (v) => process.stdout.write(`${v.id} ${v.milestone ? 'is a milestone' : 'is not a milestone'}\n`));
    });

  registerCheckpointPush(checkpoints);
  registerCheckpointPullRequest(checkpoints);
  registerCheckpointMerges(checkpoints);

  const objectives = program.command('objectives').description('objectives: work with dependencies and completion criteria');

  pageOptions(objectives.command('list [project]').description("a project's objectives")).action(async (project: string | undefined, _o, cmd: Command) => {
    const { api } = ctxOf(cmd);
    const id = await need(project, { flag: '<project>', message: 'Project', choices: () => projectChoices(api) });
    await printList(cmd, (query) => ok(api.GET('/projects/{id}/objectives', { params: { path: { id }, query } })), [
      ['id', (o) => o.id],
      ['title', (o) => o.title],
      ['status', (o) => o.status],
      ['progress', (o) => `${Math.round(o.progress * 100)}%`],
      ['priority', (o) => o.priority],
      ['depends on', (o) => o.dependsOn.join(', ')],
    ]);
  });

  objectives
    .command('get <id>')
    .description('an objective with its status, progress and what it waits for')
    .option('--wait-for <statuses>', 'wait (up to 60 s) until its status is one of these (comma-separated, e.g. paused)')
    .action(async (id: string, opts: { waitFor?: string }, cmd: Command) => {
      const { api } = ctxOf(cmd);
      const query = opts.waitFor ? { waitFor: opts.waitFor, timeout: 60 } : {};
      const o = await ok(api.GET('/objectives/{id}', { params: { path: { id }, query } }));
      show(cmd, o, (v) => printRecord(v as Record<string, unknown>));
    });

  objectives
    .command('create [project]')
    .description('create an objective (a shell command or an agent prompt), optionally after others')
    .option('--title <title>', 'what it achieves')
    .option('--type <type>', 'machine type', 'shell')
    .option('--command <command>', 'shell command')
    .option('--prompt <prompt>', 'agent prompt')
    .option('--depends-on <ids>', 'objective ids it waits for (comma-separated)')
    .option('--priority <n>', 'higher runs first')
    .addOption(moneyOption('--money <amount>', "each machine's money limit"))
    .option('--ticket', "make a ticket for it in the project's Jira or Linear (status, cost and checkpoints are written back there)")
    .action(
      async (
        project: string | undefined,
        o: { title?: string; type: string; command?: string; prompt?: string; dependsOn?: string; priority?: string; money?: string; ticket?: boolean },
        cmd: Command,
      ) => {
        const { api } = ctxOf(cmd);
        const id = await need(project, { flag: '<project>', message: 'Project', choices: () => projectChoices(api) });
        const title = await need(o.title, { flag: '--title', message: 'Title' });
        const work =
          o.type === 'shell'
            ? { command: await need(o.command, { flag: '--command', message: 'Command' }) }
            : { prompt: await need(o.prompt, { flag: '--prompt', message: 'Prompt' }) };
        const body = {
          title,
          machineType: o.type,
          ...work,
          ...(o.dependsOn ? { dependsOn: o.dependsOn.split(',').map((s) => s.trim()) } : {}),
          ...(o.priority !== undefined ? { priority: Number(o.priority) } : {}),
          ...(o.money ? { limits: { money: o.money } } : {}),
          ...(o.ticket ? { ticket: true } : {}),
        } as BodyOf<'/projects/{id}/objectives', 'post'>;
        const created = await ok(api.POST('/projects/{id}/objectives', { params: { path: { id } }, body }));
        show(cmd, created, (v) => printRecord(v as Record<string, unknown>, ['id', 'title', 'status', 'dependsOn', 'createdAt']));
      },
    );

  for (const [verb, description] of [
    ['pause', 'hold an objective that has not started its machine'],
    ['resume', 'let a paused objective go on'],
    ['cancel', 'cancel an objective (a running machine is terminated cleanly)'],
  ] as const) {
    objectives
      .command(`${verb} <id>`)
      .description(description)
      .action(async (id: string, _o, cmd: Command) => {
        const { api } = ctxOf(cmd);
        const r = await ok(api.POST(`/objectives/{id}/${verb}`, { params: { path: { id } } }));
        show(cmd, r, (v) => printRecord(v as Record<string, unknown>));
      });
  }

  objectives
    .command('update <id>')
    .description('change the title, priority, sub-tasks or machine count of an open objective')
    .option('--title <title>', 'new title')
    .addOption(
      new Option('--priority <n>', 'higher runs first (-1000 to 1000)').argParser((v: string) => {
        if (!/^-?\d+$/.test(v)) throw new UsageError('--priority: must be a whole number');
        return Number(v);
      }),
    )
    .option('--subtask <name>', 'a sub-task (repeatable; replaces the list)', collect)
    .addOption(intOption('--max-machines <n>', 'machines it may run at once (1-20)'))
    .action(async (id: string, o: { title?: string; priority?: number; subtask?: string[]; maxMachines?: number }, cmd: Command) => {
      const { api } = ctxOf(cmd);
      const body = {
        ...(o.title !== undefined ? { title: o.title } : {}),
        ...(o.priority !== undefined ? { priority: o.priority } : {}),
        ...(o.subtask ? { subtasks: o.subtask } : {}),
        ...(o.maxMachines !== undefined ? { maxMachines: o.maxMachines } : {}),
      } as BodyOf<'/objectives/{id}', 'patch'>;
      if (Object.keys(body).length === 0) throw new UsageError('objectives update: give --title, --priority, --subtask or --max-machines');
      const r = await ok(api.PATCH('/objectives/{id}', { params: { path: { id } }, body }));
      show(cmd, r, (v) => printRecord(v as Record<string, unknown>, ['id', 'title', 'status', 'priority', 'subtasks', 'maxMachines']));
    });

  objectives
    .command('link <id> <dependsOn>')
    .description('make an objective wait for another (refused with the path when it closes a cycle)')
    .action(async (id: string, dependsOn: string, _o, cmd: Command) => {
      const { api } = ctxOf(cmd);
      const r = await ok(api.POST('/objectives/{id}/links', { params: { path: { id } }, body: { dependsOn } }));
      show(cmd, r, (v) => process.stdout.write(`${v.id} depends on ${v.dependsOn.join(', ')}\n`));
    });

  objectives
    .command('done <id> <subtasks...>')
    .description('tick sub-tasks off (records the progress made)')
    .action(async (id: string, names: string[], _o, cmd: Command) => {
      const { api } = ctxOf(cmd);
      const r = await ok(api.POST('/objectives/{id}/subtasks/done', { params: { path: { id } }, body: { names } }));
      show(cmd, r, (v) => process.stdout.write(`${v.id} ${Math.round(v.progress * 100)}%\n`));
    });

  objectives
    .command('progress <id>')
    .description('every progress measurement of an objective, oldest first')
    .action(async (id: string, _o, cmd: Command) => {
      const { api } = ctxOf(cmd);
      const r = await ok(api.GET('/objectives/{id}/progress', { params: { path: { id } } }));
      show(cmd, r, (v) =>
        printTable(v.items, [
          ['at', (x) => x.recordedAt],
          ['progress', (x) => `${Math.round(x.progress * 100)}%`],
          ['machine', (x) => x.machineId],
          ['note', (x) => x.note],
        ]),
      );
    });

  objectives
    .command('dag [project]')
    .description("a project's objectives as a dependency graph: layers, each objective with what it waits for")
    .action(async (project: string | undefined, _o, cmd: Command) => {
      const { api } = ctxOf(cmd);
      const id = await need(project, { flag: '<project>', message: 'Project', choices: () => projectChoices(api) });
      const d = await ok(api.GET('/projects/{id}/objectives/dag', { params: { path: { id } } }));
      show(cmd, d, (v) =>
        printTable(v.nodes, [
          ['depth', (n) => n.depth],
          ['id', (n) => n.id],
          ['title', (n) => n.title],
          ['status', (n) => n.status],
          ['progress', (n) => `${Math.round(n.progress * 100)}%`],
          ['waits for', (n) => n.dependsOn.join(', ')],
        ]),
      );
    });

  const pipelines = program.command('pipelines').description('pipelines: a DAG of machine steps');

  pipelines
    .command('create')
    .description('start a pipeline from a YAML or JSON file ({ projectId, steps: [{ id, type, command|prompt, dependsOn }] })')
    .option('--file <file>', 'the pipeline (- for stdin)')
    .option('--project <id>', "sets the file's projectId")
    .option('-f, --follow', 'show step statuses until it ends; exit 7 unless it completed')
    .action(async (o: { file?: string; project?: string; follow?: boolean }, cmd: Command) => {
      const { api } = ctxOf(cmd);
      const file = await need(o.file, { flag: '--file', message: 'Pipeline file (YAML or JSON)' });
      const spec = readDataFile(file);
      if (!spec || typeof spec !== 'object' || Array.isArray(spec)) throw new UsageError(`${file}: must be a mapping with steps`);
      const body = { ...spec, ...(o.project ? { projectId: o.project } : {}) } as BodyOf<'/pipelines', 'post'>;
      const accepted = await ok(api.POST('/pipelines', { body }));
      if (!o.follow) return show(cmd, accepted, (a) => process.stdout.write(`${a.id} ${status(a.status)}\n`));
      await followPipeline(cmd, api, accepted.id);
    });

  pageOptions(pipelines.command('list [project]').description("a project's pipelines, newest first")).action(
    async (project: string | undefined, _o, cmd: Command) => {
      const { api } = ctxOf(cmd);
      const id = await need(project, { flag: '<project>', message: 'Project', choices: () => projectChoices(api) });
      await printList(cmd, (query) => ok(api.GET('/projects/{id}/pipelines', { params: { path: { id }, query } })), [
        ['id', (p) => p.id],
        ['status', (p) => p.status],
        ['steps', (p) => `${p.steps.filter((s) => s.status === 'completed').length}/${p.steps.length} completed`],
        ['created', (p) => p.createdAt],
        ['ended', (p) => p.endedAt],
      ]);
    },
  );

  pipelines
    .command('get <id>')
    .description('a pipeline with the status and timing of each step')
    .option('-f, --follow', 'wait until it ends; exit 7 unless it completed')
    .action(async (id: string, o: { follow?: boolean }, cmd: Command) => {
      const { api } = ctxOf(cmd);
      if (o.follow) return followPipeline(cmd, api, id);
      const p = await ok(api.GET('/pipelines/{id}', { params: { path: { id } } }));
      show(cmd, p, printPipeline);
    });

  pipelines
    .command('cancel <id>')
    .description('cancel a pipeline: running machines are terminated, reservations settled')
    .action(async (id: string, _o, cmd: Command) => {
      const { api } = ctxOf(cmd);
      const r = await ok(api.POST('/pipelines/{id}/cancel', { params: { path: { id } } }));
      show(cmd, r, (v) => printRecord(v as Record<string, unknown>));
    });
}

type Pipeline = Awaited<ReturnType<typeof getPipeline>>;
const getPipeline = (api: Api, id: string, query: { waitFor?: string; timeout?: number } = {}) =>
  ok(api.GET('/pipelines/{id}', { params: { path: { id }, query } }));

function printPipeline(p: Pipeline): void {
  process.stdout.write(`pipeline ${p.id} ${status(p.status)}${p.error ? `: ${p.error}` : ''}\n`);
  printTable(p.steps, [
    ['step', (s) => s.id],
    ['type', (s) => s.type],
    ['status', (s) => s.status],
    ['depends on', (s) => s.dependsOn.join(', ')],
    ['machine', (s) => s.machineId],
    ['error', (s) => s.error],
  ]);
}

/** Long-polls the pipeline (each answer at its next status change or after 30 s) until it ends. */
async function followPipeline(cmd: Command, api: Api, id: string): Promise<void> {
  const progress = new Progress();
  let p = await getPipeline(api, id);
  while (p.status === 'running') {
    const done = p.steps.filter((s) => s.status !== 'waiting' && s.status !== 'running').length;
    progress.update(`pipeline ${id} running: ${done}/${p.steps.length} steps ended`);
    p = await getPipeline(api, id, { waitFor: 'completed,failed,cancelled', timeout: 5 });
  }
  progress.done();
  if (jsonMode(cmd)) printJson(p);
  else printPipeline(p);
  if (p.status !== 'completed') throw new CliError(`pipeline ${id} ${p.status}${p.error ? `: ${p.error}` : ''}`, EXIT.machineFailed);
}

type TreeNode = { id: string; parentId: string | null; machineId: string | null; kind: string; milestone: boolean };

/**
 * The evolution tree as text: a run of checkpoints that does not fork is one line (its first and
 * last checkpoint, how many, the machine), the runs that fork off its last one indented below it.
 */
export function treeText(nodes: readonly TreeNode[]): string {
  const children = new Map<string, TreeNode[]>();
  const roots: TreeNode[] = [];
  const ids = new Set(nodes.map((n) => n.id));
  for (const n of nodes) {
    if (n.parentId === null || !ids.has(n.parentId)) roots.push(n);
    else {
      const list = children.get(n.parentId);
      if (list) list.push(n);
      else children.set(n.parentId, [n]);
    }
  }
  const lines: string[] = [];
  // Iterative (a 10,000-checkpoint main line is deep): [first node of a run, prefix of its line, prefix of its children].
  const stack: Array<[TreeNode, string, string]> = roots.reverse().map((r) => [r, '', '']);
  while (stack.length) {
    const [first, lead, rest] = stack.pop()!;
    let last = first;
    let count = 1;
    let milestones = first.milestone ? 1 : 0;
    for (let kids = children.get(last.id) ?? []; kids.length === 1 && kids[0]!.machineId === first.machineId; kids = children.get(last.id) ?? []) {
      last = kids[0]!;
      count++;
      if (last.milestone) milestones++;
    }
    const span = count === 1 ? first.id : `${first.id} … ${last.id}`;
    const facts = [
      `${count} checkpoint${count === 1 ? '' : 's'}`,
      first.machineId ? `machine ${first.machineId}` : first.kind,
      ...(milestones ? [`${milestones} milestone${milestones === 1 ? '' : 's'}`] : []),
    ];
    lines.push(`${lead}${span} ${colors.dim(`(${facts.join(', ')})`)}`);
    const kids = children.get(last.id) ?? [];
    for (let i = kids.length - 1; i >= 0; i--) {
      const end = i === kids.length - 1;
      stack.push([kids[i]!, `${rest}${end ? '└─ ' : '├─ '}`, `${rest}${end ? '   ' : '│  '}`]);
    }
  }
  const branches = nodes.filter((n) => (children.get(n.id)?.length ?? 0) > 1).length;
  lines.push(colors.dim(`${nodes.length} checkpoints, ${branches} fork points, ${nodes.filter((n) => n.milestone).length} milestones`));
  return `${lines.join('\n')}\n`;
}

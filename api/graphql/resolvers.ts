import { GraphQLScalarType, Kind, valueFromASTUntyped } from 'graphql';
import { InputError } from '../../domain/errors.js';
import type { CurrencyCode } from '../../domain/money.js';
import type { Permission } from '../../domain/permissions.js';
import { formatAmount } from '../../domain/money.js';
import { getApiKey } from '../../store/auth.js';
import { projectBudget } from '../../services/projects.js';
import { projectBudgetsView, projectCheckpointTree, projectCostSeries } from '../../services/project-views.js';
import { getCheckpoint, pageCheckpoints, type Checkpoint } from '../../store/checkpoints.js';
import { costTotals } from '../../store/costs.js';
import { listFiles } from '../../store/git.js';
import { LOG_STREAMS, readLogChunks, type LogStream } from '../../store/machine-logs.js';
import { getMachine, pageMachines, type Machine } from '../../store/machines.js';
import { getObjective, machineIdsOfObjective, pageObjectives, type Objective } from '../../store/objectives.js';
import { getPipeline, pagePipelines, type Pipeline } from '../../store/pipelines.js';
import { pipelineView } from '../../services/pipelines.js';
import { getProject, pageProjects, type Project } from '../../store/projects.js';
import type { CreatedKey } from '../../store/paging.js';
import { createdKey, decodeCursor, MAX_PAGE, pageOf } from '../pagination.js';
import { money, presentBalance, presentBudget, presentComputePrice, presentCostBreakdown, presentCostOpportunities } from '../present.js';
import { NotFoundError } from '../../domain/errors.js';
import { PROJECT_SCOPE } from '../../domain/budget.js';
import { projectCostBreakdown, projectCostOpportunities } from '../../services/analytics.js';
import { scopeForecast } from '../../services/forecasts.js';
import { projectRoi } from '../../services/roi.js';
import { can, visible, type GraphqlContext } from './context.js';
import { DEFAULT_FIRST } from './limits.js';
import { loadersOf } from './loaders.js';
import { eventSubscription } from './subscriptions.js';
import { withLocalRepo } from '../../store/shared-storage.js';

interface PageArgs {
  first?: number | null;
  after?: string | null;
}
interface Connection<T> {
  items: T[];
  nextCursor: string | null;
}

function pageSize(args: PageArgs): number {
  const first = args.first ?? DEFAULT_FIRST;
  if (!Number.isInteger(first) || first < 1 || first > MAX_PAGE) throw new InputError(`first: must be 1 to ${MAX_PAGE}`, { field: 'first' });
  return first;
}

/** The REST cursor of a list ordered by creation; its error names the argument as it is called here. */
function afterKey(after: string | null | undefined): CreatedKey | undefined {
  try {
    return decodeCursor(after ?? undefined, createdKey) as CreatedKey | undefined;
  } catch (e) {
    if (e instanceof InputError) throw new InputError(e.message.replace(/^cursor:/, 'after:'), { field: 'after' });
    throw e;
  }
}

/** One page through a store keyset function, with the same cursors as the REST list of the same things. */
async function keyed<T>(args: PageArgs, fetch: (page: { limit: number; after: CreatedKey | undefined }) => Promise<Array<{ item: T; key: CreatedKey }>>) {
  const first = pageSize(args);
  const rows = await fetch({ limit: first + 1, after: afterKey(args.after) });
  const page = pageOf(rows, first, (r) => r.key);
  return { items: page.items.map((r) => r.item), nextCursor: page.nextCursor } satisfies Connection<T>;
}

const sum = (totals: Record<string, bigint>) => Object.values(totals).reduce((a, b) => a + b, 0n);
const presentCosts = (totals: Record<string, bigint>, currency: CurrencyCode) => ({
  total: money(sum(totals), currency),
  byCategory: Object.entries(totals)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([category, units]) => ({ category, amount: money(units, currency) })),
});

async function projectOfRow(ctx: GraphqlContext, id: string): Promise<Project> {
  const project = await loadersOf(ctx).project.load(id);
  // Rows of a project always have it (foreign keys); a missing one is a bug, not a 404.
  if (!project) throw new Error(`project ${id} of a stored row is missing`);
  return project;
}

/**
 * A lookup by id: null when there is no such thing or it is another project's (as REST's 404),
 * FORBIDDEN when the role may not read it (as REST's 403).
 */
const READ = {
  project: 'projects.read',
  machine: 'machines.read',
  checkpoint: 'checkpoints.read',
  objective: 'objectives.read',
  pipeline: 'pipelines.read',
} as const satisfies Record<string, Permission>;

async function lookup<T>(ctx: GraphqlContext, kind: keyof typeof READ, id: string, read: () => Promise<T | null>) {
  const projectId = await visible(ctx, kind, id);
  if (!projectId) return null;
  await can(ctx, READ[kind], projectId);
  return read();
}

const JSONScalar = new GraphQLScalarType({
  name: 'JSON',
  description: 'Any JSON value',
  serialize: (v) => v,
  parseValue: (v) => v,
  parseLiteral: (ast, variables) => (ast.kind === Kind.NULL ? null : valueFromASTUntyped(ast, variables)),
});

export const resolvers = {
  JSON: JSONScalar,

  Query: {
    async viewer(_: unknown, __: unknown, ctx: GraphqlContext) {
      await can(ctx, 'keys.self');
      const k = (await getApiKey(ctx.api.db, ctx.principal.apiKeyId))!;
      return {
        id: k.id,
        name: k.name,
        role: k.role,
        prefix: k.prefix,
        projectIds: k.projectIds,
        expiresAt: k.expiresAt,
        user: { id: ctx.principal.userId, name: ctx.principal.name },
      };
    },
    async projects(_: unknown, args: PageArgs, ctx: GraphqlContext) {
      await can(ctx, 'projects.read');
      return keyed(args, (page) => pageProjects(ctx.api.db, { ...page, projectIds: ctx.principal.projectIds }));
    },
    project: (_: unknown, { id }: { id: string }, ctx: GraphqlContext) => lookup(ctx, 'project', id, () => getProject(ctx.api.db, id)),
    machine: (_: unknown, { id }: { id: string }, ctx: GraphqlContext) => lookup(ctx, 'machine', id, () => getMachine(ctx.api.db, id)),
    checkpoint: (_: unknown, { id }: { id: string }, ctx: GraphqlContext) => lookup(ctx, 'checkpoint', id, () => getCheckpoint(ctx.api.db, id)),
    objective: (_: unknown, { id }: { id: string }, ctx: GraphqlContext) => lookup(ctx, 'objective', id, () => getObjective(ctx.api.db, id)),
    pipeline: (_: unknown, { id }: { id: string }, ctx: GraphqlContext) => lookup(ctx, 'pipeline', id, () => getPipeline(ctx.api.db, id)),
  },

  Project: {
    defaultMachineMoney: (p: Project) => formatAmount(p.defaultMachineMoney, p.currency),
    limitPolicy: (p: Project) => ({ policy: p.limitPolicy, pauseMinutes: p.pauseMinutes }),
    budget: async (p: Project, _: unknown, ctx: GraphqlContext) => presentBudget(await projectBudget(ctx.api, p)),
    async costs(p: Project, _: unknown, ctx: GraphqlContext) {
      await can(ctx, 'costs.read', p.id);
      return presentCosts(await costTotals(ctx.api.db, { projectId: p.id }), p.currency);
    },
    async machines(p: Project, args: PageArgs & { status?: string | null }, ctx: GraphqlContext) {
      await can(ctx, 'machines.read', p.id);
      return keyed(args, (page) => pageMachines(ctx.api.db, { ...page, projectId: p.id, ...(args.status ? { status: args.status } : {}) }));
    },
    async checkpoints(p: Project, args: PageArgs, ctx: GraphqlContext) {
      await can(ctx, 'checkpoints.read', p.id);
      return keyed(args, (page) => pageCheckpoints(ctx.api.db, p.id, page));
    },
    async objectives(p: Project, args: PageArgs, ctx: GraphqlContext) {
      await can(ctx, 'objectives.read', p.id);
      return keyed(args, (page) => pageObjectives(ctx.api.db, p.id, page));
    },
    async pipelines(p: Project, args: PageArgs, ctx: GraphqlContext) {
      await can(ctx, 'pipelines.read', p.id);
      return keyed(args, (page) => pagePipelines(ctx.api.db, p.id, page));
    },
    async checkpointTree(p: Project, _: unknown, ctx: GraphqlContext) {
      await can(ctx, 'checkpoints.read', p.id);
      return (await projectCheckpointTree(ctx.api, p.id)).nodes;
    },
    async costSeries(p: Project, args: { bucket?: string | null; from?: string | null; to?: string | null }, ctx: GraphqlContext) {
      await can(ctx, 'costs.read', p.id);
      const query = Object.fromEntries(Object.entries(args).filter(([, v]) => v !== null && v !== undefined));
      const s = await projectCostSeries(ctx.api, p.id, query);
      return {
        bucket: s.bucket,
        from: s.from.toISOString(),
        to: s.to.toISOString(),
        currency: p.currency,
        categories: s.categories,
        total: money(s.total, p.currency),
        buckets: s.buckets.map((b) => ({
          start: b.start.toISOString(),
          total: formatAmount(b.total, p.currency),
          byCategory: Object.entries(b.byCategory).map(([category, units]) => ({ category, amount: formatAmount(units, p.currency) })),
        })),
      };
    },
    async budgets(p: Project, _: unknown, ctx: GraphqlContext) {
      await can(ctx, 'costs.read', p.id);
      const v = await projectBudgetsView(ctx.api, p.id);
      return {
        budget: presentBudget(v.budget),
        balance: presentBalance(v.balance),
        machineTypes: v.machineTypes.map((t) => ({ machineType: t.machineType, source: t.source, budget: presentBudget(t.budget) })),
      };
    },
    async forecast(p: Project, _: unknown, ctx: GraphqlContext) {
      await can(ctx, 'costs.read', p.id);
      try {
        const f = await scopeForecast(ctx.api, PROJECT_SCOPE, p.id);
        return { ...f.body, computedAt: new Date(f.computedAt).toISOString(), workflowId: f.workflowId };
      } catch (e) {
        // Not stored yet (REST: 404 forecast not ready).
        if (e instanceof NotFoundError) return null;
        throw e;
      }
    },
    async costBreakdown(p: Project, args: { by: string; from?: string | null; to?: string | null }, ctx: GraphqlContext) {
      await can(ctx, 'costs.read', p.id);
      const query = Object.fromEntries(Object.entries(args).filter(([, v]) => v !== null && v !== undefined));
      return presentCostBreakdown(await projectCostBreakdown(ctx.api, p.id, query));
    },
    async costOpportunities(p: Project, args: { days?: number | null }, ctx: GraphqlContext) {
      await can(ctx, 'costs.read', p.id);
      const query = args.days === null || args.days === undefined ? {} : { days: String(args.days) };
      return presentCostOpportunities(await projectCostOpportunities(ctx.api, p.id, query, { includeDeployment: ctx.principal.projectIds === null }));
    },
    async roi(p: Project, args: { days?: number | null }, ctx: GraphqlContext) {
      await can(ctx, 'costs.read', p.id);
      return projectRoi(ctx.api, p.id, args.days === null || args.days === undefined ? {} : { days: args.days });
    },
  },

  Machine: {
    async project(m: Machine, _: unknown, ctx: GraphqlContext) {
      await can(ctx, 'projects.read', m.projectId);
      return projectOfRow(ctx, m.projectId);
    },
    limits: (m: Machine) => m.limits,
    computePrice: (m: Machine) => (m.computePrice ? presentComputePrice(m.computePrice) : null),
    usage: (m: Machine) => ({ inputTokens: m.usage.inputTokens ?? 0, outputTokens: m.usage.outputTokens ?? 0, apiCalls: m.usage.apiCalls ?? 0 }),
    // As REST's machine: its cost is part of reading the machine.
    async cost(m: Machine, _: unknown, ctx: GraphqlContext) {
      const [project, totals] = await Promise.all([projectOfRow(ctx, m.projectId), loadersOf(ctx).machineCosts.load(m.id)]);
      return money(sum(totals ?? {}), project.currency);
    },
    async costs(m: Machine, _: unknown, ctx: GraphqlContext) {
      await can(ctx, 'costs.read', m.projectId);
      const [project, totals] = await Promise.all([projectOfRow(ctx, m.projectId), loadersOf(ctx).machineCosts.load(m.id)]);
      return presentCosts(totals ?? {}, project.currency);
    },
    async parentCheckpoint(m: Machine, _: unknown, ctx: GraphqlContext) {
      await can(ctx, 'checkpoints.read', m.projectId);
      return (await loadersOf(ctx).checkpoint.load(m.parentCheckpointId)) ?? null;
    },
    async checkpoints(m: Machine, args: PageArgs, ctx: GraphqlContext) {
      await can(ctx, 'checkpoints.read', m.projectId);
      return keyed(args, (page) => pageCheckpoints(ctx.api.db, m.projectId, { ...page, machineId: m.id }));
    },
    async logs(m: Machine, args: PageArgs & { streams?: string[] | null }, ctx: GraphqlContext) {
      await can(ctx, 'machines.read', m.projectId);
      const first = pageSize(args);
      const after = args.after ?? '0';
      if (!/^\d{1,15}$/.test(after)) throw new InputError("after: must be a log chunk's seq (the nextCursor of the previous page)", { field: 'after' });
      const streams = args.streams ?? [];
      for (const s of streams) {
        if (!LOG_STREAMS.includes(s as LogStream)) throw new InputError(`streams: each must be one of ${LOG_STREAMS.join(', ')}`, { field: 'streams' });
      }
      const chunks = await readLogChunks(ctx.api.db, { machineId: m.id, after: Number(after), streams: streams as LogStream[], limit: first + 1 });
      const items = chunks.slice(0, first);
      return {
        items: items.map((c) => ({ seq: String(c.seq), stream: c.stream, text: c.text, at: c.at })),
        nextCursor: chunks.length > first ? String(items.at(-1)!.seq) : null,
      };
    },
  },

  Checkpoint: {
    async parent(c: Checkpoint, _: unknown, ctx: GraphqlContext) {
      return c.parentId ? ((await loadersOf(ctx).checkpoint.load(c.parentId)) ?? null) : null;
    },
    async machine(c: Checkpoint, _: unknown, ctx: GraphqlContext) {
      if (!c.machineId) return null;
      await can(ctx, 'machines.read', c.projectId);
      return (await loadersOf(ctx).machine.load(c.machineId)) ?? null;
    },
    async children(c: Checkpoint, args: PageArgs, ctx: GraphqlContext) {
      return keyed(args, (page) => pageCheckpoints(ctx.api.db, c.projectId, { ...page, parentId: c.id }));
    },
    async files(c: Checkpoint, _: unknown, ctx: GraphqlContext) {
      const project = await withLocalRepo(ctx.api.db, ctx.api.config, await projectOfRow(ctx, c.projectId), [c.commit]);
      return listFiles(project.repoPath, c.commit);
    },
  },

  Objective: {
    // As REST: objectives without criteria that completed before progress was measured show done.
    progress: (o: Objective) => (o.status === 'completed' ? 1 : o.progress),
    machineIds: (o: Objective, _: unknown, ctx: GraphqlContext) => machineIdsOfObjective(ctx.api.db, o.id),
  },

  Pipeline: {
    workflowId: (p: Pipeline) => pipelineView(p).workflowId,
    steps: (p: Pipeline) => p.steps,
  },

  Subscription: {
    events: eventSubscription,
  },
};

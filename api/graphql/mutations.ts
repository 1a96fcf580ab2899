import type { Access } from '../routes/table.js';
import { inBody, inPath } from '../routes/table.js';
import { checkAccess } from '../auth.js';
import { presentBudget } from '../present.js';
import { createProject, setProjectBudget } from '../../services/projects.js';
import { checkpointMachine, requestMachine, terminateMachine } from '../../services/machines.js';
import { createObjective } from '../../services/objectives.js';
import { createPipeline } from '../../services/pipelines.js';
import { topUp } from '../../services/payments.js';
import { getPipeline } from '../../store/pipelines.js';
import type { Caller } from '../../services/context.js';
import { getMachine } from '../../store/machines.js';
import { can, type GraphqlContext } from './context.js';

/**
 * Each mutation is the REST route of the same use case: it declares that route's access (a test
 * compares them with the route table), is authorized by the same rule (`checkAccess`: resources
 * named by id must be the caller's — NOT_FOUND, or BAD_USER_INPUT naming the input field — then
 * the permission, FORBIDDEN naming it) and calls the same service function.
 */
export const MUTATION_ROUTES = {
  createProject: { route: 'POST /projects', access: { permission: 'projects.create', resource: inBody('cost-center', 'costCenterId') } },
  setBudget: { route: 'PUT /projects/:id/budget', access: { permission: 'budgets.write', resource: inPath('project') } },
  requestMachine: {
    route: 'POST /machines',
    access: { permission: 'machines.run', resource: [inBody('project', 'projectId'), inBody('cost-center', 'costCenterId')] },
  },
  terminateMachine: { route: 'POST /machines/:id/terminate', access: { permission: 'machines.run', resource: inPath('machine') } },
  checkpointMachine: { route: 'POST /machines/:id/checkpoint', access: { permission: 'machines.run', resource: inPath('machine') } },
  createObjective: { route: 'POST /projects/:id/objectives', access: { permission: 'objectives.write', resource: inPath('project') } },
  createPipeline: { route: 'POST /pipelines', access: { permission: 'pipelines.write', resource: inBody('project', 'projectId') } },
  topUp: { route: 'POST /projects/:id/topups', access: { permission: 'topups.create', resource: inPath('project') } },
} as const satisfies Record<string, { route: string; access: Access }>;

type Input = Record<string, unknown>;

/** GraphQL clients send null for "not given"; the REST bodies (and their schemas) leave such fields out. */
function withoutNulls<T>(v: T): T {
  if (Array.isArray(v)) return v.map(withoutNulls) as T;
  if (v && typeof v === 'object')
    return Object.fromEntries(
      Object.entries(v)
        .filter(([, x]) => x !== null)
        .map(([k, x]) => [k, withoutNulls(x)]),
    ) as T;
  return v;
}

/** Authorizes a mutation as its REST route: `target` is the id the route has in its path. */
async function authorize(ctx: GraphqlContext, name: keyof typeof MUTATION_ROUTES, target: string | undefined, input: Input | undefined): Promise<Caller> {
  await checkAccess(ctx.api.db, ctx.principal, MUTATION_ROUTES[name].access, ctx.site, (ref) => (ref.in === 'body' ? input?.[ref.name] : target));
  return { principal: ctx.principal, idempotencyKey: ctx.idempotencyKey };
}

/** A machine a mutation answered about, when the caller may read machines (else null with FORBIDDEN). */
async function machineOf(parent: { id: string }, _: unknown, ctx: GraphqlContext) {
  await can(ctx, 'machines.read');
  return getMachine(ctx.api.db, parent.id);
}

export const mutationResolvers = {
  Mutation: {
    async createProject(_: unknown, args: { input: Input }, ctx: GraphqlContext) {
      const input = withoutNulls(args.input);
      const caller = await authorize(ctx, 'createProject', undefined, input);
      return (await createProject(ctx.api, caller, input as Parameters<typeof createProject>[2])).project;
    },
    async setBudget(_: unknown, args: { projectId: string; input: Input }, ctx: GraphqlContext) {
      const input = withoutNulls(args.input);
      const caller = await authorize(ctx, 'setBudget', args.projectId, input);
      return presentBudget(await setProjectBudget(ctx.api, caller, args.projectId, input as Parameters<typeof setProjectBudget>[3]));
    },
    async requestMachine(_: unknown, args: { input: Input }, ctx: GraphqlContext) {
      const input = withoutNulls(args.input);
      const caller = await authorize(ctx, 'requestMachine', undefined, input);
      return requestMachine(ctx.api, caller, input as Parameters<typeof requestMachine>[2]);
    },
    async terminateMachine(_: unknown, args: { id: string }, ctx: GraphqlContext) {
      return terminateMachine(ctx.api, await authorize(ctx, 'terminateMachine', args.id, undefined), args.id);
    },
    async checkpointMachine(_: unknown, args: { id: string }, ctx: GraphqlContext) {
      return checkpointMachine(ctx.api, await authorize(ctx, 'checkpointMachine', args.id, undefined), args.id);
    },
    async createObjective(_: unknown, args: { projectId: string; input: Input }, ctx: GraphqlContext) {
      const input = withoutNulls(args.input);
      const caller = await authorize(ctx, 'createObjective', args.projectId, input);
      return createObjective(ctx.api, caller, args.projectId, input as Parameters<typeof createObjective>[3]);
    },
    async createPipeline(_: unknown, args: { input: Input }, ctx: GraphqlContext) {
      const input = withoutNulls(args.input);
      const caller = await authorize(ctx, 'createPipeline', undefined, input);
      return createPipeline(ctx.api, caller, input as Parameters<typeof createPipeline>[2]);
    },
    async topUp(_: unknown, args: { projectId: string; input: Input }, ctx: GraphqlContext) {
      const input = withoutNulls(args.input);
      const caller = await authorize(ctx, 'topUp', args.projectId, input);
      return topUp(ctx.api, caller, args.projectId, input as Parameters<typeof topUp>[3]);
    },
  },
  MachineAccepted: { machine: machineOf },
  PipelineAccepted: {
    async pipeline(parent: { id: string }, _: unknown, ctx: GraphqlContext) {
      await can(ctx, 'pipelines.read');
      return getPipeline(ctx.api.db, parent.id);
    },
  },
  MachineStatusChange: { machine: machineOf },
};

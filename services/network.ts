/** Use cases of machine network policy: a project's policy, and the policy one machine request gets. */
import { z } from 'zod';
import { ForbiddenError, InputError } from '../domain/errors.js';
import { normalizeNetworkPolicy, widensProblem, type NetworkPolicy } from '../domain/network.js';
import { roleAllows } from '../domain/permissions.js';
import { appendAudit } from '../store/audit.js';
import { getProjectNetworkPolicy, setProjectNetworkPolicy, type Project } from '../store/projects.js';
import { actorOfCaller, type Caller, type ServiceContext } from './context.js';
import { requireProject } from './projects.js';
import { networkPolicyBody, putNetworkPolicyBody } from './schemas.js';

/** A project's network policy as shown: the policy, the registries `registries` means here, who set it. */
export interface NetworkPolicyView {
  projectId: string;
  mode: NetworkPolicy['mode'];
  hosts: string[];
  /** The hosts mode `registries` lets through on this deployment (built-in list + AUTOVIBE_NETWORK_REGISTRY_HOSTS). */
  registryHosts: string[];
  updatedBy: string | null;
  updatedAt: string | null;
}

/** A policy from a request body, checked and canonical, or InputError naming `field`. */
export function parseNetworkPolicy(input: z.input<typeof networkPolicyBody>, field: string): NetworkPolicy {
  const body = networkPolicyBody.parse(input);
  const policy = normalizeNetworkPolicy(body);
  if (typeof policy === 'string') throw new InputError(`${field}${field ? '.' : ''}${policy}`, { field: field ? `${field}.hosts` : 'hosts' });
  return policy;
}

export async function getProjectNetwork(ctx: ServiceContext, projectId: string): Promise<NetworkPolicyView> {
  const project = await requireProject(ctx, projectId);
  const own = await getProjectNetworkPolicy(ctx.db, project.id);
  return {
    projectId: project.id,
    ...(own?.policy ?? project.networkPolicy),
    registryHosts: ctx.config.network.registryHosts,
    updatedBy: own?.updatedBy ?? null,
    updatedAt: own?.updatedAt ?? null,
  };
}

/** Sets the project's network policy (what its machines get unless a request narrows it), audited. */
export async function setProjectNetwork(
  ctx: ServiceContext,
  caller: Caller,
  projectId: string,
  input: z.input<typeof putNetworkPolicyBody>,
): Promise<NetworkPolicyView> {
  const project = await requireProject(ctx, projectId);
  const policy = parseNetworkPolicy(input, '');
  await ctx.db.transaction(async (trx) => {
    await setProjectNetworkPolicy(trx, project.id, policy, actorOfCaller(caller));
    await appendAudit(trx, {
      actor: actorOfCaller(caller),
      action: 'project.network_policy_set',
      subjectType: 'project',
      subjectId: project.id,
      projectId: project.id,
      details: { mode: policy.mode, hosts: policy.hosts, previous: project.networkPolicy },
    });
  });
  return getProjectNetwork(ctx, project.id);
}

/**
 * The policy a machine request gets: the project's when the request names none; the request's
 * when it stays within the project's; reaching beyond it only for a caller allowed to configure
 * network (an owner), else ForbiddenError saying what reaches beyond.
 */
export function machineNetworkPolicy(
  ctx: Pick<ServiceContext, 'config'>,
  caller: Caller,
  project: Project,
  requested: z.input<typeof networkPolicyBody> | undefined,
): NetworkPolicy {
  if (!requested) return project.networkPolicy;
  const policy = parseNetworkPolicy(requested, 'network');
  const beyond = widensProblem(policy, project.networkPolicy, ctx.config.network.registryHosts);
  if (beyond && !roleAllows(caller.principal.role, 'network.configure')) throw new ForbiddenError(`network: ${beyond}`);
  return policy;
}

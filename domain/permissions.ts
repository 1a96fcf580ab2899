/**
 * The permission model: roles, what each may do, and who may hand out which key.
 *
 * A key has one role and either a list of projects it is bound to or none (a deployment-wide
 * key, which sees every project). `admin` is deployment-wide only; `machine` is the identity of
 * calls made from inside a machine and is bound to exactly one project.
 */

export const ROLES = ['admin', 'owner', 'operator', 'viewer', 'machine'] as const;
export type Role = (typeof ROLES)[number];

/** Reading a project's things (and catalogs, and one's own key). */
const READ = [
  'projects.read',
  'machines.read',
  'checkpoints.read',
  'objectives.read',
  'pipelines.read',
  'costs.read',
  'payments.read',
  'audit.read',
  'cost-centers.read',
  'catalog.read',
  'keys.self',
  'webhooks.read',
  'integrations.read',
  // The router's state and decisions (GET /v1/routing).
  'routing.read',
  // How good the cost predictions were (GET /v1/predictions/accuracy).
  'predictions.read',
] as const;
/** Running work in a project. */
const RUN = ['machines.run', 'checkpoints.write', 'objectives.write', 'pipelines.write'] as const;
/** Configuring a project and its money: raising a budget and changing how money is paid are the owner's, never an operator's. */
const CONFIGURE = [
  'projects.create',
  'projects.configure',
  'budgets.write',
  'payment-methods.write',
  'topups.create',
  'keys.manage',
  'webhooks.manage',
  'integrations.manage',
  // A project's network policy, and giving one machine more network than its project's policy.
  'network.configure',
  // A project's quality-vs-cost knob and exploration budget for type "auto".
  'routing.configure',
  // A project's own alert rules (thresholds on its metrics); reading them is projects.read.
  'alerts.configure',
] as const;
/** Deployment-wide. */
const ADMINISTER = [
  'cost-centers.manage',
  'payments.approve',
  'credits.grant',
  'audit.verify',
  'backups.manage',
  // Point-in-time recovery of a project (POST /v1/projects/:id/recoveries): a copy, or its rows rewritten in place.
  'projects.recover',
  // Moving budget between a cost center's projects (README "Reallocation"): its settings and runs.
  'reallocation.manage',
] as const;
/** Every role: sending several requests in one (POST /v1/batch), each then authorized as if sent alone. */
const ANYONE = ['batch.send'] as const;

export const PERMISSIONS = [...READ, ...RUN, ...CONFIGURE, ...ADMINISTER, ...ANYONE] as const;
export type Permission = (typeof PERMISSIONS)[number];

export const ROLE_PERMISSIONS: Record<Role, ReadonlySet<Permission>> = {
  admin: new Set(PERMISSIONS),
  owner: new Set<Permission>([...READ, ...RUN, ...CONFIGURE, ...ANYONE]),
  operator: new Set<Permission>([...READ, ...RUN, ...ANYONE]),
  viewer: new Set<Permission>([...READ, ...ANYONE]),
  // Inside a machine: read its own project's checkpoints and files, nothing else.
  machine: new Set<Permission>(['projects.read', 'checkpoints.read', ...ANYONE]),
};

export function roleAllows(role: Role, permission: Permission): boolean {
  return ROLE_PERMISSIONS[role].has(permission);
}

/** Who is calling: the key, its role and its project binding (null: every project). */
export interface Principal {
  userId: string;
  name: string;
  role: Role;
  apiKeyId: string;
  /** The projects this key is bound to; null for a deployment-wide key. */
  projectIds: readonly string[] | null;
}

export function canSeeProject(p: Pick<Principal, 'projectIds'>, projectId: string): boolean {
  return p.projectIds === null || p.projectIds.includes(projectId);
}

const RANK: Record<Role, number> = { machine: 0, viewer: 1, operator: 2, owner: 3, admin: 4 };

/** A key request: the role and projects a new key would get. */
export interface KeyGrant {
  role: Role;
  projectIds: readonly string[] | null;
}

/**
 * Why `granter` may not create (or rotate, revoke, expire) a key with `grant`, or null when it may.
 * Nobody hands out more than they hold: an owner gives at most `owner` on projects it is bound to.
 */
export function grantProblem(granter: Principal, grant: KeyGrant): string | null {
  if (grant.role === 'admin' && grant.projectIds !== null) return 'an admin key is deployment-wide: leave projectIds out';
  if (grant.role === 'machine' && (grant.projectIds === null || grant.projectIds.length !== 1)) return 'a machine key is bound to exactly one project';
  if (granter.role === 'admin') return null;
  if (!roleAllows(granter.role, 'keys.manage')) return `role "${granter.role}" may not manage keys`;
  if (RANK[grant.role] > RANK[granter.role]) return `role "${granter.role}" may not create a key with role "${grant.role}"`;
  if (grant.projectIds === null) {
    return granter.projectIds === null ? null : 'a key bound to projects may only create keys bound to some of the same projects: give projectIds';
  }
  if (grant.projectIds.length === 0) return 'projectIds: give at least one project, or leave it out for a deployment-wide key';
  if (granter.projectIds !== null) {
    const outside = grant.projectIds.filter((id) => !granter.projectIds!.includes(id));
    if (outside.length) return `projectIds: not projects of this key: ${outside.join(', ')}`;
  }
  return null;
}

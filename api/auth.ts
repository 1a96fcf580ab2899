import type { RequestHandler } from 'express';
import { canSeeProject, roleAllows, type Principal } from '../domain/permissions.js';
import { costCenterVisibility, projectOf, type OwnedKind } from '../store/access.js';
import { appendAudit } from '../store/audit.js';
import { principalForRequest, touchKey } from '../store/auth.js';
import type { Db } from '../store/db.js';
import { InputError, NotFoundError } from '../domain/errors.js';
import type { ApiContext } from './context.js';
import { ApiError, MESSAGES } from './errors.js';
import type { Access, ResourceRef } from './routes/table.js';

/** How often a key's last-used time (and its `key.used` audit record) is written. */
const KEY_USE_RESOLUTION_S = 60;

/** Every /v1 route needs `Authorization: Bearer <key>` of a known, unrevoked, unexpired key. */
export function requireApiKey(db: Db): RequestHandler {
  // Keys this process marked used lately: most requests then skip the last-used write entirely.
  const touched = new Map<string, number>();
  return async (req, _res, next) => {
    const header = req.get('authorization') ?? '';
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    if (!match) return next(new ApiError(401, 'unauthenticated', MESSAGES.missingKey));
    try {
      const principal = await principalForRequest(db, match[1]!);
      if (!principal) return next(new ApiError(401, 'unauthenticated', MESSAGES.unknownKey));
      req.principal = principal;
      const now = new Date();
      const fresh = (touched.get(principal.apiKeyId) ?? 0) > now.getTime() - KEY_USE_RESOLUTION_S * 1000;
      if (!fresh && touched.size > 10_000) touched.clear();
      if (!fresh) touched.set(principal.apiKeyId, now.getTime());
      if (!fresh && (await touchKey(db, principal.apiKeyId, now, KEY_USE_RESOLUTION_S))) {
        await appendAudit(db, {
          actor: actorName(principal),
          action: 'key.used',
          subjectType: 'api_key',
          subjectId: principal.apiKeyId,
          details: { method: req.method, path: req.path },
        });
      }
      next();
    } catch (e) {
      next(e);
    }
  };
}

export const actorName = (p: Principal) => `user:${p.name}`;

/** Where an access check ran (the request's method and path), for the audit record of a denial. */
export interface AccessSite {
  method: string;
  path: string;
}

export const siteOf = (req: Parameters<RequestHandler>[0]): AccessSite => ({ method: req.method, path: req.originalUrl.split('?')[0]! });

async function auditDenied(db: Db, p: Principal, site: AccessSite, reason: string, details: Record<string, unknown>) {
  // Deployment-level records (no project): a tenant never reads who probed it, the operator does.
  await appendAudit(db, {
    actor: actorName(p),
    action: 'access.denied',
    subjectType: 'api_key',
    subjectId: p.apiKeyId,
    details: { method: site.method, path: site.path, reason, ...details },
  });
}

/**
 * The project of a resource the caller names, or null when there is no such resource or it is in
 * a project the caller's key is not bound to (audited). Callers answer both nulls the same way,
 * so another project's resource reads exactly as a missing one.
 */
export async function visibleProjectOf(db: Db, p: Principal, kind: OwnedKind, id: string, site: AccessSite): Promise<string | null> {
  // A project the key is bound to exists (the binding references it): nothing to read.
  if (kind === 'project' && p.projectIds?.includes(id)) return id;
  const projectId = await projectOf(db, kind, id);
  if (projectId && !canSeeProject(p, projectId)) {
    await auditDenied(db, p, site, "not in this key's projects", { [kind]: id });
    return null;
  }
  return projectId;
}

/**
 * Refuses (403, audited) a caller whose role lacks the permission, or a key bound to projects
 * doing deployment-wide work. `projectId`: the project the work is in, for the audit record.
 */
export async function requirePermission(
  db: Db,
  p: Principal,
  access: Pick<Access, 'permission' | 'deploymentWide'>,
  site: AccessSite,
  projectId: string | null = null,
): Promise<void> {
  if (!roleAllows(p.role, access.permission)) {
    await auditDenied(db, p, site, 'role', { role: p.role, permission: access.permission, projectId });
    throw new ApiError(403, 'forbidden', MESSAGES.forbidden(p.role, access.permission), { permission: access.permission });
  }
  if (access.deploymentWide && p.projectIds !== null) {
    await auditDenied(db, p, site, 'deployment-wide', { permission: access.permission });
    throw new ApiError(403, 'forbidden', MESSAGES.deploymentWide(access.permission), { permission: access.permission });
  }
}

function rawRef(req: Parameters<RequestHandler>[0], ref: ResourceRef): unknown {
  if (ref.in === 'path') {
    const v = (req.params as Record<string, unknown>)[ref.name];
    return Array.isArray(v) ? v.join('/') : v;
  }
  if (ref.in === 'body') return (req.body as Record<string, unknown> | undefined)?.[ref.name];
  return req.query[ref.name];
}

/**
 * The access rule of every entry point: the resources a request names must be in the caller's
 * projects (another project's resource is exactly a missing one: NotFoundError, or InputError
 * naming the field for a body field), then the caller's role must hold the permission (403).
 * `valueOf` reads a reference from the request (REST: path, body, query; GraphQL: arguments).
 * Returns the projects the named resources belong to.
 */
export async function checkAccess(db: Db, p: Principal, access: Access, site: AccessSite, valueOf: (ref: ResourceRef) => unknown): Promise<string[]> {
  const refs = access.resource === 'none' ? [] : [access.resource].flat();
  const projects: string[] = [];
  for (const ref of refs) {
    const raw = valueOf(ref);
    // Absent or malformed: the route's own validation answers with what to fix (a body id
    // that is not even of its kind's form is a 400 from the route's schema, not a lookup).
    if (typeof raw !== 'string' || raw === '') continue;
    if (ref.in === 'body' && !raw.startsWith(`${ref.kind}-`)) continue;
    const missing = () =>
      ref.in !== 'body'
        ? new NotFoundError(MESSAGES.notFound(ref.kind.replace('-', ' '), raw))
        : new InputError(`${ref.name}: ${ref.kind.replace('-', ' ')} ${raw} not found`, { field: ref.name });
    if (ref.kind === 'cost-center') {
      const visibility = await costCenterVisibility(db, raw, p.projectIds);
      if (visibility === 'hidden') await auditDenied(db, p, site, "not in this key's projects", { costCenterId: raw });
      if (visibility !== 'visible') throw missing();
      continue;
    }
    const projectId = await visibleProjectOf(db, p, ref.kind, raw, site);
    if (!projectId) throw missing();
    projects.push(projectId);
  }
  await requirePermission(db, p, access, site, projects[0] ?? null);
  return projects;
}

/** The authorization of one route, from its declared access (`checkAccess`). */
export function authorize(ctx: ApiContext, access: Access): RequestHandler {
  return async (req, _res, next) => {
    try {
      const p = req.principal;
      if (!p) throw new Error('route used without authentication middleware');
      const projects = await checkAccess(ctx.db, p, access, siteOf(req), (ref) => rawRef(req, ref));
      if (projects[0]) req.projectId = projects[0];
      next();
    } catch (e) {
      next(e);
    }
  };
}

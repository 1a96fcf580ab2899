import type { Permission, Principal } from '../../domain/permissions.js';
import type { OwnedKind } from '../../store/access.js';
import { requirePermission, visibleProjectOf, type AccessSite } from '../auth.js';
import type { ApiContext } from '../context.js';

/** What every resolver gets: the api's dependencies and who is calling. */
export interface GraphqlContext {
  api: ApiContext;
  principal: Principal;
  /** Where the call came in (POST /v1/graphql, or the WebSocket), for audit records of denials. */
  site: AccessSite;
  /** The request's Idempotency-Key header, for mutations that create something. */
  idempotencyKey?: string | undefined;
}

/**
 * Each resolver authorizes itself with the rules the REST routes use (api/auth.ts): the caller's
 * role must hold `permission`, else a FORBIDDEN error naming it (REST: 403), audited.
 */
export function can(ctx: GraphqlContext, permission: Permission, projectId: string | null = null): Promise<void> {
  return requirePermission(ctx.api.db, ctx.principal, { permission }, ctx.site, projectId);
}

/**
 * The project of a resource the caller names, when the key may see it; null when there is no such
 * resource or it is another project's (audited) — a lookup then answers null, as REST answers 404.
 * As in REST, scope is checked before the role.
 */
export function visible(ctx: GraphqlContext, kind: OwnedKind, id: string): Promise<string | null> {
  return visibleProjectOf(ctx.api.db, ctx.principal, kind, id, ctx.site);
}

import type { Principal } from '../domain/permissions.js';
import type { Caller, ServiceContext } from '../services/context.js';

export type { DiskSnapshotCopy, DiskSnapshotReader } from '../services/context.js';

/** What every route handler can use: the use cases' context. */
export type ApiContext = ServiceContext;

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      requestId: string;
      principal?: Principal;
      /** The project the route's declared resource belongs to (set by `authorize`). */
      projectId?: string;
    }
  }
}

export function principalOf(req: Express.Request): Principal {
  if (!req.principal) throw new Error('route used without authentication middleware');
  return req.principal;
}

/** The audit actor string of a request. */
export function actorOf(req: Express.Request): string {
  return `user:${principalOf(req).name}`;
}

/** A path parameter as a string (express types allow arrays for wildcard params). */
export function param(req: Express.Request & { params: Record<string, unknown> }, name: string): string {
  const v = req.params[name];
  return Array.isArray(v) ? v.join('/') : String(v ?? '');
}

/** The request's caller, as the use cases take it. */
export function callerOf(req: Express.Request & { get(name: string): string | undefined }): Caller {
  return { principal: principalOf(req), idempotencyKey: req.get('idempotency-key') };
}

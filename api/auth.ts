import type { RequestHandler } from 'express';
import { findPrincipal, type Role } from '../store/auth.js';
import type { Db } from '../store/db.js';
import { ApiError, MESSAGES } from './errors.js';

/** Every /v1 route needs `Authorization: Bearer <key>` of a known, unrevoked key. */
export function requireApiKey(db: Db): RequestHandler {
  return async (req, _res, next) => {
    const header = req.get('authorization') ?? '';
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    if (!match) return next(new ApiError(401, 'unauthenticated', MESSAGES.missingKey));
    const principal = await findPrincipal(db, match[1]!);
    if (!principal) return next(new ApiError(401, 'unauthenticated', MESSAGES.unknownKey));
    req.principal = principal;
    next();
  };
}

const RANK: Record<Role, number> = { viewer: 0, operator: 1, admin: 2 };

/** Writes need at least `operator`; reads are open to every role. */
export function requireRole(min: Role, action: string): RequestHandler {
  return (req, _res, next) => {
    const role = req.principal?.role ?? 'viewer';
    if (RANK[role] < RANK[min]) return next(new ApiError(403, 'forbidden', MESSAGES.forbidden(role, action)));
    next();
  };
}

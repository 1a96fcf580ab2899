import { z } from 'zod';
import { InputError, NotFoundError } from '../../domain/errors.js';
import { grantProblem, ROLES, type Principal } from '../../domain/permissions.js';
import { appendAudit } from '../../store/audit.js';
import { createApiKey, getApiKey, listApiKeys, revokeApiKey, rotateApiKey, setKeyExpiry, type ApiKeyRecord } from '../../store/auth.js';
import { getProject } from '../../store/projects.js';
import type { ApiContext } from '../context.js';
import { actorOf, param, principalOf } from '../context.js';
import { ApiError, MESSAGES } from '../errors.js';
import { decodeCursor, pageOf, pageQuery } from '../pagination.js';
import * as R from '../responses.js';
import { RouteGroup } from './table.js';

const isoDate = z.iso.datetime({ offset: true, message: 'must be an ISO 8601 date-time, e.g. 2027-01-31T00:00:00Z' });

export const createKeyBody = z.strictObject({
  name: z.string().trim().min(1, 'is required').max(100),
  role: z.enum(ROLES, { error: `must be one of: ${ROLES.join(', ')}` }),
  projectIds: z.array(z.string().min(1).max(200)).min(1, 'give at least one project, or leave it out for a deployment-wide key').max(100).optional(),
  expiresAt: isoDate.optional(),
});
export const patchKeyBody = z.strictObject({ expiresAt: isoDate.nullable() });

/** A key as shown to managers: never its secret or its hash. */
export const presentKey = (k: ApiKeyRecord) => ({
  id: k.id,
  name: k.name,
  userId: k.userId,
  role: k.role,
  prefix: k.prefix,
  projectIds: k.projectIds,
  createdAt: k.createdAt,
  createdBy: k.createdBy,
  expiresAt: k.expiresAt,
  lastUsedAt: k.lastUsedAt,
  revokedAt: k.revokedAt,
  status: k.revokedAt ? 'revoked' : k.expiresAt && new Date(k.expiresAt) <= new Date() ? 'expired' : 'active',
});

/**
 * Keys: made with a role and (optionally) the projects they are bound to, the secret shown once;
 * listed by prefix; expired, rotated (same id, new secret) and revoked. Anyone may see and manage
 * their own key; managing others' needs `keys.manage` and reaches only keys the caller could grant.
 */
export function keyRoutes(ctx: ApiContext): RouteGroup {
  const r = new RouteGroup(ctx);
  const { db } = ctx;

  /** A key the caller may manage; another answers as a missing one. */
  async function loadManaged(p: Principal, id: string): Promise<ApiKeyRecord> {
    const k = await getApiKey(db, id);
    const own = k && (k.id === p.apiKeyId || k.userId === p.userId);
    if (!k || (!own && grantProblem(p, { role: k.role, projectIds: k.projectIds }) !== null)) {
      throw new NotFoundError(MESSAGES.notFound('key', id));
    }
    return k;
  }
  const audit = (req: Parameters<Parameters<RouteGroup['get']>[3]>[0], action: string, k: ApiKeyRecord, details: Record<string, unknown> = {}) =>
    appendAudit(db, {
      actor: actorOf(req),
      action,
      subjectType: 'api_key',
      subjectId: k.id,
      details: { name: k.name, role: k.role, prefix: k.prefix, projectIds: k.projectIds, ...details },
    });

  r.get('/whoami', { permission: 'keys.self', resource: 'none' }, { 200: R.whoami }, async (req, res) => {
    const p = principalOf(req);
    const k = await getApiKey(db, p.apiKeyId);
    res.json({ ...presentKey(k!), user: { id: p.userId, name: p.name } });
  });

  r.post('/keys', { permission: 'keys.manage', resource: 'none' }, { 201: R.keyWithSecret }, async (req, res) => {
    const p = principalOf(req);
    const body = createKeyBody.parse(req.body);
    const projectIds = body.projectIds ? [...new Set(body.projectIds)] : null;
    for (const id of projectIds ?? []) {
      // Another tenant's project reads as a missing one.
      const project = await getProject(db, id);
      if (!project || (p.projectIds !== null && !p.projectIds.includes(id))) {
        throw new InputError(`projectIds: project ${id} not found`, { field: 'projectIds' });
      }
    }
    const problem = grantProblem(p, { role: body.role, projectIds });
    if (problem) throw new ApiError(403, 'forbidden', problem);
    const expiresAt = body.expiresAt ? new Date(body.expiresAt) : null;
    if (expiresAt && expiresAt <= new Date()) throw new InputError('expiresAt: must be in the future', { field: 'expiresAt' });
    const { record, key } = await createApiKey(db, { name: body.name, role: body.role, projectIds, expiresAt, createdBy: actorOf(req) });
    await audit(req, 'key.created', record, { expiresAt: record.expiresAt });
    res.status(201).json({ ...presentKey(record), key });
  });

  r.get('/keys', { permission: 'keys.self', resource: 'none' }, { 200: R.page(R.key) }, async (req, res) => {
    const p = principalOf(req);
    const q = pageQuery.parse(req.query);
    const after = decodeCursor(q.cursor, z.string());
    // Admins see every key; a manager the keys it could grant, and its own; others their own.
    const scope =
      p.role === 'admin'
        ? {}
        : p.role === 'owner' && p.projectIds !== null
          ? { userId: p.userId, projectIds: p.projectIds }
          : p.role === 'owner'
            ? { adminKeysOnlyOf: p.userId }
            : { userId: p.userId };
    const rows = await listApiKeys(db, { limit: q.limit + 1, ...(after ? { afterId: after } : {}), ...scope });
    const page = pageOf(rows, q.limit, (k) => k.id);
    res.json({ items: page.items.map(presentKey), nextCursor: page.nextCursor });
  });

  r.get('/keys/:id', { permission: 'keys.self', resource: 'none' }, { 200: R.key }, async (req, res) => {
    res.json(presentKey(await loadManaged(principalOf(req), param(req, 'id'))));
  });

  r.post('/keys/:id/rotate', { permission: 'keys.self', resource: 'none' }, { 201: R.keyWithSecret }, async (req, res) => {
    const k = await loadManaged(principalOf(req), param(req, 'id'));
    if (k.revokedAt) throw new ApiError(409, 'key_revoked', `key ${k.id} is revoked; create a new key instead`);
    const key = await rotateApiKey(db, k.id);
    const rotated = (await getApiKey(db, k.id))!;
    await audit(req, 'key.rotated', rotated, { previousPrefix: k.prefix });
    res.status(201).json({ ...presentKey(rotated), key });
  });

  r.patch('/keys/:id', { permission: 'keys.self', resource: 'none' }, { 200: R.key }, async (req, res) => {
    const k = await loadManaged(principalOf(req), param(req, 'id'));
    const body = patchKeyBody.parse(req.body);
    const expiresAt = body.expiresAt === null ? null : new Date(body.expiresAt);
    // A key's holder may shorten its life, never lengthen what a manager set.
    const p = principalOf(req);
    const manages = p.role === 'admin' || (k.id !== p.apiKeyId && grantProblem(p, { role: k.role, projectIds: k.projectIds }) === null);
    const extends_ = k.expiresAt !== null && (expiresAt === null || expiresAt > new Date(k.expiresAt));
    if (!manages && extends_)
      throw new ApiError(403, 'forbidden', 'only a manager of this key may extend or clear its expiry; you may only set an earlier one');
    await setKeyExpiry(db, k.id, expiresAt);
    const updated = (await getApiKey(db, k.id))!;
    await audit(req, 'key.expiry_set', updated, { expiresAt: updated.expiresAt });
    res.json(presentKey(updated));
  });

  r.delete('/keys/:id', { permission: 'keys.self', resource: 'none' }, { 204: R.noContent }, async (req, res) => {
    const k = await loadManaged(principalOf(req), param(req, 'id'));
    await revokeApiKey(db, k.id, new Date());
    await audit(req, 'key.revoked', k);
    res.status(204).end();
  });

  return r;
}

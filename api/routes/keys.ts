import { z } from 'zod';
import type { ApiKeyRecord } from '../../store/auth.js';
import type { ApiContext } from '../context.js';
import { callerOf, param, principalOf } from '../context.js';
import { decodeCursor, pageOf, pageQuery } from '../pagination.js';
import * as R from '../responses.js';
import { RouteGroup } from './table.js';
import { createKey, listVisibleKeys, ownKey, requireManagedKey, revokeKey, rotateKey, setKeyExpiryOf } from '../../services/keys.js';

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

  r.get('/whoami', { permission: 'keys.self', resource: 'none' }, { 200: R.whoami }, async (req, res) => {
    const p = principalOf(req);
    res.json({ ...presentKey(await ownKey(ctx, callerOf(req))), user: { id: p.userId, name: p.name } });
  });

  r.post('/keys', { permission: 'keys.manage', resource: 'none' }, { 201: R.keyWithSecret }, async (req, res) => {
    const { record, key } = await createKey(ctx, callerOf(req), req.body);
    res.status(201).json({ ...presentKey(record), key });
  });

  r.get('/keys', { permission: 'keys.self', resource: 'none' }, { 200: R.page(R.key) }, async (req, res) => {
    const q = pageQuery.parse(req.query);
    const after = decodeCursor(q.cursor, z.string());
    const rows = await listVisibleKeys(ctx, callerOf(req), { limit: q.limit + 1, afterId: after ?? undefined });
    const page = pageOf(rows, q.limit, (k) => k.id);
    res.json({ items: page.items.map(presentKey), nextCursor: page.nextCursor });
  });

  r.get('/keys/:id', { permission: 'keys.self', resource: 'none' }, { 200: R.key }, async (req, res) => {
    res.json(presentKey(await requireManagedKey(ctx, callerOf(req), param(req, 'id'))));
  });

  r.post('/keys/:id/rotate', { permission: 'keys.self', resource: 'none' }, { 201: R.keyWithSecret }, async (req, res) => {
    const { record: rotated, key } = await rotateKey(ctx, callerOf(req), param(req, 'id'));
    res.status(201).json({ ...presentKey(rotated), key });
  });

  r.patch('/keys/:id', { permission: 'keys.self', resource: 'none' }, { 200: R.key }, async (req, res) => {
    const updated = await setKeyExpiryOf(ctx, callerOf(req), param(req, 'id'), req.body);
    res.json(presentKey(updated));
  });

  r.delete('/keys/:id', { permission: 'keys.self', resource: 'none' }, { 204: R.noContent }, async (req, res) => {
    await revokeKey(ctx, callerOf(req), param(req, 'id'));
    res.status(204).end();
  });

  return r;
}

/**
 * Use cases of API keys: create one with a role and (optionally) the projects it is bound to,
 * rotate, expire and revoke. Anyone manages their own key; managing others' needs `keys.manage`
 * and reaches only keys the caller could grant: nobody creates more than they hold.
 */
import { z } from 'zod';
import { ConflictError, ForbiddenError, InputError, NotFoundError } from '../domain/errors.js';
import { grantProblem } from '../domain/permissions.js';
import { appendAudit } from '../store/audit.js';
import { createApiKey, getApiKey, listApiKeys, revokeApiKey, rotateApiKey, setKeyExpiry, type ApiKeyRecord } from '../store/auth.js';
import { getProject } from '../store/projects.js';
import { actorOfCaller, type Caller, type ServiceContext } from './context.js';
import { notFoundMessage } from './inputs.js';
import { createKeyBody, patchKeyBody } from './schemas.js';

/** The key's audit record: who did `action` to which key (never its secret). */
const auditKey = (ctx: ServiceContext, caller: Caller, action: string, k: ApiKeyRecord, details: Record<string, unknown> = {}) =>
  appendAudit(ctx.db, {
    actor: actorOfCaller(caller),
    action,
    subjectType: 'api_key',
    subjectId: k.id,
    details: { name: k.name, role: k.role, prefix: k.prefix, projectIds: k.projectIds, ...details },
  });

/** The caller's own key. */
export async function ownKey(ctx: ServiceContext, caller: Caller): Promise<ApiKeyRecord> {
  return (await getApiKey(ctx.db, caller.principal.apiKeyId))!;
}

/** A key the caller may manage (its own, or one it could grant); another answers as a missing one. */
export async function requireManagedKey(ctx: ServiceContext, caller: Caller, id: string): Promise<ApiKeyRecord> {
  const p = caller.principal;
  const k = await getApiKey(ctx.db, id);
  const own = k && (k.id === p.apiKeyId || k.userId === p.userId);
  if (!k || (!own && grantProblem(p, { role: k.role, projectIds: k.projectIds }) !== null)) {
    throw new NotFoundError(notFoundMessage('key', id));
  }
  return k;
}

/** Creates a key with at most what the caller holds; its secret is returned once, here. */
export async function createKey(ctx: ServiceContext, caller: Caller, input: z.input<typeof createKeyBody>): Promise<{ record: ApiKeyRecord; key: string }> {
  const p = caller.principal;
  const body = createKeyBody.parse(input);
  const projectIds = body.projectIds ? [...new Set(body.projectIds)] : null;
  for (const id of projectIds ?? []) {
    // Another tenant's project reads as a missing one.
    const project = await getProject(ctx.db, id);
    if (!project || (p.projectIds !== null && !p.projectIds.includes(id))) {
      throw new InputError(`projectIds: project ${id} not found`, { field: 'projectIds' });
    }
  }
  const problem = grantProblem(p, { role: body.role, projectIds });
  if (problem) throw new ForbiddenError(problem);
  const expiresAt = body.expiresAt ? new Date(body.expiresAt) : null;
  if (expiresAt && expiresAt <= new Date()) throw new InputError('expiresAt: must be in the future', { field: 'expiresAt' });
  const { record, key } = await createApiKey(ctx.db, { name: body.name, role: body.role, projectIds, expiresAt, createdBy: actorOfCaller(caller) });
  await auditKey(ctx, caller, 'key.created', record, { expiresAt: record.expiresAt });
  return { record, key };
}

/** The keys the caller may see, one page by id: admins every key; a manager those it could grant, and its own; others their own. */
export async function listVisibleKeys(ctx: ServiceContext, caller: Caller, page: { limit: number; afterId?: string | undefined }): Promise<ApiKeyRecord[]> {
  const p = caller.principal;
  const scope =
    p.role === 'admin'
      ? {}
      : p.role === 'owner' && p.projectIds !== null
        ? { userId: p.userId, projectIds: p.projectIds }
        : p.role === 'owner'
          ? { adminKeysOnlyOf: p.userId }
          : { userId: p.userId };
  return listApiKeys(ctx.db, { limit: page.limit, ...(page.afterId ? { afterId: page.afterId } : {}), ...scope });
}

/** Gives the key a new secret (same id, role and projects); the old secret stops working. */
export async function rotateKey(ctx: ServiceContext, caller: Caller, id: string): Promise<{ record: ApiKeyRecord; key: string }> {
  const k = await requireManagedKey(ctx, caller, id);
  if (k.revokedAt) throw new ConflictError(`key ${k.id} is revoked; create a new key instead`, 'key_revoked');
  const key = await rotateApiKey(ctx.db, k.id);
  const rotated = (await getApiKey(ctx.db, k.id))!;
  await auditKey(ctx, caller, 'key.rotated', rotated, { previousPrefix: k.prefix });
  return { record: rotated, key };
}

/** Sets (or clears, with null) the key's expiry. Its holder may shorten its life, never lengthen what a manager set. */
export async function setKeyExpiryOf(ctx: ServiceContext, caller: Caller, id: string, input: z.input<typeof patchKeyBody>): Promise<ApiKeyRecord> {
  const k = await requireManagedKey(ctx, caller, id);
  const body = patchKeyBody.parse(input);
  const expiresAt = body.expiresAt === null ? null : new Date(body.expiresAt);
  const p = caller.principal;
  const manages = p.role === 'admin' || (k.id !== p.apiKeyId && grantProblem(p, { role: k.role, projectIds: k.projectIds }) === null);
  const extends_ = k.expiresAt !== null && (expiresAt === null || expiresAt > new Date(k.expiresAt));
  if (!manages && extends_) throw new ForbiddenError('only a manager of this key may extend or clear its expiry; you may only set an earlier one');
  await setKeyExpiry(ctx.db, k.id, expiresAt);
  const updated = (await getApiKey(ctx.db, k.id))!;
  await auditKey(ctx, caller, 'key.expiry_set', updated, { expiresAt: updated.expiresAt });
  return updated;
}

/** Revokes the key for good. */
export async function revokeKey(ctx: ServiceContext, caller: Caller, id: string): Promise<void> {
  const k = await requireManagedKey(ctx, caller, id);
  await revokeApiKey(ctx.db, k.id, new Date());
  await auditKey(ctx, caller, 'key.revoked', k);
}

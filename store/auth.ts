import crypto from 'node:crypto';
import type { Knex } from 'knex';
import type { Principal, Role } from '../domain/permissions.js';
import { appendAudit } from './audit.js';
import type { Db } from './db.js';

export { ROLES, type Principal, type Role } from '../domain/permissions.js';

type Conn = Db | Knex.Transaction;

/** Only a hash of each key is stored; the key itself is shown once, when it is made. */
export function hashApiKey(key: string): string {
  return crypto.createHash('sha256').update(key).digest('hex');
}

export function newApiKey(): string {
  return `av_${crypto.randomBytes(24).toString('base64url')}`;
}

/** What lists show of a secret: enough to tell keys apart, never enough to use one. */
export function keyPrefix(key: string): string {
  return key.slice(0, 10);
}

/** A key as the api shows it (never its secret or hash). */
export interface ApiKeyRecord {
  id: string;
  name: string;
  userId: string;
  role: Role;
  prefix: string | null;
  projectIds: string[] | null;
  createdAt: string;
  createdBy: string | null;
  expiresAt: string | null;
  lastUsedAt: string | null;
  revokedAt: string | null;
  bootstrap: boolean;
}

async function bindingsOf(db: Conn, keyIds: string[]): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  if (!keyIds.length) return out;
  const rows = await db('api_key_projects').whereIn('api_key_id', keyIds).orderBy('project_id').select('api_key_id', 'project_id');
  for (const r of rows) out.set(r.api_key_id, [...(out.get(r.api_key_id) ?? []), r.project_id]);
  return out;
}

const iso = (v: unknown) => (v ? new Date(v as string).toISOString() : null);

function toRecord(r: Record<string, any>, bindings: Map<string, string[]>): ApiKeyRecord {
  return {
    id: r.id,
    name: r.label,
    userId: r.user_id,
    role: r.role,
    prefix: r.prefix ?? null,
    projectIds: bindings.get(r.id) ?? null,
    createdAt: iso(r.created_at)!,
    createdBy: r.created_by ?? null,
    expiresAt: iso(r.expires_at),
    lastUsedAt: iso(r.last_used_at),
    revokedAt: iso(r.revoked_at),
    bootstrap: Boolean(r.bootstrap),
  };
}

/**
 * How long a request may trust a key look-up it made a moment ago. Every key write below forgets
 * this process's look-ups at once; another api process sees a revocation, rotation or expiry
 * change within this time (and an expiry passing, exactly).
 */
export const PRINCIPAL_CACHE_MS = 2_000;
/** Key look-ups by database (a test process holds several platforms), then by key hash. */
const principalCache = new Map<Db, Map<string, { principal: Principal; expiresAt: number | null; until: number }>>();

/** Forgets every cached key look-up of this process (after any write to keys or their project bindings). */
function forgetPrincipals() {
  principalCache.clear();
}

/**
 * The principal of an API key, for a request: a look-up of the last PRINCIPAL_CACHE_MS is reused
 * (most requests of a busy key then cost no query), an expired one never is.
 */
export async function principalForRequest(db: Db, key: string, now = new Date()): Promise<Principal | null> {
  const hash = hashApiKey(key);
  let cache = principalCache.get(db);
  const hit = cache?.get(hash);
  const t = now.getTime();
  if (hit && hit.until > t && (hit.expiresAt === null || hit.expiresAt > t)) return hit.principal;
  const found = await lookUpPrincipal(db, hash, now);
  if (!found) return null;
  if (!cache) principalCache.set(db, (cache = new Map()));
  if (cache.size > 10_000) cache.clear();
  cache.set(hash, { principal: found.principal, expiresAt: found.expiresAt, until: t + PRINCIPAL_CACHE_MS });
  return found.principal;
}

/** The caller behind `key`, or null when it is unknown, revoked or expired (always read from the database). */
export async function findPrincipal(db: Db, key: string, now = new Date()): Promise<Principal | null> {
  return (await lookUpPrincipal(db, hashApiKey(key), now))?.principal ?? null;
}

async function lookUpPrincipal(db: Db, keyHash: string, now: Date): Promise<{ principal: Principal; expiresAt: number | null } | null> {
  const row = await db('api_keys as k')
    .join('users as u', 'u.id', 'k.user_id')
    .where({ 'k.key_hash': keyHash })
    .whereNull('k.revoked_at')
    .where((q) => q.whereNull('k.expires_at').orWhere('k.expires_at', '>', now))
    // The key's projects in the same query (one round trip per request, not two); null: none bound.
    .first(
      'u.id as user_id',
      'u.name',
      'k.role',
      'k.id as key_id',
      'k.expires_at',
      db.raw('(select json_agg(b.project_id order by b.project_id) from api_key_projects b where b.api_key_id = k.id) as project_ids'),
    );
  if (!row) return null;
  const projectIds = typeof row.project_ids === 'string' ? (JSON.parse(row.project_ids) as string[] | null) : (row.project_ids as string[] | null);
  return {
    principal: { userId: row.user_id, name: row.name, role: row.role, apiKeyId: row.key_id, projectIds },
    expiresAt: row.expires_at ? new Date(row.expires_at).getTime() : null,
  };
}

/**
 * Marks `keyId` as used now, at most once per `everySeconds`; true when it wrote (the caller
 * audits that use), so a busy key costs one write a minute, not one per request.
 */
export async function touchKey(db: Db, keyId: string, now: Date, everySeconds: number): Promise<boolean> {
  const since = new Date(now.getTime() - everySeconds * 1000);
  const n = await db('api_keys')
    .where({ id: keyId })
    .where((q) => q.whereNull('last_used_at').orWhere('last_used_at', '<', since))
    .update({ last_used_at: now });
  return n > 0;
}

/**
 * Makes `key` the deployment's bootstrap admin key (AUTOVIBE_ADMIN_KEY or the first-start key).
 * Idempotent; a different key than the current bootstrap key revokes that one. Returns the ids
 * of the keys it revoked.
 */
export async function ensureAdminKey(db: Db, key: string, now = new Date()): Promise<{ keyId: string; revoked: string[] }> {
  const hash = hashApiKey(key);
  const result = await db.transaction(async (trx) => {
    await trx('users').insert({ id: 'user-admin', name: 'admin', role: 'admin' }).onConflict('id').ignore();
    const existing = await trx('api_keys').where({ key_hash: hash }).first('id', 'revoked_at');
    let keyId = existing?.id as string | undefined;
    if (!existing) {
      keyId = `key-${crypto.randomUUID()}`;
      await trx('api_keys').insert({
        id: keyId,
        user_id: 'user-admin',
        key_hash: hash,
        label: 'admin (bootstrap)',
        role: 'admin',
        prefix: keyPrefix(key),
        bootstrap: true,
        created_by: 'platform',
      });
    } else {
      // A key an operator revoked stays revoked, even if it is still configured.
      await trx('api_keys')
        .where({ id: keyId })
        .update({ bootstrap: true, role: 'admin', prefix: keyPrefix(key) });
    }
    const rows = await trx('api_keys').where({ bootstrap: true }).whereNot({ id: keyId }).whereNull('revoked_at').update({ revoked_at: now }).returning('id');
    const revoked = rows.map((r: { id: string } | string) => (typeof r === 'string' ? r : r.id));
    for (const id of revoked) {
      await appendAudit(trx, {
        actor: 'platform',
        action: 'key.revoked',
        subjectType: 'api_key',
        subjectId: id,
        details: { reason: 'AUTOVIBE_ADMIN_KEY replaced' },
      });
    }
    return { keyId: keyId!, revoked };
  });
  forgetPrincipals();
  return result;
}

/** Whether any admin key can still be used (a second api host must not make another). */
export async function hasActiveAdminKey(db: Db, now = new Date()): Promise<boolean> {
  const row = await db('api_keys')
    .where({ role: 'admin' })
    .whereNull('revoked_at')
    .where((q) => q.whereNull('expires_at').orWhere('expires_at', '>', now))
    .first('id');
  return Boolean(row);
}

export interface NewKey {
  name: string;
  role: Role;
  projectIds: readonly string[] | null;
  expiresAt: Date | null;
  createdBy: string;
  /** Attach to this user; a new user named `name` otherwise. */
  userId?: string;
}

/** Creates a key (and its user when none is given); the secret is returned only here. */
export async function createApiKey(db: Conn, k: NewKey): Promise<{ record: ApiKeyRecord; key: string }> {
  const key = newApiKey();
  const id = `key-${crypto.randomUUID()}`;
  const write = async (trx: Knex.Transaction) => {
    const userId = k.userId ?? `user-${crypto.randomUUID()}`;
    if (!k.userId) await trx('users').insert({ id: userId, name: k.name, role: k.role });
    await trx('api_keys').insert({
      id,
      user_id: userId,
      key_hash: hashApiKey(key),
      label: k.name,
      role: k.role,
      prefix: keyPrefix(key),
      expires_at: k.expiresAt,
      created_by: k.createdBy,
    });
    if (k.projectIds?.length) await trx('api_key_projects').insert(k.projectIds.map((p) => ({ api_key_id: id, project_id: p })));
  };
  if ((db as Knex.Transaction).isTransaction) await write(db as Knex.Transaction);
  else await (db as Db).transaction(write);
  return { record: (await getApiKey(db, id))!, key };
}

export async function getApiKey(db: Conn, id: string): Promise<ApiKeyRecord | null> {
  const row = await db('api_keys').where({ id }).first();
  return row ? toRecord(row, await bindingsOf(db, [id])) : null;
}

/** Keys in creation order, after the cursor id; `visible` narrows to keys a caller may see. */
export async function listApiKeys(
  db: Db,
  f: { limit: number; afterId?: string; userId?: string; projectIds?: readonly string[]; adminKeysOnlyOf?: string },
): Promise<ApiKeyRecord[]> {
  const q = db('api_keys').orderBy('id').limit(f.limit);
  if (f.afterId) q.where('id', '>', f.afterId);
  // In the query, not after it: a filter after the LIMIT would cut pages short and end them early.
  if (f.adminKeysOnlyOf !== undefined) q.where((w) => w.whereNot('role', 'admin').orWhere('user_id', f.adminKeysOnlyOf!));
  // A project-bound manager sees the keys bound only to its projects, and its own keys.
  if (f.projectIds) {
    const scope = f.projectIds;
    q.where((w) =>
      w
        .where('user_id', f.userId ?? '')
        .orWhere((b) =>
          b
            .whereExists(db('api_key_projects as p').whereRaw('p.api_key_id = api_keys.id'))
            .whereNotExists(db('api_key_projects as p').whereRaw('p.api_key_id = api_keys.id').whereNotIn('p.project_id', scope)),
        ),
    );
  } else if (f.userId) q.where({ user_id: f.userId });
  const rows = await q;
  const bindings = await bindingsOf(
    db,
    rows.map((r) => r.id),
  );
  return rows.map((r) => toRecord(r, bindings));
}

/** A new secret for the same key (same id, role, projects); the old secret stops working at once. */
export async function rotateApiKey(db: Db, id: string): Promise<string> {
  const key = newApiKey();
  await db('api_keys')
    .where({ id })
    .update({ key_hash: hashApiKey(key), prefix: keyPrefix(key) });
  forgetPrincipals();
  return key;
}

export async function revokeApiKey(db: Db, id: string, now: Date): Promise<void> {
  await db('api_keys').where({ id }).whereNull('revoked_at').update({ revoked_at: now });
  forgetPrincipals();
}

export async function setKeyExpiry(db: Db, id: string, expiresAt: Date | null): Promise<void> {
  await db('api_keys').where({ id }).update({ expires_at: expiresAt });
  forgetPrincipals();
}

/** Binds a key to one more project (a project created with a project-bound key). */
export async function bindKeyToProject(db: Conn, keyId: string, projectId: string): Promise<void> {
  await db('api_key_projects').insert({ api_key_id: keyId, project_id: projectId }).onConflict(['api_key_id', 'project_id']).ignore();
  forgetPrincipals();
}

/** For tests and scripts: a user with one key. */
export async function createUserWithKey(
  db: Db,
  name: string,
  role: Role,
  projectIds: readonly string[] | null = null,
): Promise<{ userId: string; key: string; keyId: string }> {
  const { record, key } = await createApiKey(db, { name, role, projectIds, expiresAt: null, createdBy: 'platform' });
  return { userId: record.userId, key, keyId: record.id };
}

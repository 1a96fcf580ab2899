import crypto from 'node:crypto';
import type { Db } from './db.js';

export const ROLES = ['admin', 'operator', 'viewer'] as const;
export type Role = (typeof ROLES)[number];

export interface Principal {
  userId: string;
  name: string;
  role: Role;
  apiKeyId: string;
}

/** Only a hash of each key is stored; the key itself is shown once, when it is made. */
export function hashApiKey(key: string): string {
  return crypto.createHash('sha256').update(key).digest('hex');
}

export function newApiKey(): string {
  return `av_${crypto.randomBytes(24).toString('base64url')}`;
}

export async function findPrincipal(db: Db, key: string): Promise<Principal | null> {
  const row = await db('api_keys as k')
    .join('users as u', 'u.id', 'k.user_id')
    .where({ 'k.key_hash': hashApiKey(key) })
    .whereNull('k.revoked_at')
    .first('u.id as user_id', 'u.name', 'u.role', 'k.id as key_id');
  return row ? { userId: row.user_id, name: row.name, role: row.role, apiKeyId: row.key_id } : null;
}

/** Makes sure `key` belongs to the admin user (created on first start). Idempotent. */
export async function ensureAdminKey(db: Db, key: string): Promise<void> {
  await db('users').insert({ id: 'user-admin', name: 'admin', role: 'admin' }).onConflict('id').ignore();
  await db('api_keys')
    .insert({ id: `key-${crypto.randomUUID()}`, user_id: 'user-admin', key_hash: hashApiKey(key), label: 'admin (first start)' })
    .onConflict('key_hash')
    .ignore();
}

export async function createUserWithKey(db: Db, name: string, role: Role): Promise<{ userId: string; key: string }> {
  const userId = `user-${crypto.randomUUID()}`;
  const key = newApiKey();
  await db.transaction(async (trx) => {
    await trx('users').insert({ id: userId, name, role });
    await trx('api_keys').insert({ id: `key-${crypto.randomUUID()}`, user_id: userId, key_hash: hashApiKey(key), label: name });
  });
  return { userId, key };
}

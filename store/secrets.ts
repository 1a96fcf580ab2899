import crypto from 'node:crypto';
import type { Db } from './db.js';

/**
 * Secrets at rest: webhook signing secrets, Slack bot tokens, tracker tokens and hook secrets, git
 * remote tokens. Each is sealed with AES-256-GCM before it is written and opened when a store
 * function reads it, so the database, its dumps and its backups hold only ciphertext. The
 * additional data names the row and column a value belongs to: a sealed value copied into another
 * row does not open.
 *
 * Stored form: `avs1:<key id>:<iv>:<tag>:<ciphertext>` (base64url), the key id being the first 8
 * bytes of the key's SHA-256 in hex. A value without the prefix is plaintext written before
 * sealing existed; it is read as it is and sealed at the next start (`resealSecrets`).
 *
 * The keys are the process's (api and worker hosts must hold the same ones): the first registered
 * seals, all of them open. A test process holding several platforms registers each one's keys.
 */
const PREFIX = 'avs1';
const keys = new Map<string, Buffer>();
let sealingKeyId: string | null = null;

export class SecretKeyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SecretKeyError';
  }
}

export const secretKeyId = (key: Buffer) => crypto.createHash('sha256').update(key).digest('hex').slice(0, 16);

/** Makes `ordered[0]` the sealing key and every key in `ordered` an opening key of this process. */
export function registerSecretKeys(ordered: readonly Buffer[]): void {
  if (!ordered.length) throw new SecretKeyError('no secrets key given');
  for (const k of ordered) {
    if (k.length !== 32) throw new SecretKeyError(`a secrets key must be 32 bytes, got ${k.length}`);
    keys.set(secretKeyId(k), k);
  }
  sealingKeyId = secretKeyId(ordered[0]!);
}

/** The key id values are sealed with now. */
export function currentSecretKeyId(): string {
  if (!sealingKeyId) throw new SecretKeyError('no secrets key registered (the platform registers one at start)');
  return sealingKeyId;
}

export const isSealed = (stored: string) => stored.startsWith(`${PREFIX}:`);

/** `plain` sealed for the place `context` names (e.g. `webhook_endpoints:<id>:signing`). */
export function sealSecret(plain: string, context: string): string {
  const id = currentSecretKeyId();
  const iv = crypto.randomBytes(12);
  const cipher = crypto.createCipheriv('aes-256-gcm', keys.get(id)!, iv);
  cipher.setAAD(Buffer.from(context, 'utf8'));
  const body = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
  return [PREFIX, id, iv.toString('base64url'), cipher.getAuthTag().toString('base64url'), body.toString('base64url')].join(':');
}

/** The plaintext of a stored value (a legacy plaintext value as it is). */
export function openSecret(stored: string, context: string): string {
  if (!isSealed(stored)) return stored;
  const [, id, iv, tag, body] = stored.split(':');
  const key = keys.get(id ?? '');
  if (!key) {
    throw new SecretKeyError(
      `a secret in ${context.split(':')[0]} is sealed with key ${id}, which this host does not hold: give every api and worker host the same AUTOVIBE_SECRETS_KEY`,
    );
  }
  const decipher = crypto.createDecipheriv('aes-256-gcm', key, Buffer.from(iv!, 'base64url'));
  decipher.setAAD(Buffer.from(context, 'utf8'));
  decipher.setAuthTag(Buffer.from(tag!, 'base64url'));
  try {
    return Buffer.concat([decipher.update(Buffer.from(body!, 'base64url')), decipher.final()]).toString('utf8');
  } catch {
    throw new SecretKeyError(`a secret in ${context.split(':')[0]} does not open: it was altered or belongs to another row`);
  }
}

export const sealOrNull = (plain: string | null | undefined, context: string): string | null => (plain == null ? null : sealSecret(plain, context));
export const openOrNull = (stored: string | null | undefined, context: string): string | null => (stored == null ? null : openSecret(stored, context));

/** Where each sealed column is, and the context a row's value is sealed for. */
export const SEALED_COLUMNS: ReadonlyArray<{ table: string; key: readonly string[]; columns: Record<string, (row: Record<string, any>) => string> }> = [
  {
    table: 'webhook_endpoints',
    key: ['id'],
    columns: {
      // The previous secret is the current one moved aside by a rotation: one context for both.
      secret: (r) => webhookSigningContext(r.id),
      previous_secret: (r) => webhookSigningContext(r.id),
      bot_token: (r) => `webhook_endpoints:${r.id}:bot_token`,
    },
  },
  {
    table: 'project_integrations',
    key: ['project_id', 'kind'],
    columns: {
      token: (r) => integrationContext(r.project_id, r.kind, 'token'),
      webhook_secret: (r) => integrationContext(r.project_id, r.kind, 'webhook_secret'),
    },
  },
  { table: 'project_git_remotes', key: ['project_id'], columns: { token: (r) => gitRemoteTokenContext(r.project_id) } },
];

export const webhookSigningContext = (endpointId: string) => `webhook_endpoints:${endpointId}:signing`;
export const webhookBotTokenContext = (endpointId: string) => `webhook_endpoints:${endpointId}:bot_token`;
export const integrationContext = (projectId: string, kind: string, column: 'token' | 'webhook_secret') =>
  `project_integrations:${projectId}:${kind}:${column}`;
export const gitRemoteTokenContext = (projectId: string) => `project_git_remotes:${projectId}:token`;

/** The key ids the database's sealed values use that this process does not hold. */
export async function unknownSecretKeyIds(db: Db): Promise<string[]> {
  const unknown = new Set<string>();
  for (const { table, columns } of SEALED_COLUMNS) {
    if (!(await db.schema.hasTable(table))) continue; // a worker may start before the api migrated
    for (const column of Object.keys(columns)) {
      const rows = await db(table)
        .where(column, 'like', `${PREFIX}:%`)
        .distinct(db.raw(`split_part(??, ':', 2) as key_id`, [column]));
      for (const r of rows) if (!keys.has(r.key_id)) unknown.add(r.key_id);
    }
  }
  return [...unknown].sort();
}

/**
 * Seals plaintext values (written before sealing existed) and re-seals values sealed with an older
 * key, each row only if its value is still the one read (two hosts starting at once both do this).
 * Returns how many values were rewritten.
 */
export async function resealSecrets(db: Db): Promise<number> {
  const current = currentSecretKeyId();
  let rewritten = 0;
  for (const { table, key, columns } of SEALED_COLUMNS) {
    if (!(await db.schema.hasTable(table))) continue;
    for (const [column, contextOf] of Object.entries(columns)) {
      const rows = await db(table)
        .whereNotNull(column)
        .whereNot(column, 'like', `${PREFIX}:${current}:%`)
        .select([...key, column]);
      for (const r of rows) {
        const stored = r[column] as string;
        if (isSealed(stored) && !keys.has(stored.split(':')[1]!)) continue; // unknownSecretKeyIds reports these
        const context = contextOf(r);
        const where = Object.fromEntries(key.map((k) => [k, r[k]]));
        rewritten += await db(table)
          .where(where)
          .where(column, stored)
          .update({ [column]: sealSecret(openSecret(stored, context), context) });
      }
    }
  }
  return rewritten;
}

/**
 * At every api and worker start: registers the host's keys, refuses to go on when the database
 * holds values sealed with a key this host lacks (hosts configured with different keys), and
 * seals what is still plaintext or under an older key. Returns how many values were rewritten.
 */
export async function startSecretStore(db: Db, ordered: readonly Buffer[]): Promise<number> {
  registerSecretKeys(ordered);
  const unknown = await unknownSecretKeyIds(db);
  if (unknown.length) {
    throw new SecretKeyError(
      `the database holds secrets sealed with key ${unknown.join(', ')}, which this host does not hold: ` +
        'set AUTOVIBE_SECRETS_KEY to the keys the other hosts use (the current one first, older ones after it)',
    );
  }
  return resealSecrets(db);
}

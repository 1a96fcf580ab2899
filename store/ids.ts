import crypto from 'node:crypto';

/**
 * A uuid-shaped id derived from a name, so a repeated request or step names the same thing.
 * @example idFromName('checkpoint', 'machine-1:turn:3') // 'checkpoint-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx', always the same
 */
export function idFromName(prefix: string, name: string): string {
  const h = crypto.createHash('sha256').update(name).digest('hex');
  return `${prefix}-${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/** A stable id derived from the caller's Idempotency-Key, so a retried POST names the same work. */
export function idFromIdempotencyKey(prefix: string, apiKeyId: string, key: string | undefined): string {
  if (!key) return `${prefix}-${crypto.randomUUID()}`;
  return idFromName(prefix, `${apiKeyId}\0${prefix}\0${key}`);
}

import crypto from 'node:crypto';

/**
 * A uuid-shaped id derived from a name, so a repeated request or step names the same thing.
 * @example idFromName('checkpoint', 'machine-1:turn:3') // 'checkpoint-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx', always the same
 */
export function idFromName(prefix: string, name: string): string {
  const h = crypto.createHash('sha256').update(name).digest('hex');
  return `${prefix}-${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

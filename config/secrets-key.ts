import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Config } from './index.js';

/**
 * The keys this host seals and opens secrets with (store/secrets.ts), the sealing one first:
 * AUTOVIBE_SECRETS_KEY when set (every api and worker host of a deployment needs the same value);
 * else `$AUTOVIBE_HOME/secrets-key`, made (0600, 32 random bytes in base64) at first start, which
 * fits the one-process embedded platform. Keep the key apart from the backups: a restored database
 * opens its secrets only with it.
 */
export function secretKeysOf(config: Pick<Config, 'home' | 'secretsKeys'>): Buffer[] {
  if (config.secretsKeys) return config.secretsKeys;
  const file = path.join(config.home, 'secrets-key');
  if (!fs.existsSync(file)) {
    fs.mkdirSync(config.home, { recursive: true });
    // wx: two processes starting on one home at once keep the first file.
    try {
      fs.writeFileSync(file, `${crypto.randomBytes(32).toString('base64')}\n`, { mode: 0o600, flag: 'wx' });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
  const key = Buffer.from(fs.readFileSync(file, 'utf8').trim(), 'base64');
  if (key.length !== 32) throw new Error(`${file} must hold 32 bytes in base64 (it holds ${key.length}); restore it or set AUTOVIBE_SECRETS_KEY`);
  return [key];
}

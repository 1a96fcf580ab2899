import fs from 'node:fs';
import path from 'node:path';
import type { Config } from '../config/index.js';
import { ensureAdminKey, hasActiveAdminKey, newApiKey } from '../store/auth.js';
import type { Db } from '../store/db.js';

/**
 * The deployment's first admin key, so a fresh deployment can be reached at all:
 * - `AUTOVIBE_ADMIN_KEY` when set (a new value revokes the key the old value made);
 * - else the key kept in `$AUTOVIBE_HOME/admin-key` (written 0600 at first start);
 * - else, when the database already has an active admin key (another api host made it), none:
 *   a second host must never revoke the first one's key.
 * `always` (the one-process dev platform) makes the file's key even then.
 */
export async function bootstrapAdminKey(
  db: Db,
  config: Config,
  opts: { always?: boolean } = {},
): Promise<{ key: string | null; file: string | null; revoked: string[] }> {
  if (config.adminKey) {
    const { revoked } = await ensureAdminKey(db, config.adminKey);
    return { key: config.adminKey, file: null, revoked };
  }
  const file = path.join(config.home, 'admin-key');
  if (fs.existsSync(file)) {
    const key = fs.readFileSync(file, 'utf8').trim();
    const { revoked } = await ensureAdminKey(db, key);
    return { key, file, revoked };
  }
  if (!opts.always && (await hasActiveAdminKey(db))) return { key: null, file: null, revoked: [] };
  const key = newApiKey();
  fs.mkdirSync(config.home, { recursive: true });
  fs.writeFileSync(file, `${key}\n`, { mode: 0o600 });
  const { revoked } = await ensureAdminKey(db, key);
  return { key, file, revoked };
}

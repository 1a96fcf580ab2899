import { loadConfig } from '../config/index.js';
import { createDb } from '../store/db.js';
import { listProjects } from '../store/projects.js';
import { repoMirror } from '../store/shared-storage.js';

/**
 * `npm run publish-repos`: writes to the shared object store (AUTOVIBE_OBJECT_STORE) the git
 * bundles of checkpoints this host's repositories hold and the store lacks — run once on the host
 * that had the repositories when a deployment turns a shared store on (README "Object store").
 */
async function main() {
  const config = loadConfig();
  const mirror = repoMirror(config);
  if (!mirror) throw new Error('AUTOVIBE_OBJECT_STORE is not set: there is no shared store to publish to');
  const db = await createDb({ databaseUrl: config.databaseUrl, home: config.home });
  try {
    let total = 0;
    for (const p of await listProjects(db)) {
      const written = await mirror.publishMissing(db, p.id);
      if (written) console.log(`${p.id}: ${written} checkpoint bundle(s) written`);
      total += written;
    }
    console.log(`${total} bundle(s) written to ${mirror.objects.location}`);
  } finally {
    await db.destroy();
  }
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : String(err));
  process.exit(1);
});

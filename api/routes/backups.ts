import * as R from '../responses.js';
import { RouteGroup } from './table.js';
import { callerOf, type ApiContext } from '../context.js';
import { listBackups, startBackup } from '../../services/backups.js';

/** Platform backups (deployment-wide, admins): the list, and a backup now. */
export function backupRoutes(ctx: ApiContext): RouteGroup {
  const r = new RouteGroup(ctx);
  r.get('/backups', { permission: 'backups.manage', resource: 'none', deploymentWide: true }, { 200: R.backups }, async (_req, res) => {
    res.json({ items: await listBackups(ctx) });
  });
  r.post('/backups', { permission: 'backups.manage', resource: 'none', deploymentWide: true }, { 202: R.backupStarted }, async (req, res) => {
    res.status(202).json(await startBackup(ctx, callerOf(req)));
  });
  return r;
}

import * as R from '../responses.js';
import { RouteGroup, inQuery } from './table.js';
import { listAudit, verifyAuditChain } from '../../store/audit.js';
import { principalOf, type ApiContext } from '../context.js';
import { decodeCursor, pageOf, seqKey } from '../pagination.js';
import { auditQuery } from '../../services/schemas.js';

export function auditRoutes(ctx: ApiContext): RouteGroup {
  const r = new RouteGroup(ctx);
  r.get('/audit', { permission: 'audit.read', resource: inQuery('project', 'projectId') }, { 200: R.audit }, async (req, res) => {
    const q = auditQuery.parse(req.query);
    const after = decodeCursor(q.cursor, seqKey) ?? q.after;
    const rows = await listAudit(ctx.db, {
      limit: q.limit + 1,
      ...(q.projectId ? { projectId: q.projectId } : {}),
      ...(q.subjectId ? { subjectId: q.subjectId } : {}),
      ...(q.actor ? { actor: q.actor } : {}),
      ...(q.action ? { action: q.action } : {}),
      ...(after ? { afterSeq: after } : {}),
      projectIds: principalOf(req).projectIds,
    });
    const page = pageOf(rows, q.limit, (a) => a.seq);
    // `next` (the last seq, for ?after=) is kept for older clients; `nextCursor` is the contract.
    res.json({ items: page.items, nextCursor: page.nextCursor, next: page.nextCursor ? page.items.at(-1)!.seq : null });
  });
  r.get('/audit/verify', { permission: 'audit.verify', resource: 'none', deploymentWide: true }, { 200: R.auditVerify }, async (_req, res) => {
    const brokenAt = await verifyAuditChain(ctx.db);
    res.json({ intact: brokenAt === null, brokenAt });
  });
  return r;
}

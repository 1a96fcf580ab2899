import { Router } from 'express';
import { listAudit, verifyAuditChain } from '../../store/audit.js';
import { requireRole } from '../auth.js';
import type { ApiContext } from '../context.js';
import { auditQuery } from '../schemas.js';

export function auditRoutes(ctx: ApiContext): Router {
  const r = Router();
  r.get('/audit', async (req, res) => {
    const q = auditQuery.parse(req.query);
    const items = await listAudit(ctx.db, {
      limit: q.limit,
      ...(q.projectId ? { projectId: q.projectId } : {}),
      ...(q.subjectId ? { subjectId: q.subjectId } : {}),
      ...(q.actor ? { actor: q.actor } : {}),
      ...(q.action ? { action: q.action } : {}),
      ...(q.after ? { afterSeq: q.after } : {}),
    });
    res.json({ items, next: items.length === q.limit ? items.at(-1)!.seq : null });
  });
  r.get('/audit/verify', requireRole('admin', 'verify the audit chain'), async (_req, res) => {
    const brokenAt = await verifyAuditChain(ctx.db);
    res.json({ intact: brokenAt === null, brokenAt });
  });
  return r;
}

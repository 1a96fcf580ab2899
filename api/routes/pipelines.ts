import * as R from '../responses.js';
import { RouteGroup, inPath, inBody } from './table.js';
import { z } from 'zod';
import { waitForStatus } from '../event-stream.js';
import { callerOf, param, type ApiContext } from '../context.js';
import { cancelPipeline, createPipeline, getPipelineView, pipelineView } from '../../services/pipelines.js';
import { pagePipelines } from '../../store/pipelines.js';
import { createdKey, decodeCursor, pageOf, pageQuery } from '../pagination.js';
import { loadProject } from './projects.js';

export function pipelineRoutes(ctx: ApiContext): RouteGroup {
  const r = new RouteGroup(ctx);
  const { db } = ctx;

  r.post('/pipelines', { permission: 'pipelines.write', resource: inBody('project', 'projectId') }, { 202: R.pipelineAccepted }, async (req, res) => {
    res.status(202).json(await createPipeline(ctx, callerOf(req), req.body));
  });

  r.get('/pipelines/:id', { permission: 'pipelines.read', resource: inPath('pipeline') }, { 200: R.pipeline }, waitForStatus.pipeline(db), async (req, res) => {
    res.json(await getPipelineView(ctx, param(req, 'id')));
  });

  /** A project's pipelines, newest first, each with its steps' status. */
  r.get('/projects/:id/pipelines', { permission: 'pipelines.read', resource: inPath('project') }, { 200: R.page(R.pipeline) }, async (req, res) => {
    const project = await loadProject(ctx, param(req, 'id'));
    const q = pageQuery.parse(req.query);
    const rows = await pagePipelines(db, project.id, { limit: q.limit + 1, after: decodeCursor(q.cursor, createdKey), desc: true });
    const page = pageOf(rows, q.limit, (r) => r.key);
    res.json({ items: page.items.map((r) => pipelineView(r.item)), nextCursor: page.nextCursor });
  });

  r.post(
    '/pipelines/:id/cancel',
    { permission: 'pipelines.write', resource: inPath('pipeline') },
    { 202: R.statusOf(z.literal('cancelling')) },
    async (req, res) => {
      res.status(202).json(await cancelPipeline(ctx, callerOf(req), param(req, 'id')));
    },
  );

  return r;
}

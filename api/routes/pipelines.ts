import * as R from '../responses.js';
import { RouteGroup, inPath, inBody } from './table.js';
import { z } from 'zod';
import { waitForStatus } from '../event-stream.js';
import { callerOf, param, type ApiContext } from '../context.js';
import { cancelPipeline, createPipeline, getPipelineView } from '../../services/pipelines.js';

export function pipelineRoutes(ctx: ApiContext): RouteGroup {
  const r = new RouteGroup(ctx);
  const { db } = ctx;

  r.post('/pipelines', { permission: 'pipelines.write', resource: inBody('project', 'projectId') }, { 202: R.pipelineAccepted }, async (req, res) => {
    res.status(202).json(await createPipeline(ctx, callerOf(req), req.body));
  });

  r.get('/pipelines/:id', { permission: 'pipelines.read', resource: inPath('pipeline') }, { 200: R.pipeline }, waitForStatus.pipeline(db), async (req, res) => {
    res.json(await getPipelineView(ctx, param(req, 'id')));
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

import * as R from '../responses.js';
import { RouteGroup, inPath, inQuery } from './table.js';
import { callerOf, param, type ApiContext } from '../context.js';
import { predictionAccuracy, setPredictionSettings } from '../../services/predictions.js';

/** Cost prediction (README "Cost prediction"): how close the predictions came. */
export function predictionRoutes(ctx: ApiContext): RouteGroup {
  const r = new RouteGroup(ctx);

  r.get(
    '/predictions/accuracy',
    { permission: 'predictions.read', resource: inQuery('project', 'projectId') },
    { 200: R.predictionAccuracy },
    async (req, res) => {
      res.json(await predictionAccuracy(ctx, callerOf(req), req.query as Record<string, string>));
    },
  );

  r.put('/projects/:id/prediction', { permission: 'routing.configure', resource: inPath('project') }, { 200: R.predictionSettings }, async (req, res) => {
    res.json(await setPredictionSettings(ctx, callerOf(req), param(req, 'id'), req.body));
  });

  return r;
}

import * as R from '../responses.js';
import { RouteGroup, inQuery } from './table.js';
import { callerOf, type ApiContext } from '../context.js';
import { predictionAccuracy } from '../../services/predictions.js';

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

  return r;
}

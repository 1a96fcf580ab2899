import * as R from '../responses.js';
import { RouteGroup, inPath } from './table.js';
import { callerOf, param, type ApiContext } from '../context.js';
import { giveMachineFeedback, machineFeedback } from '../../services/feedback.js';
import { projectRoi } from '../../services/roi.js';

/** ROI and feedback (README "ROI and feedback"). */
export function roiRoutes(ctx: ApiContext): RouteGroup {
  const r = new RouteGroup(ctx);

  r.post(
    '/machines/:id/feedback',
    { permission: 'machines.run', resource: inPath('machine') },
    { 200: R.machineFeedback, 201: R.machineFeedback },
    async (req, res) => {
      const { feedback, created } = await giveMachineFeedback(ctx, callerOf(req), param(req, 'id'), req.body);
      res.status(created ? 201 : 200).json(feedback);
    },
  );

  r.get('/machines/:id/feedback', { permission: 'machines.read', resource: inPath('machine') }, { 200: R.machineFeedbackList }, async (req, res) => {
    res.json({ items: await machineFeedback(ctx, param(req, 'id')) });
  });

  r.get('/projects/:id/roi', { permission: 'costs.read', resource: inPath('project') }, { 200: R.projectRoi }, async (req, res) => {
    res.json(await projectRoi(ctx, param(req, 'id'), req.query as Record<string, string>));
  });

  return r;
}

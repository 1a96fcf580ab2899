import * as R from '../responses.js';
import { RouteGroup, inPath } from './table.js';
import { waitForStatus } from '../event-stream.js';
import { pageObjectives, progressHistory } from '../../store/objectives.js';
import { callerOf, param, type ApiContext } from '../context.js';
import { createdKey, decodeCursor, pageOf, pageQuery, seqKey } from '../pagination.js';
import { loadProject } from './projects.js';
import {
  cancelObjective,
  createObjective,
  getObjectiveDag,
  getObjectiveView,
  linkObjective,
  markObjectiveSubtasksDone,
  objectiveView,
  pauseObjective,
  requireObjective,
  resumeObjective,
  updateObjective,
} from '../../services/objectives.js';

export function objectiveRoutes(ctx: ApiContext): RouteGroup {
  const r = new RouteGroup(ctx);
  const { db } = ctx;

  r.post('/projects/:id/objectives', { permission: 'objectives.write', resource: inPath('project') }, { 201: R.objective }, async (req, res) => {
    res.status(201).json(await objectiveView(ctx, await createObjective(ctx, callerOf(req), param(req, 'id'), req.body)));
  });

  r.get('/projects/:id/objectives', { permission: 'objectives.read', resource: inPath('project') }, { 200: R.page(R.objective) }, async (req, res) => {
    const project = await loadProject(ctx, param(req, 'id'));
    const q = pageQuery.parse(req.query);
    const rows = await pageObjectives(db, project.id, { limit: q.limit + 1, after: decodeCursor(q.cursor, createdKey) });
    const page = pageOf(rows, q.limit, (r) => r.key);
    res.json({ items: await Promise.all(page.items.map((r) => objectiveView(ctx, r.item))), nextCursor: page.nextCursor });
  });

  const controls = { pause: pauseObjective, resume: resumeObjective, cancel: cancelObjective } as const;
  for (const [action, control] of Object.entries(controls)) {
    r.post(`/objectives/:id/${action}`, { permission: 'objectives.write', resource: inPath('objective') }, { 202: R.objectiveStatusOf }, async (req, res) => {
      res.status(202).json(await control(ctx, callerOf(req), param(req, 'id')));
    });
  }

  r.post('/objectives/:id/links', { permission: 'objectives.write', resource: inPath('objective') }, { 200: R.objective }, async (req, res) => {
    res.json(await objectiveView(ctx, await linkObjective(ctx, callerOf(req), param(req, 'id'), req.body)));
  });

  r.get(
    '/objectives/:id',
    { permission: 'objectives.read', resource: inPath('objective') },
    { 200: R.objectiveDetail },
    waitForStatus.objective(db),
    async (req, res) => {
      res.json(await getObjectiveView(ctx, param(req, 'id')));
    },
  );

  r.patch('/objectives/:id', { permission: 'objectives.write', resource: inPath('objective') }, { 200: R.objective }, async (req, res) => {
    res.json(await objectiveView(ctx, await updateObjective(ctx, callerOf(req), param(req, 'id'), req.body)));
  });

  /** Ticks sub-tasks off and records the progress that makes. */
  r.post('/objectives/:id/subtasks/done', { permission: 'objectives.write', resource: inPath('objective') }, { 200: R.objective }, async (req, res) => {
    res.json(await objectiveView(ctx, await markObjectiveSubtasksDone(ctx, callerOf(req), param(req, 'id'), req.body)));
  });

  r.get('/objectives/:id/progress', { permission: 'objectives.read', resource: inPath('objective') }, { 200: R.objectiveProgress }, async (req, res) => {
    const o = await requireObjective(ctx, param(req, 'id'));
    const q = pageQuery.parse(req.query);
    const afterSeq = decodeCursor(q.cursor, seqKey);
    const rows = await progressHistory(db, o.id, { limit: q.limit + 1, ...(afterSeq ? { afterSeq } : {}) });
    const page = pageOf(rows, q.limit, (r) => r.seq);
    res.json({ items: page.items.map(({ seq: _seq, ...r }) => r), nextCursor: page.nextCursor });
  });

  /** The project's objectives as a DAG: nodes with status and progress, edges, and layers in start order. */
  r.get('/projects/:id/objectives/dag', { permission: 'objectives.read', resource: inPath('project') }, { 200: R.objectiveDag }, async (req, res) => {
    res.json(await getObjectiveDag(ctx, param(req, 'id')));
  });

  return r;
}

import { runVisibility } from '../../domain/search-attributes.js';
import * as R from '../responses.js';
import { RouteGroup, inPath } from './table.js';
import { InputError } from '../../domain/errors.js';
import { coordinatorWorkflowId } from '../../domain/scheduling.js';
import { appendAudit } from '../../store/audit.js';
import { getProject, setSchedulingSettings, type Project } from '../../store/projects.js';
import { coordinatorStateQuery, project as projectWorkflow, rescheduleSignal, type ProjectCoordinatorState } from '../../workflows/index.js';
import { actorOf, param, type ApiContext } from '../context.js';
import { putSchedulingBody } from '../../services/schemas.js';
import { loadProject } from './projects.js';

/** Refuses resource names the project has not declared, naming the field and the known ones. */
export function requireKnownResources(project: Project, names: readonly string[], field: string): void {
  const unknown = names.filter((n) => !(n in project.resources));
  if (unknown.length) {
    const known = Object.keys(project.resources);
    throw new InputError(
      `${field}: unknown resource ${unknown.map((n) => `"${n}"`).join(', ')}; declare it first with PUT /v1/projects/${project.id}/scheduling` +
        (known.length ? ` (known: ${known.join(', ')})` : ' (the project has none)'),
      { field },
    );
  }
}

/** Tells the project's coordinator to look again (settings, priorities or budget changed); starts it if needed. */
export async function nudgeCoordinator(ctx: ApiContext, projectId: string, by: string): Promise<void> {
  await ctx.temporal.workflow.signalWithStart(projectWorkflow, {
    workflowId: coordinatorWorkflowId(projectId),
    taskQueue: ctx.config.taskQueue,
    ...runVisibility('project coordinator', { project: projectId }, { searchAttributes: ctx.config.searchAttributes }),
    args: [{ projectId }],
    signal: rescheduleSignal,
    signalArgs: [{ by }],
  });
}

async function coordinatorState(ctx: ApiContext, projectId: string): Promise<ProjectCoordinatorState | null> {
  try {
    return await ctx.temporal.workflow.getHandle(coordinatorWorkflowId(projectId)).query(coordinatorStateQuery);
  } catch {
    return null; // not started yet: nothing has asked for a machine
  }
}

export function schedulingRoutes(ctx: ApiContext): RouteGroup {
  const r = new RouteGroup(ctx);
  const { db } = ctx;

  async function present(project: Project) {
    const state = await coordinatorState(ctx, project.id);
    return {
      maxConcurrentMachines: project.maxConcurrentMachines,
      greediness: project.greediness,
      resources: project.resources,
      coordinator: state && {
        workflowId: coordinatorWorkflowId(project.id),
        holding: state.holds.map((h) => ({ requestId: h.requestId, resource: h.resource, for: h.label })),
        waiting: state.pending.map((p) => ({
          requestId: p.requestId,
          resource: p.resource,
          for: p.label,
          priority: p.priority,
          dependents: p.dependents,
          reason: state.waiting[p.requestId] ?? 'just queued: the coordinator has not ranked it yet',
        })),
        deadlocks: state.deadlocks,
        granted: state.granted,
      },
    };
  }

  r.get('/projects/:id/scheduling', { permission: 'projects.read', resource: inPath('project') }, { 200: R.scheduling }, async (req, res) => {
    res.json(await present(await loadProject(ctx, param(req, 'id'))));
  });

  r.put('/projects/:id/scheduling', { permission: 'projects.configure', resource: inPath('project') }, { 200: R.scheduling }, async (req, res) => {
    const project = await loadProject(ctx, param(req, 'id'));
    const body = putSchedulingBody.parse(req.body);
    await setSchedulingSettings(db, project.id, body);
    await appendAudit(db, {
      actor: actorOf(req),
      action: 'project.scheduling_set',
      subjectType: 'project',
      subjectId: project.id,
      projectId: project.id,
      details: body,
    });
    await nudgeCoordinator(ctx, project.id, actorOf(req));
    res.json(await present((await getProject(db, project.id))!));
  });

  return r;
}

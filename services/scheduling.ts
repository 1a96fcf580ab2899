/** Use cases of a project's scheduling: its settings, and telling its coordinator to look again. */
import type { SignalDefinition } from '@temporalio/client';
import { z } from 'zod';
import { InputError } from '../domain/errors.js';
import { coordinatorWorkflowId } from '../domain/scheduling.js';
import { runVisibility } from '../domain/search-attributes.js';
import { appendAudit } from '../store/audit.js';
import { setSchedulingSettings, type Project } from '../store/projects.js';
import { coordinatorStateQuery, project as projectWorkflow, reprioritizeSignal, rescheduleSignal, type ProjectCoordinatorState } from '../workflows/index.js';
import { actorOfCaller, type Caller, type ServiceContext } from './context.js';
import { requireProject } from './projects.js';
import { putSchedulingBody } from './schemas.js';

/** What signalling the coordinator needs (the api's context and the activities' deps both have it). */
type CoordinatorContext = Pick<ServiceContext, 'temporal' | 'config'>;

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

/**
 * Signals the project's coordinator, starting it on first use: every request reaches it this way,
 * so a retried signal changes nothing (the coordinator deduplicates).
 */
export async function signalCoordinator<T>(ctx: CoordinatorContext, projectId: string, signal: SignalDefinition<[T]> | string, arg: T): Promise<void> {
  await ctx.temporal.workflow.signalWithStart(projectWorkflow, {
    workflowId: coordinatorWorkflowId(projectId),
    taskQueue: ctx.config.taskQueue,
    ...runVisibility('project coordinator', { project: projectId }, { searchAttributes: ctx.config.searchAttributes }),
    args: [{ projectId }],
    signal,
    signalArgs: [arg],
  });
}

/** Tells the project's coordinator to look again (settings, priorities or budget changed); starts it if needed. */
export async function nudgeCoordinator(ctx: CoordinatorContext, projectId: string, by: string): Promise<void> {
  await signalCoordinator(ctx, projectId, rescheduleSignal, { by });
}

/** Moves the requests of one piece of work (matched by label) in the coordinator's queue; nothing when it is not running. */
export async function reprioritizeInCoordinator(ctx: CoordinatorContext, projectId: string, label: string, priority: number): Promise<void> {
  await ctx.temporal.workflow
    .getHandle(coordinatorWorkflowId(projectId))
    .signal(reprioritizeSignal, { label, priority })
    .catch(() => undefined);
}

async function coordinatorState(ctx: ServiceContext, projectId: string): Promise<ProjectCoordinatorState | null> {
  try {
    return await ctx.temporal.workflow.getHandle(coordinatorWorkflowId(projectId)).query(coordinatorStateQuery);
  } catch {
    return null; // not started yet: nothing has asked for a machine
  }
}

/** The project's scheduling settings and what its coordinator holds and why the rest waits. */
export interface SchedulingView {
  maxConcurrentMachines: number;
  greediness: number;
  resources: Record<string, number>;
  coordinator: {
    workflowId: string;
    holding: Array<{ requestId: string; resource: string; for: string }>;
    waiting: Array<{ requestId: string; resource: string; for: string; priority: number; dependents: number; reason: string }>;
    deadlocks: string[][];
    granted: number;
  } | null;
}

/** The project's scheduling settings with its coordinator's live state (null before it started). */
export async function schedulingView(ctx: ServiceContext, project: Project): Promise<SchedulingView> {
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

/** The scheduling view of the project, or NotFoundError. */
export async function getSchedulingView(ctx: ServiceContext, projectId: string): Promise<SchedulingView> {
  return schedulingView(ctx, await requireProject(ctx, projectId));
}

/** Sets the project's concurrency, greediness and named resources, and lets its coordinator look again. */
export async function setScheduling(ctx: ServiceContext, caller: Caller, projectId: string, input: z.input<typeof putSchedulingBody>): Promise<Project> {
  const project = await requireProject(ctx, projectId);
  const body = putSchedulingBody.parse(input);
  // The change and its audit record commit together, or neither does.
  await ctx.db.transaction(async (trx) => {
    await setSchedulingSettings(trx, project.id, body);
    await appendAudit(trx, {
      actor: actorOfCaller(caller),
      action: 'project.scheduling_set',
      subjectType: 'project',
      subjectId: project.id,
      projectId: project.id,
      details: body,
    });
  });
  await nudgeCoordinator(ctx, project.id, actorOfCaller(caller));
  return requireProject(ctx, project.id);
}

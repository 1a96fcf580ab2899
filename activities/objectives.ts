import path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { dependentsCount } from '../domain/dag.js';
import { parseAmount } from '../domain/money.js';
import { measureProgress, VERDICT_FILE, type CompletionCriteria } from '../domain/objectives.js';
import { appendAudit } from '../store/audit.js';
import { getCheckpoint } from '../store/checkpoints.js';
import { checkoutWorkspace, readFileAt, removeWorkspace } from '../store/git.js';
import { insertMachine, type MachineLimits } from '../store/machines.js';
import {
  dependentWorkflowIds,
  finalCheckpointOfObjective,
  getObjective,
  listObjectives,
  markSubtasksDone,
  objectiveStatuses,
  recordProgress,
  setObjectiveStatus,
  type ObjectiveStatus,
} from '../store/objectives.js';
import { getProject } from '../store/projects.js';
import { superviseSandbox } from './machines/supervise.js';
import { placeAndInsertMachine } from './placement.js';
import { learnFromCheck } from '../services/refinement.js';
import type { MachineTypeId } from '../domain/machine-types.js';
import type { ProviderId } from '../domain/machines.js';
import type { ActivityDeps } from './deps.js';
import { withLocalRepo } from '../store/shared-storage.js';

/** How long a completion check may run. */
const CHECK_TIMEOUT_MS = 5 * 60_000;

export interface ObjectiveEvaluation {
  complete: boolean;
  progress: number;
  /** What is still missing, in words, for the next machine's prompt and for users. */
  missing: string[];
}

export function createObjectiveActivities({ db, config }: ActivityDeps) {
  async function loadObjective(id: string) {
    const objective = await getObjective(db, id);
    if (!objective) throw ApplicationFailure.nonRetryable(`objective ${id} not found`, 'NotFoundError');
    return objective;
  }

  return {
    /** What the objective's next machine asks the project coordinator for. */
    async objectiveClaim(input: { objectiveId: string; money: string }): Promise<{ priority: number; dependents: number; cost: string; resources: string[] }> {
      const objective = await loadObjective(input.objectiveId);
      const project = await getProject(db, objective.projectId);
      const graph = (await listObjectives(db, objective.projectId)).map((o) => ({ id: o.id, dependsOn: o.dependsOn.filter((d) => d !== o.id) }));
      let dependents = 0;
      try {
        dependents = dependentsCount(graph).get(objective.id) ?? 0;
      } catch {
        // A graph the API refused to create cannot be here; count nothing rather than fail.
      }
      return { priority: objective.priority, dependents, cost: parseAmount(input.money, project!.currency).toString(), resources: objective.resources };
    },

    /**
     * Measures the objective against its completion criteria on `checkpointId`: runs the check
     * command in a sandbox on a fresh copy of that checkpoint, reads the machine's verdict file,
     * ticks the sub-tasks the verdict names, and records the measurement (once per machine).
     */
    async evaluateObjective(input: { objectiveId: string; machineId: string; checkpointId: string; machineCompleted: boolean }): Promise<ObjectiveEvaluation> {
      const objective = await loadObjective(input.objectiveId);
      const checkpoint = await getCheckpoint(db, input.checkpointId);
      if (!checkpoint) throw ApplicationFailure.nonRetryable(`checkpoint ${input.checkpointId} not found`, 'NotFoundError');
      const project = await withLocalRepo(db, config, (await getProject(db, objective.projectId))!, [checkpoint.commit]);
      const criteria: CompletionCriteria = objective.completion;
      const measured: Record<string, unknown> = {};
      const missing: string[] = [];

      let check: { passed: boolean } | undefined;
      if (criteria.command !== undefined) {
        const workspace = path.join(config.workspacesDir, `check-${input.objectiveId}-${input.machineId}`);
        await checkoutWorkspace(project.repoPath, workspace, checkpoint.commit);
        try {
          const result = await superviseSandbox(
            { machineId: `check-${input.machineId}`, workspace, command: criteria.command, network: false },
            {
              logFile: path.join(config.home, 'logs', `check-${input.machineId}.log`),
              deadline: Date.now() + CHECK_TIMEOUT_MS,
              deadlineReason: 'check timed out',
            },
          );
          check = { passed: result.exitCode === 0 };
          measured.check = {
            command: criteria.command,
            passed: check.passed,
            exitCode: result.exitCode,
            stopReason: result.stopReason,
            outputTail: result.outputTail.slice(-1000),
          };
          // A failed check teaches prompt refinement for the machine's class and type (README "Prompt refinement").
          if (!check.passed) await learnFromCheck(db, input.machineId, { command: criteria.command, output: result.outputTail.slice(-2000) });
          if (!check.passed)
            missing.push(`the check \`${criteria.command}\` fails (exit ${result.exitCode ?? result.stopReason}): ${result.outputTail.slice(-400).trim()}`);
        } finally {
          await removeWorkspace(project.repoPath, workspace);
        }
      }

      let verdict: { complete: boolean; subtasksDone?: string[]; note?: string } | null = null;
      const verdictFile = await readFileAt(project.repoPath, checkpoint.commit, VERDICT_FILE);
      if (verdictFile) {
        try {
          const parsed = JSON.parse(verdictFile.toString('utf8'));
          verdict = {
            complete: parsed.complete === true,
            ...(Array.isArray(parsed.subtasksDone) ? { subtasksDone: parsed.subtasksDone.filter((x: unknown) => typeof x === 'string') } : {}),
            ...(typeof parsed.note === 'string' ? { note: parsed.note.slice(0, 2000) } : {}),
          };
        } catch {
          measured.verdictError = `${VERDICT_FILE} is not valid JSON`;
        }
      }
      if (criteria.verdict) {
        measured.verdict = verdict;
        if (!verdict?.complete) missing.push(`the machine has not declared the work complete in ${VERDICT_FILE}`);
      }

      let subtasksDone = objective.subtasksDone;
      if (criteria.subtasks?.length) {
        const named = (verdict?.subtasksDone ?? []).filter((n) => criteria.subtasks!.includes(n));
        if (named.length) subtasksDone = await markSubtasksDone(db, objective.id, named);
        const open = criteria.subtasks.filter((n) => !subtasksDone.includes(n));
        measured.subtasks = { done: criteria.subtasks.length - open.length, total: criteria.subtasks.length, open };
        if (open.length) missing.push(`open sub-tasks: ${open.join('; ')}`);
      }
      if (!input.machineCompleted && !Object.keys(criteria).length) missing.push(`machine ${input.machineId} did not complete`);

      const { progress, complete } = measureProgress(criteria, { machineCompleted: input.machineCompleted, check, subtasksDone, verdict });
      await recordProgress(db, `objective:${objective.id}:machine:${input.machineId}`, {
        objectiveId: objective.id,
        progress,
        criteria: measured,
        machineId: input.machineId,
        checkpointId: input.checkpointId,
        note: complete ? 'complete' : missing.join('\n').slice(0, 4000),
      });
      return { complete, progress, missing };
    },

    async dependencyStatuses(input: { ids: string[] }): Promise<Record<string, ObjectiveStatus>> {
      return objectiveStatuses(db, input.ids);
    },

    async markObjective(input: { objectiveId: string; status: ObjectiveStatus; error?: string }): Promise<void> {
      const objective = await getObjective(db, input.objectiveId);
      if (!objective) throw ApplicationFailure.nonRetryable(`objective ${input.objectiveId} not found`, 'NotFoundError');
      if (objective.status === input.status) return;
      await setObjectiveStatus(db, input.objectiveId, input.status, input.error);
      await appendAudit(db, {
        actor: 'system',
        action: `objective.${input.status}`,
        subjectType: 'objective',
        subjectId: input.objectiveId,
        projectId: objective.projectId,
        details: input.error ? { error: input.error } : {},
        idempotencyKey: `objective:${input.objectiveId}:${input.status}`,
      });
    },

    /** Writes the row of a machine the objective is about to start. Idempotent on the machine id. */
    async registerObjectiveMachine(input: {
      machineId: string;
      objectiveId: string;
      projectId: string;
      type: string;
      provider: string;
      profile: string;
      command: string | null;
      prompt: string | null;
      parentCheckpointId: string;
      limits: MachineLimits;
      /** Place it by the project's rules (load-aware) instead of on `provider`. */
      place?: boolean;
    }): Promise<{ type?: MachineTypeId; provider: ProviderId; spot: boolean; limitPolicy?: { policy: 'stop' | 'pause'; pauseMinutes: number } }> {
      const { machineId, place, ...rest } = input;
      const row = { ...rest, type: rest.type as MachineTypeId | 'auto', id: machineId, workflowId: machineId, createdBy: `objective:${input.objectiveId}` };
      // `type: "auto"` is routed on the shared request path, which places too.
      if (place || row.type === 'auto') return placeAndInsertMachine(db, config, row, input.limits.minutes);
      await insertMachine(db, { ...row, type: row.type });
      return { provider: input.provider as ProviderId, spot: false };
    },

    /** The final checkpoint of each objective's last machine (objectives without one are left out). */
    async objectiveEndCheckpoints(input: { ids: string[] }): Promise<string[]> {
      const out: string[] = [];
      for (const id of input.ids) {
        const checkpointId = await finalCheckpointOfObjective(db, id);
        if (checkpointId) out.push(checkpointId);
      }
      return out;
    },

    /** Workflow ids of the objectives that wait on this one. */
    async dependentWorkflowIds(input: { objectiveId: string }): Promise<string[]> {
      return dependentWorkflowIds(db, input.objectiveId);
    },
  };
}

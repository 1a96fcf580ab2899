import { ApplicationFailure } from '@temporalio/common';
import { appendAudit } from '../store/audit.js';
import { insertMachine, type MachineLimits } from '../store/machines.js';
import { getObjective, objectiveStatuses, setObjectiveStatus, type ObjectiveStatus } from '../store/objectives.js';
import type { ActivityDeps } from './deps.js';

export function createObjectiveActivities({ db }: ActivityDeps) {
  return {
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
    }): Promise<void> {
      const { machineId, ...rest } = input;
      await insertMachine(db, { ...rest, id: machineId, workflowId: machineId, createdBy: `objective:${input.objectiveId}` });
    },

    /** The final checkpoint of each objective's last machine (objectives without one are left out). */
    async objectiveEndCheckpoints(input: { ids: string[] }): Promise<string[]> {
      const out: string[] = [];
      for (const id of input.ids) {
        const row = await db('checkpoints as c')
          .join('machines as m', 'm.id', 'c.machine_id')
          .where({ 'm.objective_id': id, 'c.kind': 'final' })
          .orderBy('c.created_at', 'desc')
          .first('c.id');
        if (row) out.push(row.id);
      }
      return out;
    },

    /** Workflow ids of the objectives that wait on this one. */
    async dependentWorkflowIds(input: { objectiveId: string }): Promise<string[]> {
      const rows = await db('objective_links as l')
        .join('objectives as o', 'o.id', 'l.objective_id')
        .where({ 'l.depends_on_id': input.objectiveId })
        .select('o.workflow_id');
      return rows.map((r) => r.workflow_id);
    },
  };
}

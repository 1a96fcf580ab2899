import { MERGE_CONFLICT } from '../domain/errors.js';
import { ApplicationFailure } from '@temporalio/common';
import { appendAudit } from '../store/audit.js';
import { getCheckpoint, recordCheckpoint } from '../store/checkpoints.js';
import { GitError, mergeCommits } from '../store/git.js';
import { insertMachine, type MachineLimits } from '../store/machines.js';
import { finishPipeline, getPipeline, updateStep, type PipelineStatus, type StepStatus } from '../store/pipelines.js';
import { getProject } from '../store/projects.js';
import type { MachineTypeId } from '../domain/machine-types.js';
import type { ProviderId } from '../domain/machines.js';
import type { ActivityDeps } from './deps.js';
import { placeAndInsertMachine } from './placement.js';
import { repoMirror, withLocalRepo } from '../store/shared-storage.js';

export function createPipelineActivities({ db, config }: ActivityDeps) {
  /** Writes the row of a machine a workflow is about to start. Idempotent on the machine id. */
  async function registerMachine(input: {
    machineId: string;
    projectId: string;
    type: string;
    profile: string;
    command: string | null;
    prompt: string | null;
    parentCheckpointId: string;
    limits: MachineLimits;
    createdBy: string;
    /** Place it by the project's rules (load-aware); older workflows leave it out and run on local. */
    place?: boolean;
  }): Promise<{ type?: MachineTypeId; provider: ProviderId; spot: boolean; limitPolicy?: { policy: 'stop' | 'pause'; pauseMinutes: number } }> {
    const { machineId, place, ...rest } = input;
    const row = { ...rest, type: rest.type as MachineTypeId | 'auto', id: machineId, objectiveId: null, workflowId: machineId };
    // `type: "auto"` is routed on the shared request path, which places too.
    if (place || row.type === 'auto') return placeAndInsertMachine(db, config, row, input.limits.minutes);
    await insertMachine(db, { ...row, type: row.type, provider: 'local' });
    return { provider: 'local', spot: false };
  }

  return {
    async markStep(input: {
      pipelineId: string;
      stepId: string;
      status: StepStatus;
      machineId?: string;
      checkpointId?: string | null;
      error?: string | null;
      started?: boolean;
      ended?: boolean;
    }): Promise<void> {
      const { pipelineId, stepId, ...u } = input;
      await updateStep(db, pipelineId, stepId, u);
    },

    async finishPipeline(input: { pipelineId: string; status: PipelineStatus; error: string | null }): Promise<void> {
      const pipeline = await getPipeline(db, input.pipelineId);
      if (!pipeline) throw ApplicationFailure.nonRetryable(`pipeline ${input.pipelineId} not found`, 'NotFoundError');
      await finishPipeline(db, input.pipelineId, input.status, input.error);
      await appendAudit(db, {
        actor: 'system',
        action: `pipeline.${input.status}`,
        subjectType: 'pipeline',
        subjectId: input.pipelineId,
        projectId: pipeline.projectId,
        details: input.error ? { error: input.error } : {},
        idempotencyKey: `pipeline:${input.pipelineId}:${input.status}`,
      });
    },

    registerMachine,

    /**
     * A step's machine row and the step marked running with it, in one call (what `registerMachine`
     * then `markStep` did in two). Idempotent: the machine row on its id, the step on its status.
     */
    async startStep(input: Parameters<typeof registerMachine>[0] & { pipelineId: string; stepId: string }) {
      const { pipelineId, stepId, ...machine } = input;
      const registered = await registerMachine(machine);
      await updateStep(db, pipelineId, stepId, { status: 'running', machineId: machine.machineId, started: true });
      return registered;
    },

    /** A checkpoint that merges the checkpoints of several steps (for a step that follows them all). */
    async mergeCheckpoints(input: {
      checkpointId: string;
      projectId: string;
      checkpointIds: string[];
      at: string;
      trigger: string;
    }): Promise<{ checkpointId: string }> {
      const existing = await getCheckpoint(db, input.checkpointId);
      if (existing) return { checkpointId: existing.id };
      const found = await getProject(db, input.projectId);
      if (!found) throw ApplicationFailure.nonRetryable(`project ${input.projectId} not found`, 'NotFoundError');
      const project = await withLocalRepo(db, config, found);
      const parents = await Promise.all(input.checkpointIds.map((id) => getCheckpoint(db, id)));
      if (parents.some((c) => !c)) throw ApplicationFailure.nonRetryable('a checkpoint to merge is missing', 'NotFoundError');
      let commit: string;
      try {
        commit = await mergeCommits(
          project.repoPath,
          parents.map((c) => c!.commit),
          `merge ${input.checkpointIds.join(' + ')}`,
          new Date(input.at),
        );
      } catch (e) {
        if (e instanceof GitError) throw ApplicationFailure.nonRetryable(e.message, MERGE_CONFLICT);
        throw e;
      }
      await recordCheckpoint(
        db,
        project.repoPath,
        {
          id: input.checkpointId,
          projectId: project.id,
          parentId: input.checkpointIds[0]!,
          machineId: null,
          commit,
          kind: 'merge',
          trigger: `${input.trigger}: ${input.checkpointIds.join(' + ')}`,
        },
        {},
        repoMirror(config),
      );
      return { checkpointId: input.checkpointId };
    },
  };
}

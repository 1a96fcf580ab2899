import { ApplicationFailure } from '@temporalio/common';
import { inputsNote, workspacePathProblem, type ResolvedInputs } from '../domain/artifacts.js';
import { InputError } from '../domain/errors.js';
import { resolveInputEntries } from '../store/artifact-inputs.js';
import { artifactContent, saveArtifact } from '../store/artifacts.js';
import { appendAudit } from '../store/audit.js';
import { getCheckpoint, recordCheckpoint } from '../store/checkpoints.js';
import { GitError, commitWithBlobs, readFileAt, writeBlob } from '../store/git.js';
import { getProject, type Project } from '../store/projects.js';
import type { ActivityDeps } from './deps.js';
import { repoMirror, withLocalRepo } from '../store/shared-storage.js';

export type PrepareInputsOutcome = { ok: true; checkpointId: string; note: string } | { ok: false; error: string };

/**
 * Artifact passing: a machine's inputs become one `inputs` checkpoint (its start checkpoint plus
 * the given files and conversation histories), so every retry and every later checkpoint of the
 * machine sees them; after the run its declared files are kept as named artifacts.
 */
export function createArtifactPassingActivities({ db, config }: ActivityDeps) {
  async function projectOf(projectId: string): Promise<Project> {
    const project = await getProject(db, projectId);
    if (!project) throw ApplicationFailure.nonRetryable(`project ${projectId} not found`, 'NotFoundError');
    return withLocalRepo(db, config, project);
  }

  return {
    /** Builds the machine's start checkpoint with its inputs in place. Same `checkpointId` → same checkpoint. */
    async prepareInputs(input: {
      machineId: string;
      projectId: string;
      parentCheckpointId: string;
      checkpointId: string;
      inputs: ResolvedInputs;
      at: string;
    }): Promise<PrepareInputsOutcome> {
      const project = await projectOf(input.projectId);
      const existing = await getCheckpoint(db, input.checkpointId);
      let entries;
      try {
        entries = await resolveInputEntries(db, project, input.inputs, 'inputs');
      } catch (e) {
        // A reference that cannot be honoured (a step that left no such file, …) fails the machine, clearly.
        if (e instanceof InputError) return { ok: false, error: `inputs refused: ${e.message}` };
        throw e;
      }
      const note = inputsNote(entries.map((e) => ({ dest: e.dest, what: e.what })));
      if (existing) return { ok: true, checkpointId: existing.id, note };
      const parent = await getCheckpoint(db, input.parentCheckpointId);
      if (!parent || parent.projectId !== project.id) {
        throw ApplicationFailure.nonRetryable(`checkpoint ${input.parentCheckpointId} is not a checkpoint of project ${project.id}`, 'InputError');
      }
      const blobs = [];
      for (const e of entries) {
        if ('blob' in e) {
          blobs.push({ path: e.dest, ...e.blob });
          continue;
        }
        // Artifacts are read from the database: the worker that wrote one may be another host.
        const content = await artifactContent(db, e.artifact.machineId, e.artifact.name);
        if (!content?.ok) return { ok: false, error: `inputs refused: ${e.field}: ${content?.reason ?? `artifact ${e.artifact.name} is gone`}` };
        blobs.push({ path: e.dest, oid: await writeBlob(project.repoPath, content.content), mode: '100644' });
      }
      let commit: string;
      try {
        commit = await commitWithBlobs(project.repoPath, parent.commit, blobs, `inputs of ${input.machineId}`, new Date(input.at));
      } catch (e) {
        if (e instanceof GitError) return { ok: false, error: `inputs refused: ${e.message}` };
        throw e;
      }
      await recordCheckpoint(
        db,
        project.repoPath,
        {
          id: input.checkpointId,
          projectId: project.id,
          parentId: parent.id,
          machineId: input.machineId,
          commit,
          kind: 'inputs',
          trigger: `inputs: ${entries.map((e) => e.dest).join(', ')}`,
        },
        {
          action: 'machine.inputs_placed',
          subjectType: 'machine',
          subjectId: input.machineId,
          details: { checkpointId: input.checkpointId, parentId: parent.id, commit, inputs: entries.map((e) => ({ dest: e.dest, from: e.what })) },
        },
        repoMirror(config),
      );
      return { ok: true, checkpointId: input.checkpointId, note };
    },

    /**
     * Keeps the machine's declared files, as they are in `checkpointId`, as named artifacts linked
     * to it. Returns which were stored and which the checkpoint does not have.
     */
    async storeDeclaredArtifacts(input: {
      machineId: string;
      projectId: string;
      checkpointId: string;
      paths: string[];
    }): Promise<{ stored: string[]; missing: string[] }> {
      const project = await projectOf(input.projectId);
      const cp = await getCheckpoint(db, input.checkpointId);
      if (!cp || cp.projectId !== project.id) throw ApplicationFailure.nonRetryable(`checkpoint ${input.checkpointId} not found`, 'NotFoundError');
      const stored: string[] = [];
      const missing: string[] = [];
      const tooLarge: string[] = [];
      for (const p of input.paths) {
        const bytes = workspacePathProblem(p) ? null : await readFileAt(project.repoPath, cp.commit, p);
        if (!bytes) {
          missing.push(p);
          continue;
        }
        const saved = await saveArtifact(db, { machineId: input.machineId, name: p, checkpointId: cp.id, content: bytes }, config.artifactMaxBytes);
        if (saved.notStored) tooLarge.push(`${p}: ${saved.notStored}`);
        stored.push(p);
      }
      await appendAudit(db, {
        actor: 'system',
        action: 'machine.artifacts_stored',
        subjectType: 'machine',
        subjectId: input.machineId,
        projectId: project.id,
        details: { checkpointId: cp.id, stored, missing, ...(tooLarge.length ? { notStored: tooLarge } : {}) },
        idempotencyKey: `machine:${input.machineId}:artifacts:${cp.id}`,
      });
      return { stored, missing };
    },
  };
}

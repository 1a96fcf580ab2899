import { CONVERSATION_ARTIFACT, RECORDED_ARTIFACTS, conversationPathOf, workspacePathProblem, type MachineInputs } from '../domain/artifacts.js';
import { InputError } from '../domain/errors.js';
import { listArtifacts, type Artifact } from './artifacts.js';
import { getCheckpoint } from './checkpoints.js';
import type { Db } from './db.js';
import { blobAt } from './git.js';
import { getMachine } from './machines.js';
import type { Project } from './projects.js';

/** One input to place in a workspace: a blob already in the project's repository, or an artifact file. */
export type InputEntry =
  { dest: string; what: string; field: string; blob: { oid: string; mode: string } } | { dest: string; what: string; field: string; artifact: Artifact };

/** What a pipeline step may reference: its ancestors, and the artifacts each step declares. */
export interface StepScope {
  stepId: string;
  ancestors: ReadonlySet<string>;
  declared: ReadonlyMap<string, { type: string; artifacts: readonly string[] }>;
}

const fail = (field: string, message: string): never => {
  throw new InputError(`${field}: ${message}`, { field });
};

function checkPath(field: string, p: string): string {
  const problem = workspacePathProblem(p);
  if (problem) fail(field, problem);
  return p;
}

/**
 * Checks a machine's inputs and says where each goes. Ids must name checkpoints / machines of the
 * same project, files must exist at their checkpoint, destinations must be safe and distinct.
 * Step references are checked against `scope` (pipelines only) and left for the run to resolve;
 * they yield no entry. Throws InputError naming the field (`<prefix>.files.0.path`, …).
 */
export async function resolveInputEntries(db: Db, project: Project, inputs: MachineInputs, prefix: string, scope?: StepScope): Promise<InputEntry[]> {
  const entries: InputEntry[] = [];
  const dests = new Map<string, string>();
  const claim = (field: string, dest: string) => {
    const other = dests.get(dest);
    if (other) fail(field, `${dest} is already the destination of ${other}`);
    dests.set(dest, field);
  };
  const checkStep = (field: string, step: string) => {
    if (!scope) fail(field, 'step references are only for pipeline steps; give a checkpointId or machineId');
    if (!scope!.ancestors.has(step)) fail(field, `step ${step} is not a step that ${scope!.stepId} depends on (directly or through other steps)`);
  };
  const machineOfProject = async (field: string, machineId: string) => {
    const m = await getMachine(db, machineId);
    if (!m || m.projectId !== project.id) fail(field, `${machineId} is not a machine of project ${project.id}`);
    return m!;
  };

  for (const [i, f] of (inputs.files ?? []).entries()) {
    const at = `${prefix}.files.${i}`;
    checkPath(`${at}.path`, f.path);
    const dest = checkPath(f.as ? `${at}.as` : `${at}.path`, f.as ?? f.path);
    claim(`${at}.as`, dest);
    if (f.step) {
      checkStep(`${at}.step`, f.step);
      continue;
    }
    const cp = await getCheckpoint(db, f.checkpointId!);
    if (!cp || cp.projectId !== project.id) fail(`${at}.checkpointId`, `${f.checkpointId} is not a checkpoint of project ${project.id}`);
    const blob = await blobAt(project.repoPath, cp!.commit, f.path);
    if (!blob) fail(`${at}.path`, `${f.path} is not a file of checkpoint ${cp!.id}`);
    entries.push({ dest, what: `file ${f.path} of checkpoint ${cp!.id}`, field: at, blob: blob! });
  }

  for (const [i, c] of (inputs.conversations ?? []).entries()) {
    const at = `${prefix}.conversations.${i}`;
    if (c.step) {
      // Checked when the step runs: the referenced step's machine must by then have a conversation history.
      checkStep(`${at}.step`, c.step);
      continue;
    }
    const m = await machineOfProject(`${at}.machineId`, c.machineId!);
    const dest = conversationPathOf(m.id);
    claim(`${at}.machineId`, dest);
    const artifact = (await listArtifacts(db, m.id)).find((a) => a.name === CONVERSATION_ARTIFACT);
    if (!artifact) fail(`${at}.machineId`, `machine ${m.id} has no conversation history (yet)`);
    entries.push({ dest, what: `conversation history of machine ${m.id} (JSON lines, one model call each)`, field: at, artifact: artifact! });
  }

  for (const [i, a] of (inputs.artifacts ?? []).entries()) {
    const at = `${prefix}.artifacts.${i}`;
    const dest = checkPath(a.as ? `${at}.as` : `${at}.name`, a.as ?? a.name);
    claim(`${at}.as`, dest);
    if (a.step) {
      checkStep(`${at}.step`, a.step);
      const declared = scope!.declared.get(a.step);
      const recorded = declared && declared.type !== 'shell' && (RECORDED_ARTIFACTS as readonly string[]).includes(a.name);
      if (declared && !recorded && !declared.artifacts.includes(a.name)) {
        fail(`${at}.name`, `step ${a.step} declares no artifact ${a.name} (it declares: ${declared.artifacts.join(', ') || 'none'})`);
      }
      continue;
    }
    const m = await machineOfProject(`${at}.machineId`, a.machineId!);
    const artifact = (await listArtifacts(db, m.id)).find((x) => x.name === a.name);
    if (!artifact) fail(`${at}.name`, `machine ${m.id} has no artifact ${a.name}`);
    entries.push({ dest, what: `artifact ${a.name} of machine ${m.id}`, field: at, artifact: artifact! });
  }
  // Step conversations land under their machine's id, unknown until the run: they cannot collide with a fixed path.
  return entries;
}

/** Checks a machine's declared artifacts: safe workspace paths, distinct, not a recorded artifact's name. */
export function checkDeclaredArtifacts(paths: readonly string[], prefix: string): string[] {
  const seen = new Set<string>();
  for (const [i, p] of paths.entries()) {
    checkPath(`${prefix}.${i}`, p);
    if ((RECORDED_ARTIFACTS as readonly string[]).includes(p)) fail(`${prefix}.${i}`, `${p} is the name of an artifact machines record by themselves`);
    if (seen.has(p)) fail(`${prefix}.${i}`, `${p} is declared twice`);
    seen.add(p);
  }
  return [...paths];
}

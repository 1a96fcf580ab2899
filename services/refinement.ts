/**
 * Prompt refinement (README "Prompt refinement"): learning failure patterns per project, operation
 * class and machine type from ended machines (their end, log and files), failed completion checks
 * and negative feedback. The refined prompt itself is chosen when a machine is routed
 * (services/routing.ts decideRoute) and given to the agent by its run (refinedPromptOf).
 */
import {
  checkPattern,
  feedbackPattern,
  NEGATIVE_RATING,
  patternsOfFailure,
  refinedPrompt,
  summarizeFailure,
  type PatternKind,
} from '../domain/routing/refine.js';
import { routingSuccess } from '../domain/routing/router.js';
import { getCheckpoint, latestCheckpointOfMachine } from '../store/checkpoints.js';
import type { Db } from '../store/db.js';
import { diffCommits } from '../store/git.js';
import { lastLogText } from '../store/machine-logs.js';
import { getMachine, type Machine } from '../store/machines.js';
import { getProject } from '../store/projects.js';
import { recordFailurePatterns, saveFailureSummary } from '../store/refinement.js';
import { getRoutingDecision } from '../store/routing.js';
import { classifyTask } from './routing.js';

/** How much of a machine's log end its failure summary reads. */
const LOG_CHARS = 8000;

/** The operation class of a machine: the router's, else the classifier's on its prompt or command. */
async function classOf(db: Db, m: Machine): Promise<string> {
  const routed = await getRoutingDecision(db, m.id);
  return routed?.operationClass ?? classifyTask(m.prompt ?? m.command ?? '').class;
}

/** Files a machine changed: its parent checkpoint against its newest one. */
async function filesTouched(db: Db, m: Machine): Promise<string[]> {
  const last = await latestCheckpointOfMachine(db, m.id);
  if (!last) return [];
  const [from, to, project] = await Promise.all([getCheckpoint(db, m.parentCheckpointId), getCheckpoint(db, last), getProject(db, m.projectId)]);
  if (!from || !to || !project || from.commit === to.commit) return [];
  const d = await diffCommits(project.repoPath, from.commit, to.commit);
  return [...d.added, ...d.modified, ...d.deleted];
}

/**
 * At a machine's end: a failed one (failed, or stopped at a limit) gets its failure summary, and
 * its patterns (the limit, error lines, touched files) count for its class and type, once.
 */
export async function learnFromEndedMachine(
  db: Db,
  machineId: string,
  end: { status: string; stopReason: string | null; error: string | null },
): Promise<boolean> {
  if (routingSuccess(end.status, end.stopReason) !== false) return false;
  const m = await getMachine(db, machineId);
  if (!m) return false;
  const [log, files, operationClass] = await Promise.all([
    lastLogText(db, machineId, ['stdout', 'stderr', 'agent', 'system'], LOG_CHARS),
    filesTouched(db, m).catch(() => []),
    classOf(db, m),
  ]);
  const summary = summarizeFailure({ status: end.status, stopReason: end.stopReason, error: end.error, log: log ?? '', files });
  const written = await saveFailureSummary(db, {
    ...summary,
    machineId,
    projectId: m.projectId,
    operationClass,
    machineType: m.type,
    finalStatus: end.status,
  });
  if (written) await record(db, m, operationClass, patternsOfFailure(summary));
  return written;
}

/** A completion check that failed on a machine's result counts for the machine's class and type. */
export async function learnFromCheck(db: Db, machineId: string, check: { command: string; output: string }): Promise<void> {
  const m = await getMachine(db, machineId);
  if (!m) return;
  await record(db, m, await classOf(db, m), [checkPattern(check.command, check.output)]);
}

/** A rating at or under NEGATIVE_RATING counts its comment (else the rating) for the machine's class and type. */
export async function learnFromFeedback(db: Db, machineId: string, feedback: { rating: number; comment: string | null }): Promise<void> {
  if (feedback.rating > NEGATIVE_RATING) return;
  const m = await getMachine(db, machineId);
  if (!m) return;
  await record(db, m, await classOf(db, m), [feedbackPattern(feedback.rating, feedback.comment)]);
}

async function record(db: Db, m: Machine, operationClass: string, patterns: Array<{ kind: PatternKind; detail: string }>) {
  await recordFailurePatterns(db, { projectId: m.projectId, operationClass, machineType: m.type, machineId: m.id }, patterns);
}

/** The prompt an agent machine is given: its own, plus the refinement when routing put it in the refined arm. */
export async function refinedPromptOf(db: Db, machineId: string, prompt: string): Promise<{ prompt: string; refined: boolean }> {
  const d = await getRoutingDecision(db, machineId);
  if (d?.promptArm !== 'refined' || !d.refinement) return { prompt, refined: false };
  return { prompt: refinedPrompt(prompt, d.refinement), refined: true };
}

/**
 * Machine selection (README "Machine selection (type: auto)"): classify a task, pick the machine
 * type with the bandit, record why; show the bandit's state; set a project's knob.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { AGENT_TYPES, type AgentType } from '../domain/metering.js';
import {
  classifyByBayes,
  classifyByRules,
  combineClassifications,
  OPERATION_CLASSES,
  parseLabelledTasks,
  trainBayes,
  type BayesModel,
  type Classification,
  type TaskContext,
} from '../domain/routing/classify.js';
import { capabilityOf, chooseMachineType, expectedTaskCost, posterior, type RoutingSettings } from '../domain/routing/router.js';
import { buildRefinement, chooseArm } from '../domain/routing/refine.js';
import { ConflictError } from '../domain/errors.js';
import { formatAmount } from '../domain/money.js';
import type { Checkpoint } from '../store/checkpoints.js';
import { listFiles } from '../store/git.js';
import type { Project } from '../store/projects.js';
import {
  armEvidence,
  getRoutingDecision,
  getRoutingSettings,
  listArms,
  putRoutingSettings,
  recentDecisions,
  type NewRoutingDecision,
  type StoredRoutingDecision,
} from '../store/routing.js';
import { listFailurePatterns, patternsOfClass, refinementReport } from '../store/refinement.js';
import { actorOfCaller, type Caller, type ServiceContext } from './context.js';
import { machineTypeAvailability } from './machine-types.js';
import { requireProject } from './projects.js';
import { withLocalRepo } from '../store/shared-storage.js';

const TASKS_FILE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'data', 'routing', 'tasks.jsonl');

let model: BayesModel | null = null;
/** The learned classifier, trained once per process from the labelled set in the repository. */
function learnedModel(): BayesModel {
  model ??= trainBayes(parseLabelledTasks(fs.readFileSync(TASKS_FILE, 'utf8')));
  return model;
}

/** Classifies a task with both models and says which one decided and what the other thought. */
export function classifyTask(text: string, context?: TaskContext): Classification & { other: Classification } {
  return combineClassifications(classifyByBayes(learnedModel(), text, context), classifyByRules(text, context));
}

const LANGUAGES: Record<string, string> = {
  ts: 'typescript',
  tsx: 'typescript',
  js: 'javascript',
  mjs: 'javascript',
  py: 'python',
  go: 'go',
  rs: 'rust',
  java: 'java',
  rb: 'ruby',
  c: 'c',
  h: 'c',
  cc: 'cpp',
  cpp: 'cpp',
  cs: 'csharp',
  php: 'php',
  kt: 'kotlin',
  swift: 'swift',
  md: 'markdown',
  sh: 'shell',
};

/** What the checkpoint tells about a task: its files, their size and the commonest language. */
async function checkpointContext(project: Project, checkpoint: Checkpoint): Promise<TaskContext> {
  const files = await listFiles(project.repoPath, checkpoint.commit);
  const byLang = new Map<string, number>();
  for (const f of files) {
    const lang = LANGUAGES[path.extname(f.path).slice(1).toLowerCase()];
    if (lang) byLang.set(lang, (byLang.get(lang) ?? 0) + 1);
  }
  const language = [...byLang.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))[0]?.[0];
  return { files: files.map((f) => f.path), sizeBytes: files.reduce((a, f) => a + f.size, 0), ...(language ? { language } : {}) };
}

/** A project's knob, exploration budget and refinement share: its own, else the deployment's defaults. */
export async function routingSettingsOf(
  ctx: Pick<ServiceContext, 'db' | 'config'>,
  projectId: string,
): Promise<RoutingSettings & { refinement: number; source: 'project' | 'default' }> {
  const own = await getRoutingSettings(ctx.db, projectId);
  return own
    ? { quality: own.quality, exploration: own.exploration, refinement: own.refinement ?? ctx.config.routing.refinement, source: 'project' }
    : defaultSettings(ctx.config);
}

const defaultSettings = (config: ServiceContext['config']) => ({
  quality: config.routing.quality,
  exploration: config.routing.exploration,
  refinement: config.routing.refinement,
  source: 'default' as const,
});

/** What routing a machine needs: its project, the checkpoint it starts from, its prompt. */
export interface RouteInput {
  machineId: string;
  project: Project;
  checkpoint: Checkpoint;
  prompt: string;
}

/** The agent types `type: "auto"` may pick now: AUTOVIBE_ROUTING_TYPES that are available; none → 409. */
export function routingCandidates(config: ServiceContext['config']): AgentType[] {
  const candidates = config.routing.types.filter((t) => machineTypeAvailability(config, t).available);
  if (!candidates.length) {
    throw new ConflictError(
      `type: auto found no available agent machine type among ${config.routing.types.join(', ')}; configure one (GET /v1/machine-types says why each is unavailable)`,
      'machine_type_unavailable',
    );
  }
  return candidates;
}

/**
 * Picks the machine type of a `type: "auto"` request (README "Machine selection (type: auto)"), and
 * for a class with failure patterns the refinement A/B arm. Answers the existing decision when the
 * machine was routed already, else a new one (`stored`) to record with the machine's row
 * (placeAndRecordMachine, audited as `routing.decided`). Used by direct requests and by the
 * objective and pipeline activities alike.
 */
export async function decideRoute(
  ctx: Pick<ServiceContext, 'db' | 'config'>,
  input: RouteInput,
): Promise<{ type: AgentType; operationClass: string; existing: StoredRoutingDecision | null; stored: NewRoutingDecision | null }> {
  const existing = await getRoutingDecision(ctx.db, input.machineId);
  if (existing) return { type: existing.chosenType as AgentType, operationClass: existing.operationClass, existing, stored: null };
  const candidates = routingCandidates(ctx.config);
  const context = await withLocalRepo(ctx.db, ctx.config, input.project, [input.checkpoint.commit])
    .then((project) => checkpointContext(project, input.checkpoint))
    .catch(() => undefined);
  const c = classifyTask(input.prompt, context);
  const settings = await routingSettingsOf(ctx, input.project.id);
  const decision = chooseMachineType({
    cls: c.class,
    candidates: candidates.map((t) => ({ type: t, expectedCost: expectedTaskCost(t, ctx.config.modelPrices) })),
    evidence: await armEvidence(ctx.db, c.class),
    capabilities: ctx.config.routing.capabilities,
    settings,
    rand: Math.random,
  });
  // Prompt refinement (README "Prompt refinement"): with failure patterns of this class in the
  // project, a share of machines (the A/B's refined arm) gets instructions learned from them.
  const patterns = await patternsOfClass(ctx.db, input.project.id, c.class);
  const refinement = buildRefinement(c.class, decision.chosen, patterns);
  const promptArm = refinement ? chooseArm(settings.refinement, Math.random) : null;
  const refined = promptArm
    ? `; prompt ${promptArm} (${patterns.length} failure pattern(s) of ${c.class} in this project, refinement share ${settings.refinement})`
    : '';
  const reason = `classified ${c.class}${c.complexity ? ` (complexity ${c.complexity})` : ''} by ${c.model} [${c.reason}; the other model said ${c.other.class}]; ${decision.reason}${refined}`;
  const stored: NewRoutingDecision = {
    machineId: input.machineId,
    projectId: input.project.id,
    operationClass: c.class,
    complexity: c.complexity ?? null,
    classifier: c.model,
    chosenType: decision.chosen,
    mode: decision.mode,
    reason,
    candidates: decision.scores,
    quality: settings.quality,
    exploration: settings.exploration,
    promptArm,
    refinement: promptArm === 'refined' ? refinement : null,
  };
  return { type: decision.chosen as AgentType, operationClass: c.class, existing: null, stored };
}

export const routingQuery = z.strictObject({
  projectId: z.string().min(1).max(200).optional(),
  limit: z.coerce.number().int().min(1).max(200, 'must be at most 200').default(20),
});

export const putRoutingBody = z
  .strictObject({
    quality: z.number().min(0, 'must be between 0 and 1').max(1, 'must be between 0 and 1').optional(),
    exploration: z.number().min(0, 'must be between 0 and 1').max(0.5, 'must be at most 0.5 (half the decisions at random)').optional(),
    /** Share of routed machines with known failure patterns given the refined prompt (the refinement A/B). */
    refinement: z.number().min(0, 'must be between 0 and 1').max(1, 'must be between 0 and 1').optional(),
  })
  .refine((b) => b.quality !== undefined || b.exploration !== undefined || b.refinement !== undefined, {
    message: 'give at least one of quality, exploration, refinement',
  });

/** The bandit's state: every class × agent type with its prior, evidence and posterior; recent decisions; the refinement A/B. */
export async function routingView(ctx: ServiceContext, caller: Caller, input: z.input<typeof routingQuery>) {
  const q = routingQuery.parse(input);
  if (q.projectId) await requireProject(ctx, q.projectId);
  const arms = await listArms(ctx.db);
  const byKey = new Map(arms.map((a) => [`${a.operationClass}\0${a.machineType}`, a]));
  const items = OPERATION_CLASSES.flatMap((cls) =>
    AGENT_TYPES.map((type) => {
      const arm = byKey.get(`${cls}\0${type}`);
      const capability = capabilityOf(ctx.config.routing.capabilities, type, cls);
      const post = posterior(capability, arm ?? { successes: 0, failures: 0 });
      return {
        operationClass: cls,
        machineType: type,
        capability,
        successes: arm?.successes ?? 0,
        failures: arm?.failures ?? 0,
        alpha: post.alpha,
        beta: post.beta,
        mean: post.mean,
        updatedAt: arm?.updatedAt ?? null,
      };
    }),
  );
  const decisions = await recentDecisions(ctx.db, {
    ...(q.projectId ? { projectId: q.projectId } : {}),
    projectIds: caller.principal.projectIds,
    limit: q.limit,
  });
  const scope = { ...(q.projectId ? { projectId: q.projectId } : {}), projectIds: caller.principal.projectIds };
  return {
    arms: items,
    expectedCosts: AGENT_TYPES.map((t) => ({ machineType: t, amount: formatUsd(expectedTaskCost(t, ctx.config.modelPrices)), currency: 'USD' as const })),
    settings: q.projectId ? await routingSettingsOf(ctx, q.projectId) : defaultSettings(ctx.config),
    decisions,
    // The refinement A/B (README "Prompt refinement"): outcomes and cost per arm; a project's patterns.
    refinement: {
      arms: await refinementReport(ctx.db, scope),
      patterns: q.projectId ? await listFailurePatterns(ctx.db, q.projectId, 50) : [],
    },
  };
}

/** Sets a project's quality-vs-cost knob, exploration budget and/or refinement share. */
export async function setRoutingSettings(ctx: ServiceContext, caller: Caller, projectId: string, input: z.input<typeof putRoutingBody>) {
  const body = putRoutingBody.parse(input);
  await requireProject(ctx, projectId);
  const current = await routingSettingsOf(ctx, projectId);
  const stored = await getRoutingSettings(ctx.db, projectId);
  const next = {
    quality: body.quality ?? current.quality,
    exploration: body.exploration ?? current.exploration,
    // Unset stays unset: the deployment's share applies until the project sets its own.
    refinement: body.refinement ?? stored?.refinement ?? null,
  };
  await putRoutingSettings(ctx.db, projectId, next, actorOfCaller(caller));
  return { ...next, refinement: next.refinement ?? ctx.config.routing.refinement, source: 'project' as const };
}

const formatUsd = (units: bigint) => formatAmount(units, 'USD');

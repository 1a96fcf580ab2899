/**
 * Artifact passing between machines: what a machine may be given at start (files of a checkpoint,
 * another machine's conversation history, another machine's named artifacts) and what it declares
 * as its own artifacts. Pure: shared by the api (validation), the workflows (step references) and
 * the activities (materialising the inputs).
 */

/** A reference to an earlier pipeline step, or to an existing checkpoint / machine. */
export interface FileInput {
  checkpointId?: string;
  step?: string;
  path: string;
  as?: string;
}
export interface ConversationInput {
  machineId?: string;
  step?: string;
}
export interface ArtifactInput {
  machineId?: string;
  step?: string;
  name: string;
  as?: string;
}
export interface MachineInputs {
  files?: FileInput[];
  conversations?: ConversationInput[];
  artifacts?: ArtifactInput[];
}

/** Inputs whose references are all ids (what a machine run receives). */
export interface ResolvedInputs {
  files: Array<{ checkpointId: string; path: string; as?: string }>;
  conversations: Array<{ machineId: string }>;
  artifacts: Array<{ machineId: string; name: string; as?: string }>;
}

/** Artifacts every model-backed machine records by itself; a declared artifact may not take these names. */
export const RECORDED_ARTIFACTS = ['conversation.jsonl', 'tool-output.txt', 'tool-report.json'] as const;
export const CONVERSATION_ARTIFACT = 'conversation.jsonl';
/** Where given conversation histories are written in the workspace. */
export const CONTEXT_DIR = '.autovibe/context';
/** The sandbox-side URL prefix at which a running agent can fetch files of other checkpoints of its project. */
export const SANDBOX_FILES_URL = 'http://127.0.0.1:8080/autovibe/v1/checkpoints';

export const conversationPathOf = (machineId: string) => `${CONTEXT_DIR}/${machineId}.conversation.jsonl`;

/**
 * Why `p` is not a safe path inside a workspace, or null when it is: relative, '/'-separated,
 * no empty, '.' or '..' segment, not into `.git`.
 *
 * @example
 * workspacePathProblem('src/a.txt'); // null
 * workspacePathProblem('../etc/passwd'); // 'must not contain ".." …'
 */
export function workspacePathProblem(p: string): string | null {
  if (p.length === 0 || p.length > 1024) return 'must be 1 to 1024 characters';
  if (p.includes('\0') || p.includes('\\')) return 'must not contain NUL or backslashes';
  if (p.startsWith('/')) return 'must be a relative path inside the workspace';
  const segments = p.split('/');
  if (segments.some((s) => s === '..')) return 'must not contain ".." (no paths outside the workspace)';
  if (segments.some((s) => s === '' || s === '.')) return 'must not contain empty or "." segments';
  if (segments[0] === '.git') return 'must not point into .git';
  return null;
}

export function hasInputs(i: MachineInputs | ResolvedInputs | undefined | null): boolean {
  return !!i && !!((i.files?.length ?? 0) + (i.conversations?.length ?? 0) + (i.artifacts?.length ?? 0));
}

/** Every step `id` depends on, directly or through others. */
export function ancestorsOf(steps: ReadonlyArray<{ id: string; dependsOn: readonly string[] }>, id: string): Set<string> {
  const byId = new Map(steps.map((s) => [s.id, s]));
  const seen = new Set<string>();
  const stack = [...(byId.get(id)?.dependsOn ?? [])];
  while (stack.length) {
    const d = stack.pop()!;
    if (seen.has(d)) continue;
    seen.add(d);
    stack.push(...(byId.get(d)?.dependsOn ?? []));
  }
  return seen;
}

/**
 * Replaces step references by the checkpoint / machine those steps ended with. Every referenced
 * step must have completed (it is an ancestor, validated at submit).
 */
export function resolveStepRefs(
  inputs: MachineInputs,
  steps: Readonly<Record<string, { machineId: string | null; checkpointId: string | null }>>,
): ResolvedInputs {
  const checkpointOf = (step: string) => {
    const id = steps[step]?.checkpointId;
    if (!id) throw new Error(`step ${step} has no final checkpoint to take a file from`);
    return id;
  };
  const machineOf = (step: string) => {
    const id = steps[step]?.machineId;
    if (!id) throw new Error(`step ${step} has no machine`);
    return id;
  };
  return {
    files: (inputs.files ?? []).map((f) => ({
      checkpointId: f.step ? checkpointOf(f.step) : f.checkpointId!,
      path: f.path,
      ...(f.as ? { as: f.as } : {}),
    })),
    conversations: (inputs.conversations ?? []).map((c) => ({ machineId: c.step ? machineOf(c.step) : c.machineId! })),
    artifacts: (inputs.artifacts ?? []).map((a) => ({
      machineId: a.step ? machineOf(a.step) : a.machineId!,
      name: a.name,
      ...(a.as ? { as: a.as } : {}),
    })),
  };
}

/** The short note an agent's prompt gets about what it was given and how to fetch more. */
export function inputsNote(placed: Array<{ dest: string; what: string }>): string {
  return [
    'Inputs from other machines of this project were placed in the workspace:',
    ...placed.map((p) => `- ${p.dest}: ${p.what}`),
    `Any file of another checkpoint of this project can be fetched with GET ${SANDBOX_FILES_URL}/<checkpoint id>/files/<path>`,
    `(GET ${SANDBOX_FILES_URL} lists the checkpoints, GET ${SANDBOX_FILES_URL}/<checkpoint id> the files of one).`,
  ].join('\n');
}

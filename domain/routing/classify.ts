/**
 * Operation classification (README "Machine selection (type: auto)"): what kind of work a prompt
 * asks for, from its words and, when given, the checkpoint it starts from (files, size, language).
 * Two models: a transparent keyword baseline whose reason names the words it matched, and a
 * multinomial naive Bayes over tokens trained in-process from a labelled set. Pure: no I/O.
 */

export const OPERATION_CLASSES = ['architecture', 'feature', 'bugfix', 'performance', 'documentation', 'tests', 'bulk-change'] as const;
export type OperationClass = (typeof OPERATION_CLASSES)[number];

export const COMPLEXITIES = ['low', 'medium', 'high'] as const;
export type Complexity = (typeof COMPLEXITIES)[number];

/** What is known of the checkpoint a task starts from; every part optional. */
export interface TaskContext {
  /** Paths the task touches or the checkpoint holds (relative). */
  files?: readonly string[];
  /** Size of the checkpoint's files in bytes. */
  sizeBytes?: number;
  /** Main language, e.g. "typescript". */
  language?: string;
}

export interface LabelledTask {
  text: string;
  class: OperationClass;
  context?: TaskContext;
}

export interface Classification {
  class: OperationClass;
  /** Which model decided: `rules` (keyword baseline) or `bayes` (learned). */
  model: 'rules' | 'bayes';
  /** Posterior of the class (bayes) or its share of the matched keyword weight (rules), 0..1. */
  confidence: number;
  /** Only for bug fixes: how hard it looks. */
  complexity?: Complexity;
  /** Human-readable: the words or features that decided. */
  reason: string;
}

const STOPWORDS = new Set('a an the and or of to in on for with from by is are be it its this that as at into when not no so all every our we'.split(' '));

/** Lower-case word stems: "Crashes" → "crash", "tests" → "test", "optimizing" → "optimiz". */
export function stem(word: string): string {
  let w = word;
  if (w.length > 5 && w.endsWith('ing')) w = w.slice(0, -3);
  else if (w.length > 4 && w.endsWith('ed') && !w.endsWith('eed')) w = w.slice(0, -2);
  else if (w.length > 4 && w.endsWith('es') && /(sh|ch|x|ss)es$/.test(w)) w = w.slice(0, -2);
  else if (w.length > 3 && w.endsWith('s') && !w.endsWith('ss')) w = w.slice(0, -1);
  return w;
}

/** The stems of a text's words, stopwords and numbers left out. */
export function tokenize(text: string): string[] {
  return (text.toLowerCase().match(/[a-z][a-z0-9+#]*/g) ?? []).filter((w) => !STOPWORDS.has(w)).map(stem);
}

/** Size buckets so context becomes discrete features. */
function filesBucket(n: number): string {
  return n <= 1 ? 'one' : n <= 5 ? 'few' : n <= 30 ? 'several' : 'many';
}

/**
 * The features of a checkpoint context: the words of its paths (a `README.md` says "readme", a
 * `test/x.test.ts` says "test") and buckets of file count, size and language, prefixed `ctx:`.
 */
export function contextTokens(ctx: TaskContext | undefined): string[] {
  if (!ctx) return [];
  const out: string[] = [];
  const files = ctx.files ?? [];
  for (const f of files.slice(0, 50)) out.push(...tokenize(f.replace(/[/._-]+/g, ' ')));
  if (files.length) out.push(`ctx:files-${filesBucket(files.length)}`);
  if (ctx.sizeBytes !== undefined) out.push(`ctx:size-${ctx.sizeBytes < 100_000 ? 'small' : ctx.sizeBytes < 10_000_000 ? 'medium' : 'large'}`);
  if (ctx.language) out.push(`ctx:lang-${ctx.language.toLowerCase()}`);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Baseline: keyword rules. Each class has stems with weights; the class with the most weight wins,
// ties to the earlier class in RULE_ORDER; nothing matched → feature.

const RULES: Record<OperationClass, Record<string, number>> = {
  architecture: {
    design: 2,
    architecture: 3,
    architect: 3,
    rfc: 3,
    decouple: 2,
    boundary: 2,
    abstraction: 2,
    layer: 1,
    interface: 1,
    monolith: 2,
    module: 1,
    structure: 1,
    restructure: 2,
    separate: 1,
    plan: 1,
    propose: 1,
    proposal: 1,
    pluggable: 1,
    extensible: 2,
    model: 1,
    decision: 1,
    strategy: 1,
    diagram: 1,
    microservice: 2,
    cqr: 2,
  },
  feature: {
    add: 1,
    support: 1,
    implement: 2,
    allow: 1,
    option: 1,
    new: 1,
    feature: 2,
    enable: 1,
    flag: 1,
    integration: 1,
    endpoint: 1,
    button: 1,
  },
  bugfix: {
    fix: 2,
    bug: 3,
    crash: 3,
    error: 1,
    broken: 2,
    wrong: 2,
    incorrect: 2,
    fail: 2,
    regression: 3,
    race: 2,
    leak: 2,
    exception: 3,
    panic: 3,
    segfault: 3,
    deadlock: 3,
    hang: 2,
    freeze: 2,
    issue: 1,
    typo: 2,
    garbl: 2,
    null: 2,
    undefined: 1,
    duplicate: 1,
    flicker: 2,
    truncat: 2,
    lost: 1,
    loss: 2,
  },
  performance: {
    performance: 3,
    slow: 3,
    fast: 2,
    faster: 3,
    speed: 3,
    optimize: 3,
    optimiz: 3,
    latency: 3,
    throughput: 3,
    memory: 2,
    cpu: 2,
    cache: 1,
    index: 1,
    profile: 2,
    benchmark: 2,
    reduce: 1,
    allocation: 2,
    lazy: 2,
    parallelize: 2,
    'n+1': 3,
    p99: 3,
    contention: 2,
    bundle: 1,
    startup: 1,
    efficient: 2,
  },
  documentation: {
    document: 3,
    doc: 3,
    docs: 3,
    readme: 3,
    guide: 2,
    tutorial: 3,
    docstring: 3,
    jsdoc: 3,
    changelog: 3,
    comment: 2,
    explain: 2,
    example: 1,
    faq: 3,
    contributing: 3,
    man: 2,
    describe: 2,
    glossary: 3,
    translate: 1,
    clarify: 2,
    md: 1,
  },
  tests: {
    test: 3,
    tests: 3,
    coverage: 3,
    unit: 2,
    integration: 1,
    e2e: 3,
    mock: 2,
    fixture: 2,
    assertion: 2,
    fuzz: 3,
    snapshot: 1,
    regression: 1,
    spec: 2,
    playwright: 2,
    property: 1,
    golden: 2,
    flaky: 1,
    cover: 2,
    mutation: 1,
  },
  'bulk-change': {
    rename: 3,
    migrate: 2,
    replace: 2,
    everywhere: 3,
    across: 3,
    codebase: 2,
    throughout: 3,
    upgrade: 2,
    convert: 2,
    codemod: 3,
    bump: 2,
    mass: 3,
    sweep: 3,
    remove: 1,
    deprecated: 1,
    format: 1,
    formatt: 1,
    repository: 1,
    lint: 1,
    eslint: 2,
  },
};
const RULE_ORDER: OperationClass[] = ['bulk-change', 'tests', 'documentation', 'performance', 'bugfix', 'architecture', 'feature'];

/** Words that make a bug look harder or easier to fix. */
const HARD_BUG = ['race', 'deadlock', 'leak', 'intermittent', 'concurrent', 'concurrency', 'corrupt', 'loss', 'segfault', 'flaky', 'freez', 'hang', 'data'];
const EASY_BUG = ['typo', 'label', 'link', 'wording', 'message', 'tooltip', 'color', 'spelling', 'button', 'footer'];

/** A bug fix's complexity: hard words or a wide/large context raise it, cosmetic words lower it. */
export function estimateComplexity(text: string, ctx?: TaskContext): { complexity: Complexity; reason: string } {
  const toks = new Set(tokenize(text));
  const hard = HARD_BUG.filter((w) => [...toks].some((t) => t.startsWith(w)));
  const easy = EASY_BUG.filter((w) => toks.has(w));
  let score = hard.length * 2 - easy.length * 2;
  const files = ctx?.files?.length ?? 0;
  if (files > 5) score += 1;
  if ((ctx?.sizeBytes ?? 0) > 10_000_000) score += 1;
  const complexity: Complexity = score >= 2 ? 'high' : score <= -2 ? 'low' : 'medium';
  const why = [...hard.map((w) => `+${w}`), ...easy.map((w) => `-${w}`), ...(files > 5 ? [`+${files} files`] : [])];
  return { complexity, reason: why.length ? why.join(' ') : 'no signal' };
}

function withComplexity(c: Omit<Classification, 'complexity'>, text: string, ctx?: TaskContext): Classification {
  if (c.class !== 'bugfix') return c;
  const est = estimateComplexity(text, ctx);
  return { ...c, complexity: est.complexity, reason: `${c.reason}; complexity ${est.complexity} (${est.reason})` };
}

/** The keyword baseline. */
export function classifyByRules(text: string, ctx?: TaskContext): Classification {
  const toks = tokenize(text);
  const ctxToks = contextTokens(ctx).filter((t) => !t.startsWith('ctx:'));
  const scores = new Map<OperationClass, { score: number; words: string[] }>();
  for (const cls of RULE_ORDER) {
    const words: string[] = [];
    let score = 0;
    for (const t of toks) {
      const w = RULES[cls][t];
      if (w) {
        score += w;
        words.push(t);
      }
    }
    // Paths count half: a README among the files hints documentation.
    for (const t of new Set(ctxToks)) {
      const w = RULES[cls][t];
      if (w) {
        score += w / 2;
        words.push(`file:${t}`);
      }
    }
    scores.set(cls, { score, words });
  }
  // Many files touched is a bulk change whatever the words.
  if ((ctx?.files?.length ?? 0) > 30) {
    const b = scores.get('bulk-change')!;
    b.score += 3;
    b.words.push(`${ctx!.files!.length} files`);
  }
  let best: OperationClass = 'feature';
  let bestScore = 0;
  let total = 0;
  for (const cls of RULE_ORDER) {
    const s = scores.get(cls)!.score;
    total += s;
    if (s > bestScore) {
      best = cls;
      bestScore = s;
    }
  }
  const reason = bestScore > 0 ? `keywords: ${scores.get(best)!.words.join(', ')}` : 'no keyword matched; default feature';
  return withComplexity({ class: best, model: 'rules', confidence: total > 0 ? bestScore / total : 0, reason }, text, ctx);
}

// ---------------------------------------------------------------------------------------------
// Learned: multinomial naive Bayes with Laplace smoothing over text tokens and context tokens.

export interface BayesModel {
  classes: OperationClass[];
  /** log P(class) */
  logPrior: Record<string, number>;
  /** token counts per class */
  counts: Record<string, Map<string, number>>;
  totals: Record<string, number>;
  vocabulary: Set<string>;
  alpha: number;
}

export function trainBayes(examples: readonly LabelledTask[], alpha = 0.3): BayesModel {
  const counts: Record<string, Map<string, number>> = {};
  const totals: Record<string, number> = {};
  const docs: Record<string, number> = {};
  const vocabulary = new Set<string>();
  for (const cls of OPERATION_CLASSES) {
    counts[cls] = new Map();
    totals[cls] = 0;
    docs[cls] = 0;
  }
  for (const ex of examples) {
    docs[ex.class]! += 1;
    for (const t of [...tokenize(ex.text), ...contextTokens(ex.context)]) {
      vocabulary.add(t);
      counts[ex.class]!.set(t, (counts[ex.class]!.get(t) ?? 0) + 1);
      totals[ex.class]! += 1;
    }
  }
  const logPrior: Record<string, number> = {};
  for (const cls of OPERATION_CLASSES) logPrior[cls] = Math.log((docs[cls]! + 1) / (examples.length + OPERATION_CLASSES.length));
  return { classes: [...OPERATION_CLASSES], logPrior, counts, totals, vocabulary, alpha };
}

/** The learned model's class; the reason names the tokens that pulled most toward it. */
export function classifyByBayes(model: BayesModel, text: string, ctx?: TaskContext): Classification {
  const toks = [...tokenize(text), ...contextTokens(ctx)].filter((t) => model.vocabulary.has(t));
  const v = model.vocabulary.size;
  const logp = (cls: string, t: string) => Math.log(((model.counts[cls]!.get(t) ?? 0) + model.alpha) / (model.totals[cls]! + model.alpha * v));
  const scores = model.classes.map((cls) => ({ cls, s: model.logPrior[cls]! + toks.reduce((a, t) => a + logp(cls, t), 0) }));
  scores.sort((a, b) => b.s - a.s);
  const top = scores[0]!;
  const norm = scores.reduce((a, x) => a + Math.exp(x.s - top.s), 0);
  // Tokens by how much more likely they are under the winner than on average.
  const pull = [...new Set(toks)]
    .map((t) => ({ t, d: logp(top.cls, t) - scores.reduce((a, x) => a + logp(x.cls, t), 0) / scores.length }))
    .filter((x) => x.d > 0)
    .sort((a, b) => b.d - a.d)
    .slice(0, 4)
    .map((x) => x.t);
  const reason = pull.length ? `learned: ${pull.join(', ')}` : 'learned: no known token; class prior';
  return withComplexity({ class: top.cls, model: 'bayes', confidence: 1 / norm, reason }, text, ctx);
}

/** Stable split of a labelled set: every `k`-th example of each class is held out for testing. */
export function splitHeldOut<T extends { class: string }>(items: readonly T[], k = 5): { train: T[]; test: T[] } {
  const seen = new Map<string, number>();
  const train: T[] = [];
  const test: T[] = [];
  for (const it of items) {
    const n = seen.get(it.class) ?? 0;
    seen.set(it.class, n + 1);
    (n % k === k - 1 ? test : train).push(it);
  }
  return { train, test };
}

export function accuracy(predict: (t: LabelledTask) => OperationClass, items: readonly LabelledTask[]): number {
  if (!items.length) return 0;
  return items.filter((t) => predict(t) === t.class).length / items.length;
}

/** Parses JSON lines of `{ text, class, context? }`; a bad line throws naming its number. */
export function parseLabelledTasks(jsonl: string): LabelledTask[] {
  const out: LabelledTask[] = [];
  jsonl.split('\n').forEach((line, i) => {
    if (!line.trim()) return;
    const row = JSON.parse(line) as LabelledTask;
    if (typeof row.text !== 'string' || !(OPERATION_CLASSES as readonly string[]).includes(row.class)) {
      throw new Error(`line ${i + 1}: expected { "text", "class" } with class one of ${OPERATION_CLASSES.join(', ')}`);
    }
    out.push(row);
  });
  return out;
}

/** The learned model decides when it is this sure; otherwise the keyword rules when they matched anything. */
export const BAYES_CONFIDENT = 0.8;

/** Which of the two models' answers to use, with the other's kept beside it for the reason. */
export function combineClassifications(bayes: Classification, rules: Classification): Classification & { other: Classification } {
  const useBayes = bayes.confidence >= BAYES_CONFIDENT || rules.reason.startsWith('no keyword');
  return useBayes ? { ...bayes, other: rules } : { ...rules, other: bayes };
}

import { COMPLEXITIES, OPERATION_CLASSES } from '../domain/routing/classify.js';
import { z } from 'zod';
import { BUDGET_PERIODS } from '../domain/budget.js';
import { COST_CENTER_KINDS } from '../domain/cost-centers.js';
import { CAPABILITIES } from '../domain/machine-types.js';
import { MARKETS, PRICE_SOURCES } from '../domain/compute-prices.js';
import { CHECKPOINT_KINDS, CHECKPOINT_STATUSES, MACHINE_STATUSES, MACHINE_TYPES, PROFILES, PROVIDERS } from '../domain/machines.js';
import { CURRENCY_CODES } from '../domain/money.js';
import { OBJECTIVE_STATUSES } from '../domain/objectives.js';
import { ROLES } from '../domain/permissions.js';
import { ALERT_KINDS } from '../store/alerts.js';
import { ALERT_COMPARATORS, ALERT_METRICS } from '../domain/alerts.js';
import { BREAKDOWN_DIMENSIONS } from '../store/analytics.js';
import { CACHE_OUTCOMES } from '../store/cache.js';
import { COST_CATEGORIES } from '../store/costs.js';
import { PIPELINE_STATUSES } from '../store/pipelines.js';
import { NETWORK_MODES } from '../domain/network.js';
import { completionCriteria, machineInputs, paymentMethodBody, placementRule } from '../services/schemas.js';

/**
 * The success responses of the v1 contract as zod schemas, next to the presenters that build
 * them (present.ts and the routes). Each route declares its own in its RouteGroup registration;
 * the OpenAPI document is generated from them, and with AUTOVIBE_VALIDATE_RESPONSES=1 every 2xx
 * JSON response is checked against them (the test platform turns that on).
 */

/** Money is a decimal string in its currency's precision, never a JSON number. */
export const decimal = z.string().regex(/^-?\d+(\.\d+)?$/, 'must be a decimal string such as "10.00"');
const currency = z.enum(CURRENCY_CODES);
const time = z.iso.datetime({ offset: true });
const id = z.string().min(1);
const count = z.number().int().nonnegative();
/** Free-form `details` (audit records, cost events, payment attempts): their keys vary by kind. */
const details = z.record(z.string(), z.unknown());

export const money = z.strictObject({ amount: decimal, currency });
/** A page of a list: `nextCursor` is null on the last page. */
export const page = <T extends z.ZodType>(item: T) => z.strictObject({ items: z.array(item), nextCursor: z.string().nullable() });
/** A body without JSON: 204. */
export const noContent = null;
/** A body that is not JSON (a file), by its content types. */
export const raw = (...contentTypes: string[]) => ({ raw: contentTypes });
export type RawBody = ReturnType<typeof raw>;

export const budget = z.strictObject({
  limit: decimal,
  spent: decimal,
  reserved: decimal,
  remaining: decimal,
  currency,
  period: z.enum(BUDGET_PERIODS),
  windowStart: time,
  windowEnd: time.nullable(),
  alertPercents: z.array(z.number().int()),
});

export const project = z.strictObject({
  id,
  name: z.string(),
  repoUrl: z.string().nullable(),
  currency,
  greediness: z.number().min(0).max(1),
  defaultMachineMoney: decimal,
  rootCheckpointId: id.nullable(),
  limitPolicy: z.strictObject({ policy: z.enum(['stop', 'pause']), pauseMinutes: z.number().int().positive() }),
  costCenterId: id.nullable(),
  createdAt: time,
  budget: budget.nullable(),
});

export const typeBudget = z.strictObject({ machineType: z.enum(MACHINE_TYPES), ...budget.shape });
export const limitPolicy = z.strictObject({ policy: z.enum(['stop', 'pause']), pauseMinutes: z.number().int().positive() });
export const placement = z.strictObject({
  rules: z.array(placementRule),
  defaults: z.array(placementRule),
  updatedBy: z.string().nullable(),
  updatedAt: time.nullable(),
});

export const checkpoint = z.strictObject({
  id,
  parentId: id.nullable(),
  /** A merge's second parent: the checkpoint merged into `parentId`. */
  mergeParentId: id.nullable(),
  machineId: id.nullable(),
  commit: z.string().regex(/^[0-9a-f]{40,64}$/),
  kind: z.enum(CHECKPOINT_KINDS),
  trigger: z.string(),
  status: z.enum(CHECKPOINT_STATUSES),
  createdAt: time,
});

/** One node of the whole evolution tree (GET /projects/:id/checkpoints/tree): what a tree view draws. */
export const checkpointNode = z.strictObject({
  id,
  parentId: id.nullable(),
  mergeParentId: id.nullable(),
  machineId: id.nullable(),
  kind: z.enum(CHECKPOINT_KINDS),
  trigger: z.string(),
  status: z.enum(CHECKPOINT_STATUSES),
  milestone: z.boolean(),
  createdAt: time,
});

export const checkpointTree = z.strictObject({
  projectId: id,
  rootCheckpointId: id.nullable(),
  count,
  nodes: z.array(checkpointNode),
});

/** Spend per time bucket and category, in the project's currency (GET /projects/:id/costs/series). */
export const costSeries = z.strictObject({
  projectId: id,
  currency,
  bucket: z.enum(['hour', 'day']),
  from: time,
  to: time,
  categories: z.array(z.enum(COST_CATEGORIES)),
  total: decimal,
  buckets: z.array(z.strictObject({ start: time, total: decimal, byCategory: z.record(z.string(), decimal) })),
});

/**
 * A project's prepaid balance in its currency: `credited` by top-ups, `spent` from it, `reserved`
 * by running machines; `balance` = credited − spent; `available` = balance − reserved (what a
 * new machine can still reserve). A `postpaid` project (never topped up) spends within its
 * budgets only.
 */
export const balance = z.strictObject({
  billing: z.enum(['prepaid', 'postpaid']),
  currency,
  credited: decimal,
  spent: decimal,
  reserved: decimal,
  balance: decimal,
  available: decimal,
});

/** GET /projects/:id/balance: the balance, and the paid top-ups per currency they were paid in (`items`). */
export const projectBalance = page(money).extend(balance.shape);

/** Every budget of a project (GET /projects/:id/budgets): its own, one per machine type, and its prepaid balance. */
export const projectBudgets = z.strictObject({
  projectId: id,
  budget: budget.nullable(),
  balance,
  machineTypes: z.array(z.strictObject({ machineType: z.enum(MACHINE_TYPES), source: z.enum(['stored', 'default']), ...budget.shape })),
});

const snapshot = z.strictObject({
  status: z.enum(['stored', 'replicated', 'pruned']),
  source: z.enum(['workspace', 'commit']),
  files: count,
  chunks: count,
  bytes: count,
  storedBytes: count,
  createdAt: time,
  prunedAt: time.nullable(),
  replicas: z.array(
    z.strictObject({
      region: z.enum(['primary', 'replica']),
      status: z.enum(['stored', 'pending', 'replicated', 'failed', 'deleted']),
      copiedBytes: count,
      error: z.string().nullable(),
      updatedAt: time,
    }),
  ),
});

const instanceSnapshot = z.strictObject({
  provider: z.string(),
  snapshotRef: z.string(),
  region: z.string(),
  status: z.enum(['available', 'deleted']),
  createdAt: time,
  deletedAt: time.nullable(),
  replicas: z.array(z.strictObject({ region: z.string(), state: z.string(), snapshotId: z.string().nullable() })),
  replicasSource: z.enum(['provider', 'recorded']),
});

export const checkpointDetail = z.strictObject({
  ...checkpoint.shape,
  projectId: id,
  milestone: z.boolean(),
  snapshot: snapshot.nullable(),
  instanceSnapshot: instanceSnapshot.nullable(),
  files: z.array(z.strictObject({ path: z.string(), size: count, sha256: z.string().regex(/^[0-9a-f]{64}$/) })),
});
export const milestone = z.strictObject({ id, milestone: z.boolean() });
export const diff = z.strictObject({ from: id, to: id, added: z.array(z.string()), modified: z.array(z.string()), deleted: z.array(z.string()) });

export const cost = z.strictObject({
  idempotencyKey: z.string(),
  machineId: id.nullable(),
  category: z.enum(COST_CATEGORIES),
  amount: decimal,
  currency,
  projectAmount: decimal,
  projectCurrency: currency,
  costCenterId: id.nullable(),
  fx: z.strictObject({ rate: decimal, source: z.string(), asOf: time }).nullable(),
  details,
  createdAt: time,
});

export const projectCosts = z.strictObject({
  items: z.array(cost),
  nextCursor: z.string().nullable(),
  totals: z.strictObject({ total: money, byCategory: z.record(z.string(), money) }),
  budget: budget.nullable(),
  cache: z.strictObject({ hits: count, misses: count, bypassed: count, saved: money }),
});

/** README "Cost prediction": median (p50) and 80 % interval (p10..p90) from `basis` settled runs of `scope`. */
export const machinePrediction = z.strictObject({
  cost: z.strictObject({ p10: decimal, p50: decimal, p90: decimal, currency }),
  durationSeconds: z.strictObject({ p10: z.number().nonnegative(), p50: z.number().nonnegative(), p90: z.number().nonnegative() }),
  basis: z.number().int().positive(),
  scope: z.enum(['project', 'deployment']),
  operationClass: z.string().nullable(),
  /** Once it ended: what it cost and how long it ran. */
  actual: z.strictObject({ cost: decimal, durationSeconds: z.number().nonnegative(), finalStatus: z.string(), settledAt: time }).nullable(),
});

const machineStatus = z.enum(MACHINE_STATUSES);
export const machine = z.strictObject({
  id,
  projectId: id,
  objectiveId: id.nullable(),
  type: z.enum(MACHINE_TYPES),
  provider: z.enum(PROVIDERS),
  profile: z.enum(Object.keys(PROFILES) as [keyof typeof PROFILES]),
  spot: z.boolean(),
  /** The compute price it is charged at and its source; null before its reservation (and for machines from before prices were recorded). */
  computePrice: z
    .strictObject({
      provider: z.string(),
      region: z.string().nullable(),
      profile: z.string(),
      market: z.enum(MARKETS),
      /** Per hour: what it is charged. */
      hourly: decimal,
      /** Per hour: what its reservation holds (a spot price may rise to it). */
      maxHourly: decimal,
      currency: z.literal('USD'),
      /** default: the repository's price list; price-list: the deployment's; instance-spot-price: the spot price its instance got. */
      source: z.enum(PRICE_SOURCES),
      /** The price-list entry (provider/region/profile/market). */
      entry: z.string(),
      /** With instance-spot-price: the list price it replaced. */
      listHourly: decimal.optional(),
    })
    .nullable(),
  instanceRef: z.string().nullable(),
  status: machineStatus,
  command: z.string().nullable(),
  prompt: z.string().nullable(),
  limits: z.strictObject({ money: decimal, minutes: z.number().int().positive(), apiCalls: z.number().int().positive().optional() }),
  cost: money,
  usage: z.strictObject({ inputTokens: count, outputTokens: count, apiCalls: count }),
  checkpoints: z.array(id),
  parentCheckpointId: id,
  costCenterId: id.nullable(),
  workflowId: z.string(),
  stopReason: z.string().nullable(),
  exitCode: z.number().int().nullable(),
  /** Only when the machine failed for a reason of the platform's own. */
  error: z.string().optional(),
  createdAt: time,
  startedAt: time.nullable(),
  endedAt: time.nullable(),
  /** What the machine may reach on the network (README "Network"), and what its egress proxy let through and refused. */
  network: z.strictObject({
    mode: z.enum(NETWORK_MODES),
    hosts: z.array(z.string()),
    connections: count,
    refused: count,
    bytesUp: count,
    bytesDown: count,
  }),
  /** The cache outcome; null when it never looked. */
  cache: z.strictObject({ hit: z.boolean(), outcome: z.enum(CACHE_OUTCOMES), sourceMachineId: id.optional(), saved: money.optional() }).nullable(),
  /** Why a `type: "auto"` machine got its type; null when the type was asked for. */
  routing: z
    .strictObject({
      requestedType: z.literal('auto'),
      operationClass: z.enum(OPERATION_CLASSES),
      complexity: z.enum(COMPLEXITIES).nullable(),
      classifier: z.enum(['rules', 'bayes']),
      mode: z.enum(['exploit', 'explore', 'only']),
      reason: z.string(),
      outcome: z.enum(['success', 'failure']).nullable(),
      /** The refinement A/B arm; null when there were no failure patterns to refine with. */
      promptArm: z.enum(['refined', 'plain']).nullable(),
    })
    .nullable(),
  /** What went wrong, when the machine failed (its end, error lines of its log, files it touched); null otherwise. */
  failureSummary: z
    .strictObject({
      summary: z.string(),
      operationClass: z.enum(OPERATION_CLASSES),
      finalStatus: z.string(),
      stopReason: z.string().nullable(),
      error: z.string().nullable(),
      errorLines: z.array(z.string()),
      files: z.array(z.string()),
      createdAt: time,
    })
    .nullable(),
  /** Its cost and duration predicted before it started; null when there was too little history. */
  prediction: machinePrediction.nullable(),
  /** The machine's audit records, oldest first. */
  events: z.array(z.strictObject({ at: time, action: z.string(), actor: z.string(), details })),
});

export const machineAccepted = z.strictObject({ id, workflowId: z.string(), status: machineStatus, prediction: machinePrediction.nullable() });

/** PUT /v1/projects/:id/prediction: whether the project refuses early by default. */
export const predictionSettings = z.strictObject({ refuseIfPredictedOver: z.boolean() });

/** GET /v1/predictions/accuracy: how close the predictions were, per machine type. */
export const predictionAccuracy = z.strictObject({
  minimumRuns: z.number().int().positive(),
  items: z.array(
    z.strictObject({
      machineType: z.string(),
      runs: z.number().int().positive(),
      /** Mean absolute error of the median, and the share of actuals inside the 80 % interval. */
      cost: z.strictObject({ mae: decimal, currency, coverage: z.number().min(0).max(1) }),
      durationSeconds: z.strictObject({ mae: z.number().nonnegative(), coverage: z.number().min(0).max(1) }),
    }),
  ),
});
export const machineProviders = page(
  z.strictObject({ id: z.enum(PROVIDERS), available: z.boolean(), reason: z.string().optional(), checkedAt: time.nullable() }),
);
export const machineTypes = page(
  z.strictObject({
    id: z.enum(MACHINE_TYPES),
    title: z.string(),
    available: z.boolean(),
    reason: z.string().optional(),
    capabilities: z.array(z.enum(CAPABILITIES)),
    defaultModel: z.string().nullable(),
    /** USD per million tokens by model (`*` ends a prefix), with the per-call bounds the metering proxy applies. */
    prices: z.record(
      z.string(),
      z.strictObject({
        input: decimal,
        output: decimal,
        cachedInput: decimal.optional(),
        cacheWrite: decimal.optional(),
        maxInputTokens: z.number().int().positive().optional(),
        maxOutputTokens: z.number().int().positive().optional(),
      }),
    ),
    localInference: z.boolean(),
    dailyBudget: money.nullable(),
  }),
);
export const artifact = z.strictObject({
  machineId: id,
  name: z.string(),
  size: count,
  sha256: z.string(),
  checkpointId: id.nullable(),
  createdAt: time,
  /** Why the content was not kept (over the size cap); absent when it was. */
  notStored: z.string().optional(),
});
/** `{ id, status }` of work a request changed: what it is now, or what it is becoming. */
export const statusOf = <S extends z.ZodType>(status: S) => z.strictObject({ id, status });

const objectiveStatus = z.enum(OBJECTIVE_STATUSES);
export const objective = z.strictObject({
  id,
  projectId: id,
  title: z.string(),
  status: objectiveStatus,
  priority: z.number().int(),
  /** `auto`: the router picks each machine's type (the machine says which and why). */
  machineType: z.enum([...MACHINE_TYPES, 'auto']),
  command: z.string().nullable(),
  prompt: z.string().nullable(),
  workflowId: z.string(),
  error: z.string().nullable(),
  dependsOn: z.array(id),
  completion: completionCriteria,
  subtasksDone: z.array(z.string()),
  maxMachines: z.number().int().positive(),
  resources: z.array(z.string()),
  progress: z.number().min(0).max(1),
  createdBy: z.string(),
  createdAt: time,
  completedAt: time.nullable(),
  machines: z.array(id),
});
export const objectiveDetail = z.strictObject({
  ...objective.shape,
  /** What a running objective waits for; null once it has ended (or its workflow cannot be asked). */
  live: z.strictObject({ waitingOn: z.array(id), waitingFor: z.string().nullable(), machineId: id.nullable(), missing: z.array(z.string()) }).nullable(),
});
export const objectiveStatusOf = statusOf(objectiveStatus);
export const objectiveProgress = page(
  z.strictObject({
    objectiveId: id,
    progress: z.number().min(0).max(1),
    criteria: details,
    machineId: id.nullable(),
    checkpointId: id.nullable(),
    note: z.string().nullable(),
    recordedAt: time,
  }),
);
export const objectiveDag = z.strictObject({
  nodes: z.array(
    z.strictObject({
      id,
      title: z.string(),
      status: objectiveStatus,
      priority: z.number().int(),
      progress: z.number().min(0).max(1),
      dependsOn: z.array(id),
      depth: count,
      dependents: count,
      machines: z.array(id),
    }),
  ),
  edges: z.array(z.strictObject({ from: id, to: id })),
  layers: z.array(z.array(id)),
});

export const scheduling = z.strictObject({
  maxConcurrentMachines: z.number().int().positive(),
  greediness: z.number().min(0).max(1),
  resources: z.record(z.string(), z.number().int().positive()),
  /** The project's coordinator; null before anything asked it for a machine. */
  coordinator: z
    .strictObject({
      workflowId: z.string(),
      holding: z.array(z.strictObject({ requestId: z.string(), resource: z.string(), for: z.string() })),
      waiting: z.array(
        z.strictObject({
          requestId: z.string(),
          resource: z.string(),
          for: z.string(),
          priority: z.number().int(),
          dependents: count,
          reason: z.string(),
        }),
      ),
      deadlocks: z.array(z.array(z.string())),
      granted: count,
    })
    .nullable(),
});

export const pipelineAccepted = z.strictObject({ id, status: z.literal('running') });
export const pipeline = z.strictObject({
  id,
  projectId: id,
  status: z.enum(PIPELINE_STATUSES),
  workflowId: z.string(),
  baseCheckpointId: id,
  error: z.string().nullable(),
  createdAt: time,
  endedAt: time.nullable(),
  steps: z.array(
    z.strictObject({
      id: z.string(),
      /** `auto`: the router picks the step machine's type (the machine says which and why). */
      type: z.enum([...MACHINE_TYPES, 'auto']),
      dependsOn: z.array(z.string()),
      inputs: machineInputs.optional(),
      artifacts: z.array(z.string()).optional(),
      status: z.enum(['waiting', 'running', 'completed', 'failed', 'skipped', 'cancelled']),
      machineId: id.nullable(),
      checkpointId: id.nullable(),
      error: z.string().nullable(),
      startedAt: time.nullable(),
      endedAt: time.nullable(),
    }),
  ),
});

/** One alert (GET /v1/alerts; the same as the `alert.*` event's data). */
export const alert = z.strictObject({
  id: z.string().regex(/^\d+$/),
  at: time,
  kind: z.enum(ALERT_KINDS),
  severity: z.enum(['info', 'warning', 'critical']),
  projectId: id.nullable(),
  subjectId: id,
  message: z.string(),
  data: details,
  /** Open until its condition clears. */
  status: z.enum(['open', 'resolved']),
  resolvedAt: time.nullable(),
  /** Why it resolved. */
  resolution: z.string().nullable(),
});

/** A project's own alert rule (POST/GET /v1/projects/:id/alert-rules). */
export const alertRule = z.strictObject({
  id,
  projectId: id,
  name: z.string(),
  metric: z.enum(ALERT_METRICS),
  comparator: z.enum(ALERT_COMPARATORS),
  threshold: z.string().regex(/^-?\d+(\.\d+)?$/),
  unit: z.enum(['money', 'percent', 'count']),
  currency: z.string().nullable(),
  severity: z.enum(['info', 'warning', 'critical']),
  createdBy: z.string(),
  createdAt: time,
});

export const alertRules = z.strictObject({ items: z.array(alertRule) });

export const audit = z.strictObject({
  items: z.array(
    z.strictObject({
      seq: z.string().regex(/^\d+$/),
      at: time,
      actor: z.string(),
      action: z.string(),
      subjectType: z.string(),
      subjectId: z.string(),
      projectId: id.nullable(),
      details,
      hash: z.string().regex(/^[0-9a-f]{64}$/),
      prevHash: z.string().regex(/^[0-9a-f]{64}$/),
    }),
  ),
  nextCursor: z.string().nullable(),
  /** The last seq of the page, for `?after=` (older clients); null on the last page. */
  next: z.string().regex(/^\d+$/).nullable(),
});
export const auditVerify = z.strictObject({ intact: z.boolean(), brokenAt: z.string().nullable() });

export const backups = z.strictObject({
  items: z.array(
    z.strictObject({
      id: z.string(),
      createdAt: time,
      tables: count,
      rows: count,
      repositories: count,
      chunkFiles: count,
      locations: z.array(z.enum(['primary', 'replica'])),
    }),
  ),
});
const tableChanges = z.strictObject({ insert: z.number().int(), update: z.number().int(), delete: z.number().int() });
export const recovery = z.strictObject({
  id: z.string(),
  mode: z.enum(['copy', 'in-place']),
  at: z.string(),
  dryRun: z.boolean(),
  sourceProjectId: z.string(),
  projectId: z.string().nullable(),
  projectName: z.string(),
  tables: z.record(z.string(), tableChanges),
  checkpoints: z.strictObject({ kept: z.number().int(), removed: z.number().int() }),
  adjustments: z.array(
    z.strictObject({
      category: z.string(),
      currency: z.string(),
      amount: z.string(),
      projectCurrency: z.string(),
      projectAmount: z.string(),
      events: z.number().int(),
    }),
  ),
  auditRecords: z.number().int(),
  journalSince: z.string(),
});
export const backupStarted = z.strictObject({ id: z.string(), workflowId: z.string() });

export const fxRates = z.strictObject({
  base: currency,
  items: z.array(
    z.strictObject({
      currency,
      rate: decimal,
      source: z.string(),
      asOf: time,
      fetchedAt: time,
      legs: z.array(z.strictObject({ base: currency, quote: currency, rate: decimal, source: z.string(), asOf: time })),
    }),
  ),
  unavailable: z.array(z.strictObject({ currency, reason: z.string() })),
});

export const costCenter = z.strictObject({ id, name: z.string(), kind: z.enum(COST_CENTER_KINDS), department: z.string(), createdAt: time });
/** Totals per currency (never added across currencies), and per category within each. */
const costTotals = z.array(z.strictObject({ ...money.shape, byCategory: z.record(z.string(), decimal) }));
/** Every currency's total added up in the viewer's currency (`?currency=`, USD unless asked) at current rates. */
const grandTotal = z.strictObject({
  ...money.shape,
  conversions: z.array(z.strictObject({ from: currency, amount: decimal, converted: decimal, rate: decimal, source: z.string(), asOf: time })),
});
export const costCenterDetail = z.strictObject({ ...costCenter.shape, budget: budget.nullable() });
export const costCenterCosts = z.strictObject({
  costCenter,
  items: z.array(z.strictObject({ ...cost.shape, projectId: id })),
  nextCursor: z.string().nullable(),
  totals: costTotals,
  grandTotal,
  budget: budget.nullable(),
});
export const departmentBudget = z.strictObject({ department: z.string(), ...budget.shape });
export const departmentCosts = z.strictObject({
  department: z.string(),
  totals: costTotals,
  grandTotal,
  costCenters: z.array(z.strictObject({ ...costCenter.shape, totals: costTotals, budget: budget.nullable() })),
  budget: budget.nullable(),
});

export const paymentMethods = z.strictObject({ projectId: id, methods: z.array(paymentMethodBody) });
/** A payment a request started (`running`) or approved (`approving`). */
export const paymentAccepted = <S extends 'running' | 'approving'>(status: S) => z.strictObject({ paymentId: id, status: z.literal(status) });
export const autoTopup = z.strictObject({
  projectId: id,
  amount: decimal,
  currency,
  /** In the project's currency: the balance not held by running machines below which a top-up is made. */
  threshold: decimal,
  thresholdCurrency: currency,
  period: z.enum(BUDGET_PERIODS),
  cron: z.string(),
  scheduleId: z.string(),
});
export const payment = z.strictObject({
  id,
  projectId: id,
  amount: decimal,
  currency,
  reason: z.string(),
  status: z.enum(['running', 'manual_required', 'succeeded', 'failed']),
  paidBy: z.string().nullable(),
  error: z.string().optional(),
  createdAt: time,
  endedAt: time.nullable(),
  attempts: z.array(
    z.strictObject({
      seq: z.number().int().nonnegative(),
      method: z.string(),
      status: z.enum(['running', 'waiting', 'succeeded', 'declined', 'failed', 'expired', 'approved']),
      error: z.string().optional(),
      tries: count,
      details,
      startedAt: time,
      endedAt: time.nullable(),
    }),
  ),
});
export const credit = z.strictObject({ id, amount: decimal, remaining: decimal, currency, expiresAt: time });

export const key = z.strictObject({
  id,
  name: z.string(),
  userId: id,
  role: z.enum(ROLES),
  prefix: z.string().nullable(),
  projectIds: z.array(id).nullable(),
  createdAt: time,
  createdBy: z.string().nullable(),
  expiresAt: time.nullable(),
  lastUsedAt: time.nullable(),
  revokedAt: time.nullable(),
  status: z.enum(['active', 'expired', 'revoked']),
});
/** A key with its secret: only in the answer that made it (create, rotate). */
export const keyWithSecret = z.strictObject({ ...key.shape, key: z.string().min(16) });
export const whoami = z.strictObject({ ...key.shape, user: z.strictObject({ id, name: z.string() }) });

/** One event of the feed (GET /v1/events as JSON; the same object is each SSE frame's data). */
export const event = z.strictObject({
  seq: count,
  at: time,
  kind: z.string(),
  projectId: id.nullable(),
  subjectId: z.string(),
  data: details,
});

/**
 * POST /v1/batch: one result per operation, in order. Each is what the operation would have
 * answered alone: its status, a few of its headers, and its body (JSON as JSON, text as a
 * string, other bytes in base64 with `encoding: "base64"`; null when it had none).
 */
export const batchResults = z.strictObject({
  results: z.array(
    z.strictObject({
      id: z.string().nullable(),
      status: z.number().int().min(100).max(599),
      headers: z.record(z.string(), z.string()),
      body: z.unknown(),
      encoding: z.literal('base64').optional(),
    }),
  ),
});

/** A GraphQL error: its message, where in the query and the answer, and extensions { code, status, … }. */
const graphqlError = z.object({
  message: z.string(),
  locations: z.array(z.strictObject({ line: z.number().int(), column: z.number().int() })).optional(),
  path: z.array(z.union([z.string(), z.number().int()])).optional(),
  extensions: z.object({ code: z.string(), status: z.number().int() }).catchall(z.unknown()).optional(),
});
/** A GraphQL answer (POST or GET /v1/graphql): `data` as the query asked for it, and the errors of the fields that failed. */
export const graphqlResult = z.strictObject({ data: details.nullable().optional(), errors: z.array(graphqlError).optional() });

/** An outgoing webhook endpoint (never its secret, which only create and rotate answer with). */
export const webhook = z.strictObject({
  id,
  projectId: id.nullable(),
  kind: z.enum(['webhook', 'slack', 'slack-bot']),
  url: z.string(),
  /** The channel a slack-bot endpoint posts to (never its token). */
  channel: z.string().nullable(),
  description: z.string(),
  events: z.array(z.string()),
  status: z.enum(['active', 'disabled']),
  disabledReason: z.string().nullable(),
  disabledAt: time.nullable(),
  failingSince: time.nullable(),
  consecutiveFailures: count,
  /** The seq of the last event handled (delivered or given up on). */
  cursor: count,
  createdBy: z.string(),
  createdAt: time,
  updatedAt: time,
});
export const webhookWithSecret = z.strictObject({ ...webhook.shape, secret: z.string().startsWith('whsec_') });
export const webhookDelivery = z.strictObject({
  id: z.string().regex(/^\d+$/),
  endpointId: id,
  eventSeq: count,
  /** The webhook-id header: the same for every attempt and redelivery of the event. */
  messageId: z.string(),
  redeliveryOf: z.string().nullable(),
  status: z.enum(['pending', 'succeeded', 'failed']),
  attempts: count,
  createdAt: time,
  endedAt: time.nullable(),
  attemptLog: z.array(
    z.strictObject({
      attempt: count,
      at: time,
      statusCode: z.number().int().nullable(),
      durationMs: count,
      error: z.string().nullable(),
      responseExcerpt: z.string().nullable(),
    }),
  ),
});

/** A project's git remote: never its token, only whether one is kept. */
export const gitRemote = z.strictObject({
  projectId: id,
  url: z.string(),
  username: z.string().nullable(),
  hasToken: z.boolean(),
  /** The periodic fetch (a Temporal Schedule): null when there is none. */
  fetch: z
    .strictObject({
      branches: z.array(z.string()),
      everyMinutes: z.number().int().min(1),
      scheduleId: z.string(),
      nextRunAt: time.nullable(),
      lastRunAt: time.nullable(),
      lastResult: z
        .array(
          z.strictObject({
            branch: z.string(),
            status: z.enum(['created', 'unchanged', 'failed']),
            checkpointId: id.nullable(),
            commit: z.string().nullable(),
            error: z.string().nullable(),
          }),
        )
        .nullable(),
    })
    .nullable(),
  updatedBy: z.string(),
  createdAt: time,
  updatedAt: time,
});
export const gitPush = z.strictObject({
  checkpointId: id,
  projectId: id,
  remote: z.string(),
  branch: z.string(),
  commit: z.string().regex(/^[0-9a-f]{40,64}$/),
  previousCommit: z.string().nullable(),
  status: z.enum(['pushed', 'up_to_date']),
  forced: z.boolean(),
  pushedAt: time,
});
const hunkSide = z.strictObject({ start: z.number().int().min(1), count, text: z.string() });
/** A path a merge could not settle: git's conflict kinds and messages, and each conflicting hunk's sides with their lines. */
export const mergeConflict = z.strictObject({
  path: z.string(),
  types: z.array(z.string()),
  messages: z.array(z.string()),
  hunks: z.array(
    z.strictObject({
      conflicted: z.strictObject({ start: z.number().int().min(1), count }),
      ours: hunkSide,
      base: hunkSide.nullable(),
      theirs: hunkSide,
    }),
  ),
});
/** A machine resolving a merge's conflicts (POST /checkpoints/:id/merge-resolutions). */
export const mergeResolution = z.strictObject({
  resolutionId: id,
  status: z.literal('resolving'),
  machineId: id,
  conflictCheckpointId: id,
  proposedCheckpointId: id,
  conflicts: z.array(mergeConflict),
});
export const gitFetch = z.strictObject({
  projectId: id,
  remote: z.string(),
  branch: z.string(),
  commit: z.string().regex(/^[0-9a-f]{40,64}$/),
  checkpoint,
  created: z.boolean(),
});

/** A project's integration with an outside tracker: its config, never its token or webhook secret. */
export const integration = z.strictObject({
  id,
  projectId: id,
  kind: z.enum(['github', 'jira', 'linear']),
  config: z.record(z.string(), z.unknown()),
  hasToken: z.boolean(),
  hasWebhookSecret: z.boolean(),
  /** Where the tracker sends its signed hooks. */
  hookUrl: z.string(),
  updatedBy: z.string(),
  createdAt: time,
  updatedAt: time,
});
/** A pull request opened from a checkpoint (the same one on every later call). */
export const pullRequest = z.strictObject({
  checkpointId: id,
  projectId: id,
  integrationId: id,
  number: z.number().int().positive(),
  url: z.string(),
  branch: z.string(),
  objectiveId: id.nullable(),
  created: z.boolean(),
  createdAt: time,
});
/** A project's network policy (README "Network"). */
export const networkPolicy = z.strictObject({
  projectId: id,
  mode: z.enum(NETWORK_MODES),
  hosts: z.array(z.string()),
  /** What mode `registries` lets through on this deployment. */
  registryHosts: z.array(z.string()),
  updatedBy: z.string().nullable(),
  updatedAt: time.nullable(),
});

const forecastPoint = { mean: decimal, lo80: decimal, hi80: decimal, lo95: decimal, hi95: decimal };
const isoDate = z.string().regex(/^\d{4}-\d{2}-\d{2}$/);
/** A stored spend forecast (GET …/forecast): computed by the forecast-refresh schedule, never on request. */
export const forecast = z.strictObject({
  scopeType: z.enum(['project', 'cost-center', 'department']),
  scopeId: id,
  currency,
  computedAt: time,
  workflowId: z.string().nullable(),
  asOf: isoDate,
  method: z.enum(['seasonal-naive', 'holt-winters', 'holt-winters-damped', 'mean']),
  backtested: z.boolean(),
  history: z.strictObject({ from: isoDate, days: count, todaySoFar: decimal }),
  backtest: z.array(
    z.strictObject({
      method: z.string(),
      chosen: z.boolean(),
      mape: z.number().nullable(),
      smape: z.number(),
      coverage80: z.number().nullable(),
      coverage95: z.number().nullable(),
      origins: count,
    }),
  ),
  daily: z.array(z.strictObject({ date: isoDate, ...forecastPoint })),
  totals: z.array(z.strictObject({ days: count, until: isoDate, ...forecastPoint })),
  budget: z
    .strictObject({
      budgetId: id,
      period: z.enum(BUDGET_PERIODS),
      limit: decimal,
      used: decimal,
      remaining: decimal,
      windowStart: time,
      windowEnd: time.nullable(),
      exhaustion: z.strictObject({
        expected: isoDate.nullable(),
        earliest80: isoDate.nullable(),
        latest80: isoDate.nullable(),
        earliest95: isoDate.nullable(),
        latest95: isoDate.nullable(),
      }),
      exhaustedBeforePeriodEnd: z.boolean(),
      projectedPeriodSpend: z.strictObject(forecastPoint).nullable(),
    })
    .nullable(),
  recommendations: z.array(
    z.strictObject({
      kind: z.enum(['runs_out', 'raise_limit', 'reduce_spend', 'on_track']),
      message: z.string(),
      amount: decimal.nullable(),
      until: isoDate.nullable(),
    }),
  ),
  note: z.string().nullable(),
});

/** A project's spend grouped by one dimension (GET /projects/:id/costs/breakdown); the groups add up to the total. */
export const costBreakdown = z.strictObject({
  projectId: id,
  currency,
  by: z.enum(BREAKDOWN_DIMENSIONS),
  from: time,
  to: time,
  total: decimal,
  groups: z.array(z.strictObject({ key: z.string().nullable(), amount: decimal, records: count })),
});

/** A cost center's or department's spend grouped by one dimension and currency (GET …/costs/breakdown); each currency's groups add up to its total. */
export const scopeCostBreakdown = z.strictObject({
  scopeType: z.enum(['cost-center', 'department']),
  scopeId: id,
  by: z.enum(BREAKDOWN_DIMENSIONS),
  from: time,
  to: time,
  totals: z.array(z.strictObject({ currency, amount: decimal })),
  groups: z.array(z.strictObject({ key: z.string().nullable(), currency, amount: decimal, records: count })),
});

/** Least-squares slope of spend per period, exact to the minor unit. */
const varianceTrend = z.strictObject({ perPeriod: decimal, direction: z.enum(['rising', 'falling', 'flat']) });

/** Actual against allocated spend per period and category (GET /projects/:id/costs/variance). */
export const costVariance = z.strictObject({
  projectId: id,
  currency,
  period: z.enum(['day', 'week', 'month']),
  budget: z.strictObject({ budgetId: id, period: z.enum(BUDGET_PERIODS), limit: decimal }).nullable(),
  periods: z.array(
    z.strictObject({
      start: time,
      end: time,
      actual: decimal,
      allocated: decimal.nullable(),
      variance: decimal.nullable(),
      variancePercent: z.number().nullable(),
      byCategory: z.record(z.string(), decimal),
    }),
  ),
  categories: z.array(z.strictObject({ category: z.string(), actual: z.array(decimal), trend: varianceTrend })),
  machineTypes: z.array(
    z.strictObject({
      machineType: z.string(),
      budget: z
        .strictObject({ budgetId: id.nullable(), source: z.enum(['stored', 'default']), period: z.enum(BUDGET_PERIODS), limit: decimal, currency })
        .nullable(),
      periods: z.array(
        z.strictObject({ actual: decimal, allocated: decimal.nullable(), variance: decimal.nullable(), variancePercent: z.number().nullable() }),
      ),
      trend: varianceTrend,
    }),
  ),
  trend: varianceTrend,
});

/** Where a project could have spent less (GET /projects/:id/costs/opportunities). */
export const costOpportunities = z.strictObject({
  projectId: id,
  currency,
  days: count,
  totalSaving: decimal,
  items: z.array(
    z.strictObject({
      kind: z.enum(['spot', 'cache', 'smaller_model', 'idle_warm_capacity']),
      evidence: z.array(z.string()),
      saving: decimal,
      explanation: z.string(),
    }),
  ),
});

const routingSettings = z.strictObject({
  quality: z.number().min(0).max(1),
  exploration: z.number().min(0).max(1),
  /** Share of routed machines with known failure patterns given the refined prompt. */
  refinement: z.number().min(0).max(1),
  /** project: set with PUT /v1/projects/:id/routing; default: the deployment's. */
  source: z.enum(['project', 'default']),
});

/** PUT /v1/projects/:id/routing */
export const routingSettingsResponse = routingSettings;

/** GET /v1/routing: the bandit's arms, the expected cost per type, the knob and recent decisions. */
export const routing = z.strictObject({
  arms: z.array(
    z.strictObject({
      operationClass: z.enum(OPERATION_CLASSES),
      machineType: z.enum(MACHINE_TYPES),
      capability: z.number().min(0).max(1),
      successes: count,
      failures: count,
      alpha: z.number().positive(),
      beta: z.number().positive(),
      mean: z.number().min(0).max(1),
      updatedAt: time.nullable(),
    }),
  ),
  expectedCosts: z.array(z.strictObject({ machineType: z.enum(MACHINE_TYPES), amount: decimal, currency: z.literal('USD') })),
  settings: routingSettings,
  decisions: z.array(
    z.strictObject({
      machineId: id,
      projectId: id,
      operationClass: z.enum(OPERATION_CLASSES),
      complexity: z.enum(COMPLEXITIES).nullable(),
      classifier: z.enum(['rules', 'bayes']),
      chosenType: z.enum(MACHINE_TYPES),
      mode: z.enum(['exploit', 'explore', 'only']),
      reason: z.string(),
      quality: z.number(),
      exploration: z.number(),
      promptArm: z.enum(['refined', 'plain']).nullable(),
      /** The instructions added to the agent's prompt (refined arm). */
      refinement: z.string().nullable(),
      candidates: z.array(
        z.strictObject({
          type: z.enum(MACHINE_TYPES),
          capability: z.number(),
          mean: z.number(),
          sample: z.number(),
          relativeCost: z.number(),
          expectedCost: money,
          utility: z.number(),
        }),
      ),
      createdAt: time,
      outcome: z.enum(['success', 'failure']).nullable(),
      finalStatus: z.string().nullable(),
      cost: money.nullable(),
      settledAt: time.nullable(),
    }),
  ),
  /** The refinement A/B: per arm and currency, routed machines, outcomes and cost; with projectId, the project's failure patterns. */
  refinement: z.strictObject({
    arms: z.array(
      z.strictObject({
        arm: z.enum(['refined', 'plain']),
        currency: z.string().nullable(),
        machines: count,
        settled: count,
        successes: count,
        failures: count,
        successRate: z.number().min(0).max(1).nullable(),
        totalCost: decimal.nullable(),
        meanCost: decimal.nullable(),
      }),
    ),
    patterns: z.array(
      z.strictObject({
        operationClass: z.enum(OPERATION_CLASSES),
        machineType: z.enum(MACHINE_TYPES),
        kind: z.enum(['error', 'file', 'check', 'feedback', 'stop']),
        detail: z.string(),
        occurrences: count,
        lastMachineId: id,
        lastSeenAt: time,
      }),
    ),
  }),
});

/** One key's feedback on a machine (POST/GET /v1/machines/:id/feedback). */
export const machineFeedback = z.strictObject({
  machineId: id,
  projectId: id,
  apiKeyId: id,
  rating: z.number().int().min(1).max(5),
  comment: z.string().max(2000).nullable(),
  createdBy: z.string(),
  createdAt: time,
  updatedAt: time,
});

/** GET /v1/machines/:id/feedback */
export const machineFeedbackList = z.strictObject({ items: z.array(machineFeedback) });

const share = z.number().min(0).max(1).nullable();

/** GET /v1/projects/:id/roi: what the project's spend bought over the window. */
export const projectRoi = z.strictObject({
  projectId: id,
  currency,
  days: z.number().int().positive(),
  since: time,
  spend: decimal,
  objectives: z.strictObject({
    completed: count,
    /** Completed objectives per 1 unit of the project currency (6 decimals); null without spend. */
    perUnit: decimal.nullable(),
    /** Spend divided by completed objectives; null when none completed. */
    spendPerCompleted: decimal.nullable(),
  }),
  bugfix: z.strictObject({
    /** Objectives and stand-alone machines created in the window whose text classifies as bugfix. */
    items: count,
    completed: count,
    completedShare: share,
    spend: decimal,
    spendPerCompleted: decimal.nullable(),
  }),
  checks: z.strictObject({
    /** Completion-check runs recorded in the window (objective progress measurements with a shell check). */
    runs: count,
    passed: count,
    passRate: share,
    objectives: count,
    firstPassRate: share,
    lastPassRate: share,
    /** lastPassRate − firstPassRate over the checked objectives. */
    delta: z.number().min(-1).max(1).nullable(),
  }),
  feedback: z.strictObject({
    count,
    machines: count,
    meanRating: z.number().min(1).max(5).nullable(),
  }),
  /** Pearson correlation across rated machines of their spend and mean rating; null with fewer than 3 or no variance. */
  spendRatingCorrelation: z.number().min(-1).max(1).nullable(),
});

/** GET|PUT /v1/cost-centers/:id/reallocation: the settings (README "Reallocation"). */
export const reallocationSettings = z.strictObject({
  scopeType: z.string(),
  scopeId: id,
  configured: z.boolean(),
  enabled: z.boolean(),
  dryRun: z.boolean(),
  maxStepPercent: z.number().int(),
  lookbackDays: z.number().int(),
  currency: currency.nullable(),
  minAllocation: decimal,
  maxAllocation: decimal.nullable(),
  updatedBy: z.string().nullable(),
  updatedAt: time.nullable(),
});

const reallocationProject = z.strictObject({
  projectId: id,
  name: z.string(),
  role: z.enum(['receiver', 'donor', 'kept', 'skipped']),
  reason: z.string(),
  limit: decimal.optional(),
  usedNow: decimal.optional(),
  periods: z.number().int().optional(),
  hits: z.number().int().optional(),
  utilisationPercent: decimal.optional(),
  spend: decimal.optional(),
  completed: z.number().int().optional(),
  roi: decimal.nullable().optional(),
});

/** One reallocation run with its moves, each with its explanation and the figures behind it. */
export const reallocationRun = z.strictObject({
  id,
  scopeType: z.string(),
  scopeId: id,
  dryRun: z.boolean(),
  trigger: z.enum(['api', 'schedule']),
  workflowId: z.string().nullable(),
  status: z.enum(['planned', 'applied', 'previewed', 'skipped']),
  reason: z.string().nullable(),
  currency: currency.nullable(),
  period: z.enum(BUDGET_PERIODS).nullable(),
  limit: decimal.nullable(),
  allocatedBefore: decimal.nullable(),
  allocatedAfter: decimal.nullable(),
  settings: z.record(z.string(), z.unknown()),
  projects: z.array(reallocationProject),
  moves: z.array(
    z.strictObject({
      seq: z.number().int(),
      fromProjectId: id,
      toProjectId: id,
      amount: decimal,
      fromBefore: decimal,
      fromAfter: decimal,
      toBefore: decimal,
      toAfter: decimal,
      status: z.enum(['planned', 'applied', 'preview', 'skipped']),
      skipReason: z.string().nullable(),
      appliedAt: time.nullable(),
      explanation: z.string(),
      figures: z.strictObject({ from: reallocationProject, to: reallocationProject }),
    }),
  ),
  createdBy: z.string(),
  createdAt: time,
  finishedAt: time.nullable(),
});

export const reallocationRuns = z.strictObject({ items: z.array(reallocationRun) });

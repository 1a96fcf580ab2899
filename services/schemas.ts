import { z } from 'zod';
import { BUDGET_PERIODS } from '../domain/budget.js';
import { MACHINE_TYPES, PROFILES, PROVIDERS } from '../domain/machines.js';
import { MAX_ALLOWLIST_HOSTS, NETWORK_MODES } from '../domain/network.js';
import { CURRENCY_CODES } from '../domain/money.js';
import { COST_CENTER_KINDS } from '../domain/cost-centers.js';
import { ROLES } from '../domain/permissions.js';
import { eventKindsProblem, WEBHOOK_KINDS, webhookUrlProblem } from '../domain/webhooks.js';
import { branchNameProblem, gitRemoteUrlProblem } from '../domain/git-remote.js';
import { JIRA_STATUS_DEFAULTS, LINEAR_STATE_DEFAULTS } from '../domain/tickets.js';

/** Request bodies and queries, validated with zod; the OpenAPI document is generated from these. */
const decimal = z
  .string()
  .max(100, 'must be a decimal string of at most 100 characters')
  .regex(/^-?\d+(\.\d+)?$/, 'must be a decimal string such as "10.00"');
const id = (prefix: string) => z.string().regex(new RegExp(`^${prefix}-[0-9a-f-]{36}$`), `must be a ${prefix} id (${prefix}-<uuid>)`);

export const createProjectBody = z.strictObject({
  name: z.string().trim().min(1, 'is required').max(200),
  repoUrl: z.string().min(1).max(2000).optional(),
  /** Credentials to clone a private https/http repoUrl; kept as the project's git remote (README "Git remotes"), never shown. */
  repoCredentials: z.strictObject({ username: z.string().min(1).max(200).optional(), token: z.string().min(1).max(4000) }).optional(),
  currency: z.enum(CURRENCY_CODES).default('USD'),
  greediness: z.number().min(0).max(1).default(0.5),
  defaultMachineMoney: decimal.optional(),
  limitPolicy: z.enum(['stop', 'pause']).default('stop'),
  pauseMinutes: z
    .number()
    .int()
    .min(1)
    .max(7 * 24 * 60)
    .default(60),
  /** The cost center the project's spending is allocated to. */
  costCenterId: id('cost-center').optional(),
});

const resourceName = z.string().regex(/^[a-z0-9][a-z0-9_.-]{0,62}$/, 'must be 1-63 lower-case letters, digits, "_", "-" or "."');

export const putSchedulingBody = z
  .strictObject({
    maxConcurrentMachines: z.number().int().min(1).max(1000).optional(),
    greediness: z.number().min(0).max(1).multipleOf(0.001, 'has at most 3 decimals').optional(),
    /** Named resources and how many holders each allows at once. */
    resources: z.record(resourceName, z.number().int().min(1).max(1000)).optional(),
  })
  .refine((b) => b.maxConcurrentMachines !== undefined || b.greediness !== undefined || b.resources !== undefined, {
    message: 'give at least one of maxConcurrentMachines, greediness, resources',
  });

export const completionCriteria = z
  .strictObject({
    command: z.string().min(1).max(100_000).optional(),
    subtasks: z.array(z.string().trim().min(1).max(500)).max(100).optional(),
    verdict: z.boolean().optional(),
  })
  .refine((c) => !c.subtasks || new Set(c.subtasks).size === c.subtasks.length, { message: 'subtasks must have distinct names', path: ['subtasks'] });

export const putLimitPolicyBody = z.strictObject({
  policy: z.enum(['stop', 'pause']),
  pauseMinutes: z
    .number()
    .int()
    .min(1)
    .max(7 * 24 * 60)
    .default(60),
});

export const extendMachineBody = z
  .strictObject({
    money: decimal.optional(),
    minutes: z
      .number()
      .int()
      .min(1)
      .max(7 * 24 * 60)
      .optional(),
    apiCalls: z.number().int().min(1).max(1_000_000).optional(),
  })
  .refine((b) => b.money || b.minutes || b.apiCalls, { message: 'give at least one of money, minutes, apiCalls' });

/** Percentages of the limit at which an alert is raised once per period (default 50, 80, 100). */
const alertPercents = z.array(z.number().int().min(1).max(100)).min(1).max(10).optional();

export const putBudgetBody = z.strictObject({
  amount: decimal,
  currency: z.enum(CURRENCY_CODES),
  period: z.enum(BUDGET_PERIODS),
  alertPercents,
});

export const machineLimits = z.strictObject({
  money: decimal.optional(),
  minutes: z
    .number()
    .int()
    .min(1)
    .max(7 * 24 * 60)
    .optional(),
  apiCalls: z.number().int().min(1).max(1_000_000).optional(),
});

/** Artifact passing: what a machine starts with, from other checkpoints and machines (or earlier pipeline steps). */
const stepRef = z.string().min(1).max(63);
const filePath = z.string().min(1).max(1024);
const oneSource = (a: string) => (v: { step?: string | undefined } & Record<string, unknown>) => (v[a] === undefined) !== (v.step === undefined);
export const machineInputs = z.strictObject({
  files: z
    .array(
      z
        .strictObject({ checkpointId: id('checkpoint').optional(), step: stepRef.optional(), path: filePath, as: filePath.optional() })
        .refine(oneSource('checkpointId'), { message: 'give exactly one of checkpointId, step' }),
    )
    .max(100)
    .optional(),
  conversations: z
    .array(
      z
        .strictObject({ machineId: id('machine').optional(), step: stepRef.optional() })
        .refine(oneSource('machineId'), { message: 'give exactly one of machineId, step' }),
    )
    .max(20)
    .optional(),
  artifacts: z
    .array(
      z
        .strictObject({ machineId: id('machine').optional(), step: stepRef.optional(), name: filePath, as: filePath.optional() })
        .refine(oneSource('machineId'), { message: 'give exactly one of machineId, step' }),
    )
    .max(100)
    .optional(),
});
/** Workspace files kept as the machine's named artifacts after its run. */
export const declaredArtifacts = z.array(filePath).max(100);

/** `auto`: the router picks the agent type (README "Machine selection (type: auto)"). */
const MACHINE_TYPES_OR_AUTO = [...MACHINE_TYPES, 'auto'] as const;

const requireWork = (b: { type?: string; machineType?: string; command?: string | undefined; prompt?: string | undefined }, ctx: z.RefinementCtx) => {
  const type = b.type ?? b.machineType;
  if (type === 'shell' && !b.command) ctx.addIssue({ code: 'custom', path: ['command'], message: 'is required for a shell machine' });
  if (type !== 'shell' && !b.prompt) ctx.addIssue({ code: 'custom', path: ['prompt'], message: `is required for a ${type} machine` });
};

/** A network policy (README "Network"): none, package registries only, or an allowlist of hosts. */
export const networkPolicyBody = z.strictObject({
  mode: z.enum(NETWORK_MODES, { error: `must be one of: ${NETWORK_MODES.join(', ')}` }),
  /** allowlist only: `host`, `*.suffix`, each with an optional `:port` (without one: 80 and 443). */
  hosts: z.array(z.string().min(1).max(300)).max(MAX_ALLOWLIST_HOSTS).optional(),
});

export const putNetworkPolicyBody = networkPolicyBody;

export const createMachineBody = z
  .strictObject({
    projectId: id('project'),
    type: z.enum(MACHINE_TYPES_OR_AUTO, { error: `must be one of: ${MACHINE_TYPES_OR_AUTO.join(', ')}` }),
    command: z.string().min(1).max(100_000).optional(),
    prompt: z.string().min(1).max(100_000).optional(),
    model: z.string().min(1).max(200).optional(),
    checkpointId: id('checkpoint').optional(),
    /** How often a model-backed machine checkpoints its live workspace (when files changed). */
    checkpointEveryMinutes: z
      .number()
      .int()
      .min(1)
      .max(24 * 60)
      .optional(),
    /** Where to run; without it the project's placement policy decides. */
    provider: z.enum(PROVIDERS, { error: `must be one of: ${PROVIDERS.join(', ')}` }).optional(),
    profile: z.enum(Object.keys(PROFILES) as [keyof typeof PROFILES], { error: `must be one of: ${Object.keys(PROFILES).join(', ')}` }).optional(),
    spot: z.boolean().optional(),
    limits: machineLimits.default({}),
    inputs: machineInputs.optional(),
    artifacts: declaredArtifacts.optional(),
    /** false: run even when an identical completed machine's result could be reused. */
    cache: z.boolean().default(true),
    /** Allocates this run to another cost center than its project's. */
    costCenterId: id('cost-center').optional(),
    /** What the machine may reach; without it the project's network policy. Within the project's unless an owner asks. */
    network: networkPolicyBody.optional(),
    /** Refuse now (422) when even the predicted lower bound of its cost exceeds its money limit or a budget's remaining amount; without it the project's setting. */
    refuseIfPredictedOver: z.boolean({ error: 'must be true or false' }).optional(),
    /** Without limits.money: size the limit (and so the reservation) to the predicted upper bound when it is above the minimum. */
    limitFromPrediction: z.boolean({ error: 'must be true or false' }).optional(),
  })
  .superRefine(requireWork);

export const createObjectiveBody = z
  .strictObject({
    title: z.string().trim().min(1, 'is required').max(500),
    priority: z.number().int().min(-1000).max(1000).default(0),
    dependsOn: z.array(id('objective')).max(100).default([]),
    machineType: z.enum(MACHINE_TYPES_OR_AUTO, { error: `must be one of: ${MACHINE_TYPES_OR_AUTO.join(', ')}` }).default('shell'),
    command: z.string().min(1).max(100_000).optional(),
    prompt: z.string().min(1).max(100_000).optional(),
    checkpointId: id('checkpoint').optional(),
    limits: machineLimits.default({}),
    completion: completionCriteria.optional(),
    /** Machines to run at most, each from where the last ended, until the completion criteria hold. */
    maxMachines: z.number().int().min(1).max(20).optional(),
    resources: z.array(resourceName).max(20).default([]),
    /** Make a ticket for it in each of the project's ticket trackers (Jira, Linear). */
    ticket: z.boolean({ error: 'must be true or false' }).default(false),
  })
  .superRefine(requireWork);

export const updateObjectiveBody = z
  .strictObject({
    title: z.string().trim().min(1, 'is required').max(500).optional(),
    priority: z.number().int().min(-1000).max(1000).optional(),
    subtasks: z.array(z.string().trim().min(1).max(500)).max(100).optional(),
    maxMachines: z.number().int().min(1).max(20).optional(),
  })
  .refine((b) => Object.keys(b).length > 0, { message: 'give at least one of title, priority, subtasks, maxMachines' });

export const subtasksDoneBody = z.strictObject({ names: z.array(z.string().trim().min(1).max(500)).min(1).max(100) });

export const putTypeBudgetBody = z.strictObject({
  amount: decimal,
  currency: z.enum(CURRENCY_CODES),
  alertPercents,
});

export const auditQuery = z.strictObject({
  projectId: z.string().optional(),
  subjectId: z.string().optional(),
  actor: z.string().optional(),
  action: z.string().optional(),
  // 18 digits at most: every such number fits the bigint sequence column.
  after: z
    .string()
    .regex(/^\d{1,18}$/, 'must be a sequence number')
    .optional(),
  cursor: z.string().max(1000).optional(),
  limit: z.coerce.number().int().min(1).max(500, 'must be at most 500').default(100),
});

export const listMachinesQuery = z.strictObject({
  projectId: z.string().optional(),
  status: z.string().optional(),
  limit: z.coerce.number().int().min(1).max(500, 'must be at most 500').default(100),
  cursor: z.string().max(1000).optional(),
});

export const pipelineStep = z
  .strictObject({
    id: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, 'must be 1-63 letters, digits, "_", "-" or "."'),
    type: z.enum(MACHINE_TYPES_OR_AUTO, { error: `must be one of: ${MACHINE_TYPES_OR_AUTO.join(', ')}` }),
    command: z.string().min(1).max(100_000).optional(),
    prompt: z.string().min(1).max(100_000).optional(),
    model: z.string().min(1).max(200).optional(),
    dependsOn: z.array(z.string()).max(100).default([]),
    limits: machineLimits.default({}),
    /** Named project resources the step holds while it runs. */
    resources: z.array(resourceName).max(20).default([]),
    inputs: machineInputs.optional(),
    artifacts: declaredArtifacts.optional(),
    /** false: this step runs even when an identical completed machine's result could be reused. */
    cache: z.boolean().default(true),
  })
  .superRefine(requireWork);

export const createPipelineBody = z.strictObject({
  projectId: id('project'),
  checkpointId: id('checkpoint').optional(),
  priority: z.number().int().min(-1000).max(1000).default(0),
  steps: z.array(pipelineStep).min(1, 'needs at least one step').max(500),
});

export const linkObjectiveBody = z.strictObject({ dependsOn: id('objective') });

/** A project's placement policy: ordered rules, the first matching rule with an available provider wins. */
export const placementRule = z.strictObject({
  name: z.string().trim().min(1, 'is required').max(200),
  match: z
    .strictObject({
      types: z
        .array(z.enum(MACHINE_TYPES, { error: `must be one of: ${MACHINE_TYPES.join(', ')}` }))
        .min(1)
        .max(50)
        .optional(),
      complexity: z.enum(['simple', 'complex']).optional(),
      interruptible: z.boolean().optional(),
    })
    .default({}),
  providers: z
    .array(z.enum(PROVIDERS, { error: `must be one of: ${PROVIDERS.join(', ')}` }))
    .min(1, 'needs at least one provider')
    .max(10),
  profile: z.enum(Object.keys(PROFILES) as [keyof typeof PROFILES]).optional(),
  spot: z.union([z.boolean(), z.literal('if-interruptible')]).optional(),
});

export const putPlacementBody = z.strictObject({
  rules: z.array(placementRule).max(50),
});
const currencyCode = z.enum(CURRENCY_CODES, { error: `must be one of: ${CURRENCY_CODES.join(', ')}` });

export const fxRatesQuery = z.strictObject({ base: currencyCode.default('USD') });

const departmentName = z
  .string()
  .trim()
  .regex(/^[A-Za-z0-9][A-Za-z0-9 _.-]{0,99}$/, 'must be 1-100 letters, digits, spaces, "_", "-" or "."');

export const createCostCenterBody = z.strictObject({
  name: z.string().trim().min(1, 'is required').max(200),
  kind: z.enum(COST_CENTER_KINDS, { error: `must be one of: ${COST_CENTER_KINDS.join(', ')}` }),
  department: departmentName,
});

/** The currency a roll-up's grand total is added up in (the viewer's; USD unless asked). */
export const rollupCurrencyQuery = z.object({
  currency: z.enum(CURRENCY_CODES, { error: `must be one of: ${CURRENCY_CODES.join(', ')}` }).default('USD'),
});

export const listCostCentersQuery = z.strictObject({
  department: z.string().optional(),
  limit: z.coerce.number().int().min(1).max(500, 'must be at most 500').default(100),
  cursor: z.string().max(1000).optional(),
});

export const putProjectCostCenterBody = z.strictObject({ costCenterId: id('cost-center').nullable() });
export const putMilestoneBody = z.strictObject({
  milestone: z.boolean({ error: 'must be true or false' }),
});

const positiveSeconds = (max: number) => z.number().int().min(1).max(max);
const maxTries = z.number().int().min(1, 'must be 1 or more').max(20);
export const paymentMethodBody = z.discriminatedUnion(
  'kind',
  [
    z.strictObject({ kind: z.literal('credits'), maxTries: maxTries.optional() }),
    z.strictObject({
      kind: z.literal('card'),
      maxTries: maxTries.optional(),
      customer: z.string().regex(/^cus_[A-Za-z0-9]+$/, 'must be a Stripe customer id (cus_...)'),
      paymentMethod: z.string().regex(/^(pm|card|src)_[A-Za-z0-9_]+$/, 'must be a Stripe payment method id (pm_...)'),
    }),
    z.strictObject({
      kind: z.literal('crypto'),
      maxTries: maxTries.optional(),
      chain: z.enum(['eth', 'ton', 'btc'], { error: 'must be one of: eth, ton, btc' }),
      // No address or rate: the deployment's configuration and live FX give them (422 if sent).
      timeoutSeconds: positiveSeconds(30 * 24 * 3600).default(3600),
    }),
    z.strictObject({ kind: z.literal('manual'), timeoutSeconds: positiveSeconds(30 * 24 * 3600) }),
  ],
  { error: 'kind must be one of: credits, card, crypto, manual' },
);

export const putPaymentMethodsBody = z.strictObject({ methods: z.array(paymentMethodBody).max(20) });

export const topupBody = z.strictObject({
  amount: decimal,
  currency: z.enum(CURRENCY_CODES, { error: `must be one of: ${CURRENCY_CODES.join(', ')}` }),
});

/** An automatic top-up: `amount` in `currency`, made when the balance not held by running machines falls below `threshold` (in the project's currency). */
export const autoTopupBody = topupBody.extend({ threshold: decimal.optional() });

export const creditBody = z.strictObject({
  amount: decimal,
  currency: z.enum(CURRENCY_CODES, { error: `must be one of: ${CURRENCY_CODES.join(', ')}` }),
  expiresAt: z.iso.datetime({ offset: true, error: 'must be an ISO 8601 date-time such as 2027-01-01T00:00:00Z' }),
});

const isoDate = z.iso.datetime({ offset: true, message: 'must be an ISO 8601 date-time, e.g. 2027-01-31T00:00:00Z' });

export const createKeyBody = z.strictObject({
  name: z.string().trim().min(1, 'is required').max(100),
  role: z.enum(ROLES, { error: `must be one of: ${ROLES.join(', ')}` }),
  projectIds: z.array(z.string().min(1).max(200)).min(1, 'give at least one project, or leave it out for a deployment-wide key').max(100).optional(),
  expiresAt: isoDate.optional(),
});
export const patchKeyBody = z.strictObject({ expiresAt: isoDate.nullable() });

/** Outgoing webhooks (README "Webhooks and Slack"). The URL's reachability is checked by the service (it depends on config). */
const webhookEvents = z
  .array(z.string().max(100))
  .max(20, 'at most 20 event kinds')
  .superRefine((kinds, ctx) => {
    const problem = eventKindsProblem(kinds);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });
const webhookUrl = z.string().trim().min(1, 'is required').max(2000, 'at most 2000 characters');
/** A Slack channel id (C0123ABCD) or name (#alerts); Slack names are at most 80 characters. */
const slackChannel = z
  .string({ error: 'must be a Slack channel id (C0123ABCD) or name (#alerts)' })
  .trim()
  .regex(/^#?[\w.-]{1,80}$/, 'must be a Slack channel id (C0123ABCD) or name (#alerts)');
/** A Slack token (bot tokens start with xoxb-); kept, never shown back. */
const slackToken = z
  .string({ error: 'must be the bot token of a Slack app (xoxb-…)' })
  .trim()
  .regex(/^xox[a-z]-[\w-]{8,250}$/, 'must be the bot token of a Slack app (xoxb-…), not a webhook URL');
export const createWebhookBody = z
  .strictObject({
    projectId: z.string().min(1).max(200).optional(),
    kind: z.enum(WEBHOOK_KINDS, { error: `must be one of: ${WEBHOOK_KINDS.join(', ')}` }).default('webhook'),
    /** For `slack-bot`: the Slack Web API base (default https://slack.com/api). */
    url: webhookUrl.optional(),
    events: webhookEvents,
    description: z.string().max(500).default(''),
    channel: slackChannel.optional(),
    token: slackToken.optional(),
  })
  .superRefine((b, ctx) => {
    if (b.kind === 'slack-bot') {
      if (!b.channel) ctx.addIssue({ code: 'custom', path: ['channel'], message: 'a slack-bot endpoint needs the channel to post to, e.g. "#alerts"' });
      if (!b.token) ctx.addIssue({ code: 'custom', path: ['token'], message: 'a slack-bot endpoint needs the bot token of a Slack app (xoxb-…)' });
    } else {
      if (!b.url) ctx.addIssue({ code: 'custom', path: ['url'], message: 'is required' });
      if (b.channel !== undefined) ctx.addIssue({ code: 'custom', path: ['channel'], message: 'only a slack-bot endpoint has a channel' });
      if (b.token !== undefined) ctx.addIssue({ code: 'custom', path: ['token'], message: 'only a slack-bot endpoint has a bot token' });
    }
  });
export const patchWebhookBody = z.strictObject({
  url: webhookUrl.optional(),
  events: webhookEvents.optional(),
  description: z.string().max(500).optional(),
  enabled: z.boolean().optional(),
  /** `slack-bot` only. */
  channel: slackChannel.optional(),
  /** `slack-bot` only: a new bot token. */
  token: slackToken.optional(),
});

/** A project's git remote (README "Git remotes"): the token is kept, never shown back. */
const branchName = z.string({ error: 'must be a branch name, e.g. autovibe/feature' }).superRefine((name, ctx) => {
  const problem = branchNameProblem(name);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});
export const putGitRemoteBody = z.strictObject({
  url: z
    .string({ error: 'must be the remote URL (https://, http:// or git://)' })
    .trim()
    .min(1, 'is required')
    .max(2000, 'at most 2000 characters')
    .superRefine((url, ctx) => {
      const problem = gitRemoteUrlProblem(url);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    }),
  username: z.string().min(1).max(200).optional(),
  token: z.string().min(1, 'leave it out for a remote without credentials').max(4000).optional(),
  /** Fetch these branches periodically (a Temporal Schedule per project); left out: no periodic fetch. */
  fetch: z
    .strictObject({
      branches: z
        .array(branchName)
        .min(1, 'give at least one branch')
        .max(20, 'at most 20 branches')
        .refine((b) => new Set(b).size === b.length, 'each branch once'),
      everyMinutes: z
        .number({ error: 'must be a whole number of minutes' })
        .int('must be a whole number of minutes')
        .min(1, 'at least 1 minute')
        .max(7 * 24 * 60, 'at most a week (10080 minutes)'),
    })
    .optional(),
});
export const pushCheckpointBody = z.strictObject({
  branch: branchName,
  force: z.boolean({ error: 'must be true or false' }).default(false),
});
export const fetchGitRemoteBody = z.strictObject({ branch: branchName });

/** A project's GitHub integration (README "GitHub"): what may be shown in `config`; the token and webhook secret are kept, never shown back. */
const ownerOrRepo = z
  .string({ error: 'is required' })
  .min(1, 'is required')
  .max(100)
  .regex(/^[A-Za-z0-9_.-]+$/, 'letters, digits, ".", "-" and "_" only (the name as in github.com/<owner>/<repo>)');
export const githubConfigBody = z
  .strictObject({
    apiBase: z
      .string()
      .max(2000)
      .superRefine((url, ctx) => {
        const problem = webhookUrlProblem(url, true);
        if (problem) ctx.addIssue({ code: 'custom', message: problem });
      })
      .default('https://api.github.com'),
    owner: ownerOrRepo,
    repo: ownerOrRepo,
    baseBranch: branchName.default('main'),
    branchPrefix: z.string().max(100).default('autovibe/'),
    triggerLabel: z.string().trim().min(1).max(100).nullable().default(null),
    triggerOnOpened: z.boolean().default(false),
    machineType: z.enum(MACHINE_TYPES, { error: `must be one of: ${MACHINE_TYPES.join(', ')}` }).default('shell'),
    /** What an issue's text becomes: the prompt (default for model-backed types) or the command (default for shell). */
    work: z.enum(['prompt', 'command']).optional(),
    autoPullRequest: z.boolean().default(false),
    progressComments: z.boolean().default(true),
  })
  .transform((c) => ({ ...c, work: c.work ?? (c.machineType === 'shell' ? ('command' as const) : ('prompt' as const)) }));
/** Objective status → a ticket's transition/state name (or Linear state id); null: the ticket does not move. */
const statusMapBody = (defaults: Record<string, string | null>) =>
  z
    .strictObject(
      Object.fromEntries(
        ['waiting', 'paused', 'running', 'completed', 'failed', 'cancelled'].map((s) => [
          s,
          z
            .string()
            .trim()
            .min(1)
            .max(200)
            .nullable()
            .default(defaults[s] ?? null),
        ]),
      ) as Record<'waiting' | 'paused' | 'running' | 'completed' | 'failed' | 'cancelled', z.ZodDefault<z.ZodNullable<z.ZodString>>>,
    )
    .prefault({});
const trackerUrl = (fallback?: string) => {
  const s = z
    .string({ error: 'is required' })
    .max(2000)
    .superRefine((url, ctx) => {
      const problem = webhookUrlProblem(url, true);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    });
  return fallback ? s.default(fallback) : s;
};
const ticketWork = {
  triggerLabel: z.string().trim().min(1).max(100).nullable().default(null),
  /** Every new objective of the project gets a ticket (else only those created with ticket: true). */
  createTickets: z.boolean().default(false),
  machineType: z.enum(MACHINE_TYPES, { error: `must be one of: ${MACHINE_TYPES.join(', ')}` }).default('shell'),
  work: z.enum(['prompt', 'command']).optional(),
  progressComments: z.boolean().default(true),
};
const withWork = <C extends { machineType: string; work?: 'prompt' | 'command' | undefined }>(c: C) => ({
  ...c,
  work: c.work ?? (c.machineType === 'shell' ? ('command' as const) : ('prompt' as const)),
});
/** A project's Jira Cloud integration (README "Jira"); the API token and webhook secret are kept apart. */
export const jiraConfigBody = z
  .strictObject({
    baseUrl: trackerUrl(),
    projectKey: z.string({ error: 'is required' }).regex(/^[A-Z][A-Z0-9_]{0,19}$/, 'the project key as Jira shows it (capital letters, digits, "_"; e.g. AV)'),
    /** The Atlassian account's email: the token is then an API token sent as Basic auth; null: an OAuth bearer token. */
    email: z.email({ error: 'must be the email of the Atlassian account the API token belongs to' }).max(320).nullable().default(null),
    issueType: z.string().trim().min(1).max(100).default('Task'),
    statusMap: statusMapBody(JIRA_STATUS_DEFAULTS),
    ...ticketWork,
  })
  .transform(withWork);
/** A project's Linear integration (README "Linear"); the API key and webhook signing secret are kept apart. */
export const linearConfigBody = z
  .strictObject({
    apiUrl: trackerUrl('https://api.linear.app/graphql'),
    teamId: z.string({ error: 'is required' }).trim().min(1, 'is required').max(100),
    /** apiKey: a personal API key, sent as is; oauth: an OAuth access token, sent as Bearer. */
    tokenType: z.enum(['apiKey', 'oauth']).default('apiKey'),
    stateMap: statusMapBody(LINEAR_STATE_DEFAULTS),
    ...ticketWork,
  })
  .transform(withWork);
export const putIntegrationBody = z.strictObject({
  config: z.record(z.string(), z.unknown(), { error: 'must be an object of the integration settings' }),
  /** Left out: the stored one is kept; null: removed. */
  token: z.string().min(1).max(4000).nullable().optional(),
  /** Left out: the stored one is kept; null: removed (every incoming hook is then refused). */
  webhookSecret: z.string().min(1).max(500).nullable().optional(),
});
export const openPullRequestBody = z.strictObject({
  title: z.string().trim().min(1).max(256).optional(),
  /** Text put before the generated summary, cost and link. */
  body: z.string().max(20_000).optional(),
  base: branchName.optional(),
  branch: branchName.optional(),
});
/** POST /v1/checkpoints/:id/merge: merge checkpoint `from` into `:id`. */
export const mergeCheckpointBody = z.strictObject({
  from: id('checkpoint'),
  message: z.string().trim().min(1).max(2000).optional(),
});

/** POST /v1/checkpoints/:id/merge-resolutions: a machine resolves the conflicts of merging `from` into `:id`. */
export const mergeResolutionBody = z
  .strictObject({
    from: id('checkpoint'),
    message: z.string().trim().min(1).max(2000).optional(),
    type: z.enum(MACHINE_TYPES, { error: `must be one of: ${MACHINE_TYPES.join(', ')}` }),
    /** A shell machine's command (required for `shell`). */
    command: z.string().min(1).max(100_000).optional(),
    /** An agent's instructions; without it the agent is told which files conflict and to remove every marker. */
    prompt: z.string().min(1).max(100_000).optional(),
    model: z.string().min(1).max(200).optional(),
    provider: z.enum(PROVIDERS, { error: `must be one of: ${PROVIDERS.join(', ')}` }).optional(),
    limits: machineLimits.default({}),
  })
  .superRefine((b, ctx) => {
    if (b.type === 'shell' && !b.command) ctx.addIssue({ code: 'custom', path: ['command'], message: 'is required for a shell machine' });
  });

import { z } from 'zod';
import { BUDGET_PERIODS } from '../domain/budget.js';
import { MACHINE_TYPES, PROFILES, PROVIDERS } from '../domain/machines.js';
import { CURRENCY_CODES } from '../domain/money.js';

/** Request bodies and queries, validated with zod; the OpenAPI document is generated from these. */
const decimal = z.string().regex(/^-?\d+(\.\d+)?$/, 'must be a decimal string such as "10.00"');
const id = (prefix: string) => z.string().regex(new RegExp(`^${prefix}-[0-9a-f-]{36}$`), `must be a ${prefix} id (${prefix}-<uuid>)`);

export const createProjectBody = z.strictObject({
  name: z.string().trim().min(1, 'is required').max(200),
  repoUrl: z.string().min(1).max(2000).optional(),
  currency: z.enum(CURRENCY_CODES).default('USD'),
  greediness: z.number().min(0).max(1).default(0.5),
  defaultMachineMoney: decimal.optional(),
  limitPolicy: z.enum(['stop', 'pause']).default('stop'),
  pauseMinutes: z.number().int().min(1).max(7 * 24 * 60).default(60),
});

export const putLimitPolicyBody = z.strictObject({
  policy: z.enum(['stop', 'pause']),
  pauseMinutes: z.number().int().min(1).max(7 * 24 * 60).default(60),
});

export const extendMachineBody = z
  .strictObject({
    money: decimal.optional(),
    minutes: z.number().int().min(1).max(7 * 24 * 60).optional(),
    apiCalls: z.number().int().min(1).max(1_000_000).optional(),
  })
  .refine((b) => b.money || b.minutes || b.apiCalls, { message: 'give at least one of money, minutes, apiCalls' });

export const putBudgetBody = z.strictObject({
  amount: decimal,
  currency: z.enum(CURRENCY_CODES),
  period: z.enum(BUDGET_PERIODS),
});

export const machineLimits = z.strictObject({
  money: decimal.optional(),
  minutes: z.number().int().min(1).max(7 * 24 * 60).optional(),
  apiCalls: z.number().int().min(1).max(1_000_000).optional(),
});

const requireWork = (b: { type?: string; machineType?: string; command?: string | undefined; prompt?: string | undefined }, ctx: z.RefinementCtx) => {
  const type = b.type ?? b.machineType;
  if (type === 'shell' && !b.command) ctx.addIssue({ code: 'custom', path: ['command'], message: 'is required for a shell machine' });
  if (type !== 'shell' && !b.prompt) ctx.addIssue({ code: 'custom', path: ['prompt'], message: `is required for a ${type} machine` });
};

export const createMachineBody = z
  .strictObject({
    projectId: id('project'),
    type: z.enum(MACHINE_TYPES, { error: `must be one of: ${MACHINE_TYPES.join(', ')}` }),
    command: z.string().min(1).max(100_000).optional(),
    prompt: z.string().min(1).max(100_000).optional(),
    model: z.string().min(1).max(200).optional(),
    checkpointId: id('checkpoint').optional(),
    /** How often a model-backed machine checkpoints its live workspace (when files changed). */
    checkpointEveryMinutes: z.number().int().min(1).max(24 * 60).optional(),
    provider: z.enum(PROVIDERS).default('local'),
    profile: z.enum(Object.keys(PROFILES) as [keyof typeof PROFILES]).default('lightweight'),
    limits: machineLimits.default({}),
  })
  .superRefine(requireWork);

export const createObjectiveBody = z
  .strictObject({
    title: z.string().trim().min(1, 'is required').max(500),
    priority: z.number().int().min(-1000).max(1000).default(0),
    dependsOn: z.array(id('objective')).max(100).default([]),
    machineType: z.enum(MACHINE_TYPES).default('shell'),
    command: z.string().min(1).max(100_000).optional(),
    prompt: z.string().min(1).max(100_000).optional(),
    checkpointId: id('checkpoint').optional(),
    limits: machineLimits.default({}),
  })
  .superRefine(requireWork);

export const putTypeBudgetBody = z.strictObject({
  amount: decimal,
  currency: z.enum(CURRENCY_CODES),
});

export const auditQuery = z.strictObject({
  projectId: z.string().optional(),
  subjectId: z.string().optional(),
  actor: z.string().optional(),
  action: z.string().optional(),
  after: z.string().regex(/^\d+$/, 'must be a sequence number').optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

export const listMachinesQuery = z.strictObject({
  projectId: z.string().optional(),
  status: z.string().optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

export const pipelineStep = z
  .strictObject({
    id: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, 'must be 1-63 letters, digits, "_", "-" or "."'),
    type: z.enum(MACHINE_TYPES, { error: `must be one of: ${MACHINE_TYPES.join(', ')}` }),
    command: z.string().min(1).max(100_000).optional(),
    prompt: z.string().min(1).max(100_000).optional(),
    model: z.string().min(1).max(200).optional(),
    dependsOn: z.array(z.string()).max(100).default([]),
    limits: machineLimits.default({}),
  })
  .superRefine(requireWork);

export const createPipelineBody = z.strictObject({
  projectId: id('project'),
  checkpointId: id('checkpoint').optional(),
  steps: z.array(pipelineStep).min(1, 'needs at least one step').max(500),
});

export const linkObjectiveBody = z.strictObject({ dependsOn: id('objective') });

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
      address: z.string().min(1, 'is required').max(200),
      rate: z.string().regex(/^\d+(\.\d+)?$/, 'must be a positive decimal string: the price of one coin in the top-up currency').optional(),
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

export const creditBody = z.strictObject({
  amount: decimal,
  currency: z.enum(CURRENCY_CODES, { error: `must be one of: ${CURRENCY_CODES.join(', ')}` }),
  expiresAt: z.iso.datetime({ offset: true, error: 'must be an ISO 8601 date-time such as 2027-01-01T00:00:00Z' }),
});

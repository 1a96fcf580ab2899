/** Use cases of money coming in: payment methods, top-ups (now and on each budget renewal), approvals and credits. */
import { z } from 'zod';
import type { Config } from '../config/index.js';
import { ConflictError, InputError, NotFoundError } from '../domain/errors.js';
import { formatAmount } from '../domain/money.js';
import { renewalCron, type PaymentMethod } from '../domain/payments.js';
import { runVisibility } from '../domain/search-attributes.js';
import { appendAudit } from '../store/audit.js';
import { findBudget } from '../store/budgets.js';
import { idFromIdempotencyKey } from '../store/ids.js';
import {
  addCredit,
  balanceStatus,
  getAutoTopupConfig,
  getPayment,
  getPaymentMethods,
  insertPayment,
  removeAutoTopupConfig,
  setAutoTopupConfig,
  setPaymentMethods,
  type Credit,
  type Payment,
} from '../store/payments.js';
import { getProject, type Project } from '../store/projects.js';
import { approvePaymentSignal, paymentCascade, renewalTopup } from '../workflows/index.js';
import type { RenewalTopupInput } from '../workflows/payment-cascade.js';
import { actorOfCaller, type Caller, type ServiceContext } from './context.js';
import { notFoundMessage, parseAmountField } from './inputs.js';
import { requireProject } from './projects.js';
import { autoTopupBody, creditBody, putPaymentMethodsBody, topupBody } from './schemas.js';

/** Why this platform cannot take `m` as configured (a missing setting, an unsupported chain), or null. */
export function paymentMethodProblem(config: Config, m: PaymentMethod): string | null {
  if (m.kind === 'card' && !config.payments.stripe) {
    return 'card payments need STRIPE_SECRET_KEY set on the platform (and STRIPE_API_BASE for a Stripe-compatible endpoint)';
  }
  if (m.kind !== 'crypto') return null;
  if (m.chain === 'eth' && !config.payments.eth) {
    return "ETH payments need ETH_RPC_URL (a JSON-RPC endpoint) and ETH_RECEIVING_ADDRESS (the deployment's address) set on the platform, and ETH_CONFIRMATIONS if 12 is not wanted";
  }
  if (m.chain === 'ton' && !config.payments.ton) {
    return "TON payments need TON_API_URL (a toncenter-compatible API; TON_API_KEY if it wants one) and TON_RECEIVING_ADDRESS (the deployment's address) set on the platform";
  }
  if (m.chain === 'btc') return 'BTC payments are not supported yet: no Bitcoin node adapter is built in; use eth or ton';
  return null;
}

/**
 * Crypto methods used to carry the receiving address and the conversion rate; both now belong to
 * the deployment (configuration, live FX), so a request that still sends them is refused rather
 * than silently paid somewhere else than the sender thinks.
 */
function refuseTenantCryptoFields(body: unknown): void {
  const list = Array.isArray(body) ? body : (body as { methods?: unknown } | null)?.methods;
  if (!Array.isArray(list)) return;
  list.forEach((m, i) => {
    if (!m || typeof m !== 'object' || (m as { kind?: unknown }).kind !== 'crypto') return;
    for (const field of ['address', 'rate'] as const) {
      if (Object.hasOwn(m, field)) {
        throw new InputError(
          `methods.${i}.${field}: crypto receiving addresses and conversion rates are set by the deployment (ETH_RECEIVING_ADDRESS, TON_RECEIVING_ADDRESS, live FX), not per project; send only { kind, chain, timeoutSeconds?, maxTries? }`,
          { field: `methods.${i}.${field}` },
          'set_by_deployment',
        );
      }
    }
  });
}

type PaymentMethodsInput = z.input<typeof putPaymentMethodsBody> | z.input<typeof putPaymentMethodsBody>['methods'];

/** Replaces the project's ordered payment methods; each must be one this platform can take. */
export async function setProjectPaymentMethods(
  ctx: ServiceContext,
  caller: Caller,
  projectId: string,
  input: PaymentMethodsInput,
): Promise<{ projectId: string; methods: PaymentMethod[] }> {
  const project = await requireProject(ctx, projectId);
  refuseTenantCryptoFields(input);
  // The contract's bare ordered list, or { methods: [...] }.
  const body = putPaymentMethodsBody.parse(Array.isArray(input) ? { methods: input } : input);
  const methods = body.methods as PaymentMethod[];
  methods.forEach((m, i) => {
    const problem = paymentMethodProblem(ctx.config, m);
    if (problem) throw new InputError(`methods.${i}: ${problem}`, { field: `methods.${i}` });
  });
  await setPaymentMethods(ctx.db, project.id, methods);
  await appendAudit(ctx.db, {
    actor: actorOfCaller(caller),
    action: 'payment_methods.set',
    subjectType: 'project',
    subjectId: project.id,
    projectId: project.id,
    details: { methods: methods.map((m) => m.kind) },
  });
  return { projectId: project.id, methods };
}

/** A top-up's amount: more than zero, in its own currency. */
function topupAmount(input: z.input<typeof topupBody>) {
  const body = topupBody.parse(input);
  const amount = parseAmountField('amount', body.amount, body.currency);
  if (amount <= 0n) throw new InputError('amount: a top-up must be more than zero', { field: 'amount' });
  return { ...body, units: amount };
}

/** The project's payment methods; a top-up without any is a conflict naming the fix. */
async function requirePaymentMethods(ctx: ServiceContext, project: Project): Promise<PaymentMethod[]> {
  const methods = await getPaymentMethods(ctx.db, project.id);
  if (!methods.length) {
    throw new ConflictError(`project ${project.id} has no payment methods: PUT /v1/projects/${project.id}/payment-methods first`, 'no_payment_methods');
  }
  return methods;
}

/**
 * Tops the project up now: records the payment and starts its cascade over the project's payment
 * methods. A repeat with the same idempotency key names the same payment and pays once.
 */
export async function topUp(
  ctx: ServiceContext,
  caller: Caller,
  projectId: string,
  input: z.input<typeof topupBody>,
): Promise<{ paymentId: string; status: 'running' }> {
  const project = await requireProject(ctx, projectId);
  const { units: amount, currency } = topupAmount(input);
  const methods = await requirePaymentMethods(ctx, project);
  const paymentId = idFromIdempotencyKey('payment', caller.principal.apiKeyId, caller.idempotencyKey);
  await startTopup(ctx, { paymentId, projectId: project.id, amount, currency, methods, reason: 'requested', createdBy: actorOfCaller(caller) });
  return { paymentId, status: 'running' };
}

/**
 * The project's automatic top-up: `amount` in `currency` is paid (through the project's payment
 * methods) whenever the prepaid balance not held by running machines falls below `threshold` (in
 * the project's currency; by default the amount, when that is in the project's currency). It is
 * checked after each settlement that draws the balance down (`triggerAutoTopup`) and by a
 * Temporal Schedule per project (`auto-topup-<projectId>`, five minutes into each window of the
 * project's budget), which also retries after a failed top-up. It never changes a budget limit.
 * Replaces the project's previous one.
 */
export async function setAutoTopup(ctx: ServiceContext, caller: Caller, projectId: string, input: z.input<typeof autoTopupBody>) {
  const project = await requireProject(ctx, projectId);
  const body = autoTopupBody.parse(input);
  const units = parseAmountField('amount', body.amount, body.currency);
  if (units <= 0n) throw new InputError('amount: a top-up must be more than zero', { field: 'amount' });
  let threshold: bigint;
  if (body.threshold !== undefined) {
    threshold = parseAmountField('threshold', body.threshold, project.currency);
    if (threshold <= 0n) throw new InputError(`threshold: must be more than zero (in the project's currency, ${project.currency})`, { field: 'threshold' });
  } else if (body.currency === project.currency) {
    threshold = units;
  } else {
    throw new InputError(
      `threshold: required when the top-up is in ${body.currency} and the project's balance in ${project.currency}: the balance (in ${project.currency}) below which to top up`,
      { field: 'threshold' },
    );
  }
  const budget = await findBudget(ctx.db, 'project', project.id);
  const cron = budget ? renewalCron(budget.period) : null;
  if (!budget || !cron) {
    throw new InputError(
      `budget: an automatic top-up is checked again at each renewal of the budget; project ${project.id} has ${budget ? 'a total budget, which never renews' : 'no budget'}`,
      { field: 'budget' },
    );
  }
  await requirePaymentMethods(ctx, project);
  const amount = formatAmount(units, body.currency);
  const scheduleId = `auto-topup-${project.id}`;
  await setAutoTopupConfig(ctx.db, { projectId: project.id, amount: units, currency: body.currency, threshold });
  await ctx.temporal.schedule
    .getHandle(scheduleId)
    .delete()
    .catch((err: Error) => {
      if (err.name !== 'ScheduleNotFoundError') throw err;
    });
  await ctx.temporal.schedule.create({
    scheduleId,
    spec: { cronExpressions: [cron] },
    action: { type: 'startWorkflow', workflowId: `renewal-${project.id}`, ...autoTopupRun(ctx, project, { amount, currency: body.currency }) },
  });
  await appendAudit(ctx.db, {
    actor: actorOfCaller(caller),
    action: 'auto_topup.set',
    subjectType: 'project',
    subjectId: project.id,
    projectId: project.id,
    details: { amount, currency: body.currency, threshold: formatAmount(threshold, project.currency), thresholdCurrency: project.currency, cron },
  });
  return {
    projectId: project.id,
    amount,
    currency: body.currency,
    threshold: formatAmount(threshold, project.currency),
    thresholdCurrency: project.currency,
    period: budget.period,
    cron,
    scheduleId,
  };
}

/** The `renewalTopup` run of a project's automatic top-up (started by its schedule or by `triggerAutoTopup`). */
function autoTopupRun(ctx: ServiceContext, project: Project, t: { amount: string; currency: Payment['currency'] }) {
  return {
    workflowType: renewalTopup,
    taskQueue: ctx.config.taskQueue,
    ...runVisibility(
      'renewal top-up',
      { project: project.id, costCenter: project.costCenterId },
      { searchAttributes: ctx.config.searchAttributes, details: { amount: t.amount, currency: t.currency } },
    ),
    args: [
      {
        projectId: project.id,
        amount: t.amount,
        currency: t.currency,
        pollSeconds: ctx.config.payments.pollSeconds,
        heartbeatTimeoutSeconds: ctx.config.heartbeatTimeoutSeconds,
      },
    ] as [RenewalTopupInput],
  };
}

/**
 * Checks the project's automatic top-up after its balance was drawn down: when one is set and the
 * balance not held by running machines is below its threshold, starts the top-up check now (one
 * run at a time per project; the payment it opens is decided under a lock, store/payments.ts
 * `openAutoTopupPayment`). Returns whether it started (or joined) a run.
 */
export async function triggerAutoTopup(ctx: ServiceContext, projectId: string): Promise<boolean> {
  const auto = await getAutoTopupConfig(ctx.db, projectId);
  if (!auto) return false;
  const project = await getProject(ctx.db, projectId);
  if (!project) return false;
  if ((await balanceStatus(ctx.db, project)).available >= auto.threshold) return false;
  const run = autoTopupRun(ctx, project, { amount: formatAmount(auto.amount, auto.currency), currency: auto.currency });
  await ctx.temporal.workflow.start(run.workflowType, { ...run, workflowId: `auto-topup-now-${project.id}`, workflowIdConflictPolicy: 'USE_EXISTING' });
  return true;
}

/** Stops the project's automatic top-up; NotFoundError when it has none. */
export async function removeAutoTopup(ctx: ServiceContext, caller: Caller, projectId: string): Promise<void> {
  const project = await requireProject(ctx, projectId);
  const removed = await ctx.temporal.schedule
    .getHandle(`auto-topup-${project.id}`)
    .delete()
    .then(
      () => true,
      (err: Error) => {
        if (err.name === 'ScheduleNotFoundError') return false;
        throw err;
      },
    );
  const configured = await removeAutoTopupConfig(ctx.db, project.id);
  if (!removed && !configured) throw new NotFoundError(`project ${project.id} has no automatic top-up`);
  await appendAudit(ctx.db, {
    actor: actorOfCaller(caller),
    action: 'auto_topup.removed',
    subjectType: 'project',
    subjectId: project.id,
    projectId: project.id,
  });
}

/** The payment, or NotFoundError. */
export async function requirePayment(ctx: ServiceContext, id: string): Promise<Payment> {
  const p = await getPayment(ctx.db, id);
  if (!p) throw new NotFoundError(notFoundMessage('payment', id));
  return p;
}

/** Approves a payment that waits for a person (manual_required): its cascade goes on. */
export async function approvePayment(ctx: ServiceContext, caller: Caller, paymentId: string): Promise<{ paymentId: string; status: 'approving' }> {
  const p = await requirePayment(ctx, paymentId);
  if (p.status !== 'manual_required') {
    throw new ConflictError(
      `payment ${p.id} is ${p.status}; only a payment waiting for approval (manual_required) can be approved`,
      'payment_not_awaiting_approval',
    );
  }
  await ctx.temporal.workflow.getHandle(p.id).signal(approvePaymentSignal, { by: actorOfCaller(caller) });
  await appendAudit(ctx.db, {
    actor: actorOfCaller(caller),
    action: 'payment.approval_given',
    subjectType: 'payment',
    subjectId: p.id,
    projectId: p.projectId,
  });
  return { paymentId: p.id, status: 'approving' };
}

/** Grants the project credits that expire; a repeat with the same idempotency key grants once. */
export async function grantCredits(ctx: ServiceContext, caller: Caller, projectId: string, input: z.input<typeof creditBody>): Promise<Credit> {
  const project = await requireProject(ctx, projectId);
  const body = creditBody.parse(input);
  const amount = parseAmountField('amount', body.amount, body.currency);
  if (amount <= 0n) throw new InputError('amount: credits must be more than zero', { field: 'amount' });
  const expiresAt = new Date(body.expiresAt);
  const key = caller.idempotencyKey;
  const credit = await addCredit(ctx.db, {
    ...(key ? { id: idFromIdempotencyKey('credit', caller.principal.apiKeyId, key) } : {}),
    projectId: project.id,
    currency: body.currency,
    amount,
    expiresAt,
    createdBy: actorOfCaller(caller),
  });
  await appendAudit(ctx.db, {
    actor: actorOfCaller(caller),
    action: 'credits.granted',
    subjectType: 'project',
    subjectId: project.id,
    projectId: project.id,
    details: { creditId: credit.id, amount: body.amount, currency: body.currency, expiresAt: credit.expiresAt },
    idempotencyKey: `credit:${credit.id}`,
  });
  return credit;
}

/**
 * Records a payment and starts its cascade (idempotent on the payment id). The user's top-up
 * calls it; so can anything else that must top a project up, e.g. a budget-period renewal.
 */
export async function startTopup(
  ctx: ServiceContext,
  t: { paymentId: string; projectId: string; amount: bigint; currency: Payment['currency']; methods: PaymentMethod[]; reason: string; createdBy: string },
): Promise<void> {
  if (!(await getPayment(ctx.db, t.paymentId))) {
    await ctx.db.transaction(async (trx) => {
      await insertPayment(trx, { ...t, id: t.paymentId });
      await appendAudit(trx, {
        actor: t.createdBy,
        action: 'payment.requested',
        subjectType: 'payment',
        subjectId: t.paymentId,
        projectId: t.projectId,
        details: { amount: formatAmount(t.amount, t.currency), currency: t.currency, reason: t.reason, methods: t.methods.map((m) => m.kind) },
      });
    });
  }
  const payment = (await getPayment(ctx.db, t.paymentId))!;
  const start = ctx.temporal.workflow.start(paymentCascade, {
    workflowId: t.paymentId,
    taskQueue: ctx.config.taskQueue,
    ...runVisibility(
      'payment',
      { project: t.projectId, status: 'running' },
      { searchAttributes: ctx.config.searchAttributes, details: { payment: t.paymentId, amount: formatAmount(t.amount, t.currency), currency: t.currency } },
    ),
    workflowIdConflictPolicy: 'USE_EXISTING',
    // A payment's cascade runs once, even after it has ended.
    workflowIdReusePolicy: 'REJECT_DUPLICATE',
    args: [
      {
        paymentId: t.paymentId,
        projectId: t.projectId,
        methods: payment.methods,
        pollSeconds: ctx.config.payments.pollSeconds,
        heartbeatTimeoutSeconds: ctx.config.heartbeatTimeoutSeconds,
      },
    ],
  });
  await start.catch((err: Error) => {
    if (err.name !== 'WorkflowExecutionAlreadyStartedError') throw err;
  });
}

import { runVisibility } from '../../domain/search-attributes.js';
import * as R from '../responses.js';
import { RouteGroup, inPath } from './table.js';
import { waitForStatus } from '../event-stream.js';
import type { Config } from '../../config/index.js';
import { ConflictError, InputError, NotFoundError } from '../../domain/errors.js';
import { formatAmount } from '../../domain/money.js';
import { renewalCron, type PaymentMethod } from '../../domain/payments.js';
import { findBudget } from '../../store/budgets.js';
import { appendAudit } from '../../store/audit.js';
import {
  addCredit,
  getPayment,
  getPaymentMethods,
  insertPayment,
  listAttempts,
  listCredits,
  projectBalance,
  setPaymentMethods,
  type Payment,
} from '../../store/payments.js';
import { approvePaymentSignal, paymentCascade, renewalTopup } from '../../workflows/index.js';
import { actorOf, param, principalOf, type ApiContext } from '../context.js';
import { ApiError, MESSAGES } from '../errors.js';
import { idFromIdempotencyKey } from '../../store/ids.js';
import { pageInMemory, pageQuery } from '../pagination.js';
import { creditBody, putPaymentMethodsBody, topupBody } from '../../services/schemas.js';
import { loadProject, parseAmountField } from './projects.js';

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
        throw new ApiError(
          422,
          'set_by_deployment',
          `methods.${i}.${field}: crypto receiving addresses and conversion rates are set by the deployment (ETH_RECEIVING_ADDRESS, TON_RECEIVING_ADDRESS, live FX), not per project; send only { kind, chain, timeoutSeconds?, maxTries? }`,
          { field: `methods.${i}.${field}` },
        );
      }
    }
  });
}

async function presentPayment(ctx: ApiContext, p: Payment) {
  const attempts = await listAttempts(ctx.db, p.id);
  return {
    id: p.id,
    projectId: p.projectId,
    amount: formatAmount(p.amount, p.currency),
    currency: p.currency,
    reason: p.reason,
    status: p.status,
    paidBy: p.paidBy,
    ...(p.error ? { error: p.error } : {}),
    createdAt: p.createdAt,
    endedAt: p.endedAt,
    attempts: attempts.map((a) => ({
      seq: a.seq,
      method: a.method,
      status: a.status,
      ...(a.error ? { error: a.error } : {}),
      tries: a.tries,
      details: a.details,
      startedAt: a.startedAt,
      endedAt: a.endedAt,
    })),
  };
}

export function paymentRoutes(ctx: ApiContext): RouteGroup {
  const r = new RouteGroup(ctx);
  const { db } = ctx;

  r.put('/projects/:id/payment-methods', { permission: 'payment-methods.write', resource: inPath('project') }, { 200: R.paymentMethods }, async (req, res) => {
    const project = await loadProject(ctx, param(req, 'id'));
    refuseTenantCryptoFields(req.body);
    // The contract's bare ordered list, or { methods: [...] }.
    const body = putPaymentMethodsBody.parse(Array.isArray(req.body) ? { methods: req.body } : req.body);
    const methods = body.methods as PaymentMethod[];
    methods.forEach((m, i) => {
      const problem = paymentMethodProblem(ctx.config, m);
      if (problem) throw new InputError(`methods.${i}: ${problem}`, { field: `methods.${i}` });
    });
    await setPaymentMethods(db, project.id, methods);
    await appendAudit(db, {
      actor: actorOf(req),
      action: 'payment_methods.set',
      subjectType: 'project',
      subjectId: project.id,
      projectId: project.id,
      details: { methods: methods.map((m) => m.kind) },
    });
    res.json({ projectId: project.id, methods });
  });

  r.get('/projects/:id/payment-methods', { permission: 'payments.read', resource: inPath('project') }, { 200: R.paymentMethods }, async (req, res) => {
    const project = await loadProject(ctx, param(req, 'id'));
    res.json({ projectId: project.id, methods: await getPaymentMethods(db, project.id) });
  });

  r.post('/projects/:id/topups', { permission: 'topups.create', resource: inPath('project') }, { 202: R.paymentAccepted('running') }, async (req, res) => {
    const project = await loadProject(ctx, param(req, 'id'));
    const body = topupBody.parse(req.body);
    const amount = parseAmountField('amount', body.amount, body.currency);
    if (amount <= 0n) throw new InputError('amount: a top-up must be more than zero', { field: 'amount' });
    const methods = await getPaymentMethods(db, project.id);
    if (!methods.length) {
      throw new ConflictError(`project ${project.id} has no payment methods: PUT /v1/projects/${project.id}/payment-methods first`, 'no_payment_methods');
    }
    const paymentId = idFromIdempotencyKey('payment', principalOf(req).apiKeyId, req.get('idempotency-key'));
    await startTopup(ctx, { paymentId, projectId: project.id, amount, currency: body.currency, methods, reason: 'requested', createdBy: actorOf(req) });
    res.status(202).json({ paymentId, status: 'running' });
  });

  /**
   * Automatic top-up when the project's budget window renews: a Temporal Schedule per project
   * (`auto-topup-<projectId>`) that starts `renewalTopup` five minutes into each window; each
   * window is topped up at most once.
   */
  r.put('/projects/:id/auto-topup', { permission: 'topups.create', resource: inPath('project') }, { 200: R.autoTopup }, async (req, res) => {
    const project = await loadProject(ctx, param(req, 'id'));
    const body = topupBody.parse(req.body);
    const amount = parseAmountField('amount', body.amount, body.currency);
    if (amount <= 0n) throw new InputError('amount: a top-up must be more than zero', { field: 'amount' });
    const budget = await findBudget(db, 'project', project.id);
    const cron = budget ? renewalCron(budget.period) : null;
    if (!budget || !cron) {
      throw new InputError(
        `budget: an automatic top-up follows the budget's renewals; project ${project.id} has ${budget ? 'a total budget, which never renews' : 'no budget'}`,
        { field: 'budget' },
      );
    }
    if (!(await getPaymentMethods(db, project.id)).length) {
      throw new ConflictError(`project ${project.id} has no payment methods: PUT /v1/projects/${project.id}/payment-methods first`, 'no_payment_methods');
    }
    const scheduleId = `auto-topup-${project.id}`;
    await ctx.temporal.schedule
      .getHandle(scheduleId)
      .delete()
      .catch((err: Error) => {
        if (err.name !== 'ScheduleNotFoundError') throw err;
      });
    await ctx.temporal.schedule.create({
      scheduleId,
      spec: { cronExpressions: [cron] },
      action: {
        type: 'startWorkflow',
        workflowType: renewalTopup,
        workflowId: `renewal-${project.id}`,
        taskQueue: ctx.config.taskQueue,
        ...runVisibility(
          'renewal top-up',
          { project: project.id, costCenter: project.costCenterId },
          { searchAttributes: ctx.config.searchAttributes, details: { amount: body.amount, currency: body.currency } },
        ),
        args: [
          {
            projectId: project.id,
            amount: body.amount,
            currency: body.currency,
            pollSeconds: ctx.config.payments.pollSeconds,
            heartbeatTimeoutSeconds: ctx.config.heartbeatTimeoutSeconds,
          },
        ],
      },
    });
    await appendAudit(db, {
      actor: actorOf(req),
      action: 'auto_topup.set',
      subjectType: 'project',
      subjectId: project.id,
      projectId: project.id,
      details: { amount: formatAmount(amount, body.currency), currency: body.currency, cron },
    });
    res.json({ projectId: project.id, amount: formatAmount(amount, body.currency), currency: body.currency, period: budget.period, cron, scheduleId });
  });

  r.delete('/projects/:id/auto-topup', { permission: 'topups.create', resource: inPath('project') }, { 204: R.noContent }, async (req, res) => {
    const project = await loadProject(ctx, param(req, 'id'));
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
    if (!removed) throw new NotFoundError(`project ${project.id} has no automatic top-up`);
    await appendAudit(db, { actor: actorOf(req), action: 'auto_topup.removed', subjectType: 'project', subjectId: project.id, projectId: project.id });
    res.status(204).end();
  });

  r.get('/payments/:id', { permission: 'payments.read', resource: inPath('payment') }, { 200: R.payment }, waitForStatus.payment(db), async (req, res) => {
    const p = await getPayment(db, param(req, 'id'));
    if (!p) throw new NotFoundError(MESSAGES.notFound('payment', param(req, 'id')));
    res.json(await presentPayment(ctx, p));
  });

  r.post(
    '/payments/:id/approve',
    { permission: 'payments.approve', resource: inPath('payment') },
    { 202: R.paymentAccepted('approving') },
    async (req, res) => {
      const p = await getPayment(db, param(req, 'id'));
      if (!p) throw new NotFoundError(MESSAGES.notFound('payment', param(req, 'id')));
      if (p.status !== 'manual_required') {
        throw new ConflictError(
          `payment ${p.id} is ${p.status}; only a payment waiting for approval (manual_required) can be approved`,
          'payment_not_awaiting_approval',
        );
      }
      await ctx.temporal.workflow.getHandle(p.id).signal(approvePaymentSignal, { by: actorOf(req) });
      await appendAudit(db, { actor: actorOf(req), action: 'payment.approval_given', subjectType: 'payment', subjectId: p.id, projectId: p.projectId });
      res.status(202).json({ paymentId: p.id, status: 'approving' });
    },
  );

  r.post('/projects/:id/credits', { permission: 'credits.grant', resource: inPath('project') }, { 201: R.credit }, async (req, res) => {
    const project = await loadProject(ctx, param(req, 'id'));
    const body = creditBody.parse(req.body);
    const amount = parseAmountField('amount', body.amount, body.currency);
    if (amount <= 0n) throw new InputError('amount: credits must be more than zero', { field: 'amount' });
    const expiresAt = new Date(body.expiresAt);
    const key = req.get('idempotency-key');
    const credit = await addCredit(db, {
      ...(key ? { id: idFromIdempotencyKey('credit', principalOf(req).apiKeyId, key) } : {}),
      projectId: project.id,
      currency: body.currency,
      amount,
      expiresAt,
      createdBy: actorOf(req),
    });
    await appendAudit(db, {
      actor: actorOf(req),
      action: 'credits.granted',
      subjectType: 'project',
      subjectId: project.id,
      projectId: project.id,
      details: { creditId: credit.id, amount: body.amount, currency: body.currency, expiresAt: credit.expiresAt },
      idempotencyKey: `credit:${credit.id}`,
    });
    res.status(201).json(presentCredit(credit));
  });

  r.get('/projects/:id/credits', { permission: 'payments.read', resource: inPath('project') }, { 200: R.page(R.credit) }, async (req, res) => {
    const project = await loadProject(ctx, param(req, 'id'));
    const page = pageInMemory(await listCredits(db, project.id), pageQuery.parse(req.query), (c) => c.id);
    res.json({ items: page.items.map(presentCredit), nextCursor: page.nextCursor });
  });

  r.get('/projects/:id/balance', { permission: 'payments.read', resource: inPath('project') }, { 200: R.page(R.money) }, async (req, res) => {
    const project = await loadProject(ctx, param(req, 'id'));
    const page = pageInMemory(await projectBalance(db, project.id), pageQuery.parse(req.query), (b) => b.currency);
    res.json({ items: page.items.map((b) => ({ amount: formatAmount(b.amount, b.currency), currency: b.currency })), nextCursor: page.nextCursor });
  });

  return r;
}

function presentCredit(c: Awaited<ReturnType<typeof listCredits>>[number]) {
  return {
    id: c.id,
    amount: formatAmount(c.amount, c.currency),
    remaining: formatAmount(c.remaining, c.currency),
    currency: c.currency,
    expiresAt: c.expiresAt,
  };
}

/**
 * Records a payment and starts its cascade (idempotent on the payment id). The user's top-up
 * calls it; so can anything else that must top a project up, e.g. a budget-period renewal.
 */
export async function startTopup(
  ctx: ApiContext,
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

import * as R from '../responses.js';
import { RouteGroup, inPath } from './table.js';
import { waitForStatus } from '../event-stream.js';
import { formatAmount } from '../../domain/money.js';
import { presentBalance } from '../present.js';
import {
  balanceStatus,
  getPaymentMethods,
  listAttempts,
  listCredits,
  pagePayments,
  projectBalance,
  type Credit,
  type Payment,
  type PaymentAttempt,
} from '../../store/payments.js';
import { callerOf, param, type ApiContext } from '../context.js';
import { createdKey, decodeCursor, pageInMemory, pageOf, pageQuery } from '../pagination.js';
import { approvePayment, grantCredits, removeAutoTopup, requirePayment, setAutoTopup, setProjectPaymentMethods, topUp } from '../../services/payments.js';
import { loadProject } from './projects.js';

function presentPayment(p: Payment, attempts: PaymentAttempt[]) {
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
    res.json(await setProjectPaymentMethods(ctx, callerOf(req), param(req, 'id'), req.body));
  });

  r.get('/projects/:id/payment-methods', { permission: 'payments.read', resource: inPath('project') }, { 200: R.paymentMethods }, async (req, res) => {
    const project = await loadProject(ctx, param(req, 'id'));
    res.json({ projectId: project.id, methods: await getPaymentMethods(db, project.id) });
  });

  r.post('/projects/:id/topups', { permission: 'topups.create', resource: inPath('project') }, { 202: R.paymentAccepted('running') }, async (req, res) => {
    res.status(202).json(await topUp(ctx, callerOf(req), param(req, 'id'), req.body));
  });

  /** Automatic top-up when the project's budget window renews (services/payments.ts setAutoTopup). */
  r.put('/projects/:id/auto-topup', { permission: 'topups.create', resource: inPath('project') }, { 200: R.autoTopup }, async (req, res) => {
    res.json(await setAutoTopup(ctx, callerOf(req), param(req, 'id'), req.body));
  });

  r.delete('/projects/:id/auto-topup', { permission: 'topups.create', resource: inPath('project') }, { 204: R.noContent }, async (req, res) => {
    await removeAutoTopup(ctx, callerOf(req), param(req, 'id'));
    res.status(204).end();
  });

  r.get('/payments/:id', { permission: 'payments.read', resource: inPath('payment') }, { 200: R.payment }, waitForStatus.payment(db), async (req, res) => {
    const payment = await requirePayment(ctx, param(req, 'id'));
    res.json(presentPayment(payment, await listAttempts(db, payment.id)));
  });

  /** A project's payments, newest first, each with its attempts. */
  r.get('/projects/:id/payments', { permission: 'payments.read', resource: inPath('project') }, { 200: R.page(R.payment) }, async (req, res) => {
    const project = await loadProject(ctx, param(req, 'id'));
    const q = pageQuery.parse(req.query);
    const rows = await pagePayments(db, project.id, { limit: q.limit + 1, after: decodeCursor(q.cursor, createdKey) });
    const page = pageOf(rows, q.limit, (r) => r.key);
    res.json({ items: page.items.map((r) => presentPayment(r.item, r.attempts)), nextCursor: page.nextCursor });
  });

  r.post(
    '/payments/:id/approve',
    { permission: 'payments.approve', resource: inPath('payment') },
    { 202: R.paymentAccepted('approving') },
    async (req, res) => {
      res.status(202).json(await approvePayment(ctx, callerOf(req), param(req, 'id')));
    },
  );

  r.post('/projects/:id/credits', { permission: 'credits.grant', resource: inPath('project') }, { 201: R.credit }, async (req, res) => {
    res.status(201).json(presentCredit(await grantCredits(ctx, callerOf(req), param(req, 'id'), req.body)));
  });

  r.get('/projects/:id/credits', { permission: 'payments.read', resource: inPath('project') }, { 200: R.page(R.credit) }, async (req, res) => {
    const project = await loadProject(ctx, param(req, 'id'));
    const page = pageInMemory(await listCredits(db, project.id), pageQuery.parse(req.query), (c) => c.id);
    res.json({ items: page.items.map(presentCredit), nextCursor: page.nextCursor });
  });

  r.get('/projects/:id/balance', { permission: 'payments.read', resource: inPath('project') }, { 200: R.projectBalance }, async (req, res) => {
    const project = await loadProject(ctx, param(req, 'id'));
    const page = pageInMemory(await projectBalance(db, project.id), pageQuery.parse(req.query), (b) => b.currency);
    res.json({
      ...presentBalance(await balanceStatus(db, project)),
      items: page.items.map((b) => ({ amount: formatAmount(b.amount, b.currency), currency: b.currency })),
      nextCursor: page.nextCursor,
    });
  });

  return r;
}

function presentCredit(c: Credit) {
  return {
    id: c.id,
    amount: formatAmount(c.amount, c.currency),
    remaining: formatAmount(c.remaining, c.currency),
    currency: c.currency,
    expiresAt: c.expiresAt,
  };
}

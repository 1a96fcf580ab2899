import { ActivityFailure, condition, defineQuery, defineSignal, ParentClosePolicy, proxyActivities, setHandler, sleep, startChild } from '@temporalio/workflow';
import { childVisibility, setStatusAttribute } from './visibility.js';
import type { Activities } from '../activities/index.js';
import type { CurrencyCode } from '../domain/money.js';
import type { AttemptStatus, PaymentMethod, PaymentStatus } from '../domain/payments.js';
import { INPUT_ERROR, NOT_FOUND, retryUnless, shortActivity } from './activity-options.js';

export interface PaymentCascadeInput {
  paymentId: string;
  projectId: string;
  /** The project's methods, in the owner's order, as they were when the top-up was asked for. */
  methods: PaymentMethod[];
  /** Seconds between checks of an open crypto invoice. */
  pollSeconds: number;
  heartbeatTimeoutSeconds: number;
  /** Tries per method for transient errors (network, rate limits, provider 5xx), with backoff, unless the method sets its own. */
  maxTries?: number;
}

export interface PaymentCascadeState {
  status: PaymentStatus;
  paidBy: string | null;
  error: string | null;
  attempts: Array<{ seq: number; method: PaymentMethod['kind']; status: AttemptStatus; error: string | null; details: Record<string, unknown> }>;
}

export const approvePaymentSignal = defineSignal<[{ by: string }]>('approve');
export const paymentStateQuery = defineQuery<PaymentCascadeState>('paymentState');

const book = proxyActivities<Activities>(shortActivity());

/**
 * Tops up a project's prepaid balance, trying its payment methods in the owner's order: free
 * credits, a card through Stripe, a crypto invoice waited on until its deadline, and last a
 * manual approval (a signal) waited on until its timeout. A method that declines or keeps failing
 * falls through to the next; transient errors are retried with backoff first. Every attempt is
 * written to Postgres and the audit log as it happens, and the state is a query.
 */
export async function paymentCascade(input: PaymentCascadeInput): Promise<PaymentCascadeState> {
  const state: PaymentCascadeState = { status: 'running', paidBy: null, error: null, attempts: [] };
  setHandler(paymentStateQuery, () => state);
  let approval: { by: string } | null = null;
  let awaitingApproval = false;
  setHandler(approvePaymentSignal, (a) => {
    if (awaitingApproval) approval ??= a;
  });

  /** Each method's activities, retried with backoff up to the method's own `maxTries` (else the cascade's, else 4). */
  const activitiesFor = (m: PaymentMethod) => {
    const maximumAttempts = ('maxTries' in m ? m.maxTries : undefined) ?? input.maxTries ?? 4;
    const retry = retryUnless([NOT_FOUND, INPUT_ERROR], { backoffCoefficient: 2, maximumAttempts });
    const heartbeatTimeout = `${input.heartbeatTimeoutSeconds}s`;
    return {
      // Card charges and chain reads heartbeat, so one cut short by a dead worker is retried within the heartbeat timeout.
      pay: proxyActivities<Activities>({ startToCloseTimeout: '2 minutes', heartbeatTimeout, retry }),
      watch: proxyActivities<Activities>({ startToCloseTimeout: '2 minutes', heartbeatTimeout, retry }),
      chain: proxyActivities<Activities>({ startToCloseTimeout: '2 minutes', retry }),
    };
  };

  const { paymentId } = input;
  const record = async (
    seq: number,
    method: PaymentMethod['kind'],
    status: AttemptStatus,
    error: string | null = null,
    details: Record<string, unknown> = {},
  ) => {
    const a = state.attempts.find((x) => x.seq === seq);
    if (a) Object.assign(a, { status, error, details: { ...a.details, ...details } });
    else state.attempts.push({ seq, method, status, error, details });
    await book.recordPaymentAttempt({ paymentId, seq, method, status, error, details });
  };
  const reason = (err: unknown) => (err instanceof ActivityFailure && err.cause ? err.cause.message : err instanceof Error ? err.message : String(err));

  /** One method; resolves true when it paid. */
  async function attempt(seq: number, index: number, m: PaymentMethod): Promise<boolean> {
    const { pay, watch, chain } = activitiesFor(m);
    await record(seq, m.kind, 'running');
    switch (m.kind) {
      case 'credits': {
        const r = await chain.payWithCredits({ paymentId, seq, at: new Date(Date.now()).toISOString() });
        await record(seq, 'credits', r.ok ? 'succeeded' : 'declined', r.error, r.ok ? { used: r.used } : {});
        return r.ok;
      }
      case 'card': {
        const r = await pay.chargeCard({ paymentId, seq, methodIndex: index });
        await record(seq, 'card', r.outcome === 'succeeded' ? 'succeeded' : r.outcome, r.error, { paymentIntentId: r.paymentIntentId, intentStatus: r.status });
        return r.outcome === 'succeeded';
      }
      case 'crypto': {
        const deadlineMs = Date.now() + m.timeoutSeconds * 1000;
        const inv = await watch.openCryptoInvoice({ paymentId, seq, methodIndex: index, deadline: new Date(deadlineMs).toISOString() });
        if (!inv.ok) {
          await record(seq, 'crypto', 'failed', inv.error);
          return false;
        }
        const invoice = { invoiceId: inv.invoiceId, chain: inv.chain, address: inv.address, amount: inv.amount, coin: inv.coin, deadline: inv.deadline };
        await record(seq, 'crypto', 'waiting', null, invoice);
        const until = Date.parse(inv.deadline);
        for (;;) {
          const c = await watch.checkCryptoInvoice({ paymentId, seq, invoiceId: inv.invoiceId });
          if (c.status === 'paid') {
            await record(seq, 'crypto', 'succeeded', null, { txHash: c.txHash, confirmations: c.confirmations });
            return true;
          }
          const seen = state.attempts.find((x) => x.seq === seq)!;
          if (c.status === 'seen' && seen.details.confirmations !== c.confirmations) {
            await record(seq, 'crypto', 'waiting', null, { txHash: c.txHash, confirmations: c.confirmations, required: c.required });
          }
          const left = until - Date.now();
          // A transfer already seen on chain is waited on for its confirmations past the deadline.
          if (left <= 0 && c.status === 'open') break;
          await sleep(Math.max(1000, Math.min(input.pollSeconds * 1000, left > 0 ? left : input.pollSeconds * 1000)));
        }
        await chain.expireCryptoInvoice({ invoiceId: inv.invoiceId });
        await record(seq, 'crypto', 'expired', `no payment of ${inv.amount} ${inv.coin} to ${inv.address} before ${inv.deadline}`);
        return false;
      }
      case 'manual': {
        awaitingApproval = true;
        await record(seq, 'manual', 'waiting', null, { timeoutSeconds: m.timeoutSeconds });
        state.status = 'manual_required';
        setStatusAttribute(state.status);
        await book.setPaymentState({ paymentId, status: 'manual_required' });
        const approved = await condition(() => approval !== null, m.timeoutSeconds * 1000);
        awaitingApproval = false;
        if (!approved) {
          await record(seq, 'manual', 'expired', `no approval within ${m.timeoutSeconds}s`);
          if (index < input.methods.length - 1) {
            state.status = 'running';
            setStatusAttribute(state.status);
            await book.setPaymentState({ paymentId, status: 'running' });
          }
          return false;
        }
        await record(seq, 'manual', 'approved', null, { approvedBy: approval!.by });
        return true;
      }
    }
  }

  for (const [index, m] of input.methods.entries()) {
    const seq = index + 1;
    let paid = false;
    try {
      paid = await attempt(seq, index, m);
    } catch (err) {
      // Retries used up (or a non-retryable error): this method failed, the next one is tried.
      await record(seq, m.kind, 'failed', reason(err));
    }
    if (paid) {
      await book.creditTopup({ paymentId, method: m.kind });
      Object.assign(state, { status: 'succeeded', paidBy: m.kind, error: null });
      setStatusAttribute(state.status);
      await book.setPaymentState({ paymentId, status: 'succeeded', paidBy: m.kind, error: null });
      return state;
    }
  }
  const lastManual = input.methods.at(-1)?.kind === 'manual';
  state.error =
    input.methods.length === 0
      ? 'the project has no payment methods'
      : lastManual
        ? 'manual approval timed out after every other method failed'
        : 'every payment method failed';
  state.status = 'failed';
  setStatusAttribute(state.status);
  await book.setPaymentState({ paymentId, status: 'failed', error: state.error });
  return state;
}

export interface RenewalTopupInput {
  projectId: string;
  amount: string;
  currency: CurrencyCode;
  pollSeconds: number;
  heartbeatTimeoutSeconds: number;
}

/**
 * Started by the project's auto-top-up Temporal Schedule when its budget window renews: opens
 * the window's payment (one per window) and starts its cascade, which outlives this workflow.
 */
export async function renewalTopup(input: RenewalTopupInput): Promise<{ paymentId: string | null; note: string }> {
  const r = await book.openRenewalPayment({
    projectId: input.projectId,
    amount: input.amount,
    currency: input.currency,
    at: new Date(Date.now()).toISOString(),
  });
  if (r.paymentId === null) return { paymentId: null, note: `skipped: ${r.reason}` };
  try {
    await startChild(paymentCascade, {
      workflowId: r.paymentId,
      // A payment's cascade runs once, even after it has ended.
      workflowIdReusePolicy: 'REJECT_DUPLICATE',
      parentClosePolicy: ParentClosePolicy.ABANDON,
      ...childVisibility('payment', { project: input.projectId, status: 'running' }),
      args: [
        {
          paymentId: r.paymentId,
          projectId: input.projectId,
          methods: r.methods,
          pollSeconds: input.pollSeconds,
          heartbeatTimeoutSeconds: input.heartbeatTimeoutSeconds,
        },
      ],
    });
  } catch (err) {
    // A second firing in the same window: that window's cascade already ran (or runs).
    if ((err as Error).name === 'WorkflowExecutionAlreadyStartedError') return { paymentId: r.paymentId, note: 'this window was already topped up' };
    throw err;
  }
  return { paymentId: r.paymentId, note: 'started' };
}

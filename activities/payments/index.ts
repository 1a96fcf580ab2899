import crypto from 'node:crypto';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { FxUnavailableError, type Ratio } from '../../domain/fx.js';
import { formatAmount, MoneyError, parseAmount, type CurrencyCode } from '../../domain/money.js';
import {
  CHAIN_COINS,
  ETH_TAG_SPACE,
  invoiceBaseUnits,
  stripeMinorUnits,
  type AttemptStatus,
  type PaymentMethod,
  type PaymentStatus,
} from '../../domain/payments.js';
import { createFxService } from '../../fx/service.js';
import { appendAudit } from '../../store/audit.js';
import type { Db } from '../../store/db.js';
import { getProject } from '../../store/projects.js';
import { idFromName } from '../../store/ids.js';
import {
  claimInvoiceTx,
  AUTO_TOPUP_ACTOR,
  creditTopup,
  getAutoTopupConfig,
  openAutoTopupPayment,
  mergeAttemptDetails,
  getInvoice,
  getPayment,
  getPaymentMethods,
  listAttempts,
  countAttemptTry,
  noteAttemptTry,
  openInvoice,
  setPaymentStatus,
  updateInvoice,
  upsertAttempt,
  usedTxHashes,
  type CryptoInvoice,
  type InvoiceFx,
  type Payment,
} from '../../store/payments.js';
import type { ActivityDeps } from '../deps.js';
import { payWithCredits } from './credits.js';
import { createEthClient, ethInvoiceStart, findEthPayment } from './eth.js';
import { chargeCard, createStripe, StripeTransientError } from './stripe.js';
import { findTonPayment, tonCenterReader, type TonReader } from './ton.js';

export type { CardOutcome } from './stripe.js';

export interface InvoiceCheck {
  status: 'open' | 'seen' | 'paid';
  txHash: string | null;
  confirmations: number;
  required: number;
}

/** Runs `fn`, heartbeating every second, so a worker that dies mid-call is noticed within the heartbeat timeout. */
async function withHeartbeat<T>(fn: () => Promise<T>): Promise<T> {
  const timer = setInterval(() => Context.current().heartbeat(), 1000);
  try {
    Context.current().heartbeat();
    return await fn();
  } finally {
    clearInterval(timer);
  }
}

async function loadPayment(db: Db, id: string): Promise<Payment> {
  const p = await getPayment(db, id);
  if (!p) throw ApplicationFailure.nonRetryable(`payment ${id} not found`, 'NotFoundError');
  return p;
}

function methodAt<K extends PaymentMethod['kind']>(p: Payment, index: number, kind: K): Extract<PaymentMethod, { kind: K }> {
  const m = p.methods[index];
  if (!m || m.kind !== kind) throw ApplicationFailure.nonRetryable(`payment ${p.id} has no ${kind} method at position ${index}`, 'InputError');
  return m as Extract<PaymentMethod, { kind: K }>;
}

/**
 * The payment cascade's side effects. Each is keyed by the payment id and attempt seq: a card
 * charge's Stripe idempotency key, a crypto invoice's id and the balance entry all derive from
 * them, so a retried activity or a replayed workflow never charges or credits twice.
 */
export function createPaymentActivities(
  { db, config, log, fx: givenFx }: Pick<ActivityDeps, 'db' | 'config' | 'log' | 'fx'>,
  overrides: { tonReader?: TonReader } = {},
) {
  // The deployment's rates (cached, shared through fx_rates): a tenant never sets a conversion rate.
  const fx = givenFx ?? createFxService({ config, db, log });
  const stripe = config.payments.stripe ? createStripe(config.payments.stripe.secretKey, config.payments.stripe.apiBase) : null;
  const eth = config.payments.eth ? createEthClient(config.payments.eth.rpcUrl) : null;
  const ton = overrides.tonReader ?? (config.payments.ton ? tonCenterReader(config.payments.ton.apiUrl, config.payments.ton.apiKey) : null);

  /** Notes a failed try of an attempt before the retry policy runs it again. */
  async function noteTry<T>(paymentId: string, seq: number, fn: () => Promise<T>): Promise<T> {
    // Counted before the try, so a try cut short by a dead worker is counted too.
    await countAttemptTry(db, paymentId, seq, Context.current().info.attempt);
    try {
      return await fn();
    } catch (err) {
      await noteAttemptTry(db, paymentId, seq, Context.current().info.attempt, (err as Error).message).catch(() => {});
      throw err;
    }
  }

  return {
    async recordPaymentAttempt(a: {
      paymentId: string;
      seq: number;
      method: string;
      status: AttemptStatus;
      error?: string | null;
      details?: Record<string, unknown>;
    }): Promise<void> {
      const p = await loadPayment(db, a.paymentId);
      await upsertAttempt(db, a);
      await appendAudit(db, {
        actor: 'system',
        action: `payment.attempt.${a.status}`,
        subjectType: 'payment',
        subjectId: a.paymentId,
        projectId: p.projectId,
        details: { seq: a.seq, method: a.method, ...(a.error ? { error: a.error } : {}), ...(a.details ? { details: a.details } : {}) },
        idempotencyKey: `payment:${a.paymentId}:attempt:${a.seq}:${a.status}`,
      });
    },

    async setPaymentState(s: { paymentId: string; status: PaymentStatus; paidBy?: string | null; error?: string | null }): Promise<void> {
      const p = await loadPayment(db, s.paymentId);
      await setPaymentStatus(db, s.paymentId, s.status, { paidBy: s.paidBy, error: s.error });
      await appendAudit(db, {
        actor: 'system',
        action: `payment.${s.status}`,
        subjectType: 'payment',
        subjectId: s.paymentId,
        projectId: p.projectId,
        details: {
          amount: formatAmount(p.amount, p.currency),
          currency: p.currency,
          ...(s.paidBy ? { paidBy: s.paidBy } : {}),
          ...(s.error ? { error: s.error } : {}),
        },
        idempotencyKey: `payment:${s.paymentId}:${s.status}`,
      });
    },

    async payWithCredits(a: { paymentId: string; seq: number; at: string }) {
      return noteTry(a.paymentId, a.seq, () => payWithCredits(db, a.paymentId, new Date(a.at)));
    },

    /** One card charge; Stripe's idempotency key is the payment id and attempt seq. */
    async chargeCard(a: { paymentId: string; seq: number; methodIndex: number }) {
      return noteTry(a.paymentId, a.seq, async () => {
        const p = await loadPayment(db, a.paymentId);
        const m = methodAt(p, a.methodIndex, 'card');
        if (!stripe)
          return {
            outcome: 'failed' as const,
            paymentIntentId: null,
            status: null,
            error: 'card payments are not configured on this worker (STRIPE_SECRET_KEY)',
          };
        let amount: number;
        try {
          amount = stripeMinorUnits(p.amount, p.currency);
        } catch (e) {
          return { outcome: 'failed' as const, paymentIntentId: null, status: null, error: (e as Error).message };
        }
        const prior = (await listAttempts(db, a.paymentId)).find((x) => x.seq === a.seq);
        const existingIntentId = typeof prior?.details.paymentIntentId === 'string' ? prior.details.paymentIntentId : null;
        try {
          const r = await withHeartbeat(() =>
            chargeCard(stripe, {
              idempotencyKey: `${a.paymentId}:${a.seq}`,
              amount,
              currency: p.currency,
              customer: m.customer,
              paymentMethod: m.paymentMethod,
              existingIntentId,
              metadata: { paymentId: a.paymentId, projectId: p.projectId },
            }),
          );
          if (r.paymentIntentId)
            await upsertAttempt(db, { paymentId: a.paymentId, seq: a.seq, method: 'card', status: 'running', details: { paymentIntentId: r.paymentIntentId } });
          return r;
        } catch (e) {
          if (e instanceof StripeTransientError) throw ApplicationFailure.retryable(e.message, 'StripeTransientError');
          throw e;
        }
      });
    },

    /**
     * Opens the attempt's crypto invoice (once: its id is the payment id and seq), to the
     * deployment's receiving address for the chain, converted with the live FX rate (recorded on
     * the invoice and the attempt). What tells its transfer apart at that shared address: a
     * unique amount (ETH) or a unique comment (TON).
     */
    async openCryptoInvoice(a: { paymentId: string; seq: number; methodIndex: number; deadline: string }) {
      return noteTry(a.paymentId, a.seq, () =>
        withHeartbeat(async () => {
          const p = await loadPayment(db, a.paymentId);
          // Only the chain and timeout are the tenant's: an `address` or `rate` left in an old method is ignored.
          const m = methodAt(p, a.methodIndex, 'crypto');
          const id = `invoice-${a.paymentId}-${a.seq}`;
          const { coin, decimals } = CHAIN_COINS[m.chain];
          const present = async (inv: CryptoInvoice) => {
            // What the payer must get right, on the attempt for the api to show.
            await mergeAttemptDetails(db, a.paymentId, a.seq, { ...(inv.memo ? { memo: inv.memo } : {}), fx: inv.fx });
            return {
              ok: true as const,
              invoiceId: inv.id,
              address: inv.address,
              chain: m.chain,
              amount: formatAmount(inv.amountBase * 10n ** BigInt(18 - decimals), coin),
              coin,
              deadline: inv.deadline,
              memo: inv.memo,
              fx: inv.fx,
            };
          };
          const existing = await getInvoice(db, id);
          if (existing) return present(existing);
          let address: string;
          let fromBlock: string | null = null;
          if (m.chain === 'eth') {
            if (!eth || !config.payments.eth)
              return { ok: false as const, error: 'ETH payments are not configured on this worker (ETH_RPC_URL, ETH_RECEIVING_ADDRESS)' };
            address = config.payments.eth.address;
            fromBlock = (await ethInvoiceStart(eth)).toString();
          } else if (m.chain === 'ton') {
            if (!ton || !config.payments.ton)
              return { ok: false as const, error: 'TON payments are not configured on this worker (TON_API_URL, TON_RECEIVING_ADDRESS)' };
            address = config.payments.ton.address;
          } else {
            return { ok: false as const, error: 'BTC payments are not supported by this platform yet' };
          }
          let invoiceFx: InvoiceFx | null = null;
          let amountBase: bigint;
          try {
            let ratio: Ratio | undefined;
            if (p.currency !== coin) {
              const rate = await fx.rate(p.currency, coin);
              ratio = rate.ratio;
              invoiceFx = { from: rate.from, to: rate.to, rate: rate.rate, source: rate.source, asOf: rate.asOf, fetchedAt: rate.fetchedAt };
            }
            amountBase = invoiceBaseUnits(p.amount, p.currency, m.chain, ratio);
          } catch (e) {
            if (e instanceof FxUnavailableError || e instanceof MoneyError) return { ok: false as const, error: (e as Error).message };
            throw e;
          }
          const common = { id, paymentId: a.paymentId, chain: m.chain, address, fx: invoiceFx, fromBlock, deadline: new Date(a.deadline) };
          if (m.chain === 'ton') {
            const inv = await openInvoice(db, { ...common, amountBase, tag: 0n, memo: id, matchKey: `memo:${id}` });
            if (!inv) throw ApplicationFailure.nonRetryable(`invoice memo ${id} is taken`, 'InputError');
            return present(inv);
          }
          // A random tag, tried again while another invoice to the address asks for the same amount.
          for (let i = 0; i < 32; i++) {
            const tag = 1n + BigInt(crypto.randomInt(Number(ETH_TAG_SPACE - 1n)));
            const inv = await openInvoice(db, { ...common, amountBase: amountBase + tag, tag, memo: null, matchKey: `amount:${amountBase + tag}` });
            if (inv) return present(inv);
          }
          throw ApplicationFailure.retryable(`no unique amount near ${amountBase} wei left free at ${address}`, 'InvoiceAmountTaken');
        }),
      );
    },

    /** Looks for the invoice's payment on its chain and counts its confirmations. */
    async checkCryptoInvoice(a: { paymentId: string; seq: number; invoiceId: string }): Promise<InvoiceCheck> {
      return noteTry(a.paymentId, a.seq, () =>
        withHeartbeat(async () => {
          const inv = await getInvoice(db, a.invoiceId);
          if (!inv) throw ApplicationFailure.nonRetryable(`invoice ${a.invoiceId} not found`, 'NotFoundError');
          if (inv.chain === 'eth') {
            if (!eth) throw ApplicationFailure.nonRetryable('ETH_RPC_URL is not set on this worker', 'InputError');
            const required = config.payments.eth!.confirmations;
            const found = await findEthPayment(
              eth,
              { address: inv.address, amountWei: inv.amountBase, fromBlock: BigInt(inv.fromBlock ?? '0'), knownTx: inv.txHash },
              (hashes) => usedTxHashes(db, 'eth', hashes),
            );
            if (!found) return { status: 'open', txHash: null, confirmations: 0, required };
            const paid = found.confirmations >= required;
            // Lost to another invoice's check in a race: not this invoice's transfer.
            if (!(await claimInvoiceTx(db, inv.id, { txHash: found.txHash, confirmations: found.confirmations, paid }))) {
              return { status: 'open', txHash: null, confirmations: 0, required };
            }
            return { status: paid ? 'paid' : 'seen', txHash: found.txHash, confirmations: found.confirmations, required };
          }
          if (inv.chain === 'ton') {
            if (!ton) throw ApplicationFailure.nonRetryable('TON_API_URL is not set on this worker', 'InputError');
            const found = await findTonPayment(
              ton,
              { address: inv.address, amountNano: inv.amountBase, comment: inv.memo ?? inv.id, openedAt: new Date(inv.createdAt) },
              async (hashes) => {
                const used = await usedTxHashes(db, 'ton', hashes);
                if (inv.txHash) used.delete(inv.txHash);
                return used;
              },
            );
            if (!found || !(await claimInvoiceTx(db, inv.id, { txHash: found.txHash, confirmations: 1, paid: true }))) {
              return { status: 'open', txHash: null, confirmations: 0, required: 1 };
            }
            return { status: 'paid', txHash: found.txHash, confirmations: 1, required: 1 };
          }
          throw ApplicationFailure.nonRetryable(`cannot check ${inv.chain} invoices`, 'InputError');
        }),
      );
    },

    async expireCryptoInvoice(a: { invoiceId: string }): Promise<void> {
      const inv = await getInvoice(db, a.invoiceId);
      if (inv?.status === 'open') await updateInvoice(db, a.invoiceId, { status: 'expired' });
    },

    /**
     * The project's automatic top-up, if it needs one now: a payment is opened only when the
     * balance not held by reservations is below the configured threshold (store/payments.ts
     * `openAutoTopupPayment`); while one is running it is named again instead. Fired by the
     * project's schedule (each budget window) and after settlements that leave the balance low.
     * `amount`/`currency` are the schedule's; the stored configuration wins when there is one.
     */
    async openRenewalPayment(a: {
      projectId: string;
      amount: string;
      currency: CurrencyCode;
      at: string;
    }): Promise<{ paymentId: string; methods: PaymentMethod[] } | { paymentId: null; reason: string }> {
      const project = await getProject(db, a.projectId);
      if (!project) return { paymentId: null, reason: `project ${a.projectId} does not exist` };
      const methods = await getPaymentMethods(db, a.projectId);
      if (!methods.length) return { paymentId: null, reason: 'the project has no payment methods' };
      const auto = await getAutoTopupConfig(db, a.projectId);
      const amount = auto?.amount ?? parseAmount(a.amount, a.currency);
      const currency = auto?.currency ?? a.currency;
      // A schedule made before thresholds: top up when the balance is below one top-up.
      const threshold = auto?.threshold ?? (currency === project.currency ? amount : 0n);
      const opened = await openAutoTopupPayment(db, {
        project,
        amount,
        currency,
        threshold,
        methods,
        idOf: (n) => idFromName('payment', `auto-topup\0${a.projectId}\0${n}`),
      });
      if (opened.paymentId === null) return opened;
      const payment = (await getPayment(db, opened.paymentId))!;
      await appendAudit(db, {
        actor: AUTO_TOPUP_ACTOR,
        action: 'payment.requested',
        subjectType: 'payment',
        subjectId: payment.id,
        projectId: a.projectId,
        details: {
          amount: formatAmount(payment.amount, payment.currency),
          currency: payment.currency,
          reason: payment.reason,
          threshold: formatAmount(threshold, project.currency),
          methods: payment.methods.map((m) => m.kind),
        },
        idempotencyKey: `payment:${payment.id}:requested`,
      });
      return { paymentId: payment.id, methods: payment.methods };
    },

    /**
     * Credits the paid top-up to the project's prepaid balance, once per payment; a top-up in
     * another currency than the project's is converted at the live rate (rounded down to the
     * project currency's minor unit, so the balance never holds more than was paid), and the rate
     * is kept on the balance entry. Without a rate it throws and the activity is retried.
     */
    async creditTopup(a: { paymentId: string; method: string }): Promise<{ credited: boolean }> {
      const p = await loadPayment(db, a.paymentId);
      const project = await getProject(db, p.projectId);
      if (!project) throw ApplicationFailure.nonRetryable(`project ${p.projectId} not found`, 'NotFoundError');
      let credited = p.amount;
      let rate: { rate: string; source: string; asOf: string } | null = null;
      if (p.currency !== project.currency) {
        const c = await fx.convert(p.amount, p.currency, project.currency, 'down', 'minor');
        credited = c.amount;
        rate = { rate: c.rate, source: c.source, asOf: c.asOf };
      }
      const done = await creditTopup(db, {
        paymentId: p.id,
        projectId: p.projectId,
        amount: p.amount,
        currency: p.currency,
        method: a.method,
        credited,
        projectCurrency: project.currency,
        fx: rate,
      });
      await appendAudit(db, {
        actor: 'system',
        action: 'balance.topped_up',
        subjectType: 'project',
        subjectId: p.projectId,
        projectId: p.projectId,
        details: {
          paymentId: p.id,
          amount: formatAmount(p.amount, p.currency),
          currency: p.currency,
          method: a.method,
          credited: formatAmount(credited, project.currency),
          projectCurrency: project.currency,
          ...(rate ? { fx: rate } : {}),
        },
        idempotencyKey: `payment:${p.id}:credited`,
      });
      return { credited: done };
    },
  };
}

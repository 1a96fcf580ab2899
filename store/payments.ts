import crypto from 'node:crypto';
import type { Knex } from 'knex';
import { type CurrencyCode, formatAmount, fromNumeric, toNumeric } from '../domain/money.js';
import type { AttemptStatus, Chain, PaymentMethod, PaymentStatus } from '../domain/payments.js';
import { BALANCE_SCOPE, balanceAccountId, type BillingMode } from '../domain/budget.js';
import type { Db } from './db.js';
import { recordAlerts } from './alerts.js';
import { appendEvent, appendEvents, inTransaction } from './events.js';
import { keyOfRow, keyset, type CreatedKey, type KeysetPage } from './paging.js';

/**
 * Payments and what they touch: a project's ordered payment methods, top-up payments with one
 * row per attempt (written by the paymentCascade workflow's activities), the free-credit wallet,
 * crypto invoices and the prepaid balance ledger. Every write a workflow makes is keyed by the
 * payment id (and attempt seq), so a retried activity changes nothing twice.
 */
type Conn = Db | Knex.Transaction;

export interface Payment {
  id: string;
  projectId: string;
  amount: bigint;
  currency: CurrencyCode;
  reason: string;
  status: PaymentStatus;
  paidBy: string | null;
  error: string | null;
  methods: PaymentMethod[];
  createdBy: string;
  createdAt: string;
  endedAt: string | null;
}

export interface PaymentAttempt {
  seq: number;
  method: string;
  status: AttemptStatus;
  tries: number;
  error: string | null;
  details: Record<string, unknown>;
  startedAt: string;
  endedAt: string | null;
}

const iso = (v: unknown) => (v ? new Date(v as string).toISOString() : null);

export async function setPaymentMethods(db: Db, projectId: string, methods: PaymentMethod[]): Promise<void> {
  await db.transaction(async (trx) => {
    await trx('payment_methods').where({ project_id: projectId }).delete();
    if (methods.length) {
      await trx('payment_methods').insert(methods.map((m, position) => ({ project_id: projectId, position, kind: m.kind, config: JSON.stringify(m) })));
    }
  });
}

export async function getPaymentMethods(db: Conn, projectId: string): Promise<PaymentMethod[]> {
  const rows = await db('payment_methods').where({ project_id: projectId }).orderBy('position');
  return rows.map((r) => (typeof r.config === 'string' ? JSON.parse(r.config) : r.config) as PaymentMethod);
}

export async function insertPayment(
  db: Conn,
  p: { id: string; projectId: string; amount: bigint; currency: CurrencyCode; reason: string; methods: PaymentMethod[]; createdBy: string },
): Promise<void> {
  await inTransaction(db, async (trx) => {
    const inserted = await trx('payments')
      .insert({
        id: p.id,
        project_id: p.projectId,
        amount: toNumeric(p.amount),
        currency: p.currency,
        reason: p.reason,
        status: 'running',
        methods: JSON.stringify(p.methods),
        created_by: p.createdBy,
      })
      .onConflict('id')
      .ignore()
      .returning('id');
    if (inserted.length) {
      await appendEvent(trx, {
        kind: 'payment.status',
        projectId: p.projectId,
        subjectId: p.id,
        data: { status: 'running', previous: null, amount: formatAmount(p.amount, p.currency), currency: p.currency },
      });
    }
  });
}

export async function getPayment(db: Conn, id: string): Promise<Payment | null> {
  const r = await db('payments').where({ id }).first();
  return r ? toPayment(r) : null;
}

/** A project's payments newest first, one page, each with its attempts (read in one more query). */
export async function pagePayments(
  db: Db,
  projectId: string,
  page: Omit<KeysetPage, 'desc'>,
): Promise<Array<{ item: Payment; attempts: PaymentAttempt[]; key: CreatedKey }>> {
  const rows = await keyset(db('payments').where('payments.project_id', projectId), 'payments', { ...page, desc: true });
  if (!rows.length) return [];
  const attempts = await db('payment_attempts')
    .whereIn(
      'payment_id',
      rows.map((r: any) => r.id),
    )
    .orderBy([{ column: 'payment_id' }, { column: 'seq' }]);
  return rows.map((r: any) => ({
    item: toPayment(r),
    attempts: attempts.filter((a) => a.payment_id === r.id).map(toAttempt),
    key: keyOfRow(r),
  }));
}

function toPayment(r: Record<string, any>): Payment {
  return {
    id: r.id,
    projectId: r.project_id,
    amount: fromNumeric(r.amount),
    currency: r.currency,
    reason: r.reason,
    status: r.status,
    paidBy: r.paid_by,
    error: r.error,
    methods: typeof r.methods === 'string' ? JSON.parse(r.methods) : r.methods,
    createdBy: r.created_by,
    createdAt: iso(r.created_at)!,
    endedAt: iso(r.ended_at),
  };
}

export async function listAttempts(db: Conn, paymentId: string): Promise<PaymentAttempt[]> {
  const rows = await db('payment_attempts').where({ payment_id: paymentId }).orderBy('seq');
  return rows.map(toAttempt);
}

function toAttempt(r: Record<string, any>): PaymentAttempt {
  return {
    seq: r.seq,
    method: r.method,
    status: r.status,
    tries: r.tries,
    error: r.error,
    details: typeof r.details === 'string' ? JSON.parse(r.details) : r.details,
    startedAt: iso(r.started_at)!,
    endedAt: iso(r.ended_at),
  };
}

/** Sets the payment's status; a final status is written once (a replayed activity cannot undo it). */
export async function setPaymentStatus(db: Conn, id: string, status: PaymentStatus, u: { paidBy?: string | null; error?: string | null } = {}): Promise<void> {
  const final = status === 'succeeded' || status === 'failed';
  await inTransaction(db, async (trx) => {
    const before = await trx('payments').where({ id }).forUpdate().first('status', 'project_id');
    if (!before || before.status === 'succeeded' || before.status === 'failed') return;
    await trx('payments')
      .where({ id })
      .update({
        status,
        ...(u.paidBy !== undefined ? { paid_by: u.paidBy } : {}),
        ...(u.error !== undefined ? { error: u.error } : {}),
        ...(final ? { ended_at: trx.fn.now() } : {}),
      });
    if (before.status === status) return;
    // Under the row lock, past the "already final" check: a failure raises its alert once.
    const alerts =
      status === 'failed'
        ? await recordAlerts(trx, [
            {
              kind: 'payment_failed',
              severity: 'critical',
              projectId: before.project_id,
              subjectId: id,
              message: `payment ${id} failed${u.error ? `: ${u.error}` : ''}`,
              data: { paymentId: id, ...(u.error ? { error: u.error } : {}) },
              dedupeKey: `payment:${id}:failed`,
            },
          ])
        : [];
    await appendEvents(trx, [
      {
        kind: 'payment.status',
        projectId: before.project_id,
        subjectId: id,
        data: { status, previous: before.status, ...(u.paidBy ? { paidBy: u.paidBy } : {}), ...(u.error ? { error: u.error } : {}) },
      },
      ...alerts,
    ]);
  });
}

/** Writes (or updates) one attempt row, keyed by (payment, seq). */
export async function upsertAttempt(
  db: Conn,
  a: { paymentId: string; seq: number; method: string; status: AttemptStatus; error?: string | null; details?: Record<string, unknown>; tries?: number },
): Promise<void> {
  const ended = !['running', 'waiting'].includes(a.status);
  const row = {
    payment_id: a.paymentId,
    seq: a.seq,
    method: a.method,
    status: a.status,
    error: a.error ?? null,
    details: JSON.stringify(a.details ?? {}),
    ...(a.tries !== undefined ? { tries: a.tries } : {}),
    ended_at: ended ? db.fn.now() : null,
  };
  const merge: Record<string, unknown> = { status: row.status, error: row.error, ended_at: row.ended_at };
  if (a.details) merge.details = db.raw('payment_attempts.details || ?::jsonb', [row.details]);
  if (a.tries !== undefined) merge.tries = db.raw('GREATEST(payment_attempts.tries, ?)', [a.tries]);
  await db('payment_attempts').insert(row).onConflict(['payment_id', 'seq']).merge(merge);
}

/** Adds `details` to an attempt's details without touching its status. */
export async function mergeAttemptDetails(db: Conn, paymentId: string, seq: number, details: Record<string, unknown>): Promise<void> {
  await db('payment_attempts')
    .where({ payment_id: paymentId, seq })
    .update({ details: db.raw('payment_attempts.details || ?::jsonb', [JSON.stringify(details)]) });
}

/** Raises an attempt's try count to `tries` (the activity's attempt number). */
export async function countAttemptTry(db: Conn, paymentId: string, seq: number, tries: number): Promise<void> {
  await db('payment_attempts')
    .where({ payment_id: paymentId, seq })
    .update({ tries: db.raw('GREATEST(tries, ?)', [tries]) });
}

/** Counts one more try of an attempt (an activity attempt that failed and will be retried). */
export async function noteAttemptTry(db: Conn, paymentId: string, seq: number, tries: number, error: string): Promise<void> {
  await db('payment_attempts')
    .where({ payment_id: paymentId, seq })
    .update({ tries: db.raw('GREATEST(tries, ?)', [tries]), error });
}

// ---- free credits -------------------------------------------------------------------------

export interface Credit {
  id: string;
  projectId: string;
  currency: CurrencyCode;
  amount: bigint;
  remaining: bigint;
  expiresAt: string;
  createdAt: string;
}

const toCredit = (r: Record<string, any>): Credit => ({
  id: r.id,
  projectId: r.project_id,
  currency: r.currency,
  amount: fromNumeric(r.amount),
  remaining: fromNumeric(r.remaining),
  expiresAt: iso(r.expires_at)!,
  createdAt: iso(r.created_at)!,
});

export async function addCredit(
  db: Conn,
  c: { id?: string; projectId: string; currency: CurrencyCode; amount: bigint; expiresAt: Date; createdBy: string },
): Promise<Credit> {
  const id = c.id ?? `credit-${crypto.randomUUID()}`;
  await db('credits')
    .insert({
      id,
      project_id: c.projectId,
      currency: c.currency,
      amount: toNumeric(c.amount),
      remaining: toNumeric(c.amount),
      expires_at: c.expiresAt,
      created_by: c.createdBy,
    })
    .onConflict('id')
    .ignore();
  return toCredit(await db('credits').where({ id }).first());
}

export async function listCredits(db: Conn, projectId: string): Promise<Credit[]> {
  return (await db('credits').where({ project_id: projectId }).orderBy(['expires_at', 'id'])).map(toCredit);
}

export type CreditUse = { ok: true; used: Array<{ creditId: string; amount: bigint }> } | { ok: false; available: bigint };

/**
 * Pays `amount` from the project's unexpired credits in `currency`, soonest-expiring first, all
 * or nothing. Idempotent on the payment id: a second call returns what the first one used.
 */
export async function useCredits(db: Db, u: { paymentId: string; projectId: string; amount: bigint; currency: CurrencyCode; now: Date }): Promise<CreditUse> {
  return db.transaction(async (trx) => {
    // One payment's credit use at a time per project, so two payments cannot spend the same credit.
    await trx.raw('SELECT pg_advisory_xact_lock(hashtext(?))', [`credits:${u.projectId}`]);
    const prior = await trx('credit_uses').where({ payment_id: u.paymentId });
    if (prior.length) return { ok: true, used: prior.map((r) => ({ creditId: r.credit_id, amount: fromNumeric(r.amount) })) };
    const rows = await trx('credits')
      .where({ project_id: u.projectId, currency: u.currency })
      .andWhere('expires_at', '>', u.now)
      .andWhere('remaining', '>', 0)
      .orderBy(['expires_at', 'id'])
      .forUpdate();
    const available = rows.reduce((sum, r) => sum + fromNumeric(r.remaining), 0n);
    if (available < u.amount) return { ok: false, available };
    let left = u.amount;
    const used: Array<{ creditId: string; amount: bigint }> = [];
    for (const r of rows) {
      if (left === 0n) break;
      const take = fromNumeric(r.remaining) < left ? fromNumeric(r.remaining) : left;
      await trx('credits')
        .where({ id: r.id })
        .update({ remaining: trx.raw('remaining - ?::numeric', [toNumeric(take)]) });
      await trx('credit_uses').insert({ payment_id: u.paymentId, credit_id: r.id, amount: toNumeric(take) });
      used.push({ creditId: r.id, amount: take });
      left -= take;
    }
    return { ok: true, used };
  });
}

// ---- crypto invoices ----------------------------------------------------------------------

/** The exchange rate an invoice was converted with (from the deployment's FX service). */
export interface InvoiceFx {
  from: CurrencyCode;
  to: CurrencyCode;
  rate: string;
  source: string;
  asOf: string;
  fetchedAt: string;
}

export interface CryptoInvoice {
  id: string;
  paymentId: string;
  chain: Chain;
  address: string;
  /** What the payer sends, in base units (wei, nanoton): the converted amount plus `tag`. */
  amountBase: bigint;
  /** Base units added to make the amount unique at the address (0 when matched by memo). */
  tag: bigint;
  /** The text comment a TON transfer must carry; null for invoices matched by amount. */
  memo: string | null;
  fx: InvoiceFx | null;
  status: 'open' | 'paid' | 'expired';
  fromBlock: string | null;
  txHash: string | null;
  confirmations: number;
  deadline: string;
  createdAt: string;
}

const wholeNumber = (v: unknown) => BigInt(String(v ?? '0').split('.')[0]!);
const toInvoice = (r: Record<string, any>): CryptoInvoice => ({
  id: r.id,
  paymentId: r.payment_id,
  chain: r.chain,
  address: r.address,
  amountBase: wholeNumber(r.amount_base),
  tag: wholeNumber(r.tag),
  memo: r.memo ?? null,
  fx: typeof r.fx === 'string' ? JSON.parse(r.fx) : (r.fx ?? null),
  status: r.status,
  fromBlock: r.from_block,
  txHash: r.tx_hash,
  confirmations: r.confirmations,
  deadline: iso(r.deadline)!,
  createdAt: iso(r.created_at)!,
});

/**
 * Opens the invoice `id` once; a repeated call returns the invoice opened first. `matchKey` is what
 * tells the invoice's transfer apart at its address ('amount:<base units>' or 'memo:<comment>'):
 * when another invoice to the address already holds it, nothing is written and the answer is
 * null, so the caller picks another amount. One statement, so concurrent openers cannot both win.
 */
export async function openInvoice(
  db: Conn,
  i: Pick<CryptoInvoice, 'id' | 'paymentId' | 'chain' | 'address' | 'amountBase' | 'tag' | 'memo' | 'fx' | 'fromBlock'> & { matchKey: string; deadline: Date },
): Promise<CryptoInvoice | null> {
  // ON CONFLICT DO NOTHING covers both the id and the (chain, address, match_key) index.
  await db('crypto_invoices')
    .insert({
      id: i.id,
      payment_id: i.paymentId,
      chain: i.chain,
      address: i.address,
      amount_base: i.amountBase.toString(),
      tag: i.tag.toString(),
      memo: i.memo,
      match_key: i.matchKey,
      fx: i.fx ? JSON.stringify(i.fx) : null,
      status: 'open',
      from_block: i.fromBlock,
      deadline: i.deadline,
    })
    .onConflict()
    .ignore();
  return getInvoice(db, i.id);
}

export async function getInvoice(db: Conn, id: string): Promise<CryptoInvoice | null> {
  const r = await db('crypto_invoices').where({ id }).first();
  return r ? toInvoice(r) : null;
}

/** Transactions already credited to some invoice (a transfer pays one invoice only). */
export async function usedTxHashes(db: Conn, chain: Chain, hashes: string[]): Promise<Set<string>> {
  if (!hashes.length) return new Set();
  return new Set(await db('crypto_invoices').where({ chain }).whereIn('tx_hash', hashes).pluck('tx_hash'));
}

/**
 * Ties the transfer `txHash` to invoice `id` (and notes its confirmations). False when the
 * transfer already pays another invoice: the unique (chain, tx_hash) index refuses the second
 * claim, however the two checks race.
 */
export async function claimInvoiceTx(db: Conn, id: string, c: { txHash: string; confirmations: number; paid: boolean }): Promise<boolean> {
  try {
    const n = await db('crypto_invoices')
      .where({ id })
      .andWhere((q) => q.whereNull('tx_hash').orWhere('tx_hash', c.txHash))
      .update({ tx_hash: c.txHash, confirmations: c.confirmations, ...(c.paid ? { status: 'paid' } : {}) });
    return n > 0;
  } catch (e) {
    if ((e as { code?: string }).code === '23505') return false;
    throw e;
  }
}

export async function updateInvoice(db: Conn, id: string, u: { status?: CryptoInvoice['status']; txHash?: string; confirmations?: number }): Promise<void> {
  await db('crypto_invoices')
    .where({ id })
    .update({
      ...(u.status ? { status: u.status } : {}),
      ...(u.txHash ? { tx_hash: u.txHash } : {}),
      ...(u.confirmations !== undefined ? { confirmations: u.confirmations } : {}),
    });
}

// ---- prepaid balance ----------------------------------------------------------------------

/**
 * Opens the project's balance account (domain/budget.ts BALANCE_SCOPE) when it has none: a
 * `total` ledger account in the project's currency, empty, without alert thresholds.
 */
export async function ensureBalanceAccount(db: Conn, projectId: string, currency: CurrencyCode): Promise<string> {
  const id = balanceAccountId(projectId);
  await db('budgets')
    .insert({ id, scope_type: BALANCE_SCOPE, scope_id: projectId, period: 'total', limit_amount: '0', currency, alert_percents: db.raw("'{}'::integer[]") })
    .onConflict(['scope_type', 'scope_id'])
    .ignore();
  return id;
}

/**
 * Credits a paid top-up to the project's prepaid balance, once per payment: one balance entry
 * (unique on the payment id) with what it credited in the project's currency and the rate used,
 * and the balance account's credited total raised by that much, in one transaction. The project
 * becomes prepaid. No budget limit changes. Returns false when this payment was already credited.
 */
export async function creditTopup(
  db: Db,
  t: {
    paymentId: string;
    projectId: string;
    amount: bigint;
    currency: CurrencyCode;
    method: string;
    /** The amount in the project's currency (the same figure when the currencies match). */
    credited: bigint;
    projectCurrency: CurrencyCode;
    fx: { rate: string; source: string; asOf: string } | null;
  },
): Promise<boolean> {
  return db.transaction(async (trx) => {
    const inserted = await trx('balance_entries')
      .insert({
        project_id: t.projectId,
        payment_id: t.paymentId,
        amount: toNumeric(t.amount),
        currency: t.currency,
        method: t.method,
        project_amount: toNumeric(t.credited),
        project_currency: t.projectCurrency,
        fx: t.fx ? JSON.stringify(t.fx) : null,
      })
      .onConflict('payment_id')
      .ignore()
      .returning('seq');
    if (!inserted.length) return false;
    const account = await ensureBalanceAccount(trx, t.projectId, t.projectCurrency);
    await trx('budgets')
      .where({ id: account })
      .update({ limit_amount: trx.raw('limit_amount + ?::numeric', [toNumeric(t.credited)]), updated_at: trx.fn.now() });
    await trx('projects').where({ id: t.projectId }).update({ billing: 'prepaid' });
    await appendEvent(trx, {
      kind: 'balance.credited',
      projectId: t.projectId,
      subjectId: t.paymentId,
      data: {
        amount: formatAmount(t.amount, t.currency),
        currency: t.currency,
        credited: formatAmount(t.credited, t.projectCurrency),
        projectCurrency: t.projectCurrency,
        ...(t.fx ? { fx: t.fx } : {}),
      },
    });
    return true;
  });
}

/** Paid top-ups per currency they were paid in (what came in, never drawn down). */
export async function projectBalance(db: Conn, projectId: string): Promise<Array<{ currency: CurrencyCode; amount: bigint }>> {
  const rows = await db('balance_entries').where({ project_id: projectId }).groupBy('currency').orderBy('currency').select('currency').sum({ total: 'amount' });
  return rows.map((r: any) => ({ currency: r.currency, amount: fromNumeric(r.total) }));
}

export interface BalanceStatus {
  billing: BillingMode;
  currency: CurrencyCode;
  /** Everything top-ups credited, in the project's currency. */
  credited: bigint;
  /** Everything settled spend drew from it. */
  spent: bigint;
  /** Held by open reservations (running machines' worst cases). */
  reserved: bigint;
  /** credited − spent. */
  balance: bigint;
  /** balance − reserved: what a new reservation can still take (never below zero). */
  available: bigint;
}

/** The project's prepaid balance, in its currency (all zero for a project never topped up). */
export async function balanceStatus(db: Conn, project: { id: string; currency: CurrencyCode; billing: BillingMode }): Promise<BalanceStatus> {
  const account = await db('budgets')
    .where({ id: balanceAccountId(project.id) })
    .first('limit_amount', 'currency');
  const w = account
    ? await db('budget_windows')
        .where({ budget_id: balanceAccountId(project.id), window_start: new Date(0) })
        .first('spent', 'reserved')
    : null;
  const credited = fromNumeric(account?.limit_amount);
  const spent = fromNumeric(w?.spent);
  const reserved = fromNumeric(w?.reserved);
  const balance = credited - spent;
  const available = balance - reserved;
  return {
    billing: project.billing,
    currency: (account?.currency ?? project.currency) as CurrencyCode,
    credited,
    spent,
    reserved,
    balance,
    available: available > 0n ? available : 0n,
  };
}

// ---- automatic top-ups ---------------------------------------------------------------------

export interface AutoTopup {
  projectId: string;
  amount: bigint;
  currency: CurrencyCode;
  /** In the project's currency: a balance (not held by reservations) below it triggers a top-up. */
  threshold: bigint;
}

export async function setAutoTopupConfig(db: Conn, a: AutoTopup): Promise<void> {
  const row = { amount: toNumeric(a.amount), currency: a.currency, threshold: toNumeric(a.threshold) };
  await db('auto_topups')
    .insert({ project_id: a.projectId, ...row })
    .onConflict('project_id')
    .merge({ ...row, updated_at: db.fn.now() });
}

export async function getAutoTopupConfig(db: Conn, projectId: string): Promise<AutoTopup | null> {
  const r = await db('auto_topups').where({ project_id: projectId }).first();
  return r ? { projectId, amount: fromNumeric(r.amount), currency: r.currency, threshold: fromNumeric(r.threshold) } : null;
}

export async function removeAutoTopupConfig(db: Conn, projectId: string): Promise<boolean> {
  return (await db('auto_topups').where({ project_id: projectId }).delete()) > 0;
}

/** Who opens automatic top-ups (`payments.created_by`). */
export const AUTO_TOPUP_ACTOR = 'system:auto-topup';

/**
 * Opens the project's next automatic top-up payment when its balance not held by reservations is
 * below `threshold`; while one of its automatic top-ups is still running, that one is the answer
 * (never a second). One decision at a time per project (an advisory lock), so triggers that race
 * open one payment; the payment id counts the project's automatic top-ups.
 */
export async function openAutoTopupPayment(
  db: Db,
  a: {
    project: { id: string; currency: CurrencyCode; billing: BillingMode };
    amount: bigint;
    currency: CurrencyCode;
    threshold: bigint;
    methods: PaymentMethod[];
    idOf: (n: number) => string;
  },
): Promise<{ paymentId: string } | { paymentId: null; reason: string }> {
  return db.transaction(async (trx) => {
    await trx.raw('SELECT pg_advisory_xact_lock(hashtext(?))', [`auto-topup:${a.project.id}`]);
    const running = await trx('payments')
      .where({ project_id: a.project.id, created_by: AUTO_TOPUP_ACTOR })
      .whereIn('status', ['running', 'manual_required'])
      .first('id');
    // Named again, not skipped: a retried caller may not have started that payment's cascade yet.
    if (running) return { paymentId: running.id as string };
    const b = await balanceStatus(trx, a.project);
    const c = b.currency;
    if (b.available >= a.threshold) {
      return {
        paymentId: null,
        reason: `the balance (${formatAmount(b.available, c)} ${c} not held) is not below the threshold of ${formatAmount(a.threshold, c)} ${c}`,
      };
    }
    const counted = await trx('payments').where({ project_id: a.project.id, created_by: AUTO_TOPUP_ACTOR }).count({ n: '*' });
    const paymentId = a.idOf(Number(counted[0]?.n ?? 0));
    await insertPayment(trx, {
      id: paymentId,
      projectId: a.project.id,
      amount: a.amount,
      currency: a.currency,
      reason: `automatic top-up: the balance (${formatAmount(b.available, c)} ${c} not held) fell below ${formatAmount(a.threshold, c)} ${c}`,
      methods: a.methods,
      createdBy: AUTO_TOPUP_ACTOR,
    });
    return { paymentId };
  });
}

import { formatAmount } from '../../domain/money.js';
import type { Db } from '../../store/db.js';
import { getPayment, useCredits } from '../../store/payments.js';

/**
 * Pays a top-up from the project's free credits (unexpired, same currency, soonest expiry first),
 * in full or not at all. Idempotent on the payment id.
 */
export async function payWithCredits(
  db: Db,
  paymentId: string,
  now: Date,
): Promise<{ ok: boolean; error: string | null; used: Array<{ creditId: string; amount: string }> }> {
  const payment = await getPayment(db, paymentId);
  if (!payment) throw new Error(`payment ${paymentId} not found`);
  const r = await useCredits(db, { paymentId, projectId: payment.projectId, amount: payment.amount, currency: payment.currency, now });
  if (!r.ok) {
    return {
      ok: false,
      used: [],
      error: `not enough free credits: ${formatAmount(r.available, payment.currency)} ${payment.currency} unexpired, ${formatAmount(payment.amount, payment.currency)} needed`,
    };
  }
  return { ok: true, error: null, used: r.used.map((u) => ({ creditId: u.creditId, amount: formatAmount(u.amount, payment.currency) })) };
}

import Stripe from 'stripe';

/**
 * Card charges through Stripe PaymentIntents (off-session, confirmed at once). Every charge
 * carries the caller's idempotency key, so a retried or replayed call is the same charge at
 * Stripe. Outcomes are classified for the payment cascade:
 * - `succeeded`: paid;
 * - `declined`: the card was refused (card_error, or an intent left needing a new payment
 *   method or customer action): fall through to the next method, no retry;
 * - `failed`: a request Stripe will never accept (bad customer, bad key, idempotency clash):
 *   fall through, no retry;
 * - anything transient (network, rate limit, Stripe 5xx, still processing) is thrown as a
 *   `StripeTransientError` for the activity's retry policy (backoff) to try again.
 */
export type CardOutcome = { outcome: 'succeeded' | 'declined' | 'failed'; paymentIntentId: string | null; status: string | null; error: string | null };

export class StripeTransientError extends Error {
  override name = 'StripeTransientError';
}

export function createStripe(secretKey: string, apiBase: string | undefined): Stripe {
  const options: Stripe.StripeConfig = { maxNetworkRetries: 0, timeout: 30_000 };
  if (apiBase) {
    const u = new URL(apiBase);
    options.host = u.hostname;
    options.port = u.port || (u.protocol === 'https:' ? 443 : 80);
    options.protocol = u.protocol === 'https:' ? 'https' : 'http';
  }
  return new Stripe(secretKey, options);
}

/** What a PaymentIntent's status means for the cascade. */
export function classifyIntent(pi: Pick<Stripe.PaymentIntent, 'id' | 'status' | 'last_payment_error'>): CardOutcome {
  const base = { paymentIntentId: pi.id, status: pi.status };
  switch (pi.status) {
    case 'succeeded':
      return { ...base, outcome: 'succeeded', error: null };
    case 'processing':
    case 'requires_confirmation':
    case 'requires_capture':
      throw new StripeTransientError(`payment intent ${pi.id} is ${pi.status}; checking again`);
    default: {
      const last = pi.last_payment_error;
      const why = last ? [last.code, last.decline_code, last.message ?? last.type].filter(Boolean).join(': ') : 'no error given';
      return { ...base, outcome: 'declined', error: `card declined: payment intent ${pi.id} is ${pi.status} (${why})` };
    }
  }
}

/** Maps a Stripe error to a cascade outcome, or rethrows it as transient. */
export function classifyStripeError(err: unknown): CardOutcome {
  const e = err as { type?: string; message?: string; code?: string; decline_code?: string; payment_intent?: { id: string; status: string } };
  const pi = e.payment_intent ?? null;
  const detail = [e.code, e.decline_code, e.message].filter(Boolean).join(': ');
  switch (e.type) {
    case 'StripeCardError':
      return { outcome: 'declined', paymentIntentId: pi?.id ?? null, status: pi?.status ?? null, error: `card declined: ${detail}` };
    case 'StripeInvalidRequestError':
    case 'StripeAuthenticationError':
    case 'StripePermissionError':
    case 'StripeIdempotencyError':
      return { outcome: 'failed', paymentIntentId: pi?.id ?? null, status: pi?.status ?? null, error: `Stripe refused the charge (${e.type}): ${detail}` };
    case 'StripeRateLimitError':
    case 'StripeAPIError':
    case 'StripeConnectionError':
      throw new StripeTransientError(`Stripe ${e.type}: ${detail}`);
    default:
      throw err;
  }
}

/**
 * Charges a saved card off-session, or, when this charge already created a PaymentIntent,
 * reads that intent back instead of charging again.
 */
export async function chargeCard(
  stripe: Stripe,
  c: {
    idempotencyKey: string;
    amount: number;
    currency: string;
    customer: string;
    paymentMethod: string;
    existingIntentId: string | null;
    metadata: Record<string, string>;
  },
): Promise<CardOutcome> {
  try {
    const pi = c.existingIntentId
      ? await stripe.paymentIntents.retrieve(c.existingIntentId)
      : await stripe.paymentIntents.create(
          {
            amount: c.amount,
            currency: c.currency.toLowerCase(),
            customer: c.customer,
            payment_method: c.paymentMethod,
            confirm: true,
            off_session: true,
            metadata: c.metadata,
          },
          { idempotencyKey: c.idempotencyKey },
        );
    return classifyIntent(pi);
  } catch (err) {
    if (err instanceof StripeTransientError) throw err;
    return classifyStripeError(err);
  }
}

/**
 * Payment methods and the pure arithmetic of a top-up: which chain pays in which coin, how a
 * top-up amount becomes a Stripe minor-unit amount or a crypto invoice in the chain's base units.
 * Exact bigint throughout; an amount that cannot be expressed exactly is rounded in the
 * platform's disfavour only where said (an invoice rounds up: the payer never underpays).
 */
import type { BudgetPeriod } from './budget.js';
import type { Ratio } from './fx.js';
import { CURRENCIES, LEDGER_SCALE, MoneyError, type CurrencyCode } from './money.js';

export const PAYMENT_METHOD_KINDS = ['credits', 'card', 'crypto', 'manual'] as const;
export type PaymentMethodKind = (typeof PAYMENT_METHOD_KINDS)[number];

export const CHAINS = ['eth', 'ton', 'btc'] as const;
export type Chain = (typeof CHAINS)[number];

/** The coin each chain is paid in and its base-unit precision (wei, nanoton, satoshi). */
export const CHAIN_COINS: Record<Chain, { coin: CurrencyCode; decimals: number }> = {
  eth: { coin: 'ETH', decimals: 18 },
  ton: { coin: 'TON', decimals: 9 },
  btc: { coin: 'BTC', decimals: 8 },
};

/** `maxTries`: how often a transient error (network, rate limit, provider 5xx) is retried, with backoff, before the method fails. */
export type PaymentMethod =
  | { kind: 'credits'; maxTries?: number }
  | { kind: 'card'; customer: string; paymentMethod: string; maxTries?: number }
  /** The receiving address and the conversion rate come from the deployment (configuration, live FX), never from the method. */
  | { kind: 'crypto'; chain: Chain; timeoutSeconds: number; maxTries?: number }
  | { kind: 'manual'; timeoutSeconds: number };

export type PaymentStatus = 'running' | 'manual_required' | 'succeeded' | 'failed';
export type AttemptStatus = 'running' | 'waiting' | 'succeeded' | 'declined' | 'failed' | 'expired' | 'approved';

/** Currencies Stripe charges in, with the minor-unit precision Stripe uses for them. */
export const CARD_CURRENCIES: Partial<Record<CurrencyCode, number>> = { USD: 2, EUR: 2, CAD: 2 };

/**
 * Ledger units → the integer Stripe charges (cents). Refuses an amount with more decimals than
 * the currency's minor unit instead of rounding it.
 * @example stripeMinorUnits(parseAmount('12.34', 'USD'), 'USD') === 1234
 */
export function stripeMinorUnits(units: bigint, currency: CurrencyCode): number {
  const precision = CARD_CURRENCIES[currency];
  if (precision === undefined) throw new MoneyError(`cards are not charged in ${currency}`);
  const factor = 10n ** BigInt(LEDGER_SCALE - precision);
  if (units % factor !== 0n) throw new MoneyError(`amount has more decimals than ${currency} allows`);
  return Number(units / factor);
}

/**
 * What a crypto invoice asks for before its tag, in the chain's base units. A top-up in the coin
 * itself is paid exactly; any other currency goes through `ratio` (coins per unit of the top-up
 * currency: the deployment's live FX rate, never a tenant's) and rounds up, so the payer never
 * underpays.
 * @example invoiceBaseUnits(parseAmount('30.00', 'USD'), 'USD', 'eth', { num: 1n, den: 3000n }) === 10n ** 16n
 */
export function invoiceBaseUnits(units: bigint, currency: CurrencyCode, chain: Chain, ratio?: Ratio): bigint {
  const { coin, decimals } = CHAIN_COINS[chain];
  const toBase = 10n ** BigInt(LEDGER_SCALE - decimals);
  let coinUnits: bigint;
  if (currency === coin) coinUnits = units;
  else {
    if (!ratio) throw new MoneyError(`a ${currency} top-up paid in ${coin} needs a ${currency}→${coin} exchange rate`);
    if (ratio.num <= 0n || ratio.den <= 0n) throw new MoneyError('an exchange rate must be more than zero');
    coinUnits = (units * ratio.num + ratio.den - 1n) / ratio.den;
  }
  return (coinUnits + toBase - 1n) / toBase;
}

/**
 * ETH invoices to the deployment's one address are told apart by amount: each adds a tag of
 * 1..ETH_TAG_SPACE-1 wei (under a gwei: far below any fee) chosen so that no two invoices to the
 * address ever ask for the same amount, and only a transfer of exactly that amount pays it.
 */
export const ETH_TAG_SPACE = 1_000_000_000n;

/** The currencies a top-up may be in: every ledger currency (each method checks what it can take). */
export function isTopupCurrency(code: string): code is CurrencyCode {
  return Object.hasOwn(CURRENCIES, code);
}

/**
 * When an automatic top-up runs for a budget period (UTC cron, as Temporal Schedules take it):
 * five minutes after each window opens. A `total` budget never renews.
 */
export function renewalCron(period: BudgetPeriod): string | null {
  switch (period) {
    case 'daily':
      return '5 0 * * *';
    case 'weekly':
      return '5 0 * * 1';
    case 'monthly':
      return '5 0 1 * *';
    case 'total':
      return null;
  }
}

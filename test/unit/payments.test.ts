import assert from 'node:assert/strict';
import Stripe from 'stripe';
import { classifyIntent, classifyStripeError, StripeTransientError } from '../../activities/payments/stripe.js';
import { ConfigError, loadConfig } from '../../config/index.js';
import { parseRate } from '../../domain/fx.js';
import { parseAmount } from '../../domain/money.js';
import { invoiceBaseUnits, renewalCron, stripeMinorUnits } from '../../domain/payments.js';

describe('payment arithmetic and classification', () => {
  it('turns a top-up into Stripe minor units exactly, refusing what a card cannot charge', () => {
    assert.equal(stripeMinorUnits(parseAmount('12.34', 'USD'), 'USD'), 1234);
    assert.equal(stripeMinorUnits(parseAmount('0.01', 'EUR'), 'EUR'), 1);
    assert.throws(() => stripeMinorUnits(parseAmount('1', 'ETH'), 'ETH'), /cards are not charged in ETH/);
    assert.throws(() => stripeMinorUnits(1n, 'USD'), /more decimals than USD allows/);
  });

  it('invoices a crypto top-up in base units: exact in the coin itself, rounded up through an FX rate', () => {
    assert.equal(invoiceBaseUnits(parseAmount('0.0125', 'ETH'), 'ETH', 'eth'), 12_500_000_000_000_000n);
    // A quote of 1 USD = 0.0005 ETH (2000 USD per ETH), as the FX service gives it.
    assert.equal(invoiceBaseUnits(parseAmount('10.00', 'USD'), 'USD', 'eth', parseRate('0.0005')), 5_000_000_000_000_000n);
    assert.equal(invoiceBaseUnits(parseAmount('1.5', 'TON'), 'TON', 'ton'), 1_500_000_000n);
    // 10 USD at 3 USD per TON is 3.333… TON: the payer is asked for the next nanoton up.
    assert.equal(invoiceBaseUnits(parseAmount('10.00', 'USD'), 'USD', 'ton', { num: 1n, den: 3n }), 3_333_333_334n);
    assert.throws(() => invoiceBaseUnits(parseAmount('10.00', 'USD'), 'USD', 'eth'), /needs a USD→ETH exchange rate/);
    assert.throws(() => invoiceBaseUnits(parseAmount('10.00', 'USD'), 'USD', 'eth', { num: 0n, den: 1n }), /must be more than zero/);
  });

  it('takes crypto receiving addresses from the deployment, validated at start with one message per bad variable', () => {
    const eth = '0x' + 'ab'.repeat(20);
    const ton = 'EQCD39VS5jcptHL8vMjEXrzGaRcCVYto7HUn4bpAOg8xqB2N';
    const c = loadConfig({ ETH_RPC_URL: 'http://127.0.0.1:8545', ETH_RECEIVING_ADDRESS: eth, TON_API_URL: 'http://127.0.0.1:1', TON_RECEIVING_ADDRESS: ton });
    assert.equal(c.payments.eth?.address, '0xABaBaBaBABabABabAbAbABAbABabababaBaBABaB', 'EIP-55 checksummed');
    assert.equal(c.payments.ton?.address, ton);
    assert.equal(loadConfig({}).payments.eth, undefined);
    const problems = (env: Record<string, string>) => {
      try {
        loadConfig(env);
      } catch (e) {
        assert.ok(e instanceof ConfigError);
        return e.message;
      }
      return assert.fail(`accepted ${JSON.stringify(env)}`);
    };
    const both = problems({
      ETH_RPC_URL: 'http://127.0.0.1:8545',
      ETH_RECEIVING_ADDRESS: '0x1234',
      TON_API_URL: 'http://127.0.0.1:1',
      TON_RECEIVING_ADDRESS: 'nope',
    });
    assert.match(both, /ETH_RECEIVING_ADDRESS: must be an ETH address/);
    assert.match(both, /TON_RECEIVING_ADDRESS: must be a TON address/);
    // A mixed-case address with a wrong checksum is a typo, not an address.
    assert.match(
      problems({ ETH_RPC_URL: 'http://x.test', ETH_RECEIVING_ADDRESS: '0xABaBaBaBABabABabAbAbABAbABAbaBABaBaBABaB' }),
      /ETH_RECEIVING_ADDRESS: must be an ETH address/,
    );
    assert.match(problems({ ETH_RPC_URL: 'http://127.0.0.1:8545' }), /ETH_RECEIVING_ADDRESS: is required when ETH_RPC_URL is set/);
    assert.match(problems({ TON_RECEIVING_ADDRESS: ton }), /TON_API_URL: is required when TON_RECEIVING_ADDRESS is set/);
  });

  it('renews daily, weekly and monthly budgets five minutes into each window, never a total one', () => {
    assert.equal(renewalCron('daily'), '5 0 * * *');
    assert.equal(renewalCron('weekly'), '5 0 * * 1');
    assert.equal(renewalCron('monthly'), '5 0 1 * *');
    assert.equal(renewalCron('total'), null);
  });

  it('classifies Stripe outcomes: success, declines and failures fall through, transient errors retry', () => {
    assert.equal(classifyIntent({ id: 'pi_1', status: 'succeeded', last_payment_error: null }).outcome, 'succeeded');
    const declined = classifyIntent({
      id: 'pi_2',
      status: 'requires_payment_method',
      last_payment_error: {
        type: 'card_error',
        code: 'card_declined',
        decline_code: 'insufficient_funds',
        message: 'Your card has insufficient funds.',
      } as Stripe.PaymentIntent.LastPaymentError,
    });
    assert.equal(declined.outcome, 'declined');
    assert.match(declined.error!, /card_declined: insufficient_funds: Your card has insufficient funds/);
    assert.equal(classifyIntent({ id: 'pi_3', status: 'requires_action', last_payment_error: null }).outcome, 'declined');
    assert.throws(() => classifyIntent({ id: 'pi_4', status: 'processing', last_payment_error: null }), StripeTransientError);

    // The SDK's own error classes, as it raises them from Stripe's responses.
    const raw = (type: string, extra = {}) => ({ type, message: 'm', ...extra }) as any;
    assert.equal(
      classifyStripeError(new Stripe.errors.StripeCardError(raw('card_error', { code: 'card_declined', decline_code: 'stolen_card' }))).outcome,
      'declined',
    );
    assert.equal(classifyStripeError(new Stripe.errors.StripeInvalidRequestError(raw('invalid_request_error'))).outcome, 'failed');
    assert.equal(classifyStripeError(new Stripe.errors.StripeAuthenticationError(raw('authentication_error'))).outcome, 'failed');
    assert.equal(classifyStripeError(new Stripe.errors.StripeIdempotencyError(raw('idempotency_error'))).outcome, 'failed');
    for (const E of [Stripe.errors.StripeAPIError, Stripe.errors.StripeRateLimitError, Stripe.errors.StripeConnectionError]) {
      assert.throws(() => classifyStripeError(new E(raw('api_error'))), StripeTransientError);
    }
  });
});

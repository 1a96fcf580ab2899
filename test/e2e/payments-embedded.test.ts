import assert from 'node:assert/strict';
import { projectWithBudget, startTestPlatform, waitFor, type TestPlatform } from '../support/platform.js';

/** The payment cascade on embedded PGlite with no payment settings: what `npm start` offers. */
describe('payments on embedded PGlite (the npm start default)', function () {
  this.timeout(120_000);
  let p: TestPlatform;
  before(async () => {
    p = await startTestPlatform({ label: 'payments-embedded', embedded: true, env: { PAYMENT_POLL_SECONDS: '1' } });
  });
  after(async () => {
    await p?.stop();
  });

  it('refuses card and crypto methods, and pays a top-up from credits, then by manual approval', async () => {
    const projectId = await projectWithBudget(p, '1.00');
    const card = await p.api('PUT', `/v1/projects/${projectId}/payment-methods`, [{ kind: 'card', customer: 'cus_1', paymentMethod: 'pm_card_visa' }]);
    assert.equal(card.status, 422);
    assert.match(card.body.error.message, /STRIPE_SECRET_KEY/);
    const ok = await p.api('PUT', `/v1/projects/${projectId}/payment-methods`, [{ kind: 'credits' }, { kind: 'manual', timeoutSeconds: 300 }]);
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.equal(
      (await p.api('POST', `/v1/projects/${projectId}/credits`, { amount: '2.00', currency: 'USD', expiresAt: '2099-01-01T00:00:00Z' })).status,
      201,
    );

    const ended = (id: string) =>
      waitFor(async () => {
        const b = (await p.api('GET', `/v1/payments/${id}`)).body;
        return ['succeeded', 'failed'].includes(b.status) ? b : null;
      }, `payment ${id}`);
    const first = (await p.api('POST', `/v1/projects/${projectId}/topups`, { amount: '1.50', currency: 'USD' })).body.paymentId;
    assert.equal((await ended(first)).paidBy, 'credits');

    const second = (await p.api('POST', `/v1/projects/${projectId}/topups`, { amount: '1.50', currency: 'USD' })).body.paymentId;
    await waitFor(async () => (await p.api('GET', `/v1/payments/${second}`)).body.status === 'manual_required', 'manual_required');
    assert.equal((await p.api('POST', `/v1/payments/${second}/approve`)).status, 202);
    const done = await ended(second);
    assert.equal(done.paidBy, 'manual');
    assert.deepEqual(
      done.attempts.map((a: any) => [a.method, a.status]),
      [
        ['credits', 'declined'],
        ['manual', 'approved'],
      ],
    );
    assert.deepEqual((await p.api('GET', `/v1/projects/${projectId}/balance`)).body.items, [{ amount: '3.00', currency: 'USD' }]);
    const balance = (await p.api('GET', `/v1/projects/${projectId}/balance`)).body;
    assert.deepEqual([balance.billing, balance.balance, balance.available], ['prepaid', '3.00', '3.00']);
    assert.equal((await p.api('GET', `/v1/projects/${projectId}`)).body.budget.limit, '1.00', 'top-ups credit the balance, never the limit');
  });
});

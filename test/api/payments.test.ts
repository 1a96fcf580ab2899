import assert from 'node:assert/strict';
import { projectWithBudget, startTestPlatform, type TestPlatform } from '../support/platform.js';

/** Rows bad payment input could touch: a refused request must change none. */
async function counts(p: TestPlatform): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const t of ['payment_methods', 'payments', 'payment_attempts', 'credits', 'balance_entries']) {
    out[t] = Number((await p.db(t).count({ n: '*' }))[0]!.n);
  }
  return out;
}

describe('api: payment methods, top-ups and credits refuse bad input', function () {
  this.timeout(120_000);
  let p: TestPlatform;
  let projectId: string;

  before(async () => {
    // No STRIPE_*, ETH_* or TON_* settings: what an embedded `npm start` has out of the box.
    p = await startTestPlatform({ label: 'payments-api', worker: false });
    projectId = await projectWithBudget(p, '1.00');
  });
  after(async () => {
    await p?.stop();
  });

  it('refuses card and crypto methods the platform is not set up for, with 422 saying what to set', async () => {
    const before = await counts(p);
    const card = await p.api('PUT', `/v1/projects/${projectId}/payment-methods`, {
      methods: [{ kind: 'credits' }, { kind: 'card', customer: 'cus_1', paymentMethod: 'pm_card_visa' }],
    });
    assert.equal(card.status, 422, JSON.stringify(card.body));
    assert.equal(card.body.error.details.field, 'methods.1');
    assert.match(card.body.error.message, /methods\.1: card payments need STRIPE_SECRET_KEY/);
    const eth = await p.api('PUT', `/v1/projects/${projectId}/payment-methods`, [{ kind: 'crypto', chain: 'eth' }]);
    assert.equal(eth.status, 422);
    assert.match(eth.body.error.message, /methods\.0: ETH payments need ETH_RPC_URL .* and ETH_RECEIVING_ADDRESS/);
    const ton = await p.api('PUT', `/v1/projects/${projectId}/payment-methods`, [{ kind: 'crypto', chain: 'ton' }]);
    assert.equal(ton.status, 422);
    assert.match(ton.body.error.message, /TON_API_URL .* and TON_RECEIVING_ADDRESS/);
    const btc = await p.api('PUT', `/v1/projects/${projectId}/payment-methods`, [{ kind: 'crypto', chain: 'btc' }]);
    assert.equal(btc.status, 422);
    assert.match(btc.body.error.message, /BTC payments are not supported/);
    assert.deepEqual(await counts(p), before);
  });

  it('refuses a crypto method that still sends a receiving address or a rate: the deployment sets both (422)', async () => {
    const before = await counts(p);
    const cases: Array<[unknown, string]> = [
      [[{ kind: 'crypto', chain: 'eth', address: '0x' + 'ab'.repeat(20), timeoutSeconds: 60 }], 'methods.0.address'],
      [{ methods: [{ kind: 'credits' }, { kind: 'crypto', chain: 'ton', rate: '3.00' }] }, 'methods.1.rate'],
      // Refused even when the address is not valid and the chain unsupported: the field itself is the problem.
      [[{ kind: 'crypto', chain: 'btc', address: 'x', rate: '-1' }], 'methods.0.address'],
    ];
    for (const [body, field] of cases) {
      const r = await p.api('PUT', `/v1/projects/${projectId}/payment-methods`, body);
      assert.equal(r.status, 422, `${JSON.stringify(body)} → ${JSON.stringify(r.body)}`);
      assert.equal(r.body.error.code, 'set_by_deployment');
      assert.equal(r.body.error.details.field, field);
      assert.match(
        r.body.error.message,
        /receiving addresses and conversion rates are set by the deployment \(ETH_RECEIVING_ADDRESS, TON_RECEIVING_ADDRESS, live FX\)/,
      );
    }
    assert.deepEqual(await counts(p), before);
  });

  it('refuses malformed methods with 400 naming the field', async () => {
    const cases: Array<[unknown, RegExp]> = [
      [{ methods: [{ kind: 'cheque' }] }, /methods\.0\.kind/],
      [{ methods: [{ kind: 'manual' }] }, /methods\.0\.timeoutSeconds/],
      [{ methods: [{ kind: 'manual', timeoutSeconds: -1 }] }, /methods\.0\.timeoutSeconds/],
      [{ methods: [{ kind: 'card', customer: 'bob', paymentMethod: 'pm_card_visa' }] }, /methods\.0\.customer/],
      [{ methods: [{ kind: 'crypto', chain: 'doge' }] }, /methods\.0\.chain/],
      [{ methods: [{ kind: 'crypto', chain: 'eth', timeoutSeconds: 0 }] }, /methods\.0\.timeoutSeconds/],
    ];
    for (const [body, field] of cases) {
      const r = await p.api('PUT', `/v1/projects/${projectId}/payment-methods`, body);
      assert.equal(r.status, 400, `${JSON.stringify(body)} → ${JSON.stringify(r.body)}`);
      assert.match(r.body.error.message, field);
    }
    const ok = await p.api('PUT', `/v1/projects/${projectId}/payment-methods`, [{ kind: 'credits' }, { kind: 'manual', timeoutSeconds: 60 }]);
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.deepEqual((await p.api('GET', `/v1/projects/${projectId}/payment-methods`)).body.methods, [
      { kind: 'credits' },
      { kind: 'manual', timeoutSeconds: 60 },
    ]);
  });

  it('refuses a top-up in an unknown currency, with too many decimals, negative or zero, naming the field', async () => {
    const before = await counts(p);
    const cases: Array<[unknown, number, string, RegExp]> = [
      [{ amount: '10.00', currency: 'XYZ' }, 400, 'currency', /currency: must be one of/],
      [{ amount: '10.001', currency: 'USD' }, 422, 'amount', /amount: "10.001" has 3 decimals; USD allows at most 2/],
      [{ amount: '-5.00', currency: 'USD' }, 422, 'amount', /amount: "-5.00" is negative/],
      [{ amount: '0', currency: 'USD' }, 422, 'amount', /amount: a top-up must be more than zero/],
      [{ amount: 10, currency: 'USD' }, 400, 'amount', /amount: /],
      [{ amount: '1.0000000001', currency: 'BTC' }, 422, 'amount', /BTC allows at most 8/],
    ];
    for (const [body, status, field, message] of cases) {
      const r = await p.api('POST', `/v1/projects/${projectId}/topups`, body);
      assert.equal(r.status, status, `${JSON.stringify(body)} → ${JSON.stringify(r.body)}`);
      assert.match(r.body.error.message, message);
      const named = r.body.error.details.field ?? r.body.error.details.issues?.[0]?.field;
      assert.equal(named, field);
    }
    assert.deepEqual(await counts(p), before, 'nothing was written for refused top-ups');
  });

  it('refuses bad credits and a top-up of a project without methods; 404 for an unknown payment', async () => {
    const bare = await projectWithBudget(p, '1.00');
    const none = await p.api('POST', `/v1/projects/${bare}/topups`, { amount: '1.00', currency: 'USD' });
    assert.equal(none.status, 409);
    assert.equal(none.body.error.code, 'no_payment_methods');
    const badDate = await p.api('POST', `/v1/projects/${projectId}/credits`, { amount: '5.00', currency: 'USD', expiresAt: 'tomorrow' });
    assert.equal(badDate.status, 400);
    assert.match(badDate.body.error.message, /expiresAt/);
    const badAmount = await p.api('POST', `/v1/projects/${projectId}/credits`, { amount: '5.555', currency: 'EUR', expiresAt: '2030-01-01T00:00:00Z' });
    assert.equal(badAmount.status, 422);
    assert.match(badAmount.body.error.message, /^amount: /);
    const ok = await p.api('POST', `/v1/projects/${projectId}/credits`, { amount: '5.50', currency: 'EUR', expiresAt: '2030-01-01T00:00:00Z' });
    assert.equal(ok.status, 201, JSON.stringify(ok.body));
    assert.equal(ok.body.remaining, '5.50');
    assert.equal((await p.api('GET', `/v1/payments/payment-00000000-0000-0000-0000-000000000000`)).status, 404);
    assert.equal((await p.api('POST', `/v1/payments/payment-00000000-0000-0000-0000-000000000000/approve`)).status, 404);
  });

  it('documents the payment routes in the OpenAPI document', async () => {
    const doc = (await p.api('GET', '/v1/openapi.json')).body;
    for (const path of ['/projects/{id}/payment-methods', '/projects/{id}/topups', '/projects/{id}/credits', '/payments/{id}', '/payments/{id}/approve']) {
      assert.ok(doc.paths[path], path);
    }
    const kinds = JSON.stringify(doc.paths['/projects/{id}/payment-methods'].put.requestBody);
    for (const kind of ['credits', 'card', 'crypto', 'manual']) assert.ok(kinds.includes(`"${kind}"`), kind);
  });
});

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { FxUnavailableError } from '../../domain/fx.js';
import { formatAmount, fromNumeric, parseAmount } from '../../domain/money.js';
import { coinbaseProvider, ecbProvider, fixedProvider, parseCoinbaseJson, parseEcbXml } from '../../fx/providers.js';
import { FxService } from '../../fx/service.js';
import { budgetStatus, reservationBudgets, reserve, setBudget, settleEach } from '../../store/budgets.js';
import { createDb, migrateLatest, type Db } from '../../store/db.js';
import { ecbXml, startFxSources, type FxSources } from '../support/fx-sources.js';
import { freePort } from '../../scripts/services/ports.js';
import { freshDatabase, waitFor } from '../support/platform.js';

describe('fx: rate sources, cache and staleness (local server in the sources’ real formats, real Postgres)', function () {
  this.timeout(60_000);
  let db: Db;
  let src: FxSources;
  let clock: Date;
  const policy = { ttlMs: 60_000, maxStaleMs: 3_600_000 };
  const service = (extra: Partial<ConstructorParameters<typeof FxService>[0]> = {}) =>
    new FxService({ providers: [ecbProvider(src.ecbUrl), coinbaseProvider(src.cryptoUrl)], policy, db, now: () => clock, ...extra });
  const advance = (ms: number) => (clock = new Date(clock.getTime() + ms));

  before(async () => {
    db = await createDb({ databaseUrl: await freshDatabase('fx') });
    await migrateLatest(db);
    src = await startFxSources();
  });
  after(async () => {
    await src?.stop();
    await db?.destroy();
  });
  beforeEach(async () => {
    await db('fx_rates').delete();
    clock = new Date('2026-11-27T09:00:00Z');
    src.failing = { ecb: false, crypto: false };
    src.ecb.USD = '1.0856';
  });

  it('reads the ECB XML and the Coinbase JSON, keeping only supported currencies', () => {
    const now = new Date('2026-11-27T09:00:00Z');
    const ecb = parseEcbXml(ecbXml('2026-11-26', { USD: '1.0856', JPY: '162.51', CAD: '1.4773' }), now);
    assert.deepEqual(
      ecb.map((q) => [q.base, q.quote, q.rate, q.asOf]),
      [
        ['EUR', 'USD', '1.0856', '2026-11-26T15:00:00.000Z'],
        ['EUR', 'CAD', '1.4773', '2026-11-26T15:00:00.000Z'],
      ],
    );
    const cb = parseCoinbaseJson(
      JSON.stringify({ data: { currency: 'USD', rates: { BTC: '0.0000105897', EUR: '0.92', ETH: '0.000289412', TON: '0.1834' } } }),
      now,
    );
    assert.deepEqual(
      cb.map((q) => `${q.base}/${q.quote}=${q.rate}`),
      ['USD/BTC=0.0000105897', 'USD/ETH=0.000289412', 'USD/TON=0.1834'],
    );
    assert.throws(() => parseEcbXml('<html>maintenance</html>', now), /no <Cube time/);
    assert.throws(() => parseCoinbaseJson('{"errors":[]}', now), /data.currency/);
  });

  it('fetches, keeps the quotes with source and time, serves them while fresh, and chains fiat to crypto', async () => {
    const fx = service();
    const rate = await fx.rate('EUR', 'BTC');
    assert.equal(rate.source, 'ecb+coinbase');
    // 1 EUR = 1.0856 USD × 0.0000105897 BTC/USD
    assert.equal(rate.rate, '0.000011496178320000');
    assert.equal(rate.fetchedAt, clock.toISOString());
    const rows = await db('fx_rates').orderBy('seq');
    assert.deepEqual(
      rows.map((r) => `${r.source} ${r.base}/${r.quote}=${r.rate}`),
      ['ecb EUR/USD=1.0856', 'ecb EUR/CAD=1.4773', 'coinbase USD/BTC=0.0000105897', 'coinbase USD/ETH=0.000289412', 'coinbase USD/TON=0.18340571'],
    );
    const before = { ...src.requests };
    advance(30_000);
    const c = await fx.convert(parseAmount('100.00', 'EUR'), 'EUR', 'USD', 'up');
    assert.equal(formatAmount(c.amount, 'USD'), '108.56');
    assert.equal(c.source, 'ecb');
    assert.deepEqual(src.requests, before, 'a fresh cache does not fetch again');
    // Another process with the same database uses the stored quotes instead of fetching.
    const other = service();
    assert.equal((await other.rate('USD', 'CAD')).rate, '1.360814296241709654');
    assert.deepEqual(src.requests, before);
  });

  it('answers from a stale cache while refreshing, and picks up the new rate', async () => {
    const fx = service();
    await fx.rate('EUR', 'USD');
    src.ecb.USD = '1.2000';
    const ecbCalls = src.requests.ecb;
    advance(policy.ttlMs + 1);
    const stale = await fx.rate('EUR', 'USD');
    assert.equal(stale.rate, '1.085600000000000000', 'the stale rate answers at once');
    await waitFor(async () => src.requests.ecb > ecbCalls, 'the background refresh');
    const fresh = await waitFor(async () => {
      const r = await fx.rate('EUR', 'USD');
      return r.rate === '1.200000000000000000' ? r : null;
    }, 'the refreshed rate');
    assert.equal(fresh.fetchedAt, clock.toISOString());
  });

  it('refuses with a clear error once the rates are older than the maximum staleness and the source is down', async () => {
    const fx = service();
    await fx.rate('EUR', 'USD');
    src.failing.ecb = true;
    advance(policy.maxStaleMs - 1);
    assert.equal((await fx.rate('EUR', 'USD')).rate, '1.085600000000000000', 'stale but within the maximum: still used');
    advance(2);
    await assert.rejects(fx.rate('EUR', 'USD'), (e: Error) => {
      assert.ok(e instanceof FxUnavailableError);
      assert.match(e.message, /no EUR→USD exchange rate/);
      assert.match(e.message, /ecb: its rates were last fetched at 2026-11-27T09:00:00.000Z, beyond the maximum staleness of 3600 s/);
      assert.match(e.message, /answered 503/);
      assert.match(e.message, /AUTOVIBE_FX_FIXED_RATES/);
      return true;
    });
    // Crypto pairs that do not need the ECB still convert.
    assert.equal((await fx.rate('USD', 'ETH')).source, 'coinbase');
  });

  it('refuses when a source cannot be reached at all, and fixed rates win over fetched ones', async () => {
    const closed = `http://127.0.0.1:${await freePort()}/eurofxref-daily.xml`;
    const offline = new FxService({ providers: [ecbProvider(closed)], policy, db, now: () => clock });
    await assert.rejects(offline.rate('EUR', 'CAD'), (e: Error) =>
      e.message.includes(`no EUR→CAD exchange rate: ecb: fetching failed: GET ${closed} failed: ECONNREFUSED`),
    );
    const none = new FxService({ providers: [], policy, now: () => clock });
    await assert.rejects(none.rate('EUR', 'USD'), /no configured source quotes EUR or USD/);
    assert.equal((await none.rate('EUR', 'EUR')).source, 'identity');
    const fixed = service({ providers: [fixedProvider('EUR/USD=1.10', clock), ecbProvider(src.ecbUrl)] });
    const r = await fixed.rate('USD', 'EUR');
    assert.equal(r.source, 'fixed');
    assert.equal(r.rate, '0.909090909090909091');
    assert.equal((await fixed.rate('EUR', 'CAD')).source, 'ecb');
  });

  it('leaves a failed source alone for the retry interval, answering its last failure', async () => {
    src.failing.ecb = true;
    const fx = service({ retryAfterMs: 30_000 });
    await assert.rejects(fx.rate('EUR', 'USD'), /answered 503/);
    const calls = src.requests.ecb;
    src.failing.ecb = false;
    advance(29_000);
    await assert.rejects(fx.rate('EUR', 'USD'), /answered 503: Service Unavailable \(at 2026-11-27T09:00:00.000Z; not retried before 30 s\)/);
    assert.equal(src.requests.ecb, calls, 'not asked again within the interval');
    advance(1_000);
    assert.equal((await fx.rate('EUR', 'USD')).rate, '1.085600000000000000');
    assert.equal(src.requests.ecb, calls + 1);
  });

  it('lists the rates of a base, saying which cannot be had', async () => {
    src.failing.crypto = true;
    const { items, unavailable } = await service().rates('USD');
    assert.deepEqual(items.map((i) => i.to).sort(), ['CAD', 'EUR']);
    assert.deepEqual(unavailable.map((u) => u.currency).sort(), ['BTC', 'ETH', 'TON']);
    assert.match(unavailable[0]!.reason, /coinbase: fetching failed/);
  });

  it('reserves on budgets of different currencies at once and settles each in its own currency', async () => {
    const scope = crypto.randomUUID();
    const eur = await setBudget(db, { scopeType: 'project', scopeId: scope, period: 'daily', limit: parseAmount('10.00', 'EUR'), currency: 'EUR' });
    const usd = await setBudget(db, { scopeType: 'department', scopeId: scope, period: 'daily', limit: parseAmount('0.60', 'USD'), currency: 'USD' });
    const fx = service();
    const amount = parseAmount('0.50', 'EUR');
    const toUsd = await fx.convert(amount, 'EUR', 'USD', 'up'); // 0.5428 → 0.55
    assert.equal(formatAmount(toUsd.amount, 'USD'), '0.55');
    const key = `m-${scope}`;
    const perBudget = { [usd.id]: { amount: toUsd.amount, fx: { rate: toUsd.rate, source: toUsd.source, asOf: toUsd.asOf } } };
    const ok = await reserve(db, { key, budgetIds: [eur.id, usd.id], projectId: 'p', amount, currency: 'EUR', perBudget, now: clock });
    assert.deepEqual(ok, { ok: true, reservationId: key, amount });
    // A repeat returns the requester's figure, not the converted one.
    assert.deepEqual(await reserve(db, { key, budgetIds: [eur.id, usd.id], projectId: 'p', amount, currency: 'EUR', perBudget, now: clock }), ok);
    const row = await db('reservations').where({ id: key, budget_id: usd.id }).first();
    assert.equal(row.fx_rate, '1.085600000000000000');
    assert.equal(row.fx_source, 'ecb');
    assert.equal(row.source_currency, 'EUR');
    assert.equal(fromNumeric(row.source_amount), amount);
    assert.equal((await budgetStatus(db, usd, clock)).reserved, parseAmount('0.55', 'USD'));

    // A second one would fit the EUR budget but not the USD one: refused, nothing held anywhere.
    const refused = await reserve(db, { key: `${key}-2`, budgetIds: [eur.id, usd.id], projectId: 'p', amount, currency: 'EUR', perBudget, now: clock });
    assert.deepEqual(refused, { ok: false, budgetId: usd.id, remaining: parseAmount('0.05', 'USD'), limit: parseAmount('0.60', 'USD') });
    assert.equal((await budgetStatus(db, eur, clock)).reserved, amount);

    const held = await reservationBudgets(db, key);
    assert.deepEqual(held.map((h) => h.currency).sort(), ['EUR', 'USD']);
    // Settling more than was held in one currency is capped there.
    const charged = await settleEach(db, key, { [eur.id]: parseAmount('0.40', 'EUR'), [usd.id]: parseAmount('0.70', 'USD') });
    assert.deepEqual(charged, { [eur.id]: parseAmount('0.40', 'EUR'), [usd.id]: parseAmount('0.55', 'USD') });
    const [e, u] = [await budgetStatus(db, eur, clock), await budgetStatus(db, usd, clock)];
    assert.deepEqual([e.spent, e.reserved, u.spent, u.reserved], [parseAmount('0.40', 'EUR'), 0n, parseAmount('0.55', 'USD'), 0n]);
    // Idempotent: a repeat charges nothing more.
    assert.deepEqual(await settleEach(db, key, { [eur.id]: parseAmount('1.00', 'EUR'), [usd.id]: 0n }), charged);
  });
});

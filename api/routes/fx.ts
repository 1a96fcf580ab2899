import * as R from '../responses.js';
import { RouteGroup } from './table.js';
import type { Rate } from '../../domain/fx.js';
import type { FxService } from '../../fx/service.js';
import type { ApiContext } from '../context.js';
import { fxRatesQuery } from '../../services/schemas.js';

export const presentRate = (r: Rate) => ({
  currency: r.to,
  rate: r.rate,
  source: r.source,
  asOf: r.asOf,
  fetchedAt: r.fetchedAt,
  legs: r.legs.map((l) => ({ base: l.base, quote: l.quote, rate: l.rate, source: l.source, asOf: l.asOf })),
});

/** `GET /v1/fx/rates?base=USD`: 1 base = rate currency, for every supported currency that has a usable rate. */
export function fxRoutes(ctx: ApiContext, fx: FxService): RouteGroup {
  const r = new RouteGroup(ctx);
  r.get('/fx/rates', { permission: 'catalog.read', resource: 'none' }, { 200: R.fxRates }, async (req, res) => {
    const { base } = fxRatesQuery.parse(req.query);
    const { items, unavailable } = await fx.rates(base);
    res.json({ base, items: items.map(presentRate), unavailable });
  });
  return r;
}

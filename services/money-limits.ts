import { hourlyUnits } from '../domain/compute-prices.js';
import { convert } from '../domain/fx.js';
import type { MachineTypeId } from '../domain/machine-types.js';
import { PROFILES, type ProfileId } from '../domain/machines.js';
import { checkMoneyLimit, usd } from '../domain/metering.js';
import { InputError } from '../domain/errors.js';
import { createFxService } from '../fx/service.js';
import type { Project } from '../store/projects.js';
import type { ServiceContext as ApiContext } from './context.js';
import { routingCandidates } from './routing.js';

/**
 * A machine's money limit at request time (machines, objectives, pipeline steps): the requested
 * one when it covers one worst-case model call plus the machine's compute, else 422 naming the
 * minimum; without one, the project's default raised to that minimum. The computation is
 * domain/metering.ts `checkMoneyLimit`; here the USD minimum meets the project's currency. The
 * compute is at `hourlyPriceUsd` (the machine's price, domain/compute-prices.ts) when known, else
 * the profile's own price.
 */
export async function machineMoneyLimit(
  ctx: ApiContext,
  project: Project,
  m: {
    type: MachineTypeId;
    model?: string | null | undefined;
    requested: bigint | null;
    minutes: number;
    profile: ProfileId;
    field?: string;
    hourlyPriceUsd?: string;
    /** Without a requested limit: the predicted upper bound (README "Cost prediction"), used when above the minimum. */
    predictedUpper?: bigint | null;
  },
): Promise<bigint> {
  const currency = project.currency;
  let toCurrency = (units: bigint) => units;
  if (m.type !== 'shell' && currency !== 'USD') {
    // Unavailable rates answer 503 fx_unavailable: the run could not convert its token prices either.
    const rate = await (ctx.fx ?? createFxService(ctx)).rate('USD', currency);
    toCurrency = (units) => convert(units, rate.ratio, currency, 'up', 'ledger');
  }
  const verdict = checkMoneyLimit({
    type: m.type,
    model: m.model ?? null,
    requested: m.requested,
    projectDefault: project.defaultMachineMoney,
    currency,
    minutes: m.minutes,
    hourlyPriceUsd: m.hourlyPriceUsd ? hourlyUnits(m.hourlyPriceUsd) : usd(PROFILES[m.profile].hourlyPrice),
    prices: ctx.config.modelPrices,
    toCurrency,
    ...(m.field ? { field: m.field } : {}),
  });
  if (!verdict.ok) throw new InputError(verdict.message, { field: verdict.field, minimum: verdict.minimum, currency: verdict.currency });
  if (m.requested === null && m.predictedUpper && m.predictedUpper > verdict.minimum) return m.predictedUpper;
  return verdict.limit;
}

/**
 * The money limit of an objective's or pipeline step's machines whose type may be `auto`: for
 * `auto`, the largest of the limits of the agent types the router may pick now (it picks per
 * machine, later), so whichever it picks is covered; none available → 409.
 */
export async function machineMoneyLimitOf(
  ctx: ApiContext,
  project: Project,
  m: Omit<Parameters<typeof machineMoneyLimit>[2], 'type'> & { type: MachineTypeId | 'auto' },
): Promise<bigint> {
  if (m.type !== 'auto') return machineMoneyLimit(ctx, project, { ...m, type: m.type });
  let limit = 0n;
  for (const type of routingCandidates(ctx.config)) {
    const l = await machineMoneyLimit(ctx, project, { ...m, type, model: null });
    if (l > limit) limit = l;
  }
  return limit;
}

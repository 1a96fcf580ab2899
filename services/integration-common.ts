/**
 * What every kind of integration shares (services/integrations.ts for GitHub and the integration
 * record, services/tickets.ts for Jira and Linear): the dashboard's address, who acts when an
 * integration does something itself, exact costs, an incoming hook's adapter, and an objective
 * started from a tracker item (linked to it in the objective's own transaction).
 */
import type { Knex } from 'knex';
import type { IntegrationKind } from '../domain/integrations.js';
import { formatAmount } from '../domain/money.js';
import { costTotals } from '../store/costs.js';
import { insertLink, linkOfItem, type Integration, type LinkKind } from '../store/integrations.js';
import type { Project } from '../store/projects.js';
import type { Caller, ServiceContext } from './context.js';
import { createObjective } from './objectives.js';

/** The dashboard's base URL (AUTOVIBE_PUBLIC_URL, else the api's own address). */
export const publicUrlOf = (ctx: ServiceContext) => ctx.config.webhooks.publicUrl ?? `http://${ctx.config.host}:${ctx.config.port}`;

/** Who acts when an integration does something itself (an objective from an issue, a pull request on completion). */
export function integrationCaller(i: Integration, idempotencyKey?: string): Caller {
  return {
    principal: { userId: `integration:${i.id}`, name: `${i.kind}-integration`, role: 'owner', apiKeyId: i.id, projectIds: [i.projectId] },
    ...(idempotencyKey ? { idempotencyKey } : {}),
  };
}

/** The cost of machines in the project's currency, exact. */
export async function costOf(ctx: ServiceContext, project: Project, machineIds: string[]): Promise<{ amount: string; currency: string }> {
  let total = 0n;
  for (const id of machineIds) total += Object.values(await costTotals(ctx.db, { machineId: id })).reduce((a, b) => a + b, 0n);
  return { amount: formatAmount(total, project.currency), currency: project.currency };
}

export type HookHeaders = Record<string, string | undefined>;
export type HookResult = { outcome: string; objectiveId?: string };

/** What one kind's incoming hooks need: how they are signed and identified, and what they do. */
export interface InboundAdapter {
  /** Whether the raw body is signed with the integration's secret (checked before anything is parsed). */
  verify(secret: string, raw: Buffer, headers: HookHeaders): boolean;
  /** Why a signed delivery is still refused (stale: a replay), checked before it is recorded; null when fresh. */
  staleness?(payload: unknown, nowMs: number): string | null;
  /** The delivery's id, the same on a redelivery. */
  deliveryId(headers: HookHeaders): string | undefined;
  /** The event's name (for the log and the audit record). */
  event(headers: HookHeaders, payload: unknown): string;
  handle(ctx: ServiceContext, integration: Integration, event: string, payload: unknown): Promise<HookResult>;
}

export const header = (h: HookHeaders, name: string) => h[name]?.slice(0, 200);

/** Text Postgres can store (no NUL, no lone surrogate), whatever the tracker sent. */
export const cleanText = (t: string) => t.replaceAll('\u0000', '').replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '\uFFFD');

/** A tracker item whose text becomes an objective. */
export interface ItemWork {
  linkKind: LinkKind;
  externalId: string;
  number: number | null;
  url: string;
  /** The objective's title. */
  title: string;
  /** The prompt, or (shell machines) the command. */
  work: string;
  machineType: string;
  as: 'prompt' | 'command';
}

/**
 * Starts an objective from a tracker item and links it, once: a second trigger of the same item
 * finds it (its idempotency key is the item's). The link commits with the objective, so its
 * first status change is already told on the item.
 */
export async function objectiveFromItem(ctx: ServiceContext, integration: Integration, item: ItemWork): Promise<HookResult> {
  const linked = await linkOfItem(ctx.db, integration.id, item.linkKind, item.externalId);
  if (linked?.objectiveId) return { outcome: 'already linked', objectiveId: linked.objectiveId };
  const work = cleanText(item.work).trim();
  if (!work) return { outcome: `ignored: the ${item.linkKind} has no text to run` };
  const link = (db: Knex.Transaction | ServiceContext['db'], objectiveId: string) =>
    insertLink(db, {
      integrationId: integration.id,
      objectiveId,
      checkpointId: null,
      kind: item.linkKind,
      externalId: item.externalId,
      number: item.number,
      url: item.url,
    });
  const objective = await createObjective(
    ctx,
    integrationCaller(integration, `${item.linkKind}:${item.externalId}`),
    integration.projectId,
    {
      title: cleanText(item.title).slice(0, 500),
      machineType: item.machineType as never,
      ...(item.as === 'command' ? { command: work.slice(0, 100_000) } : { prompt: work.slice(0, 100_000) }),
    },
    async (trx, id) => void (await link(trx, id)),
  );
  // An objective made by an earlier try of this item: linked now if it was not then.
  await link(ctx.db, objective.id);
  return { outcome: 'objective created', objectiveId: objective.id };
}

export type { IntegrationKind };

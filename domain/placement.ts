/**
 * Hybrid placement: which provider, profile and capacity kind (spot or on-demand) a machine gets.
 * The policy is data (ordered rules) that a user reads and overrides per project and per machine
 * type; the defaults put complex work on VMs, simple tasks in containers, and use spot capacity when
 * the work can survive an interruption (it re-provisions from its latest checkpoint).
 * Pure: availability comes in as data, so the api and the tests decide the same way.
 */
import type { MachineTypeId } from './machine-types.js';
import { PROFILES, PROVIDERS, type ProfileId, type ProviderId } from './machines.js';

export type Complexity = 'simple' | 'complex';
/** `if-interruptible`: spot only when the machine can survive losing its instance. */
export type SpotChoice = boolean | 'if-interruptible';

export interface PlacementRule {
  /** A name shown in the decision, so a user can see which rule placed a machine. */
  name: string;
  /** Every condition given must hold; an empty match takes every machine. */
  match: { types?: MachineTypeId[]; complexity?: Complexity; interruptible?: boolean };
  /** Providers in order of preference: the first available one is used. */
  providers: ProviderId[];
  profile?: ProfileId;
  spot?: SpotChoice;
}

export interface PlacementPolicy {
  rules: PlacementRule[];
}

/** Providers that sell interruptible capacity; elsewhere `spot` has no meaning and is dropped. */
export const SPOT_PROVIDERS: readonly ProviderId[] = ['aws-ec2', 'aws-ecs'];

export const DEFAULT_PLACEMENT: PlacementPolicy = {
  rules: [
    { name: 'complex work on VMs', match: { complexity: 'complex' }, providers: ['aws-ec2', 'kubernetes', 'local'], spot: 'if-interruptible' },
    {
      name: 'simple tasks in containers',
      match: { complexity: 'simple' },
      providers: ['container', 'aws-ecs', 'kubernetes', 'local'],
      spot: 'if-interruptible',
    },
  ],
};

/** Shell commands are simple tasks; model-driven agents are complex work. */
export function complexityOf(type: MachineTypeId): Complexity {
  return type === 'shell' ? 'simple' : 'complex';
}

/** Minutes of a shell command beyond which re-running it after an interruption loses too much. */
export const INTERRUPTIBLE_SHELL_MINUTES = 60;

/**
 * Whether the machine survives losing its instance at an acceptable price: agents checkpoint as they
 * go; a shell command starts over from its checkpoint, which is fine when it is short.
 */
export function isInterruptible(type: MachineTypeId, minutes: number): boolean {
  return type !== 'shell' || minutes <= INTERRUPTIBLE_SHELL_MINUTES;
}

export interface PlacementRequest {
  type: MachineTypeId;
  minutes: number;
  /** Explicit choices of the caller: an explicit provider always wins (or is refused). */
  provider?: ProviderId;
  profile?: ProfileId;
  spot?: boolean;
}

export type Availability = (provider: ProviderId, type: MachineTypeId) => { available: boolean; reason?: string };

export type PlacementDecision =
  | { ok: true; provider: ProviderId; profile: ProfileId; spot: boolean; rule: string; skipped: Array<{ provider: ProviderId; reason: string }> }
  | { ok: false; reason: string; skipped: Array<{ provider: ProviderId; reason: string }> };

function matches(rule: PlacementRule, req: PlacementRequest, interruptible: boolean): boolean {
  const m = rule.match;
  if (m.types && !m.types.includes(req.type)) return false;
  if (m.complexity && m.complexity !== complexityOf(req.type)) return false;
  if (m.interruptible !== undefined && m.interruptible !== interruptible) return false;
  return true;
}

/**
 * Decides where a machine runs. The project's rules come first, then the defaults; within a rule the
 * first available provider wins. `local` is the last resort when nothing else is available.
 *
 * @example decidePlacement(projectPolicy, { type: 'shell', minutes: 5 }, availability)
 *   // → { ok: true, provider: 'container', profile: 'lightweight', spot: false, rule: 'simple tasks in containers' }
 */
export function decidePlacement(projectPolicy: PlacementPolicy | null, req: PlacementRequest, availability: Availability): PlacementDecision {
  const interruptible = isInterruptible(req.type, req.minutes);
  const skipped: Array<{ provider: ProviderId; reason: string }> = [];
  const finish = (provider: ProviderId, rule: PlacementRule | null): PlacementDecision => {
    const wanted = req.spot ?? (rule?.spot === 'if-interruptible' ? interruptible : (rule?.spot ?? false));
    return {
      ok: true,
      provider,
      profile: req.profile ?? rule?.profile ?? 'lightweight',
      spot: wanted && SPOT_PROVIDERS.includes(provider),
      rule: rule?.name ?? 'explicit provider',
      skipped,
    };
  };
  if (req.provider) {
    const a = availability(req.provider, req.type);
    if (!a.available) return { ok: false, reason: `provider ${req.provider} is unavailable: ${a.reason ?? 'no reason given'}`, skipped };
    return finish(req.provider, null);
  }
  const seen = new Set<ProviderId>();
  for (const rule of [...(projectPolicy?.rules ?? []), ...DEFAULT_PLACEMENT.rules]) {
    if (!matches(rule, req, interruptible)) continue;
    for (const provider of rule.providers) {
      const a = availability(provider, req.type);
      if (a.available) return finish(provider, rule);
      if (!seen.has(provider)) skipped.push({ provider, reason: a.reason ?? 'unavailable' });
      seen.add(provider);
    }
  }
  const local = availability('local', req.type);
  if (local.available) return finish('local', { name: 'last resort', match: {}, providers: ['local'] });
  return { ok: false, reason: `no provider can run a ${req.type} machine: ${skipped.map((s) => `${s.provider}: ${s.reason}`).join('; ')}`, skipped };
}

export const PLACEMENT_PROVIDERS = PROVIDERS;
export const PLACEMENT_PROFILES = Object.keys(PROFILES) as ProfileId[];

/**
 * Availability that also counts load: a provider already running its capacity of machines is
 * unavailable for one more, so placement spills over to the next provider of the rule. This is
 * how work is balanced across providers (a soft limit: two placements at the same moment may
 * both see the last free place).
 */
export function withCapacity(availability: Availability, running: Record<string, number>, capacity: Record<string, number>): Availability {
  return (provider, type) => {
    const a = availability(provider, type);
    if (!a.available) return a;
    const max = capacity[provider];
    const now = running[provider] ?? 0;
    if (max !== undefined && now >= max) return { available: false, reason: `at capacity (${now} of ${max} machines running)` };
    return a;
  };
}

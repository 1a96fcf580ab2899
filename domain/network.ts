/**
 * Network policy of machines, the pure parts: the three modes, the host entries an allowlist
 * holds, whether a host:port passes a policy, and whether a machine request's policy stays within
 * its project's. Enforced by the egress proxy (activities/machines/egress-proxy.ts) on the
 * providers that can route a sandbox through it (`local`, `container`); no other provider may run
 * a machine whose policy is not `none`.
 */
import type { ProviderId } from './machines.js';
import type { Availability } from './placement.js';

export const NETWORK_MODES = ['none', 'registries', 'allowlist'] as const;
export type NetworkMode = (typeof NETWORK_MODES)[number];

/** `none`: no network at all; `registries`: package registries only; `allowlist`: the hosts listed. */
export interface NetworkPolicy {
  mode: NetworkMode;
  /** allowlist only: `name`, `*.suffix`, each with an optional `:port`. Empty for the other modes. */
  hosts: string[];
}

export const NO_NETWORK: NetworkPolicy = { mode: 'none', hosts: [] };

/** The package registries `registries` lets through (plus the deployment's AUTOVIBE_NETWORK_REGISTRY_HOSTS). */
export const REGISTRY_HOSTS: readonly string[] = [
  'registry.npmjs.org',
  'registry.yarnpkg.com',
  'pypi.org',
  'files.pythonhosted.org',
  'proxy.golang.org',
  'sum.golang.org',
  'repo.maven.apache.org',
  'repo1.maven.org',
  'crates.io',
  'index.crates.io',
  'static.crates.io',
  'deb.debian.org',
];

/** Providers whose sandboxes reach the outside only through the worker's egress proxy. */
export const NETWORK_PROVIDERS: readonly ProviderId[] = ['local', 'container'];

/** Ports an entry without `:port` allows. */
export const DEFAULT_PORTS: readonly number[] = [80, 443];

/** Most entries one allowlist holds. */
export const MAX_ALLOWLIST_HOSTS = 200;

/** A parsed host entry: `exact` name or a `*.suffix` wildcard (suffix without the leading `*.`), and its port. */
export interface HostEntry {
  wildcard: boolean;
  name: string;
  port: number | null;
}

const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/** A host entry, or the reason it is not one (what to write instead). */
export function parseHostEntry(raw: string): HostEntry | string {
  const text = raw.trim().toLowerCase().replace(/\.$/, '');
  const m = /^(\*\.)?([^:]+)(?::(\d{1,5}))?$/.exec(text);
  if (!m) return `"${raw.slice(0, 80)}" is not a host: give a name such as registry.example.com, a wildcard such as *.example.com, each with an optional :port`;
  const wildcard = Boolean(m[1]);
  const name = m[2]!;
  const port = m[3] ? Number(m[3]) : null;
  if (port !== null && (port < 1 || port > 65535)) return `"${raw.slice(0, 80)}": port must be 1-65535`;
  if (IPV4.test(name)) {
    if (wildcard) return `"${raw.slice(0, 80)}": a wildcard takes a domain name, not an address`;
    return { wildcard, name, port };
  }
  const labels = name.split('.');
  if (name.length > 253 || labels.some((l) => !LABEL.test(l))) {
    return `"${raw.slice(0, 80)}" is not a host name: letters, digits and "-" in dot-separated labels (a wildcard only as the leading "*.")`;
  }
  if (wildcard && labels.length < 2) return `"${raw.slice(0, 80)}": a wildcard needs at least two labels after "*." (e.g. *.example.com)`;
  return { wildcard, name, port };
}

/** The entry written back in its canonical form. */
export function formatHostEntry(e: HostEntry): string {
  return `${e.wildcard ? '*.' : ''}${e.name}${e.port !== null ? `:${e.port}` : ''}`;
}

/** The policy as given (mode + hosts), checked and canonical, or the reason it is not one. */
export function normalizeNetworkPolicy(input: { mode: NetworkMode; hosts?: readonly string[] | undefined }): NetworkPolicy | string {
  const hosts = input.hosts ?? [];
  if (input.mode !== 'allowlist') {
    if (hosts.length) return `hosts: only an allowlist takes hosts (mode "${input.mode}" has none); use mode "allowlist"`;
    return { mode: input.mode, hosts: [] };
  }
  if (!hosts.length) return 'hosts: an allowlist needs at least one host, e.g. ["registry.example.com", "*.example.org:8443"]; or use mode "none"';
  if (hosts.length > MAX_ALLOWLIST_HOSTS) return `hosts: at most ${MAX_ALLOWLIST_HOSTS} entries`;
  const out: string[] = [];
  for (const h of hosts) {
    const e = parseHostEntry(h);
    if (typeof e === 'string') return `hosts: ${e}`;
    const canonical = formatHostEntry(e);
    if (!out.includes(canonical)) out.push(canonical);
  }
  return { mode: 'allowlist', hosts: out };
}

function entryMatches(e: HostEntry, host: string, port: number): boolean {
  if (e.port === null ? !DEFAULT_PORTS.includes(port) : e.port !== port) return false;
  return e.wildcard ? host.endsWith(`.${e.name}`) : host === e.name;
}

function entries(list: readonly string[]): HostEntry[] {
  return list.map(parseHostEntry).filter((e): e is HostEntry => typeof e !== 'string');
}

/** The entries a policy lets through (`registries`: the built-in list and the deployment's). */
export function policyEntries(policy: NetworkPolicy, registryHosts: readonly string[]): HostEntry[] {
  if (policy.mode === 'none') return [];
  return entries(policy.mode === 'registries' ? registryHosts : policy.hosts);
}

/** Why `host:port` may not be reached under `policy`, or null when it may (by name only: the address is checked after resolving). */
export function hostProblem(policy: NetworkPolicy, registryHosts: readonly string[], host: string, port: number): string | null {
  const name = host.toLowerCase().replace(/\.$/, '');
  if (policy.mode === 'none') return 'this machine has no network (policy "none")';
  if (policyEntries(policy, registryHosts).some((e) => entryMatches(e, name, port))) return null;
  return policy.mode === 'registries'
    ? `${name}:${port} is not a package registry this machine may reach (policy "registries")`
    : `${name}:${port} is not on this machine's allowlist`;
}

/** Whether entry `outer` lets through everything `inner` does. */
function covers(outer: HostEntry, inner: HostEntry): boolean {
  const ports = (e: HostEntry) => (e.port === null ? DEFAULT_PORTS : [e.port]);
  if (!ports(inner).every((p) => ports(outer).includes(p))) return false;
  if (!outer.wildcard) return !inner.wildcard && inner.name === outer.name;
  return inner.name.endsWith(`.${outer.name}`) || (inner.wildcard && inner.name === outer.name);
}

/**
 * Why `requested` reaches further than `project` allows, or null when it stays within it
 * (`none` is within everything; an allowlist is within when each entry is covered).
 */
export function widensProblem(requested: NetworkPolicy, project: NetworkPolicy, registryHosts: readonly string[]): string | null {
  if (requested.mode === 'none') return null;
  if (project.mode === 'none') return `the project's network policy is "none"; a machine may ask for "${requested.mode}" only with an owner's key`;
  const outer = policyEntries(project, registryHosts);
  const inner = requested.mode === 'registries' ? entries(registryHosts) : entries(requested.hosts);
  const beyond = inner.filter((i) => !outer.some((o) => covers(o, i)));
  if (!beyond.length) return null;
  return `${beyond
    .slice(0, 5)
    .map(formatHostEntry)
    .join(
      ', ',
    )}${beyond.length > 5 ? ` and ${beyond.length - 5} more` : ''} reach beyond the project's network policy ("${project.mode}"); narrow the request or ask an owner`;
}

/** Availability that leaves out providers that cannot enforce `policy` (only `none` runs everywhere). */
export function withNetworkEnforcement(availability: Availability, policy: NetworkPolicy): Availability {
  if (policy.mode === 'none') return availability;
  return (provider, type) =>
    NETWORK_PROVIDERS.includes(provider)
      ? availability(provider, type)
      : { available: false, reason: `cannot enforce network policy "${policy.mode}" (only ${NETWORK_PROVIDERS.join(' and ')} can); use network "none" there` };
}

/** A stored policy (jsonb) read back; anything unreadable is `none`. */
export function networkPolicyOf(raw: unknown): NetworkPolicy {
  const v = (typeof raw === 'string' ? JSON.parse(raw) : raw) as Partial<NetworkPolicy> | null;
  if (!v || !NETWORK_MODES.includes(v.mode as NetworkMode)) return NO_NETWORK;
  return { mode: v.mode as NetworkMode, hosts: Array.isArray(v.hosts) ? v.hosts.map(String) : [] };
}

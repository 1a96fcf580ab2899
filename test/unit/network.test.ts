import assert from 'node:assert/strict';
import {
  hostProblem,
  normalizeNetworkPolicy,
  parseHostEntry,
  REGISTRY_HOSTS,
  widensProblem,
  withNetworkEnforcement,
  type NetworkPolicy,
} from '../../domain/network.js';

const allow = (...hosts: string[]): NetworkPolicy => ({ mode: 'allowlist', hosts });
const registries: NetworkPolicy = { mode: 'registries', hosts: [] };
const none: NetworkPolicy = { mode: 'none', hosts: [] };

describe('network policy (domain)', () => {
  it('parses host entries: names, *.suffix wildcards, IPv4 literals, optional ports; refuses the rest with the reason', () => {
    assert.deepEqual(parseHostEntry('Registry.Example.COM.'), { wildcard: false, name: 'registry.example.com', port: null });
    assert.deepEqual(parseHostEntry('*.example.org:8443'), { wildcard: true, name: 'example.org', port: 8443 });
    assert.deepEqual(parseHostEntry('127.0.0.2:4873'), { wildcard: false, name: '127.0.0.2', port: 4873 });
    assert.match(parseHostEntry('bad host') as string, /not a host name/);
    assert.match(parseHostEntry('*.com') as string, /at least two labels/);
    assert.match(parseHostEntry('a.*.example.com') as string, /not a host name/);
    assert.match(parseHostEntry('example.com:0') as string, /port must be 1-65535/);
    assert.match(parseHostEntry('*.10.0.0.1') as string, /wildcard takes a domain name/);
    assert.match(parseHostEntry('http://example.com') as string, /not a host/);
  });

  it('normalizes a policy: canonical, deduplicated hosts; hosts only for an allowlist, at least one there', () => {
    assert.deepEqual(
      normalizeNetworkPolicy({ mode: 'allowlist', hosts: ['A.example.com', 'a.example.com', '*.x.org:81'] }),
      allow('a.example.com', '*.x.org:81'),
    );
    assert.match(normalizeNetworkPolicy({ mode: 'allowlist', hosts: [] }) as string, /at least one host/);
    assert.match(normalizeNetworkPolicy({ mode: 'registries', hosts: ['x.org'] }) as string, /only an allowlist takes hosts/);
    assert.deepEqual(normalizeNetworkPolicy({ mode: 'none' }), none);
  });

  it('decides by host and port: exact names, wildcards below the suffix only, default ports 80 and 443', () => {
    const p = allow('registry.example.com', '*.cdn.example.org', 'mirror.example.net:8080');
    assert.equal(hostProblem(p, REGISTRY_HOSTS, 'registry.example.com', 443), null);
    assert.equal(hostProblem(p, REGISTRY_HOSTS, 'REGISTRY.example.com.', 80), null);
    assert.match(hostProblem(p, REGISTRY_HOSTS, 'registry.example.com', 22)!, /not on this machine's allowlist/);
    assert.equal(hostProblem(p, REGISTRY_HOSTS, 'a.b.cdn.example.org', 443), null);
    assert.match(hostProblem(p, REGISTRY_HOSTS, 'cdn.example.org', 443)!, /allowlist/);
    assert.match(hostProblem(p, REGISTRY_HOSTS, 'evilcdn.example.org', 443)!, /allowlist/);
    assert.equal(hostProblem(p, REGISTRY_HOSTS, 'mirror.example.net', 8080), null);
    assert.match(hostProblem(p, REGISTRY_HOSTS, 'mirror.example.net', 443)!, /allowlist/);
    assert.equal(hostProblem(registries, REGISTRY_HOSTS, 'registry.npmjs.org', 443), null);
    assert.match(hostProblem(registries, REGISTRY_HOSTS, 'github.com', 443)!, /not a package registry/);
    assert.equal(hostProblem(registries, [...REGISTRY_HOSTS, 'npm.corp.example:4873'], 'npm.corp.example', 4873), null);
    assert.match(hostProblem(none, REGISTRY_HOSTS, 'registry.npmjs.org', 443)!, /no network/);
  });

  it('keeps a request within its project: none always, narrower lists yes, anything wider names what reaches beyond', () => {
    const project = allow('*.example.com', 'registry.npmjs.org');
    assert.equal(widensProblem(none, project, REGISTRY_HOSTS), null);
    assert.equal(widensProblem(allow('a.example.com:443', '*.b.example.com', 'registry.npmjs.org'), project, REGISTRY_HOSTS), null);
    assert.match(widensProblem(allow('example.com'), project, REGISTRY_HOSTS)!, /example\.com reach beyond/);
    assert.match(widensProblem(allow('a.example.com:22'), project, REGISTRY_HOSTS)!, /a\.example\.com:22 reach beyond/);
    assert.match(widensProblem(registries, project, REGISTRY_HOSTS)!, /pypi\.org.* and \d+ more reach beyond/);
    assert.equal(widensProblem(allow('pypi.org'), registries, REGISTRY_HOSTS), null);
    assert.equal(widensProblem(registries, registries, REGISTRY_HOSTS), null);
    assert.match(widensProblem(allow('pypi.org'), none, REGISTRY_HOSTS)!, /project's network policy is "none"/);
  });

  it('leaves only local and container available for a policy other than none', () => {
    const all = () => ({ available: true });
    const enforced = withNetworkEnforcement(all, registries);
    assert.equal(enforced('local', 'shell').available, true);
    assert.equal(enforced('container', 'shell').available, true);
    for (const provider of ['aws-ec2', 'aws-ecs', 'kubernetes'] as const) {
      const a = enforced(provider, 'shell');
      assert.equal(a.available, false);
      assert.match(a.reason!, /cannot enforce network policy "registries"/);
    }
    assert.equal(withNetworkEnforcement(all, none)('kubernetes', 'shell').available, true);
  });
});

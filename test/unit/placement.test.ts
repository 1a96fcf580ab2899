import assert from 'node:assert/strict';
import type { MachineTypeId } from '../../domain/machine-types.js';
import type { ProviderId } from '../../domain/machines.js';
import { DEFAULT_PLACEMENT, decidePlacement, isInterruptible, type Availability, type PlacementPolicy } from '../../domain/placement.js';

/** Availability as data: the listed providers are up; agents run only where `agents` allows. */
function only(up: ProviderId[], agents: ProviderId[] = ['local', 'aws-ec2', 'kubernetes']): Availability {
  return (provider: ProviderId, type: MachineTypeId) => {
    if (!up.includes(provider)) return { available: false, reason: `${provider} is down` };
    if (type !== 'shell' && !agents.includes(provider)) return { available: false, reason: 'agents not supported' };
    return { available: true };
  };
}

describe('placement policy (domain/placement.ts)', () => {
  it('puts simple tasks in containers and complex work on VMs by default', () => {
    const all = only(['local', 'container', 'aws-ec2', 'aws-ecs', 'kubernetes']);
    const shell = decidePlacement(null, { type: 'shell', minutes: 10 }, all);
    assert.ok(shell.ok);
    assert.equal(shell.provider, 'container');
    assert.equal(shell.rule, 'simple tasks in containers');
    const agent = decidePlacement(null, { type: 'claude-code', minutes: 30 }, all);
    assert.ok(agent.ok);
    assert.equal(agent.provider, 'aws-ec2');
    assert.equal(agent.rule, 'complex work on VMs');
  });

  it('uses spot only where the work survives an interruption and the provider sells spot', () => {
    const all = only(['local', 'container', 'aws-ec2', 'aws-ecs', 'kubernetes']);
    const agent = decidePlacement(null, { type: 'claude-code', minutes: 600 }, all);
    assert.ok(agent.ok && agent.spot, 'agents checkpoint as they go: spot');
    const longShell = decidePlacement(null, { type: 'shell', minutes: 240 }, only(['aws-ecs', 'local']));
    assert.ok(longShell.ok);
    assert.equal(longShell.provider, 'aws-ecs');
    assert.equal(longShell.spot, false, 'a 4-hour command would start over: on-demand');
    const shortShell = decidePlacement(null, { type: 'shell', minutes: 10 }, only(['aws-ecs', 'local']));
    assert.ok(shortShell.ok && shortShell.spot);
    const container = decidePlacement(null, { type: 'shell', minutes: 10 }, all);
    assert.ok(container.ok);
    assert.equal(container.spot, false, 'containers have no spot capacity');
    assert.equal(isInterruptible('shell', 60), true);
    assert.equal(isInterruptible('shell', 61), false);
  });

  it('falls through the preference list to the first available provider, telling what it skipped', () => {
    const d = decidePlacement(null, { type: 'shell', minutes: 5 }, only(['local']));
    assert.ok(d.ok);
    assert.equal(d.provider, 'local');
    assert.deepEqual(
      d.skipped.map((s) => s.provider),
      ['container', 'aws-ecs', 'kubernetes'],
    );
    assert.match(d.skipped[0]!.reason, /container is down/);
  });

  it('lets a project override per machine type, ahead of the defaults', () => {
    const policy: PlacementPolicy = {
      rules: [
        { name: 'aider on k8s', match: { types: ['aider'] }, providers: ['kubernetes'], spot: false },
        { name: 'shell on ec2 spot', match: { types: ['shell'] }, providers: ['aws-ec2'], spot: true },
      ],
    };
    const all = only(['local', 'container', 'aws-ec2', 'aws-ecs', 'kubernetes']);
    const aider = decidePlacement(policy, { type: 'aider', minutes: 30 }, all);
    assert.ok(aider.ok);
    assert.deepEqual([aider.provider, aider.spot, aider.rule], ['kubernetes', false, 'aider on k8s']);
    const shell = decidePlacement(policy, { type: 'shell', minutes: 5 }, all);
    assert.ok(shell.ok);
    assert.deepEqual([shell.provider, shell.spot], ['aws-ec2', true]);
    // Types the project did not mention keep the defaults.
    const claude = decidePlacement(policy, { type: 'claude-code', minutes: 5 }, all);
    assert.ok(claude.ok);
    assert.equal(claude.rule, DEFAULT_PLACEMENT.rules[0]!.name);
    // A project rule whose providers are all down falls through to the defaults.
    const down = decidePlacement(policy, { type: 'shell', minutes: 5 }, only(['local', 'container']));
    assert.ok(down.ok);
    assert.equal(down.provider, 'container');
  });

  it('an explicit provider wins over every rule, or is refused with the reason', () => {
    const all = only(['local', 'container']);
    const explicit = decidePlacement({ rules: [{ name: 'x', match: {}, providers: ['container'] }] }, { type: 'shell', minutes: 5, provider: 'local' }, all);
    assert.ok(explicit.ok);
    assert.equal(explicit.provider, 'local');
    assert.equal(explicit.rule, 'explicit provider');
    const refused = decidePlacement(null, { type: 'shell', minutes: 5, provider: 'aws-ec2' }, all);
    assert.equal(refused.ok, false);
    assert.match(!refused.ok ? refused.reason : '', /provider aws-ec2 is unavailable: aws-ec2 is down/);
    const spotOnLocal = decidePlacement(null, { type: 'shell', minutes: 5, provider: 'local', spot: true }, all);
    assert.ok(spotOnLocal.ok && spotOnLocal.spot === false, 'spot is dropped where the provider has none');
    const agentInContainer = decidePlacement(null, { type: 'claude-code', minutes: 5, provider: 'container' }, only(['local', 'container'], ['local']));
    assert.equal(agentInContainer.ok, false);
  });

  it('refuses when no provider at all can run the machine', () => {
    const d = decidePlacement(null, { type: 'shell', minutes: 5 }, only([]));
    assert.equal(d.ok, false);
    assert.match(!d.ok ? d.reason : '', /no provider can run a shell machine/);
  });
});

describe('provider registry: cloud providers plug in from configuration', () => {
  it('registers aws-ec2, aws-ecs and kubernetes when configured, and explains the ones that are not', async () => {
    const { createProviders } = await import('../../activities/compute/index.js');
    const { loadConfig } = await import('../../config/index.js');
    const none = createProviders(loadConfig({ AUTOVIBE_HOME: '/tmp/autovibe-registry-test' }));
    for (const id of ['aws-ec2', 'aws-ecs', 'kubernetes'] as const) {
      const a = await none.get(id)!.availability();
      assert.equal(a.available, false);
      assert.match(a.reason!, /not configured/);
    }
    const configured = createProviders(
      loadConfig({
        AUTOVIBE_HOME: '/tmp/autovibe-registry-test',
        AUTOVIBE_AWS_EC2_IMAGE_ID: 'ami-12345678',
        AUTOVIBE_AWS_ECS_CLUSTER: 'machines',
        AUTOVIBE_AWS_ECS_TASK_DEFINITION: 'machine:1',
        AUTOVIBE_AWS_ECS_SUBNETS: 'subnet-1,subnet-2',
        AUTOVIBE_K8S_IMAGE: 'autovibe/machine:1',
        AUTOVIBE_K8S_SERVER: 'https://127.0.0.1:6443',
      }),
    );
    assert.equal(configured.get('aws-ec2')!.constructor.name, 'AwsEc2Provider');
    assert.equal(configured.get('aws-ecs')!.constructor.name, 'AwsEcsProvider');
    assert.equal(configured.get('kubernetes')!.constructor.name, 'KubernetesProvider');
    // The security groups machine VMs get (infra/ passes its no-inbound machines group this way).
    const withGroups = createProviders(
      loadConfig({ AUTOVIBE_HOME: '/tmp/autovibe-registry-test', AUTOVIBE_AWS_EC2_IMAGE_ID: 'ami-12345678', AUTOVIBE_AWS_EC2_SECURITY_GROUPS: 'sg-1, sg-2' }),
    );
    assert.deepEqual((withGroups.get('aws-ec2') as unknown as { config: { securityGroupIds?: string[] } }).config.securityGroupIds, ['sg-1', 'sg-2']);
  });
});

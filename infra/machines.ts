/**
 * Launch templates for machine VMs: one per profile (lightweight, standard, large) and market
 * (spot, on-demand). IMDSv2 only (session tokens required, one hop, so a container on the VM cannot
 * reach it), encrypted root volume, no inbound (the machines security group in the machines VPC),
 * the machine instance profile that holds no permission, terminate on shutdown.
 */
import * as aws from '@pulumi/aws';
import type { Roles } from './iam.js';
import type { SecurityGroups } from './security.js';
import { VM_PROFILES, type Settings, type VmProfile } from './settings.js';
import { prefix, tagsFor } from './tags.js';

export type Market = 'spot' | 'on-demand';

export function createLaunchTemplates(s: Settings, sg: SecurityGroups, roles: Roles): Record<`${VmProfile}-${Market}`, aws.ec2.LaunchTemplate> {
  const name = prefix(s);
  const tags = tagsFor(s, 'machines');
  const out = {} as Record<`${VmProfile}-${Market}`, aws.ec2.LaunchTemplate>;
  for (const profile of VM_PROFILES) {
    for (const market of ['spot', 'on-demand'] as const) {
      const instanceTags = { ...tags, 'autovibe:profile': profile, 'autovibe:market': market };
      out[`${profile}-${market}`] = new aws.ec2.LaunchTemplate(`${name}-machine-${profile}-${market}`, {
        description: `AutoVibe machine VM, profile ${profile}, ${market}`,
        imageId: s.machines.imageId,
        instanceType: s.machines.instanceTypes[profile],
        iamInstanceProfile: { arn: roles.machineProfile.arn },
        vpcSecurityGroupIds: [sg.machines.id],
        instanceInitiatedShutdownBehavior: 'terminate',
        metadataOptions: { httpEndpoint: 'enabled', httpTokens: 'required', httpPutResponseHopLimit: 1, instanceMetadataTags: 'disabled' },
        blockDeviceMappings: [
          { deviceName: '/dev/xvda', ebs: { volumeSize: s.machines.rootVolumeGb, volumeType: 'gp3', encrypted: 'true', deleteOnTermination: 'true' } },
        ],
        ...(market === 'spot'
          ? { instanceMarketOptions: { marketType: 'spot', spotOptions: { spotInstanceType: 'one-time', instanceInterruptionBehavior: 'terminate' } } }
          : {}),
        tagSpecifications: [
          { resourceType: 'instance', tags: instanceTags },
          { resourceType: 'volume', tags: instanceTags },
        ],
        updateDefaultVersion: true,
        tags: instanceTags,
      });
    }
  }
  return out;
}

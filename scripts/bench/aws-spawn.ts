/**
 * Spawn latency of the AWS providers against moto's server: provision (spot price history →
 * placement → RunInstances / RunTask) and terminate, sequentially. moto answers at once and
 * runs nothing, so this measures AutoVibe's own API round trips and logic, not AWS boot time.
 */
import { DescribeImagesCommand, DescribeSecurityGroupsCommand, DescribeSubnetsCommand, EC2Client } from '@aws-sdk/client-ec2';
import { CreateClusterCommand, ECSClient, RegisterTaskDefinitionCommand } from '@aws-sdk/client-ecs';
import { createAwsEc2Provider } from '../../activities/compute/aws-ec2.js';
import { createAwsEcsProvider } from '../../activities/compute/aws-ecs.js';
import type { ComputeProvider } from '../../activities/compute/provider.js';
import { startMoto } from '../services/moto.js';
import { summarize, type BenchOptions, type BenchOutput } from './common.js';

export async function awsSpawn(opts: BenchOptions): Promise<BenchOutput> {
  const runs = opts.quick ? 5 : 30;
  const moto = await startMoto();
  try {
    const clientConfig = { region: 'us-east-1', endpoint: moto.endpoint, credentials: moto.credentials };
    const ec2 = new EC2Client(clientConfig);
    const ecs = new ECSClient(clientConfig);
    const imageId = (await ec2.send(new DescribeImagesCommand({ Owners: ['amazon'] }))).Images?.find((i) => i.RootDeviceType === 'ebs')?.ImageId ?? '';
    const subnet = (await ec2.send(new DescribeSubnetsCommand({}))).Subnets?.[0]?.SubnetId ?? '';
    const group = (await ec2.send(new DescribeSecurityGroupsCommand({}))).SecurityGroups?.[0]?.GroupId ?? '';
    await ecs.send(new CreateClusterCommand({ clusterName: 'bench', capacityProviders: ['FARGATE', 'FARGATE_SPOT'] }));
    await ecs.send(
      new RegisterTaskDefinitionCommand({
        family: 'bench',
        requiresCompatibilities: ['FARGATE'],
        networkMode: 'awsvpc',
        cpu: '1024',
        memory: '2048',
        containerDefinitions: [{ name: 'machine', image: 'machine', cpu: 1024, memory: 2048 }],
      }),
    );
    const providers: Array<[string, ComputeProvider]> = [
      ['aws-ec2 spot', createAwsEc2Provider({ ...clientConfig, imageId })],
      [
        'aws-ecs Fargate Spot',
        createAwsEcsProvider({
          ...clientConfig,
          cluster: 'bench',
          taskDefinition: 'bench',
          containerName: 'machine',
          subnets: [subnet],
          securityGroups: [group],
        }),
      ],
    ];
    const rows: BenchOutput['rows'] = [];
    const details: Record<string, unknown> = { runs };
    for (const [label, provider] of providers) {
      const spawn: number[] = [];
      const stop: number[] = [];
      for (let i = 0; i < runs; i++) {
        const t0 = performance.now();
        const instance = await provider.provision({
          machineId: `machine-bench-${label.replace(/\W+/g, '-')}-${i}`,
          projectId: 'project-bench',
          profile: 'lightweight',
          spot: true,
          workspace: '/nonexistent',
          tags: {},
        });
        const t1 = performance.now();
        await provider.terminate(instance);
        spawn.push(t1 - t0);
        stop.push(performance.now() - t1);
      }
      opts.log(`${label}: ${runs} spawns`);
      rows.push({ label: `${label}: provision`, unit: 'ms', stats: summarize(spawn) });
      rows.push({ label: `${label}: terminate`, unit: 'ms', stats: summarize(stop) });
      details[label] = { spawn, stop };
    }
    return { rows, notes: ["against moto's server on loopback: API round trips and placement logic only, no VM or container boots"], details };
  } finally {
    await moto.stop();
  }
}

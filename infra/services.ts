/**
 * The container side: an ECR repository for the image built from the repository's Dockerfile, the
 * ECS cluster with FARGATE and FARGATE_SPOT capacity providers, the public load balancer, and the
 * api and worker services (private subnets, no public IP). The api runs on on-demand Fargate; the
 * worker on a mix (`onDemandBase` tasks on FARGATE, the rest weighted to FARGATE_SPOT: a spot
 * interruption is a SIGTERM, on which a worker hands its running machines over).
 */
import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';
import type { Roles } from './iam.js';
import type { Network } from './network.js';
import type { Secrets, PlatformSecret } from './secrets.js';
import { API_PORT, type SecurityGroups } from './security.js';
import type { Settings } from './settings.js';
import type { Storage } from './storage.js';
import { prefix, tagsFor } from './tags.js';

export interface Registry {
  repository: aws.ecr.Repository;
  apiLogGroup: aws.cloudwatch.LogGroup;
  workerLogGroup: aws.cloudwatch.LogGroup;
}

export function createRegistry(s: Settings): Registry {
  const name = prefix(s);
  const repository = new aws.ecr.Repository(`${name}-app`, {
    name: `${name}/app`,
    imageTagMutability: 'IMMUTABLE',
    imageScanningConfiguration: { scanOnPush: true },
    encryptionConfigurations: [{ encryptionType: 'AES256' }],
    tags: tagsFor(s, 'cluster'),
  });
  const logGroup = (component: 'api' | 'worker') =>
    new aws.cloudwatch.LogGroup(`${name}-${component}`, {
      name: `/autovibe/${s.environment}/${component}`,
      retentionInDays: s.logRetentionDays,
      tags: tagsFor(s, component),
    });
  return { repository, apiLogGroup: logGroup('api'), workerLogGroup: logGroup('worker') };
}

export interface Services {
  cluster: aws.ecs.Cluster;
  loadBalancer: aws.lb.LoadBalancer;
  api: aws.ecs.Service;
  worker: aws.ecs.Service;
  image: pulumi.Output<string>;
}

export interface ServiceInputs {
  net: Network;
  sg: SecurityGroups;
  roles: Roles;
  secrets: Secrets;
  storage: Storage;
  registry: Registry;
  machineSubnetIds: pulumi.Input<string>[];
}

export function createServices(s: Settings, x: ServiceInputs): Services {
  const name = prefix(s);
  const image = s.image ? pulumi.output(s.image) : pulumi.interpolate`${x.registry.repository.repositoryUrl}:${s.imageTag}`;

  const cluster = new aws.ecs.Cluster(`${name}`, { settings: [{ name: 'containerInsights', value: 'enabled' }], tags: tagsFor(s, 'cluster') });
  new aws.ecs.ClusterCapacityProviders(`${name}`, {
    clusterName: cluster.name,
    capacityProviders: ['FARGATE', 'FARGATE_SPOT'],
    defaultCapacityProviderStrategies: [{ capacityProvider: 'FARGATE', base: 1, weight: 1 }],
  });

  // Load balancer in the public subnets; the api behind it on API_PORT.
  const atags = tagsFor(s, 'api');
  const loadBalancer = new aws.lb.LoadBalancer(`${name}-api`, {
    loadBalancerType: 'application',
    internal: false,
    subnets: x.net.publicSubnets.map((n) => n.id),
    securityGroups: [x.sg.loadBalancer.id],
    dropInvalidHeaderFields: true,
    enableDeletionProtection: s.environment === 'prod',
    tags: atags,
  });
  const targetGroup = new aws.lb.TargetGroup(`${name}-api`, {
    port: API_PORT,
    protocol: 'HTTP',
    targetType: 'ip',
    vpcId: x.net.vpc.id,
    healthCheck: { path: '/healthz', matcher: '200' },
    deregistrationDelay: 30,
    tags: atags,
  });
  const listener = s.certificateArn
    ? new aws.lb.Listener(`${name}-api-https`, {
        loadBalancerArn: loadBalancer.arn,
        port: 443,
        protocol: 'HTTPS',
        sslPolicy: 'ELBSecurityPolicy-TLS13-1-2-2021-06',
        certificateArn: s.certificateArn,
        defaultActions: [{ type: 'forward', targetGroupArn: targetGroup.arn }],
        tags: atags,
      })
    : new aws.lb.Listener(`${name}-api-http`, {
        loadBalancerArn: loadBalancer.arn,
        port: 80,
        protocol: 'HTTP',
        defaultActions: [{ type: 'forward', targetGroupArn: targetGroup.arn }],
        tags: atags,
      });

  const common = [
    { name: 'NODE_ENV', value: 'production' },
    { name: 'AUTOVIBE_HOME', value: '/var/lib/autovibe' },
    { name: 'AWS_REGION', value: s.region },
    // Repositories and snapshots every api and worker task shares (README "Object store").
    { name: 'AUTOVIBE_OBJECT_STORE', value: pulumi.interpolate`s3://${x.storage.data.bucket}/objects` },
    { name: 'AUTOVIBE_OBJECT_STORE_S3_REGION', value: s.region },
    ...x.secrets.temporalEnv,
  ];
  const container = (
    component: 'api' | 'worker',
    command: string[],
    env: { name: string; value: pulumi.Input<string> }[],
    secrets: PlatformSecret[],
    logGroup: aws.cloudwatch.LogGroup,
  ) =>
    pulumi.jsonStringify([
      {
        name: component,
        image,
        essential: true,
        command,
        environment: [...common, ...env],
        secrets: secrets.map((x) => ({ name: x.env, valueFrom: x.secret.arn })),
        readonlyRootFilesystem: false,
        ...(component === 'api' ? { portMappings: [{ containerPort: API_PORT, protocol: 'tcp' }] } : {}),
        logConfiguration: { logDriver: 'awslogs', options: { 'awslogs-group': logGroup.name, 'awslogs-region': s.region, 'awslogs-stream-prefix': component } },
      },
    ]);

  const apiTask = new aws.ecs.TaskDefinition(`${name}-api`, {
    family: `${name}-api`,
    requiresCompatibilities: ['FARGATE'],
    networkMode: 'awsvpc',
    cpu: String(s.api.cpu),
    memory: String(s.api.memoryMiB),
    executionRoleArn: x.roles.apiExecution.arn,
    taskRoleArn: x.roles.apiTask.arn,
    runtimePlatform: { operatingSystemFamily: 'LINUX', cpuArchitecture: 'X86_64' },
    containerDefinitions: container(
      'api',
      ['npm', 'run', 'api'],
      [
        { name: 'HOST', value: '0.0.0.0' },
        { name: 'PORT', value: String(API_PORT) },
      ],
      x.secrets.api,
      x.registry.apiLogGroup,
    ),
    tags: atags,
  });
  const api = new aws.ecs.Service(
    `${name}-api`,
    {
      cluster: cluster.arn,
      taskDefinition: apiTask.arn,
      desiredCount: s.api.desiredCount,
      capacityProviderStrategies: [{ capacityProvider: 'FARGATE', base: 1, weight: 1 }],
      networkConfiguration: { subnets: x.net.privateSubnets.map((n) => n.id), securityGroups: [x.sg.api.id], assignPublicIp: false },
      loadBalancers: [{ targetGroupArn: targetGroup.arn, containerName: 'api', containerPort: API_PORT }],
      deploymentCircuitBreaker: { enable: true, rollback: true },
      propagateTags: 'SERVICE',
      tags: atags,
    },
    { dependsOn: [listener] },
  );

  const wtags = tagsFor(s, 'worker');
  const workerTask = new aws.ecs.TaskDefinition(`${name}-worker`, {
    family: `${name}-worker`,
    requiresCompatibilities: ['FARGATE'],
    networkMode: 'awsvpc',
    cpu: String(s.worker.cpu),
    memory: String(s.worker.memoryMiB),
    executionRoleArn: x.roles.workerExecution.arn,
    taskRoleArn: x.roles.workerTask.arn,
    runtimePlatform: { operatingSystemFamily: 'LINUX', cpuArchitecture: 'X86_64' },
    containerDefinitions: container(
      'worker',
      ['npm', 'run', 'worker'],
      [
        { name: 'AUTOVIBE_AWS_WORKSPACE_BUCKET', value: x.storage.workspaces.bucket },
        { name: 'AUTOVIBE_AWS_EC2_INSTANCE_PROFILE', value: x.roles.machineProfile.arn },
        { name: 'AUTOVIBE_AWS_EC2_IMAGE_ID', value: s.machines.imageId },
        { name: 'AUTOVIBE_AWS_EC2_SUBNETS', value: pulumi.output(x.machineSubnetIds).apply((ids) => ids.join(',')) },
        { name: 'AUTOVIBE_AWS_EC2_SECURITY_GROUPS', value: x.sg.machines.id },
        { name: 'AUTOVIBE_AWS_REPLICA_REGIONS', value: s.replicaRegion },
      ],
      x.secrets.worker,
      x.registry.workerLogGroup,
    ),
    tags: wtags,
  });
  const worker = new aws.ecs.Service(`${name}-worker`, {
    cluster: cluster.arn,
    taskDefinition: workerTask.arn,
    desiredCount: s.worker.desiredCount,
    capacityProviderStrategies: [
      ...(s.worker.onDemandBase > 0 ? [{ capacityProvider: 'FARGATE', base: s.worker.onDemandBase, weight: 0 }] : []),
      { capacityProvider: 'FARGATE_SPOT', base: 0, weight: s.worker.spotWeight },
    ],
    networkConfiguration: { subnets: x.net.privateSubnets.map((n) => n.id), securityGroups: [x.sg.worker.id], assignPublicIp: false },
    deploymentCircuitBreaker: { enable: true, rollback: true },
    propagateTags: 'SERVICE',
    tags: wtags,
  });
  return { cluster, loadBalancer, api, worker, image };
}

import path from 'node:path';
import type { Config } from '../../config/index.js';
import { createAwsEc2Provider } from './aws-ec2.js';
import { createAwsEcsProvider } from './aws-ecs.js';
import { ContainerProvider, defaultContainerSocket } from './container.js';
import { createKubernetesProvider } from './kubernetes.js';
import { LocalProvider } from './local.js';
import { PROVIDER_IDS, type ComputeProvider, type ExecRequest, type ExecResult, type Instance, type ProviderId, type ProvisionRequest } from './provider.js';

export type { ComputeProvider, Instance, ProviderId } from './provider.js';

/** Stands in for a provider this process is not configured for: it says why, and does nothing. */
export class UnconfiguredProvider implements ComputeProvider {
  constructor(
    readonly id: ProviderId,
    private readonly reason: string,
  ) {}
  async availability() {
    return { available: false, reason: this.reason };
  }
  private refuse(): never {
    throw new Error(`provider ${this.id} is unavailable: ${this.reason}`);
  }
  async provision(_r: ProvisionRequest): Promise<Instance> {
    this.refuse();
  }
  async exec(_i: Instance, _r: ExecRequest): Promise<ExecResult> {
    this.refuse();
  }
  async snapshot(): Promise<{ snapshotRef: string }> {
    this.refuse();
  }
  async listInstances(): Promise<Instance[]> {
    return [];
  }
  async terminate(): Promise<void> {
    // nothing can be running there
  }
}

/**
 * Every provider this process can use, by id. A provider that is not configured here is still
 * present, reporting `available: false` with the reason. Each cloud provider plugs in with one line.
 */
export function createProviders(config: Config): Map<ProviderId, ComputeProvider> {
  const providers = new Map<ProviderId, ComputeProvider>();
  providers.set('local', new LocalProvider({ profileLimits: config.profileLimits, warn: (message) => process.emitWarning(message) }));
  providers.set(
    'container',
    new ContainerProvider({
      socketPath: defaultContainerSocket(config.env),
      resolveSocket: () => defaultContainerSocket(config.env),
      image: config.containerImage,
      imageCacheDir: path.join(config.home, 'image'),
      deployment: config.taskQueue,
      profileLimits: config.profileLimits,
    }),
  );
  const env = config.env;
  const list = (v: string | undefined) =>
    v
      ? v
          .split(',')
          .map((x) => x.trim())
          .filter(Boolean)
      : undefined;
  const aws = {
    region: env.AWS_REGION ?? 'us-east-1',
    ...(env.AUTOVIBE_AWS_ENDPOINT ? { endpoint: env.AUTOVIBE_AWS_ENDPOINT } : {}),
    // Keys in the platform's configured environment; else the SDK's default chain (instance role, …).
    ...(env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY
      ? {
          credentials: {
            accessKeyId: env.AWS_ACCESS_KEY_ID,
            secretAccessKey: env.AWS_SECRET_ACCESS_KEY,
            ...(env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {}),
          },
        }
      : {}),
  };
  if (env.AUTOVIBE_AWS_EC2_IMAGE_ID) {
    providers.set(
      'aws-ec2',
      createAwsEc2Provider({
        ...aws,
        imageId: env.AUTOVIBE_AWS_EC2_IMAGE_ID,
        ...(list(env.AUTOVIBE_AWS_EC2_SUBNETS) ? { subnetIds: list(env.AUTOVIBE_AWS_EC2_SUBNETS)! } : {}),
        ...(list(env.AUTOVIBE_AWS_EC2_SECURITY_GROUPS) ? { securityGroupIds: list(env.AUTOVIBE_AWS_EC2_SECURITY_GROUPS)! } : {}),
        ...(env.AUTOVIBE_AWS_EC2_INSTANCE_PROFILE ? { instanceProfile: env.AUTOVIBE_AWS_EC2_INSTANCE_PROFILE } : {}),
        ...(list(env.AUTOVIBE_AWS_REPLICA_REGIONS) ? { replicaRegions: list(env.AUTOVIBE_AWS_REPLICA_REGIONS)! } : {}),
        // Remote runner: commands and files over S3 (without it, SSM and no files back).
        ...(env.AUTOVIBE_AWS_WORKSPACE_BUCKET ? { workspaceBucket: env.AUTOVIBE_AWS_WORKSPACE_BUCKET } : {}),
      }),
    );
  }
  if (env.AUTOVIBE_AWS_ECS_CLUSTER && env.AUTOVIBE_AWS_ECS_TASK_DEFINITION && env.AUTOVIBE_AWS_ECS_SUBNETS) {
    providers.set(
      'aws-ecs',
      createAwsEcsProvider({
        ...aws,
        cluster: env.AUTOVIBE_AWS_ECS_CLUSTER,
        taskDefinition: env.AUTOVIBE_AWS_ECS_TASK_DEFINITION,
        containerName: env.AUTOVIBE_AWS_ECS_CONTAINER ?? 'machine',
        subnets: list(env.AUTOVIBE_AWS_ECS_SUBNETS)!,
        ...(list(env.AUTOVIBE_AWS_ECS_SECURITY_GROUPS) ? { securityGroups: list(env.AUTOVIBE_AWS_ECS_SECURITY_GROUPS)! } : {}),
        // Remote runner: commands and files over S3 (without it, tasks cannot run commands).
        ...(env.AUTOVIBE_AWS_WORKSPACE_BUCKET ? { workspaceBucket: env.AUTOVIBE_AWS_WORKSPACE_BUCKET } : {}),
      }),
    );
  }
  if (env.AUTOVIBE_K8S_IMAGE) {
    providers.set(
      'kubernetes',
      createKubernetesProvider({
        image: env.AUTOVIBE_K8S_IMAGE,
        ...(env.AUTOVIBE_K8S_SERVER ? { server: env.AUTOVIBE_K8S_SERVER } : {}),
        ...(env.AUTOVIBE_K8S_TOKEN ? { token: env.AUTOVIBE_K8S_TOKEN } : {}),
      }),
    );
  }
  for (const id of PROVIDER_IDS) {
    if (!providers.has(id)) providers.set(id, new UnconfiguredProvider(id, `the ${id} provider is not configured in this deployment`));
  }
  return providers;
}

/** The provider with that id; an unknown id is a programming error. */
export function providerOf(providers: Map<ProviderId, ComputeProvider>, id: string): ComputeProvider {
  const p = providers.get(id as ProviderId);
  if (!p) throw new Error(`unknown provider ${id}`);
  return p;
}

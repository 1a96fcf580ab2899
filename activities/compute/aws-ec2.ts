/**
 * The `aws-ec2` compute provider: one spot (or on-demand) VM per machine.
 *
 * - provision: the cheapest allowed instance type / availability zone from the spot price
 *   history under the profile's maximum price (domain/spot.ts), launched with spot market
 *   options; the instance and its volumes carry the project and machine tags. With a
 *   `workspaceBucket`, the checkpoint's files go to S3 and the first boot (user data) unpacks them
 *   into /workspace and starts the remote runner (remote-runner.ts).
 * - exec, with a `workspaceBucket`: through the remote runner over S3 (orders in a control object
 *   the instance polls; output streamed back whole, exit code, cancel on deadline/abort). A command
 *   with `network: false` runs in an empty network namespace. deliverWorkspace / collectWorkspace
 *   move the files both ways, so a checkpoint holds what the command left on the VM.
 *   Without a bucket, exec falls back to SSM Run Command (the instance needs the SSM agent and an
 *   instance profile allowing it; SSM cuts output at 24,000 characters), and the files stay on the VM.
 *   Between polls the instance is checked for a spot interruption (a marked-for-termination spot
 *   request, or an instance stopped or terminated from outside), reported as stopReason 'interrupted'.
 * - snapshot: an EBS snapshot of the root volume, tagged, copied to each replica region
 *   (CopySnapshot); `replicaStatus` reports each copy's state. `provisionFromSnapshot` restores a
 *   machine on a new instance whose root volume is made from the snapshot (or its copy in this
 *   provider's region; when the original is gone, a replica's copy is first copied back here).
 *   `deleteSnapshot` removes the snapshot and its copies in every region (retention prune).
 */
import {
  CopySnapshotCommand,
  CreateSnapshotCommand,
  DeleteSnapshotCommand,
  DescribeAvailabilityZonesCommand,
  DescribeImagesCommand,
  DescribeInstancesCommand,
  DescribeSnapshotsCommand,
  DescribeSpotInstanceRequestsCommand,
  DescribeSpotPriceHistoryCommand,
  DescribeSubnetsCommand,
  EC2Client,
  RunInstancesCommand,
  TerminateInstancesCommand,
  type Filter,
  type Instance as Ec2Instance,
  type RunInstancesCommandInput,
  type Snapshot,
  type Tag,
} from '@aws-sdk/client-ec2';
import { S3Client } from '@aws-sdk/client-s3';
import { CancelCommandCommand, GetCommandInvocationCommand, SSMClient, SendCommandCommand } from '@aws-sdk/client-ssm';
import { chooseSpotPlacement, spotPolicy, type SpotPricePoint } from '../../domain/spot.js';
import {
  SnapshotNotReadyError,
  type DiskSnapshotProvider,
  type ExecRequest,
  type ExecResult,
  type Instance,
  type ProvisionRequest,
  type SnapshotResult,
} from './provider.js';
import { newChannel, RemoteRunner, remoteRunnerFor, shellQuote, shellScript, sleepUnless } from './remote-runner.js';

export { shellQuote, shellScript } from './remote-runner.js';

export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export interface AwsEc2Config {
  region: string;
  /** API endpoint override (a moto server in tests); AWS's own endpoint when absent. */
  endpoint?: string;
  /** Explicit credentials; the SDK's default chain (env, instance role, …) when absent. */
  credentials?: AwsCredentials;
  /** AMI every machine boots (needs the SSM agent and a shell). */
  imageId: string;
  /** Subnets machines may use; their zones are the allowed zones. Default: the default subnet of each zone. */
  subnetIds?: string[];
  securityGroupIds?: string[];
  /** Instance profile (name or ARN) whose role lets the SSM agent register. */
  instanceProfile?: string;
  /** Regions each checkpoint snapshot is copied to. */
  replicaRegions?: string[];
  /** Instance types per profile, overriding domain/spot.ts. */
  instanceTypes?: Record<string, readonly string[]>;
  /** Maximum spot price in USD/h, overriding the profile's hourly price. */
  maxPrice?: string;
  /** Cloud-init / shell user data run at first boot (e.g. fetching the checkpoint's files). */
  userData?: string;
  /** How often exec polls the command and the instance; default 2000 ms (1000 ms with the remote runner). */
  pollIntervalMs?: number;
  /**
   * S3 bucket (in `region`) through which the platform and the instance talk: provision uploads
   * the workspace as a tar.gz and the instance's first boot unpacks it into /workspace from a
   * presigned URL, then starts the remote runner (commands, files back and forth). Without it the
   * instance starts with its image's files only and commands go through SSM.
   */
  workspaceBucket?: string;
  /** Key prefix of each machine's folder in the bucket; default `autovibe/machines/`. */
  workspacePrefix?: string;
  /** Size of one segment of a command's output in the bucket (remote runner); default 1 MiB. */
  outputSegmentBytes?: number;
  /** Output segments per stream (remote runner); default 32. */
  outputSegments?: number;
}

export const TAG_MANAGED = 'autovibe:managed';
export const TAG_PROJECT = 'autovibe:project';
export const TAG_MACHINE = 'autovibe:machine';
export const TAG_CHECKPOINT = 'autovibe:checkpoint';
export const TAG_SOURCE_SNAPSHOT = 'autovibe:source-snapshot';
/** The instance's folder in the workspace bucket (remote-runner.ts newChannel). */
export const TAG_CHANNEL = 'autovibe:channel';

const LIVE_STATES = ['pending', 'running', 'stopping', 'stopped'];
/** Spot request status codes that mean AWS is taking (or took) the instance back. */
const SPOT_INTERRUPTION_CODES = new Set([
  'marked-for-termination',
  'marked-for-stop',
  'marked-for-hibernation',
  'instance-terminated-by-price',
  'instance-terminated-no-capacity',
  'instance-terminated-capacity-oversubscribed',
  'instance-terminated-launch-group-constraint',
  'instance-stopped-by-price',
  'instance-stopped-no-capacity',
]);

export interface ReplicaStatus {
  region: string;
  /** The copy's id in that region, once CopySnapshot was accepted. */
  snapshotId?: string;
  /** EBS snapshot state, or `waiting-for-source` (source not completed yet) / `missing`. */
  state: 'pending' | 'completed' | 'error' | 'recoverable' | 'recovering' | 'waiting-for-source' | 'missing';
  progress?: string;
}

export class AwsEc2Provider implements DiskSnapshotProvider {
  readonly id = 'aws-ec2' as const;
  /** Checkpoints keep an EBS snapshot of the root volume; re-provisioning restores from it. */
  readonly diskSnapshots = true as const;
  private readonly ec2: EC2Client;
  private readonly ssm: SSMClient;
  private readonly s3: S3Client;
  private readonly replicaClients = new Map<string, EC2Client>();
  /** Commands and files over S3; absent without a `workspaceBucket`. */
  private readonly runner: RemoteRunner | undefined;
  /** Each instance's runner folder, once known (from its tag). */
  private readonly channels = new Map<string, string>();
  /** Replaces the VM's /workspace with the host workspace's files (only with a `workspaceBucket`). */
  readonly deliverWorkspace?: (instance: Instance, workspace: string, deadline: number) => Promise<void>;
  /** Replaces the host workspace's files with the VM's /workspace (only with a `workspaceBucket`). */
  readonly collectWorkspace?: (instance: Instance, workspace: string, deadline: number) => Promise<void>;

  constructor(private readonly config: AwsEc2Config) {
    this.ec2 = new EC2Client(this.clientConfig(config.region));
    this.ssm = new SSMClient(this.clientConfig(config.region));
    // Path-style addressing: a custom endpoint (moto, a local S3) has no per-bucket host names.
    this.s3 = new S3Client({ ...this.clientConfig(config.region), ...(config.endpoint ? { forcePathStyle: true } : {}) });
    if (config.workspaceBucket) {
      const runner = remoteRunnerFor(this.s3, config.workspaceBucket, config);
      this.runner = runner;
      this.deliverWorkspace = async (instance, workspace, deadline) =>
        runner.deliver(await this.channelOf(instance), workspace, deadline, this.interruptionCheck(instance));
      this.collectWorkspace = async (instance, workspace, deadline) =>
        runner.collect(await this.channelOf(instance), workspace, deadline, this.interruptionCheck(instance));
    }
  }

  /** The instance's runner folder: its `autovibe:channel` tag (a claimed warm instance keeps its own). */
  private async channelOf(instance: Instance): Promise<string> {
    let channel = this.channels.get(instance.instanceRef);
    if (!channel) {
      let found: Ec2Instance | undefined;
      try {
        found = (await this.describeInstances(undefined, [instance.instanceRef]))[0];
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
      channel = tagValue(found?.Tags, TAG_CHANNEL) ?? newChannel(instance);
      this.channels.set(instance.instanceRef, channel);
    }
    return channel;
  }

  private interruptionCheck(instance: Instance): () => Promise<boolean> {
    return async () => (await this.checkInterruption(instance)).interrupted;
  }

  get snapshotRegion(): string {
    return this.config.region;
  }

  private clientConfig(region: string): { region: string; endpoint?: string; credentials?: AwsCredentials } {
    return {
      region,
      ...(this.config.endpoint ? { endpoint: this.config.endpoint } : {}),
      ...(this.config.credentials ? { credentials: this.config.credentials } : {}),
    };
  }

  private regionClient(region: string): EC2Client {
    if (region === this.config.region) return this.ec2;
    let client = this.replicaClients.get(region);
    if (!client) {
      client = new EC2Client(this.clientConfig(region));
      this.replicaClients.set(region, client);
    }
    return client;
  }

  async availability(): Promise<{ available: boolean; reason?: string }> {
    try {
      await this.ec2.send(new DescribeAvailabilityZonesCommand({}));
      return { available: true };
    } catch (err) {
      return { available: false, reason: `EC2 in ${this.config.region} cannot be reached: ${(err as Error).message}` };
    }
  }

  provision(request: ProvisionRequest): Promise<Instance> {
    return this.launch(request, undefined);
  }

  /**
   * Restores a machine from a checkpoint snapshot: a new instance whose root volume is made from
   * it. `snapshotRef` is the snapshot's id in its home region; a copy in this provider's region
   * (tagged with the source id) is used when the id itself is not here.
   */
  async provisionFromSnapshot(request: ProvisionRequest, snapshotRef: string): Promise<Instance> {
    const local = (await this.findLocalSnapshot(snapshotRef)) ?? (await this.copyBackFromReplica(snapshotRef));
    if (!local?.SnapshotId) throw new Error(`snapshot ${snapshotRef} has no copy in ${this.config.region} nor in a replica region`);
    if (local.State === 'pending') throw new SnapshotNotReadyError(`snapshot ${local.SnapshotId} in ${this.config.region} is pending, not completed`);
    if (local.State !== 'completed') throw new Error(`snapshot ${local.SnapshotId} in ${this.config.region} is ${local.State}, not completed`);
    return this.launch(request, local.SnapshotId);
  }

  private async launch(request: ProvisionRequest, fromSnapshot: string | undefined): Promise<Instance> {
    // Idempotent: a retried activity finds the instance the first attempt launched.
    // Only a pending/running one: a stopped or terminated instance was interrupted, and the
    // machine gets a new one.
    const existing = (
      await this.describeInstances([
        { Name: `tag:${TAG_MACHINE}`, Values: [request.machineId] },
        { Name: 'instance-state-name', Values: ['pending', 'running'] },
      ])
    )[0];
    if (existing) return this.toInstance(existing);

    const policy = spotPolicy(request.profile);
    const instanceTypes = this.config.instanceTypes?.[request.profile] ?? policy.instanceTypes;
    const maxPrice = this.config.maxPrice ?? policy.maxPrice;
    const subnetsByZone = await this.subnetsByZone();
    const zones = [...subnetsByZone.keys()].sort();
    if (zones.length === 0) throw new Error(`no usable subnet in ${this.config.region}`);

    let instanceType = instanceTypes[0];
    let zone = zones[0];
    let spotPrice: string | undefined;
    if (request.spot) {
      const choice = chooseSpotPlacement({
        history: await this.spotPriceHistory(instanceTypes),
        allowedTypes: instanceTypes,
        allowedZones: zones,
        maxPrice,
      });
      instanceType = choice.instanceType;
      zone = choice.availabilityZone;
      spotPrice = choice.spotPrice;
    }
    if (!instanceType || !zone) throw new Error(`no instance type allowed for profile ${request.profile}`);

    const channel = this.runner ? newChannel(request) : undefined;
    const tags = [...this.tagsFor(request), ...(channel ? [{ Key: TAG_CHANNEL, Value: channel }] : [])];
    // A restored instance has its files on the snapshot's volume already. User data must end
    // (cloud-init waits for it), so the runner is started detached.
    const userData = this.runner
      ? await this.runner.bootScript(channel!, {
          ...(fromSnapshot ? {} : { workspace: request.workspace }),
          foreground: false,
          ...(this.config.userData ? { extra: this.config.userData } : {}),
        })
      : (this.config.userData ?? '');
    const input: RunInstancesCommandInput = {
      ImageId: this.config.imageId,
      InstanceType: instanceType as RunInstancesCommandInput['InstanceType'],
      MinCount: 1,
      MaxCount: 1,
      SubnetId: subnetsByZone.get(zone),
      InstanceInitiatedShutdownBehavior: 'terminate',
      TagSpecifications: [
        { ResourceType: 'instance', Tags: tags },
        { ResourceType: 'volume', Tags: tags },
      ],
      ...(this.config.securityGroupIds ? { SecurityGroupIds: this.config.securityGroupIds } : {}),
      ...(this.config.instanceProfile
        ? { IamInstanceProfile: this.config.instanceProfile.startsWith('arn:') ? { Arn: this.config.instanceProfile } : { Name: this.config.instanceProfile } }
        : {}),
      ...(userData ? { UserData: Buffer.from(userData).toString('base64') } : {}),
      ...(request.spot
        ? {
            InstanceMarketOptions: {
              MarketType: 'spot',
              SpotOptions: { MaxPrice: maxPrice, SpotInstanceType: 'one-time', InstanceInterruptionBehavior: 'terminate' },
            },
          }
        : {}),
    };
    if (fromSnapshot) {
      input.BlockDeviceMappings = [
        { DeviceName: await this.rootDeviceName(), Ebs: { SnapshotId: fromSnapshot, DeleteOnTermination: true, VolumeType: 'gp3' } },
      ];
    }
    const out = await this.ec2.send(new RunInstancesCommand(input));
    const launched = out.Instances?.[0];
    if (!launched?.InstanceId) throw new Error('RunInstances returned no instance');
    const instance = this.toInstance(launched);
    if (channel) this.channels.set(instance.instanceRef, channel);
    instance.details = { ...instance.details, ...(spotPrice !== undefined ? { spotPrice, maxPrice } : {}), ...(fromSnapshot ? { fromSnapshot } : {}) };
    return instance;
  }

  async exec(instance: Instance, request: ExecRequest): Promise<ExecResult> {
    if (this.runner) return this.runner.exec(await this.channelOf(instance), request, this.interruptionCheck(instance));
    const interval = this.config.pollIntervalMs ?? 2_000;
    if ((await this.checkInterruption(instance)).interrupted) return { exitCode: null, stopReason: 'interrupted' };
    if (request.signal?.aborted) return { exitCode: null, stopReason: 'aborted' };
    const secondsLeft = Math.floor((request.deadline - Date.now()) / 1000);
    if (secondsLeft < 1) return { exitCode: null, stopReason: 'deadline' };

    const sent = await this.ssm.send(
      new SendCommandCommand({
        DocumentName: 'AWS-RunShellScript',
        InstanceIds: [instance.instanceRef],
        Parameters: { commands: [ec2Script(request)], executionTimeout: [String(secondsLeft)] },
        Comment: `autovibe ${instance.machineId}`.slice(0, 100),
      }),
    );
    const commandId = sent.Command?.CommandId;
    if (!commandId) throw new Error('SendCommand returned no command id');
    const cancel = async (): Promise<void> => {
      await this.ssm.send(new CancelCommandCommand({ CommandId: commandId, InstanceIds: [instance.instanceRef] })).catch(() => {});
    };

    const emitted = { stdout: 0, stderr: 0 };
    const emit = (stream: 'stdout' | 'stderr', content: string | undefined): void => {
      // GetCommandInvocation returns the whole output so far: pass on only what is new.
      if (!content || content.length <= emitted[stream]) return;
      request.onOutput?.(Buffer.from(content.slice(emitted[stream])), stream);
      emitted[stream] = content.length;
    };
    for (;;) {
      if (request.signal?.aborted) {
        await cancel();
        return { exitCode: null, stopReason: 'aborted' };
      }
      if (Date.now() >= request.deadline) {
        await cancel();
        return { exitCode: null, stopReason: 'deadline' };
      }
      let status: string | undefined;
      let responseCode: number | undefined;
      try {
        const inv = await this.ssm.send(new GetCommandInvocationCommand({ CommandId: commandId, InstanceId: instance.instanceRef }));
        emit('stdout', inv.StandardOutputContent);
        emit('stderr', inv.StandardErrorContent);
        status = inv.Status;
        responseCode = inv.ResponseCode;
      } catch (err) {
        // Right after SendCommand the invocation may not exist yet.
        if ((err as Error).name !== 'InvocationDoesNotExist') throw err;
      }
      if (status === 'Success' || status === 'Failed') {
        return { exitCode: responseCode !== undefined && responseCode >= 0 ? responseCode : null, stopReason: null };
      }
      if (status === 'TimedOut') return { exitCode: null, stopReason: 'deadline' };
      if (status === 'Cancelled' || status === 'Cancelling' || status === 'Undeliverable' || status === 'Terminated') {
        const check = await this.checkInterruption(instance);
        return { exitCode: null, stopReason: check.interrupted ? 'interrupted' : 'aborted' };
      }
      if ((await this.checkInterruption(instance)).interrupted) {
        await cancel();
        return { exitCode: null, stopReason: 'interrupted' };
      }
      await sleepUnless(Math.min(interval, Math.max(0, request.deadline - Date.now())), request.signal);
    }
  }

  /**
   * Whether AWS took (or is taking) the instance away: its spot request is marked for
   * termination/stop, or the instance is stopping, stopped, terminated or gone without us.
   */
  async checkInterruption(instance: Instance): Promise<{ interrupted: boolean; reason?: string }> {
    let found: Ec2Instance | undefined;
    try {
      found = (await this.describeInstances(undefined, [instance.instanceRef]))[0];
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    if (!found) return { interrupted: true, reason: 'instance no longer exists' };
    const state = found.State?.Name;
    if (state === 'shutting-down' || state === 'terminated' || state === 'stopping' || state === 'stopped') {
      return { interrupted: true, reason: `instance is ${state}${found.StateReason?.Message ? ` (${found.StateReason.Message})` : ''}` };
    }
    if (found.SpotInstanceRequestId) {
      const requests = await this.ec2.send(new DescribeSpotInstanceRequestsCommand({ SpotInstanceRequestIds: [found.SpotInstanceRequestId] }));
      const code = requests.SpotInstanceRequests?.[0]?.Status?.Code;
      if (code && SPOT_INTERRUPTION_CODES.has(code)) return { interrupted: true, reason: `spot request ${code}` };
    }
    return { interrupted: false };
  }

  async snapshot(instance: Instance, input: { checkpointId: string }): Promise<SnapshotResult> {
    // Idempotent: a retried activity finds the snapshot the first attempt made.
    const [existing] = await this.describeSnapshots(this.ec2, [
      { Name: `tag:${TAG_CHECKPOINT}`, Values: [input.checkpointId] },
      { Name: `tag:${TAG_MACHINE}`, Values: [instance.machineId] },
    ]);
    let snapshotId = existing?.SnapshotId;
    if (!snapshotId) {
      const found = (await this.describeInstances(undefined, [instance.instanceRef]))[0];
      if (!found) throw new Error(`instance ${instance.instanceRef} not found`);
      const mappings = found.BlockDeviceMappings ?? [];
      const root = mappings.find((m) => m.DeviceName === found.RootDeviceName) ?? mappings[0];
      const volumeId = root?.Ebs?.VolumeId;
      if (!volumeId) throw new Error(`instance ${instance.instanceRef} has no EBS volume to snapshot`);
      const created = await this.ec2.send(
        new CreateSnapshotCommand({
          VolumeId: volumeId,
          Description: `autovibe checkpoint ${input.checkpointId} of ${instance.machineId}`,
          TagSpecifications: [
            {
              ResourceType: 'snapshot',
              Tags: [
                { Key: TAG_MANAGED, Value: 'true' },
                { Key: TAG_PROJECT, Value: instance.projectId },
                { Key: TAG_MACHINE, Value: instance.machineId },
                { Key: TAG_CHECKPOINT, Value: input.checkpointId },
              ],
            },
          ],
        }),
      );
      snapshotId = created.SnapshotId;
      if (!snapshotId) throw new Error('CreateSnapshot returned no snapshot id');
    }
    await this.replicate(snapshotId);
    return { snapshotRef: snapshotId };
  }

  /**
   * Copies a snapshot to every replica region that has no copy yet. A copy can only start once
   * the source is completed; until then the region reports `waiting-for-source` and a later call
   * starts it. Returns every replica's status.
   */
  async replicate(snapshotRef: string): Promise<ReplicaStatus[]> {
    const [source] = await this.describeSnapshots(this.ec2, undefined, [snapshotRef]);
    if (!source) throw new Error(`snapshot ${snapshotRef} not found in ${this.config.region}`);
    for (const region of this.config.replicaRegions ?? []) {
      const client = this.regionClient(region);
      const [copy] = await this.describeSnapshots(client, [{ Name: `tag:${TAG_SOURCE_SNAPSHOT}`, Values: [snapshotRef] }]);
      if (copy || source.State !== 'completed') continue;
      await client.send(
        new CopySnapshotCommand({
          SourceRegion: this.config.region,
          SourceSnapshotId: snapshotRef,
          Description: `copy of ${snapshotRef} from ${this.config.region}`,
          TagSpecifications: [{ ResourceType: 'snapshot', Tags: [...(source.Tags ?? []), { Key: TAG_SOURCE_SNAPSHOT, Value: snapshotRef }] }],
        }),
      );
    }
    return this.replicaStatus(snapshotRef);
  }

  /** State of the snapshot's copy in each replica region. */
  async replicaStatus(snapshotRef: string): Promise<ReplicaStatus[]> {
    const [source] = await this.describeSnapshots(this.ec2, undefined, [snapshotRef]);
    const result: ReplicaStatus[] = [];
    for (const region of this.config.replicaRegions ?? []) {
      const [copy] = await this.describeSnapshots(this.regionClient(region), [{ Name: `tag:${TAG_SOURCE_SNAPSHOT}`, Values: [snapshotRef] }]);
      if (copy?.SnapshotId) {
        result.push({
          region,
          snapshotId: copy.SnapshotId,
          state: (copy.State ?? 'pending') as ReplicaStatus['state'],
          ...(copy.Progress ? { progress: copy.Progress } : {}),
        });
      } else {
        result.push({ region, state: source && source.State !== 'completed' ? 'waiting-for-source' : 'missing' });
      }
    }
    return result;
  }

  /**
   * Deletes the snapshot and every copy of it: the original and copies tagged with it in this
   * region (a copy brought back from a replica), and its copies in each replica region. Safe to
   * repeat: what is already gone is skipped.
   */
  async deleteSnapshot(snapshotRef: string): Promise<{ deleted: Array<{ region: string; snapshotId: string }> }> {
    const deleted: Array<{ region: string; snapshotId: string }> = [];
    const regions = [this.config.region, ...(this.config.replicaRegions ?? []).filter((r) => r !== this.config.region)];
    for (const region of regions) {
      const client = this.regionClient(region);
      // Copies first: a copy still being made from the original would keep it busy.
      const found = await this.describeSnapshots(client, [{ Name: `tag:${TAG_SOURCE_SNAPSHOT}`, Values: [snapshotRef] }]);
      if (region === this.config.region) found.push(...(await this.describeSnapshots(client, undefined, [snapshotRef])));
      for (const snap of found) {
        if (!snap.SnapshotId) continue;
        try {
          await client.send(new DeleteSnapshotCommand({ SnapshotId: snap.SnapshotId }));
          deleted.push({ region, snapshotId: snap.SnapshotId });
        } catch (err) {
          if (!isNotFound(err)) throw err;
        }
      }
    }
    return { deleted };
  }

  /**
   * The original is gone from this region (deleted, or the region lost it): copies a completed
   * replica back here, tagged with the original's id so a retry finds it. Returns the local copy,
   * or nothing when no replica region has one. A copy still in progress is an error to retry.
   */
  private async copyBackFromReplica(snapshotRef: string): Promise<Snapshot | undefined> {
    for (const region of this.config.replicaRegions ?? []) {
      if (region === this.config.region) continue;
      const [copy] = await this.describeSnapshots(this.regionClient(region), [{ Name: `tag:${TAG_SOURCE_SNAPSHOT}`, Values: [snapshotRef] }]);
      if (!copy?.SnapshotId || copy.State !== 'completed') continue;
      const tags = (copy.Tags ?? []).filter((t) => !t.Key?.startsWith('aws:'));
      const out = await this.ec2.send(
        new CopySnapshotCommand({
          SourceRegion: region,
          SourceSnapshotId: copy.SnapshotId,
          Description: `restore of ${snapshotRef} from its copy ${copy.SnapshotId} in ${region}`,
          TagSpecifications: [{ ResourceType: 'snapshot', Tags: tags }],
        }),
      );
      if (!out.SnapshotId) throw new Error('CopySnapshot returned no snapshot id');
      const [local] = await this.describeSnapshots(this.ec2, undefined, [out.SnapshotId]);
      return local ?? { SnapshotId: out.SnapshotId, State: 'pending' };
    }
    return undefined;
  }

  async listInstances(): Promise<Instance[]> {
    const found = await this.describeInstances([{ Name: `tag:${TAG_MANAGED}`, Values: ['true'] }, liveStates()]);
    return found.filter((i) => tagValue(i.Tags, TAG_MACHINE)).map((i) => this.toInstance(i));
  }

  async terminate(instance: Instance): Promise<void> {
    const channel = this.runner ? await this.channelOf(instance) : undefined;
    try {
      await this.ec2.send(new TerminateInstancesCommand({ InstanceIds: [instance.instanceRef] }));
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    // The machine's folder (workspace, runner, orders); deleting nothing succeeds, so safe to repeat.
    if (channel) await this.runner?.remove(channel);
  }

  private tagsFor(request: ProvisionRequest): Tag[] {
    const tags: Record<string, string> = {
      ...request.tags,
      [TAG_MANAGED]: 'true',
      [TAG_PROJECT]: request.projectId,
      [TAG_MACHINE]: request.machineId,
    };
    return Object.entries(tags).map(([Key, Value]) => ({ Key, Value }));
  }

  private toInstance(found: Ec2Instance): Instance {
    const details: Record<string, string> = { region: this.config.region };
    if (found.InstanceType) details.instanceType = found.InstanceType;
    if (found.Placement?.AvailabilityZone) details.availabilityZone = found.Placement.AvailabilityZone;
    details.lifecycle = found.InstanceLifecycle ?? 'on-demand';
    if (found.State?.Name) details.state = found.State.Name;
    const channel = tagValue(found.Tags, TAG_CHANNEL);
    if (channel) this.channels.set(found.InstanceId!, channel);
    return {
      provider: this.id,
      instanceRef: found.InstanceId!,
      machineId: tagValue(found.Tags, TAG_MACHINE) ?? '',
      projectId: tagValue(found.Tags, TAG_PROJECT) ?? '',
      details,
    };
  }

  private async describeInstances(filters?: Filter[], ids?: string[]): Promise<Ec2Instance[]> {
    const result: Ec2Instance[] = [];
    let NextToken: string | undefined;
    do {
      const page = await this.ec2.send(new DescribeInstancesCommand({ Filters: filters, InstanceIds: ids, NextToken }));
      for (const reservation of page.Reservations ?? []) result.push(...(reservation.Instances ?? []));
      NextToken = page.NextToken;
    } while (NextToken);
    return result;
  }

  private async describeSnapshots(client: EC2Client, filters?: Filter[], ids?: string[]): Promise<Snapshot[]> {
    try {
      const out = await client.send(new DescribeSnapshotsCommand({ OwnerIds: ['self'], Filters: filters, SnapshotIds: ids }));
      return out.Snapshots ?? [];
    } catch (err) {
      if (isNotFound(err)) return [];
      throw err;
    }
  }

  private async findLocalSnapshot(snapshotRef: string): Promise<Snapshot | undefined> {
    const [own] = await this.describeSnapshots(this.ec2, undefined, [snapshotRef]);
    if (own) return own;
    const [copy] = await this.describeSnapshots(this.ec2, [{ Name: `tag:${TAG_SOURCE_SNAPSHOT}`, Values: [snapshotRef] }]);
    return copy;
  }

  private async subnetsByZone(): Promise<Map<string, string>> {
    const out = await this.ec2.send(
      new DescribeSubnetsCommand(this.config.subnetIds ? { SubnetIds: this.config.subnetIds } : { Filters: [{ Name: 'default-for-az', Values: ['true'] }] }),
    );
    const byZone = new Map<string, string>();
    for (const subnet of out.Subnets ?? []) {
      if (subnet.AvailabilityZone && subnet.SubnetId && !byZone.has(subnet.AvailabilityZone)) byZone.set(subnet.AvailabilityZone, subnet.SubnetId);
    }
    return byZone;
  }

  private async spotPriceHistory(instanceTypes: readonly string[]): Promise<SpotPricePoint[]> {
    const points: SpotPricePoint[] = [];
    let NextToken: string | undefined;
    do {
      const page = await this.ec2.send(
        new DescribeSpotPriceHistoryCommand({
          InstanceTypes: instanceTypes as never,
          ProductDescriptions: ['Linux/UNIX', 'Linux/UNIX (Amazon VPC)'],
          // With a start time of now, EC2 returns the price in force for each type and zone.
          StartTime: new Date(),
          NextToken,
        }),
      );
      for (const p of page.SpotPriceHistory ?? []) {
        if (p.InstanceType && p.AvailabilityZone && p.SpotPrice) {
          points.push({ instanceType: p.InstanceType, availabilityZone: p.AvailabilityZone, spotPrice: p.SpotPrice, timestamp: p.Timestamp ?? new Date(0) });
        }
      }
      NextToken = page.NextToken || undefined;
    } while (NextToken);
    return points;
  }

  private async rootDeviceName(): Promise<string> {
    const out = await this.ec2.send(new DescribeImagesCommand({ ImageIds: [this.config.imageId] }));
    return out.Images?.[0]?.RootDeviceName ?? '/dev/xvda';
  }
}

/** One line to register: `createAwsEc2Provider({ region, imageId, … })`. */
export function createAwsEc2Provider(config: AwsEc2Config): AwsEc2Provider {
  return new AwsEc2Provider(config);
}

function liveStates(): Filter {
  return { Name: 'instance-state-name', Values: LIVE_STATES };
}

function tagValue(tags: Tag[] | undefined, key: string): string | undefined {
  return tags?.find((t) => t.Key === key)?.Value;
}

function isNotFound(err: unknown): boolean {
  const name = (err as { name?: string } | undefined)?.name ?? '';
  return /NotFound|Malformed/.test(name);
}

/**
 * SSM runs commands as root, so a command without network gets its own empty network namespace
 * (util-linux `unshare`, present on the usual Linux AMIs).
 */
export function ec2Script(request: Pick<ExecRequest, 'command' | 'env' | 'network'>): string {
  const script = shellScript(request);
  return request.network ? script : `exec unshare --net -- /bin/sh -c ${shellQuote(script)}`;
}

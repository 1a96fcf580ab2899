/**
 * The `aws-ecs` compute provider: one Fargate task per machine, on Fargate Spot when the machine
 * asks for interruptible capacity (RunTask with a FARGATE_SPOT capacity provider strategy).
 *
 * - provision: RunTask with the profile's cpu/memory as task overrides, the project/machine tags
 *   and `startedBy` = the machine id (so a retried provision finds its task).
 * - status and interruption: DescribeTasks; a task that stopped without us asking (Fargate Spot
 *   reclaiming it is the usual reason, stopCode `SpotInterruption`) is an interruption.
 * - listInstances: the cluster's running tasks tagged `autovibe:managed`.
 * - terminate: StopTask (safe to repeat, and on a task that is gone), and the machine's S3 folder.
 * - exec, deliverWorkspace, collectWorkspace (with a `workspaceBucket`): the remote runner over S3
 *   (remote-runner.ts). The container's command is overridden with the runner's boot script: it
 *   unpacks the checkpoint's files into /workspace and polls for orders, so the image needs only
 *   sh, curl and tar. Output is streamed back whole; deadline/abort cancel the command; a task
 *   stopped without us is an interruption. A checkpoint collects the task's /workspace first.
 *   Without a bucket exec fails with ExecUnsupportedError (ECS Exec, an interactive Session
 *   Manager channel, is not spoken here).
 * Fargate keeps no disk between tasks, so snapshot fails: checkpoints of an ECS machine are its
 * workspace's git commits (of the files collected from the task).
 */
import { DescribeTasksCommand, ECSClient, ListTasksCommand, RunTaskCommand, StopTaskCommand, type Tag, type Task } from '@aws-sdk/client-ecs';
import { PROFILES, type ProfileId } from '../../domain/machines.js';
import { S3Client } from '@aws-sdk/client-s3';
import type { AwsCredentials } from './aws-ec2.js';
import type { ComputeProvider, ExecRequest, ExecResult, Instance, ProvisionRequest, SnapshotResult } from './provider.js';
import { newChannel, RemoteRunner, remoteRunnerFor } from './remote-runner.js';

export interface AwsEcsConfig {
  region: string;
  endpoint?: string;
  credentials?: AwsCredentials;
  /** Cluster name or ARN; it must have the FARGATE and FARGATE_SPOT capacity providers. */
  cluster: string;
  /** Task definition (family, family:revision or ARN) compatible with Fargate, network mode awsvpc. */
  taskDefinition: string;
  /** Name of the container in the task definition that runs the machine. */
  containerName: string;
  subnets: string[];
  securityGroups?: string[];
  /** Whether tasks get a public IP (needed without a NAT gateway to pull images). */
  assignPublicIp?: boolean;
  /**
   * S3 bucket (in `region`) through which the platform and the task talk (remote runner): the
   * checkpoint's files, commands, output, files back. Without it tasks cannot run commands.
   */
  workspaceBucket?: string;
  /** Key prefix of each machine's folder in the bucket; default `autovibe/machines/`. */
  workspacePrefix?: string;
  /** How often exec polls the runner's uploads and the task; default 1000 ms. */
  pollIntervalMs?: number;
  /** Size of one segment of a command's output in the bucket (remote runner); default 1 MiB. */
  outputSegmentBytes?: number;
  /** Output segments per stream (remote runner); default 32. */
  outputSegments?: number;
}

export const TAG_MANAGED = 'autovibe:managed';
export const TAG_PROJECT = 'autovibe:project';
export const TAG_MACHINE = 'autovibe:machine';
/** The task's folder in the workspace bucket (remote-runner.ts newChannel). */
export const TAG_CHANNEL = 'autovibe:channel';

export class ExecUnsupportedError extends Error {
  override name = 'ExecUnsupportedError';
}

/** Fargate task size for a profile: cpu in units of 1/1024 vCPU, memory in MiB. */
export function fargateSize(profile: string): { cpu: string; memory: string } {
  if (!Object.hasOwn(PROFILES, profile)) throw new RangeError(`unknown compute profile "${profile}"`);
  const p = PROFILES[profile as ProfileId];
  return { cpu: String(p.cpus * 1024), memory: String(p.memoryMiB) };
}

export class AwsEcsProvider implements ComputeProvider {
  readonly id = 'aws-ecs' as const;
  private readonly ecs: ECSClient;
  /** Commands and files over S3; absent without a `workspaceBucket`. */
  private readonly runner: RemoteRunner | undefined;
  /** Each task's runner folder, once known (from its tag). */
  private readonly channels = new Map<string, string>();
  /** Replaces the task's /workspace with the host workspace's files (only with a `workspaceBucket`). */
  readonly deliverWorkspace?: (instance: Instance, workspace: string, deadline: number) => Promise<void>;
  /** Replaces the host workspace's files with the task's /workspace (only with a `workspaceBucket`). */
  readonly collectWorkspace?: (instance: Instance, workspace: string, deadline: number) => Promise<void>;

  constructor(private readonly config: AwsEcsConfig) {
    const clientConfig = {
      region: config.region,
      ...(config.endpoint ? { endpoint: config.endpoint } : {}),
      ...(config.credentials ? { credentials: config.credentials } : {}),
    };
    this.ecs = new ECSClient(clientConfig);
    if (config.workspaceBucket) {
      // Path-style addressing: a custom endpoint (moto, a local S3) has no per-bucket host names.
      const s3 = new S3Client({ ...clientConfig, ...(config.endpoint ? { forcePathStyle: true } : {}) });
      const runner = remoteRunnerFor(s3, config.workspaceBucket, config);
      this.runner = runner;
      this.deliverWorkspace = async (instance, workspace, deadline) =>
        runner.deliver(await this.channelOf(instance), workspace, deadline, this.interruptionCheck(instance));
      this.collectWorkspace = async (instance, workspace, deadline) =>
        runner.collect(await this.channelOf(instance), workspace, deadline, this.interruptionCheck(instance));
    }
  }

  /** The task's runner folder: its `autovibe:channel` tag (a claimed warm task keeps its own). */
  private async channelOf(instance: Instance): Promise<string> {
    let channel = this.channels.get(instance.instanceRef);
    if (!channel) {
      channel = tagValue((await this.status(instance))?.tags, TAG_CHANNEL) ?? newChannel(instance);
      this.channels.set(instance.instanceRef, channel);
    }
    return channel;
  }

  private interruptionCheck(instance: Instance): () => Promise<boolean> {
    return async () => (await this.checkInterruption(instance)).interrupted;
  }

  async availability(): Promise<{ available: boolean; reason?: string }> {
    try {
      await this.ecs.send(new ListTasksCommand({ cluster: this.config.cluster, maxResults: 1 }));
      return { available: true };
    } catch (err) {
      return { available: false, reason: `ECS cluster ${this.config.cluster} in ${this.config.region} cannot be reached: ${(err as Error).message}` };
    }
  }

  async provision(request: ProvisionRequest): Promise<Instance> {
    // Idempotent: a retried activity finds the task the first attempt started.
    const running = await this.ecs.send(new ListTasksCommand({ cluster: this.config.cluster, startedBy: request.machineId, desiredStatus: 'RUNNING' }));
    const existing = (await this.describe(running.taskArns ?? []))[0];
    if (existing) return this.toInstance(existing);

    const size = fargateSize(request.profile);
    // The container's command becomes the runner's boot script (in the foreground: the task lives as long as it).
    const channel = this.runner ? newChannel(request) : undefined;
    const boot = this.runner ? await this.runner.bootScript(channel!, { workspace: request.workspace, foreground: true }) : undefined;
    const tags: Tag[] = Object.entries({
      ...request.tags,
      [TAG_MANAGED]: 'true',
      [TAG_PROJECT]: request.projectId,
      [TAG_MACHINE]: request.machineId,
      ...(channel ? { [TAG_CHANNEL]: channel } : {}),
    }).map(([key, value]) => ({ key, value }));
    const out = await this.ecs.send(
      new RunTaskCommand({
        cluster: this.config.cluster,
        taskDefinition: this.config.taskDefinition,
        count: 1,
        capacityProviderStrategy: [{ capacityProvider: request.spot ? 'FARGATE_SPOT' : 'FARGATE', weight: 1 }],
        networkConfiguration: {
          awsvpcConfiguration: {
            subnets: this.config.subnets,
            ...(this.config.securityGroups ? { securityGroups: this.config.securityGroups } : {}),
            assignPublicIp: this.config.assignPublicIp ? 'ENABLED' : 'DISABLED',
          },
        },
        overrides: {
          cpu: size.cpu,
          memory: size.memory,
          containerOverrides: [
            {
              name: this.config.containerName,
              ...(boot ? { command: ['sh', '-c', boot] } : {}),
              environment: [
                { name: 'AUTOVIBE_MACHINE_ID', value: request.machineId },
                { name: 'AUTOVIBE_PROJECT_ID', value: request.projectId },
              ],
            },
          ],
        },
        startedBy: request.machineId,
        tags,
        enableExecuteCommand: true,
      }),
    );
    const task = out.tasks?.[0];
    if (!task?.taskArn) {
      const failure = out.failures?.[0];
      throw new Error(`RunTask started no task${failure ? `: ${failure.reason ?? ''} ${failure.detail ?? ''}`.trimEnd() : ''}`);
    }
    return this.toInstance(task);
  }

  /** The task as ECS reports it now (undefined once ECS has forgotten it). */
  async status(instance: Instance): Promise<Task | undefined> {
    return (await this.describe([instance.instanceRef]))[0];
  }

  /** Whether the task stopped (or vanished) without us asking: Fargate Spot reclaiming it, most often. */
  async checkInterruption(instance: Instance): Promise<{ interrupted: boolean; reason?: string }> {
    const task = await this.status(instance);
    if (!task) return { interrupted: true, reason: 'task no longer exists' };
    const stopping = task.desiredStatus === 'STOPPED' || task.lastStatus === 'STOPPED' || task.lastStatus === 'DEPROVISIONING';
    if (!stopping) return { interrupted: false };
    const why = [task.stopCode, task.stoppedReason].filter(Boolean).join(': ');
    return { interrupted: true, reason: `task ${task.lastStatus ?? 'stopping'}${why ? ` (${why})` : ''}` };
  }

  async exec(instance: Instance, request: ExecRequest): Promise<ExecResult> {
    if (this.runner) return this.runner.exec(await this.channelOf(instance), request, this.interruptionCheck(instance));
    if ((await this.checkInterruption(instance)).interrupted) return { exitCode: null, stopReason: 'interrupted' };
    if (request.signal?.aborted) return { exitCode: null, stopReason: 'aborted' };
    if (Date.now() >= request.deadline) return { exitCode: null, stopReason: 'deadline' };
    throw new ExecUnsupportedError(
      'aws-ecs cannot run a command inside a running task without a workspace bucket (the remote runner); ECS Exec (an interactive Session Manager channel) is not implemented',
    );
  }

  async snapshot(instance: Instance, _input: { checkpointId: string }): Promise<SnapshotResult> {
    throw new Error(`aws-ecs keeps no disk to snapshot for ${instance.machineId}; checkpoint the workspace with git instead`);
  }

  async listInstances(): Promise<Instance[]> {
    const arns: string[] = [];
    let nextToken: string | undefined;
    do {
      const page = await this.ecs.send(new ListTasksCommand({ cluster: this.config.cluster, desiredStatus: 'RUNNING', nextToken }));
      arns.push(...(page.taskArns ?? []));
      nextToken = page.nextToken;
    } while (nextToken);
    const tasks: Task[] = [];
    // DescribeTasks takes at most 100 tasks per call.
    for (let i = 0; i < arns.length; i += 100) tasks.push(...(await this.describe(arns.slice(i, i + 100))));
    return tasks.filter((t) => tagValue(t.tags, TAG_MANAGED) === 'true' && tagValue(t.tags, TAG_MACHINE)).map((t) => this.toInstance(t));
  }

  async terminate(instance: Instance): Promise<void> {
    // The machine's folder (workspace, runner, orders); deleting nothing succeeds, so safe to repeat.
    if (this.runner) await this.runner.remove(await this.channelOf(instance));
    // Gone, never existed, or already stopping: nothing to free.
    const task = await this.status(instance);
    if (!task || task.desiredStatus === 'STOPPED') return;
    try {
      await this.ecs.send(new StopTaskCommand({ cluster: this.config.cluster, task: instance.instanceRef, reason: 'autovibe: machine terminated' }));
    } catch (err) {
      // It went away between the two calls.
      const after = await this.status(instance);
      if (after && after.desiredStatus !== 'STOPPED') throw err;
    }
  }

  private async describe(taskArns: string[]): Promise<Task[]> {
    if (taskArns.length === 0) return [];
    const out = await this.ecs.send(new DescribeTasksCommand({ cluster: this.config.cluster, tasks: taskArns, include: ['TAGS'] }));
    return out.tasks ?? [];
  }

  private toInstance(task: Task): Instance {
    const details: Record<string, string> = { region: this.config.region, cluster: this.config.cluster };
    if (task.capacityProviderName) details.capacityProvider = task.capacityProviderName;
    if (task.lastStatus) details.lastStatus = task.lastStatus;
    if (task.cpu) details.cpu = task.cpu;
    if (task.memory) details.memory = task.memory;
    const channel = tagValue(task.tags, TAG_CHANNEL);
    if (channel && task.taskArn) this.channels.set(task.taskArn, channel);
    return {
      provider: this.id,
      instanceRef: task.taskArn!,
      machineId: tagValue(task.tags, TAG_MACHINE) ?? task.startedBy ?? '',
      projectId: tagValue(task.tags, TAG_PROJECT) ?? '',
      details,
    };
  }
}

/** One line to register: `createAwsEcsProvider({ region, cluster, taskDefinition, containerName, subnets })`. */
export function createAwsEcsProvider(config: AwsEcsConfig): AwsEcsProvider {
  return new AwsEcsProvider(config);
}

function tagValue(tags: Tag[] | undefined, key: string): string | undefined {
  return tags?.find((t) => t.key === key)?.value;
}

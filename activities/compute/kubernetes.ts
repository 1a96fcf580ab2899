/**
 * The `kubernetes` compute provider: one Job per machine (domain/kubernetes.ts builds it) in a
 * namespace per project, through @kubernetes/client-node.
 *
 * - provision: creates the project's namespace if missing, then the Job (AlreadyExists → the Job a
 *   previous attempt created, so provision is idempotent), waits for its pod and unpacks the
 *   checkpoint's files into /workspace through exec (stdin).
 * - exec: the pod's exec subresource (websocket, the client's Exec); the exit code comes from
 *   the final status message. A command without network runs while a NetworkPolicy denies the
 *   pod's egress (enforced where the cluster's network plugin supports NetworkPolicy). A pod disrupted (preempted, evicted, spot node gone) or a Job
 *   failed/deleted from outside is reported as stopReason 'interrupted'.
 * - listInstances: Jobs labelled autovibe/managed=true in every namespace, still running.
 * - terminate: deletes the Job and its pods (404 is fine).
 * The workspace is an emptyDir: snapshots of it are git checkpoints, so snapshot fails here.
 */
import {
  BatchV1Api,
  CoreV1Api,
  Exec,
  KubeConfig,
  NetworkingV1Api,
  VersionApi,
  type V1Job,
  type V1NetworkPolicy,
  type V1Pod,
  type V1Status,
} from '@kubernetes/client-node';
import fs from 'node:fs';
import { Readable, Writable } from 'node:stream';
import { packWorkspace, replaceWorkspaceFiles } from './workspace-archive.js';
import {
  LABEL_MACHINE,
  LABEL_MANAGED,
  LABEL_PROJECT,
  MACHINE_CONTAINER,
  WORKSPACE_PATH,
  buildMachineJob,
  buildNoEgressPolicy,
  buildProjectNamespace,
  noEgressPolicyName,
  labelValue,
  type KubeToleration,
  type MachineJobManifest,
} from '../../domain/kubernetes.js';
import { shellScript } from './aws-ec2.js';
import type { ComputeProvider, ExecRequest, ExecResult, Instance, ProvisionRequest, SnapshotResult } from './provider.js';

export interface KubernetesConfig {
  /** A loaded KubeConfig, or the API server to talk to (with an optional bearer token). */
  kubeConfig?: KubeConfig;
  server?: string;
  token?: string;
  /** Skip TLS verification of the API server (a development cluster's self-signed certificate). */
  skipTLSVerify?: boolean;
  /** Image every machine runs: needs /bin/sh and the tools machines use. */
  image: string;
  namespacePrefix?: string;
  ttlSecondsAfterFinished?: number;
  activeDeadlineSeconds?: number;
  spotNodeSelector?: Record<string, string>;
  spotTolerations?: KubeToleration[];
  serviceAccountName?: string;
  /** How often a pod's start is polled; default 1000 ms. */
  pollIntervalMs?: number;
  /**
   * Whether provision waits for the pod and puts the checkpoint's files (the request's
   * workspace) into it; default true when the workspace directory exists.
   */
  deliverWorkspace?: boolean;
  /** How long provision waits for the pod to run; default 10 minutes. */
  podStartTimeoutMs?: number;
}

export class KubernetesProvider implements ComputeProvider {
  readonly id = 'kubernetes' as const;
  private readonly kc: KubeConfig;
  private readonly batch: BatchV1Api;
  private readonly core: CoreV1Api;
  private readonly networking: NetworkingV1Api;

  constructor(private readonly config: KubernetesConfig) {
    this.kc = config.kubeConfig ?? kubeConfigFor(config);
    this.batch = this.kc.makeApiClient(BatchV1Api);
    this.core = this.kc.makeApiClient(CoreV1Api);
    this.networking = this.kc.makeApiClient(NetworkingV1Api);
  }

  async availability(): Promise<{ available: boolean; reason?: string }> {
    try {
      const version = await this.kc.makeApiClient(VersionApi).getCode();
      return version.gitVersion ? { available: true } : { available: false, reason: 'the API server did not report its version' };
    } catch (err) {
      return {
        available: false,
        reason: `Kubernetes API server ${this.kc.getCurrentCluster()?.server ?? '(none)'} cannot be reached: ${(err as Error).message}`,
      };
    }
  }

  async provision(request: ProvisionRequest): Promise<Instance> {
    await this.ensureNamespace(request.projectId);
    // Idempotent: a Job of this machine that is still alive is returned as it is. A finished,
    // failed or deleted one (an interrupted earlier instance) is left to its TTL, and the
    // machine gets the next Job name.
    for (let attempt = 1; attempt <= MAX_JOB_ATTEMPTS; attempt++) {
      const job = this.buildJob(request, attempt);
      const namespace = job.metadata.namespace;
      let instance: Instance | undefined;
      try {
        instance = this.toInstance(await this.batch.createNamespacedJob({ namespace, body: job as V1Job }));
      } catch (err) {
        if (httpCode(err) !== 409) throw err;
        const existing = await this.batch.readNamespacedJob({ name: job.metadata.name, namespace });
        if (isAlive(existing)) instance = this.toInstance(existing);
      }
      if (!instance) continue;
      if (this.config.deliverWorkspace !== false && isDirectory(request.workspace)) {
        await this.deliverWorkspace(instance, request.workspace, Date.now() + (this.config.podStartTimeoutMs ?? 600_000), { once: true });
      }
      return instance;
    }
    throw new Error(`machine ${request.machineId} already has ${MAX_JOB_ATTEMPTS} finished Jobs; wait for their TTL to remove them`);
  }

  private buildJob(request: ProvisionRequest, attempt: number): MachineJobManifest {
    return buildMachineJob({
      machineId: request.machineId,
      projectId: request.projectId,
      profile: request.profile,
      spot: request.spot,
      image: this.config.image,
      tags: request.tags,
      attempt,
      ...(this.config.namespacePrefix !== undefined ? { namespacePrefix: this.config.namespacePrefix } : {}),
      ...(this.config.ttlSecondsAfterFinished !== undefined ? { ttlSecondsAfterFinished: this.config.ttlSecondsAfterFinished } : {}),
      ...(this.config.activeDeadlineSeconds !== undefined ? { activeDeadlineSeconds: this.config.activeDeadlineSeconds } : {}),
      ...(this.config.spotNodeSelector ? { spotNodeSelector: this.config.spotNodeSelector } : {}),
      ...(this.config.spotTolerations ? { spotTolerations: this.config.spotTolerations } : {}),
      ...(this.config.serviceAccountName ? { serviceAccountName: this.config.serviceAccountName } : {}),
    });
  }

  async exec(instance: Instance, request: ExecRequest): Promise<ExecResult> {
    const pod = await this.waitForPod(instance, request.deadline, request.signal);
    if (typeof pod !== 'string') return { exitCode: null, stopReason: pod.stopReason };
    await this.setEgress(instance, request.network);
    return this.runInPod(instance, pod, ['/bin/sh', '-c', shellScript(request)], request);
  }

  /** Adds (no network) or removes (network) the NetworkPolicy denying the pod's egress. */
  private async setEgress(instance: Instance, allowed: boolean): Promise<void> {
    const { namespace, name } = parseRef(instance.instanceRef);
    try {
      if (allowed) {
        await this.networking.deleteNamespacedNetworkPolicy({ name: noEgressPolicyName(name), namespace });
      } else {
        const body = buildNoEgressPolicy({ machineId: instance.machineId, projectId: instance.projectId, jobName: name, namespace });
        await this.networking.createNamespacedNetworkPolicy({ namespace, body: body as V1NetworkPolicy });
      }
    } catch (err) {
      // Already gone / already there.
      if (httpCode(err) !== (allowed ? 404 : 409)) throw err;
    }
  }

  /**
   * Puts the host workspace's files into the pod's /workspace: a tar.gz of it (without .git,
   * which in a worktree only points into the host's repository) sent on stdin. `head -c` reads
   * exactly the archive, so this works on API servers whose exec channel cannot signal the end
   * of stdin (before v5.channel.k8s.io). With `once` (provision) a pod that has its files already
   * keeps them; without it (a retried command) /workspace is emptied and filled again.
   */
  async deliverWorkspace(instance: Instance, workspace: string, deadline: number, options: { once?: boolean } = {}): Promise<void> {
    const pod = await this.waitForPod(instance, deadline);
    if (typeof pod !== 'string') throw new Error(`cannot deliver the workspace to ${instance.instanceRef}: ${pod.stopReason}`);
    const archive = await packWorkspace(workspace);
    const script = [
      options.once
        ? `if [ -e ${DELIVERED_MARKER} ]; then head -c ${archive.length} >/dev/null; exit 0; fi`
        : `find ${WORKSPACE_PATH} -mindepth 1 -maxdepth 1 -exec rm -rf {} +`,
      `head -c ${archive.length} | tar -xzf - -C ${WORKSPACE_PATH} && : > ${DELIVERED_MARKER}`,
    ].join('\n');
    // Never ends: on the older channel protocol the end of stdin closes the whole connection.
    const stdin = new Readable({ read() {} });
    stdin.push(archive);
    let stderr = '';
    const result = await this.runInPod(instance, pod, ['/bin/sh', '-c', script], {
      deadline,
      stdin,
      onOutput: (chunk, stream) => {
        if (stream === 'stderr') stderr += chunk.toString();
      },
    });
    if (result.exitCode !== 0) {
      throw new Error(
        `unpacking the workspace in ${instance.instanceRef} failed (${result.stopReason ?? `exit ${String(result.exitCode)}`}): ${stderr.trim()}`,
      );
    }
  }

  /**
   * Brings the pod's /workspace back into the host `workspace` (whose .git stays as it is), so
   * the host can commit it as a checkpoint: files deleted in the pod disappear here too.
   */
  async collectWorkspace(instance: Instance, workspace: string, deadline: number): Promise<void> {
    const pod = await this.waitForPod(instance, deadline);
    if (typeof pod !== 'string') throw new Error(`cannot collect the workspace of ${instance.instanceRef}: ${pod.stopReason}`);
    const stdout: Buffer[] = [];
    let stderr = '';
    const result = await this.runInPod(instance, pod, ['/bin/sh', '-c', `tar -czf - -C ${WORKSPACE_PATH} .`], {
      deadline,
      onOutput: (chunk, stream) => {
        if (stream === 'stdout') stdout.push(chunk);
        else stderr += chunk.toString();
      },
    });
    if (result.exitCode !== 0) {
      throw new Error(`packing the workspace of ${instance.instanceRef} failed (${result.stopReason ?? `exit ${String(result.exitCode)}`}): ${stderr.trim()}`);
    }
    await replaceWorkspaceFiles(workspace, Buffer.concat(stdout));
  }

  /** The machine's running pod, once it runs (image pull, scheduling), or why it never will. */
  private async waitForPod(
    instance: Instance,
    deadline: number,
    signal?: AbortSignal,
  ): Promise<string | { stopReason: 'interrupted' | 'aborted' | 'deadline' }> {
    const interval = this.config.pollIntervalMs ?? 1_000;
    for (;;) {
      if ((await this.checkInterruption(instance)).interrupted) return { stopReason: 'interrupted' };
      if (signal?.aborted) return { stopReason: 'aborted' };
      if (Date.now() >= deadline) return { stopReason: 'deadline' };
      const pod = (await this.pods(instance)).find((p) => p.status?.phase === 'Running' && !p.metadata?.deletionTimestamp);
      if (pod?.metadata?.name) return pod.metadata.name;
      await sleep(Math.min(interval, Math.max(0, deadline - Date.now())));
    }
  }

  private async runInPod(
    instance: Instance,
    podName: string,
    argv: string[],
    request: Pick<ExecRequest, 'deadline' | 'signal' | 'onOutput'> & { stdin?: Readable },
  ): Promise<ExecResult> {
    const { namespace } = parseRef(instance.instanceRef);
    const sink = (stream: 'stdout' | 'stderr'): Writable =>
      new Writable({
        write(chunk: Buffer, _encoding, callback) {
          request.onOutput?.(Buffer.from(chunk), stream);
          callback();
        },
      });
    let status: V1Status | undefined;
    const ws = await new Exec(this.kc).exec(namespace, podName, MACHINE_CONTAINER, argv, sink('stdout'), sink('stderr'), request.stdin ?? null, false, (s) => {
      status = s;
    });
    const ended = await new Promise<'closed' | 'deadline' | 'aborted'>((resolve) => {
      const timer = setTimeout(() => resolve('deadline'), Math.max(0, request.deadline - Date.now()));
      const onAbort = (): void => resolve('aborted');
      request.signal?.addEventListener('abort', onAbort, { once: true });
      ws.on('close', () => resolve('closed'));
      void Promise.resolve().then(() => {
        if (ws.readyState === ws.CLOSED) resolve('closed');
      });
      // Whatever ended it, stop listening.
      const cleanup = (): void => {
        clearTimeout(timer);
        request.signal?.removeEventListener('abort', onAbort);
      };
      ws.once('close', cleanup);
    });
    request.stdin?.destroy();
    if (ended !== 'closed') {
      ws.close();
      return { exitCode: null, stopReason: ended };
    }
    if (status) return { exitCode: exitCodeOf(status), stopReason: null };
    // The stream ended without a status: the pod (or its node) went away under the command.
    if ((await this.checkInterruption(instance)).interrupted) return { exitCode: null, stopReason: 'interrupted' };
    throw new Error(`exec in ${instance.instanceRef} ended without an exit status (connection lost)`);
  }

  /**
   * Whether the machine was taken away from outside: its Job deleted or failed, or its pod
   * disrupted (preemption, eviction, node shutdown — how a spot node's loss shows) or failed.
   */
  async checkInterruption(instance: Instance): Promise<{ interrupted: boolean; reason?: string }> {
    const { namespace, name } = parseRef(instance.instanceRef);
    let job: V1Job;
    try {
      job = await this.batch.readNamespacedJob({ name, namespace });
    } catch (err) {
      if (httpCode(err) === 404) return { interrupted: true, reason: 'job no longer exists' };
      throw err;
    }
    if (job.metadata?.deletionTimestamp) return { interrupted: true, reason: 'job is being deleted' };
    const failed = job.status?.conditions?.find((c) => c.type === 'Failed' && c.status === 'True');
    if (failed) return { interrupted: true, reason: `job failed: ${failed.reason ?? ''} ${failed.message ?? ''}`.trim() };
    for (const pod of await this.pods(instance)) {
      const disrupted = pod.status?.conditions?.find((c) => c.type === 'DisruptionTarget' && c.status === 'True');
      if (disrupted)
        return { interrupted: true, reason: `pod ${pod.metadata?.name ?? ''} disrupted: ${disrupted.reason ?? ''} ${disrupted.message ?? ''}`.trim() };
      if (pod.status?.phase === 'Failed' || pod.status?.phase === 'Succeeded') {
        return { interrupted: true, reason: `pod ${pod.metadata?.name ?? ''} ${pod.status.phase}${pod.status.reason ? ` (${pod.status.reason})` : ''}` };
      }
    }
    return { interrupted: false };
  }

  async snapshot(instance: Instance, _input: { checkpointId: string }): Promise<SnapshotResult> {
    throw new Error(`kubernetes machines keep their workspace in an emptyDir (${instance.instanceRef}); checkpoint it with git instead`);
  }

  async listInstances(): Promise<Instance[]> {
    const result: Instance[] = [];
    let cont: string | undefined;
    do {
      const page = await this.batch.listJobForAllNamespaces({ labelSelector: `${LABEL_MANAGED}=true`, ...(cont ? { _continue: cont } : {}) });
      for (const job of page.items) if (isAlive(job)) result.push(this.toInstance(job));
      cont = page.metadata?._continue || undefined;
    } while (cont);
    return result;
  }

  async terminate(instance: Instance): Promise<void> {
    const { namespace, name } = parseRef(instance.instanceRef);
    try {
      // Background: the Job goes now, its pods right after (the garbage collector).
      await this.batch.deleteNamespacedJob({ name, namespace, propagationPolicy: 'Background', gracePeriodSeconds: 0 });
    } catch (err) {
      if (httpCode(err) !== 404) throw err;
    }
    await this.setEgress(instance, true);
  }

  private async ensureNamespace(projectId: string): Promise<void> {
    const ns = buildProjectNamespace(projectId, this.config.namespacePrefix);
    try {
      await this.core.readNamespace({ name: ns.metadata.name });
      return;
    } catch (err) {
      if (httpCode(err) !== 404) throw err;
    }
    try {
      await this.core.createNamespace({ body: ns });
    } catch (err) {
      if (httpCode(err) !== 409) throw err;
    }
  }

  private async pods(instance: Instance): Promise<V1Pod[]> {
    const { namespace, name } = parseRef(instance.instanceRef);
    // job-name: the Job controller's label, so pods of an earlier Job of the machine do not count.
    const list = await this.core.listNamespacedPod({ namespace, labelSelector: `${LABEL_MACHINE}=${labelValue(instance.machineId)},job-name=${name}` });
    return list.items;
  }

  private toInstance(job: V1Job): Instance {
    const labels = job.metadata?.labels ?? {};
    // The env carries the exact ids; labels may have had to be shortened.
    const env = job.spec?.template?.spec?.containers?.[0]?.env ?? [];
    const details: Record<string, string> = { namespace: job.metadata?.namespace ?? '' };
    if (job.metadata?.uid) details.uid = job.metadata.uid;
    return {
      provider: this.id,
      instanceRef: `${job.metadata?.namespace ?? ''}/${job.metadata?.name ?? ''}`,
      machineId: env.find((e) => e.name === 'AUTOVIBE_MACHINE_ID')?.value ?? labels[LABEL_MACHINE] ?? '',
      projectId: env.find((e) => e.name === 'AUTOVIBE_PROJECT_ID')?.value ?? labels[LABEL_PROJECT] ?? '',
      details,
    };
  }
}

/** One line to register: `createKubernetesProvider({ server, token, image })` or `{ kubeConfig, image }`. */
export function createKubernetesProvider(config: KubernetesConfig): KubernetesProvider {
  return new KubernetesProvider(config);
}

function kubeConfigFor(config: KubernetesConfig): KubeConfig {
  const kc = new KubeConfig();
  if (!config.server) {
    kc.loadFromDefault();
    return kc;
  }
  kc.loadFromOptions({
    clusters: [{ name: 'autovibe', server: config.server, skipTLSVerify: config.skipTLSVerify ?? false }],
    users: [{ name: 'autovibe', ...(config.token ? { token: config.token } : {}) }],
    contexts: [{ name: 'autovibe', cluster: 'autovibe', user: 'autovibe' }],
    currentContext: 'autovibe',
  });
  return kc;
}

const MAX_JOB_ATTEMPTS = 20;
/** Outside /workspace, so it is never part of a checkpoint; gone with the container. */
const DELIVERED_MARKER = '/tmp/.autovibe-workspace-delivered';

function isDirectory(dir: string): boolean {
  try {
    return fs.statSync(dir).isDirectory();
  } catch {
    return false;
  }
}

/** Neither finished (Complete/Failed) nor being deleted. */
function isAlive(job: V1Job): boolean {
  if (job.metadata?.deletionTimestamp) return false;
  return !job.status?.conditions?.some((c) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True');
}

function parseRef(ref: string): { namespace: string; name: string } {
  const [namespace, name] = ref.split('/');
  if (!namespace || !name) throw new Error(`"${ref}" is not a namespace/job reference`);
  return { namespace, name };
}

function httpCode(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'number' ? code : undefined;
}

/** Exit code from the exec channel's final status (Success, or NonZeroExitCode with an ExitCode cause). */
export function exitCodeOf(status: V1Status): number | null {
  if (status.status === 'Success') return 0;
  const cause = status.details?.causes?.find((c) => c.reason === 'ExitCode');
  const code = cause?.message !== undefined ? Number.parseInt(cause.message, 10) : Number.NaN;
  return Number.isInteger(code) ? code : null;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

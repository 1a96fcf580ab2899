import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { type CurrencyCode, formatAmount, parseAmount, runtimeCost } from '../domain/money.js';
import { BALANCE_SCOPE } from '../domain/budget.js';
import { convert, FxUnavailableError, invert } from '../domain/fx.js';
import { type CheckpointKind, type MachineStatus } from '../domain/machines.js';
import { type MachineTypeId } from '../domain/machine-types.js';
import { hostQueue, machineQueue, type HostQueue } from '../domain/queues.js';
import { appendAudit } from '../store/audit.js';
import {
  type FxRecord,
  release,
  reservationBudgets,
  reserve,
  settle,
  settleEach,
  machineExtensionKeys,
  reservedInRequesterCurrency,
} from '../store/budgets.js';
import { machineCostCenterId, machineSpendBudgets } from '../store/spend-budgets.js';
import { createFxService } from '../fx/service.js';
import { getCheckpoint, recordCheckpoint } from '../store/checkpoints.js';
import { costTotals, recordCost } from '../store/costs.js';
import { checkoutWorkspace, commitFiles, GitStatCache, removeWorkspace, resetWorkspace, treeOf } from '../store/git.js';
import { defaultFreezeLimits, FreezeError, withFrozenCopy } from '../store/frozen-copy.js';
import { getSnapshot } from '../store/snapshots.js';
import { getMachine, setComputePrice, updateMachine, type MachineUsage } from '../store/machines.js';
import { hourlyUnits, machineComputePrice, withInstanceSpotPrice } from '../domain/compute-prices.js';
import { getProject, type Project } from '../store/projects.js';
import { triggerAutoTopup } from '../services/payments.js';
import { providerOf } from './compute/index.js';
import {
  hasDiskSnapshots,
  SnapshotNotReadyError,
  type DiskSnapshotProvider,
  type Instance,
  type ProviderId,
  type ProvisionRequest,
} from './compute/provider.js';
import { restorableInstanceSnapshot, takeInstanceSnapshot } from './instance-snapshots.js';
import type { InstanceSnapshot } from '../store/instance-snapshots.js';
import { claimFromPool, forgetWarm } from './compute/warm-pool.js';
import { agentDirs, containerAgentMounts, containerNetworkMounts, FORWARDER_TARGET, networkMounts, SANDBOX_NODE } from './machines/agent-mounts.js';
import { openMachineNetwork } from './machines/machine-network.js';
import { CONTAINER_USER } from './compute/container.js';
import { NO_NETWORK } from '../domain/network.js';
import { resourceSampler } from './machines/resource-samples.js';
import { superviseExec } from './machines/supervise.js';
import { openLogSink } from './machines/log-sink.js';
import { restoreCheckpointFiles, restoreMachineStart, snapshotCheckpoint } from './snapshots.js';
import type { ActivityDeps } from './deps.js';
import { settleMergeResolution } from '../services/merges.js';
import { routingSuccess } from '../domain/routing/router.js';
import { settleRoutingDecision } from '../store/routing.js';
import { settlePrediction } from '../store/predictions.js';
import { repoMirror, withLocalRepo } from '../store/shared-storage.js';
import { learnFromEndedMachine } from '../services/refinement.js';

export type ReservationOutcome =
  | {
      ok: true;
      reservationId: string;
      amount: string;
      currency: CurrencyCode;
      /** The machine's worst-case hourly compute price in `currency` (converted when the price is in another one). */
      hourlyPrice?: string;
    }
  | {
      ok: false;
      code: 'budget_exceeded' | 'budget_not_set' | 'fx_unavailable' | 'compute_price_missing';
      message: string;
      remaining?: string;
      currency: CurrencyCode;
    };

/** How long collecting or re-delivering a remote instance's files may take (within the activities' timeouts). */
const REMOTE_FILES_TIMEOUT_MS = 50_000;

/** The task queue the running activity was taken from; null when called outside a worker (tests calling activities directly). */
function currentTaskQueue(): string | null {
  try {
    return Context.current().info.taskQueue;
  } catch {
    return null;
  }
}

export interface RunCommandResult {
  exitCode: number | null;
  stopReason: string | null;
  outputTail: string;
  /** The instance vanished under the command (spot reclaim, container removed): re-provision. */
  interrupted?: boolean;
  /** Stopped at a resource limit of its profile (`stopReason` names it): the machine fails. */
  resourceLimit?: true;
  /** Its worker is shutting down: the machine re-provisions on another worker and runs the command again (see `recordHandover`). */
  handedOver?: true;
}

/**
 * The `machine.handed_over` event: the worker running the machine is shutting down, so the
 * machine goes on elsewhere from `checkpointId` instead of ending. Recorded by that worker.
 */
export async function recordHandover(
  { db, temporal, log }: Pick<ActivityDeps, 'db' | 'temporal' | 'log'>,
  input: { machineId: string; projectId: string; type: string; restart: 'command' | 'agent' } & ({ checkpointId: string } | { commit: string }),
): Promise<void> {
  const info = Context.current().info;
  await appendAudit(db, {
    actor: 'system',
    action: 'machine.handed_over',
    subjectType: 'machine',
    subjectId: input.machineId,
    projectId: input.projectId,
    details: {
      reason: 'worker shutting down',
      worker: `${process.pid}@${os.hostname()}`,
      ...('checkpointId' in input ? { resumeFrom: input.checkpointId } : { resumeFromCommit: input.commit }),
      // A shell command starts over from the checkpoint; an agent continues from it with a note.
      restart: input.restart,
      type: input.type,
    },
    // One per activity (the run of one segment): a retry of the same report adds nothing.
    idempotencyKey: `machine:${input.machineId}:handed-over:${info.workflowExecution?.runId ?? '-'}:${info.activityId}`,
  });
  // The workflow's next task would go to this worker's sticky queue, which nobody polls any more,
  // and wait out its schedule-to-start timeout; cleared, it goes to the shared queue at once.
  if (info.workflowExecution) {
    await temporal.workflowService
      .resetStickyTaskQueue({ namespace: info.namespace, execution: { workflowId: info.workflowExecution.workflowId, runId: info.workflowExecution.runId } })
      .catch((err: Error) =>
        log.warn({ machineId: input.machineId, err: err.message }, 'could not release the sticky queue; the next worker waits for its timeout'),
      );
  }
}

export interface ProvisionedSandbox {
  workspace: string;
  instanceRef: string;
  commit: string;
  provider: ProviderId;
  instance: Instance;
  /** Handed out by the warm pool rather than started now. */
  warm: boolean;
  /** Provisioned from its provider's machine queue: this host's queue, where the machine's other activities go. */
  hostQueue?: HostQueue;
}

export interface CheckpointRequest {
  checkpointId: string;
  machineId: string;
  parentCheckpointId: string;
  kind: CheckpointKind;
  trigger: string;
  at: string;
}

/**
 * Commits the workspace as checkpoint `checkpointId`, a child of `parentCheckpointId`. The same
 * request gives the same commit and row, so a retry after a crash adds nothing.
 *
 * The machine may still be running: the commit and the snapshot are both taken from one frozen
 * copy of the workspace (store/frozen-copy.ts), never from the live files, so no symlink or
 * swapped directory is followed out of the workspace. Entries left out of the copy (FIFOs,
 * sockets, devices, files over the size limit) are recorded on the checkpoint's audit trail. A
 * workspace that cannot be copied in time fails the checkpoint for good, with the reason.
 * With `skipUnchanged`, nothing is recorded (null) when the files are the parent's.
 */
/**
 * What this worker's last checkpoint of each workspace read: the next checkpoint of an unchanged
 * workspace hashes none of its tracked files again (store/git.ts GitStatCache).
 */
export const workspaceGitStats = new GitStatCache();

export async function checkpointWorkspace(
  db: ActivityDeps['db'],
  project: Project,
  workspace: string,
  input: CheckpointRequest,
  /** Where the workspace's snapshot goes (chunk store); without it the scheduled backup stores the commit's files. */
  snapshots?: Pick<ActivityDeps, 'config' | 'log'>,
  opts: { skipUnchanged?: boolean } = {},
): Promise<{ checkpointId: string; commit: string } | null> {
  const deps = snapshots ? { db, ...snapshots } : null;
  const existing = await getCheckpoint(db, input.checkpointId);
  // A retry: the commit is made; the snapshot only while the workspace still exists and has none.
  if (existing && (!deps || !fs.existsSync(workspace) || (await getSnapshot(db, existing.id)))) {
    if (deps) await snapshotCheckpoint(deps, { checkpointId: existing.id, projectId: project.id, root: null });
    return { checkpointId: existing.id, commit: existing.commit };
  }
  const parent = existing ? null : await getCheckpoint(db, input.parentCheckpointId);
  if (!existing && !parent) throw ApplicationFailure.nonRetryable(`parent checkpoint ${input.parentCheckpointId} not found`, 'NotFoundError');
  try {
    return await withFrozenCopy(workspace, defaultFreezeLimits(), async (copy) => {
      if (existing) {
        await snapshotCheckpoint(deps!, { checkpointId: existing.id, projectId: project.id, root: copy.root });
        return { checkpointId: existing.id, commit: existing.commit };
      }
      const message = `${input.kind} checkpoint ${input.checkpointId} of ${input.machineId} (${input.trigger})`;
      const commit = await commitFiles(project.repoPath, copy.root, parent!.commit, message, new Date(input.at), {
        cache: workspaceGitStats,
        workspace,
        copy,
      });
      if (opts.skipUnchanged && (await treeOf(project.repoPath, commit)) === (await treeOf(project.repoPath, parent!.commit))) return null;
      await recordCheckpoint(
        db,
        project.repoPath,
        {
          id: input.checkpointId,
          projectId: project.id,
          parentId: parent!.id,
          machineId: input.machineId,
          commit,
          kind: input.kind,
          trigger: input.trigger,
        },
        {},
        snapshots ? repoMirror(snapshots.config) : null,
      );
      if (copy.skipped.length) {
        snapshots?.log.warn({ checkpointId: input.checkpointId, skipped: copy.skipped.length }, 'workspace entries left out of a checkpoint');
        await appendAudit(db, {
          actor: 'system',
          action: 'checkpoint.entries_skipped',
          subjectType: 'checkpoint',
          subjectId: input.checkpointId,
          projectId: project.id,
          details: { machineId: input.machineId, count: copy.skipped.length, skipped: copy.skipped.slice(0, MAX_SKIPPED_RECORDED) },
          idempotencyKey: `checkpoint:${input.checkpointId}:skipped`,
        });
      }
      // The whole workspace (files beyond git too) into the chunk store, then its snapshot lifecycle.
      if (deps) await snapshotCheckpoint(deps, { checkpointId: input.checkpointId, projectId: project.id, root: copy.root });
      return { checkpointId: input.checkpointId, commit };
    });
  } catch (err) {
    // Copying again would meet the same workspace: end the checkpoint (and a final one, the machine) clearly.
    if (err instanceof FreezeError) throw ApplicationFailure.nonRetryable(`checkpoint ${input.checkpointId} failed: ${err.message}`, 'CheckpointFailed');
    throw err;
  }
}

/** How many left-out entries a checkpoint's audit record lists (the count is always whole). */
const MAX_SKIPPED_RECORDED = 100;

/** Activities of one machine's life: every one is idempotent on the machine id it is given. */
export function createMachineRunActivities({ db, config, log, providers, temporal, fx: givenFx }: ActivityDeps) {
  const fx = givenFx ?? createFxService({ config, db, log });
  async function projectOf(projectId: string): Promise<Project> {
    const project = await getProject(db, projectId);
    if (!project) throw ApplicationFailure.nonRetryable(`project ${projectId} not found`, 'NotFoundError');
    // With a shared object store: this host's copy of its repository, with every checkpoint so far.
    return withLocalRepo(db, config, project);
  }
  const extensionKeys = (machineId: string) => machineExtensionKeys(db, machineId);
  /** The money still reserved under `key`, in the requester's (project's) currency. */
  const reservedInProjectCurrency = (key: string) => reservedInRequesterCurrency(db, key);

  /**
   * A new instance whose disk is the checkpoint's disk snapshot. A snapshot (or the copy brought
   * back from a replica) still being made is retried by Temporal; any other failure falls back to
   * a fresh instance over the checkpoint's files, recorded as a machine event.
   */
  async function provisionFromDisk(provider: DiskSnapshotProvider, request: ProvisionRequest, disk: InstanceSnapshot): Promise<Instance> {
    try {
      const instance = await provider.provisionFromSnapshot(request, disk.snapshotRef);
      await appendAudit(db, {
        actor: 'system',
        action: 'machine.disk_restored',
        subjectType: 'machine',
        subjectId: request.machineId,
        projectId: request.projectId,
        details: {
          checkpointId: disk.checkpointId,
          snapshotRef: disk.snapshotRef,
          fromSnapshot: instance.details?.fromSnapshot ?? disk.snapshotRef,
          instanceRef: instance.instanceRef,
        },
        idempotencyKey: `machine:${request.machineId}:disk-restored:${instance.instanceRef}`,
      });
      return instance;
    } catch (err) {
      if (err instanceof SnapshotNotReadyError) throw err;
      const error = err instanceof Error ? err.message : String(err);
      log.warn({ machineId: request.machineId, snapshotRef: disk.snapshotRef, err: error }, 'disk restore failed; starting from the checkpoint files');
      await appendAudit(db, {
        actor: 'system',
        action: 'machine.disk_restore_failed',
        subjectType: 'machine',
        subjectId: request.machineId,
        projectId: request.projectId,
        details: { checkpointId: disk.checkpointId, snapshotRef: disk.snapshotRef, error },
        idempotencyKey: `machine:${request.machineId}:disk-restore-failed:${disk.checkpointId}`,
      });
      return provider.provision(request);
    }
  }

  const workspaceOf = (machineId: string) => path.join(config.workspacesDir, machineId);

  // --- remote files: instances that keep their own copy of the workspace (aws-ec2, aws-ecs, kubernetes) ---
  /** The machine's instance as its row knows it (provider + instanceRef); null when local or not started. */
  async function machineInstance(machineId: string): Promise<Instance | null> {
    const machine = await getMachine(db, machineId);
    if (!machine || machine.provider === 'local' || !machine.instanceRef) return null;
    return { provider: machine.provider as ProviderId, instanceRef: machine.instanceRef, machineId: machine.id, projectId: machine.projectId };
  }
  /**
   * Brings the instance's files into the host workspace before checkpoint `checkpointId` commits
   * it. Once: when the checkpoint row exists already (a retry after it was made) nothing is
   * collected again, so the checkpoint keeps the files it was made of.
   */
  async function collectRemoteFiles(machineId: string, checkpointId: string): Promise<void> {
    if (await getCheckpoint(db, checkpointId)) return;
    const instance = await machineInstance(machineId);
    if (!instance) return;
    const provider = providerOf(providers, instance.provider);
    if (!provider.collectWorkspace) return;
    // Within the checkpoint activity's one-minute timeout.
    await provider.collectWorkspace(instance, workspaceOf(machineId), Date.now() + REMOTE_FILES_TIMEOUT_MS);
  }
  // --- end remote files ---
  const logFileOf = (machineId: string) => path.join(config.home, 'logs', `${machineId}.log`);

  /**
   * A spot instance whose provider reported the price it got (aws-ec2 `details.spotPrice`): the
   * machine is charged that price from now on (unless AUTOVIBE_SPOT_CHARGING=list), and its
   * history says so.
   */
  const recordInstanceSpotPrice = async (machineId: string, projectId: string, instance: Instance) => {
    const reported = instance.details?.spotPrice;
    if (typeof reported !== 'string' || config.spotCharging !== 'instance') return;
    const machine = await getMachine(db, machineId);
    if (!machine?.computePrice || machine.computePrice.market !== 'spot') return;
    const price = withInstanceSpotPrice(machine.computePrice, reported);
    await setComputePrice(db, machineId, price);
    await appendAudit(db, {
      actor: 'system',
      action: 'machine.spot_price',
      subjectType: 'machine',
      subjectId: machineId,
      projectId,
      details: { instanceRef: instance.instanceRef, hourly: price.hourly, currency: price.currency, listHourly: price.listHourly ?? null },
      idempotencyKey: `machine:${machineId}:spot-price:${instance.instanceRef}`,
    });
  };

  /** Records a status change of the machine, with its audit record. */
  async function markMachine(input: {
    machineId: string;
    status: MachineStatus;
    instanceRef?: string;
    stopReason?: string | null;
    error?: string | null;
    exitCode?: number | null;
    usage?: MachineUsage;
    started?: boolean;
    ended?: boolean;
  }): Promise<void> {
    const machine = await getMachine(db, input.machineId);
    if (!machine) throw ApplicationFailure.nonRetryable(`machine ${input.machineId} not found`, 'NotFoundError');
    // A failed machine gets its failure summary and teaches prompt refinement (README "Prompt refinement"),
    // once, before its end is visible: whoever sees it failed sees why.
    if (input.ended)
      await learnFromEndedMachine(db, input.machineId, {
        status: input.status,
        stopReason: input.stopReason ?? null,
        error: input.error !== undefined ? input.error : machine.error,
      }).catch((err: Error) => log.warn({ machineId: input.machineId, err: err.message }, 'failure summary not recorded'));
    await updateMachine(db, input.machineId, {
      status: input.status,
      ...(input.instanceRef !== undefined ? { instanceRef: input.instanceRef } : {}),
      ...(input.stopReason !== undefined ? { stopReason: input.stopReason } : {}),
      ...(input.error !== undefined ? { error: input.error } : {}),
      ...(input.exitCode !== undefined ? { exitCode: input.exitCode } : {}),
      ...(input.usage !== undefined ? { usage: input.usage } : {}),
      ...(input.started && !machine.startedAt ? { startedAt: new Date() } : {}),
      ...(input.ended && !machine.endedAt ? { endedAt: new Date() } : {}),
    });
    // A machine resolving a merge's conflicts: its result becomes the proposed merge checkpoint.
    if (input.ended) await settleMergeResolution({ db, log, config }, input.machineId);
    // A machine the router chose (type "auto"): its outcome and cost teach the bandit, once.
    if (input.ended) {
      const project = await projectOf(machine.projectId);
      const totals = await costTotals(db, { machineId: input.machineId });
      const cost = Object.values(totals).reduce((a, b) => a + b, 0n);
      await settleRoutingDecision(db, input.machineId, {
        finalStatus: input.status,
        success: routingSuccess(input.status, input.stopReason ?? null),
        cost,
        currency: project.currency,
      });
      // Its predicted cost and duration (README "Cost prediction") get the actuals beside them, once;
      // a refused machine never ran and says nothing about the prediction.
      if (input.status !== 'refused') await settlePrediction(db, input.machineId, { cost, finalStatus: input.status });
    }
    await appendAudit(db, {
      actor: 'system',
      action: `machine.${input.status}`,
      subjectType: 'machine',
      subjectId: input.machineId,
      projectId: machine.projectId,
      details: {
        ...(input.stopReason ? { stopReason: input.stopReason } : {}),
        ...(input.error ? { error: input.error } : {}),
        ...(input.exitCode !== undefined && input.exitCode !== null ? { exitCode: input.exitCode } : {}),
      },
      idempotencyKey: `machine:${input.machineId}:${input.status}`,
    });
  }

  /**
   * Checks the checkpoint out into the machine's own worktree and gets an instance over it: a
   * free one of the provider's warm pool when there is one, else a new one. Instances a previous
   * attempt of this machine left behind are terminated first.
   */
  async function provision(input: {
    machineId: string;
    projectId: string;
    checkpointId: string;
    provider?: ProviderId;
    profile?: string;
    spot?: boolean;
  }): Promise<ProvisionedSandbox> {
    const project = await projectOf(input.projectId);
    const checkpoint = await getCheckpoint(db, input.checkpointId);
    if (!checkpoint || checkpoint.projectId !== project.id) {
      throw ApplicationFailure.nonRetryable(`checkpoint ${input.checkpointId} is not a checkpoint of project ${project.id}`, 'InputError');
    }
    const providerId = input.provider ?? 'local';
    const provider = providerOf(providers, providerId);
    const profile = input.profile ?? 'lightweight';
    const workspace = workspaceOf(input.machineId);
    const machine = { machineId: input.machineId, projectId: project.id };
    const availability = await provider.availability();
    if (!availability.available) {
      throw ApplicationFailure.nonRetryable(`provider ${providerId} is unavailable: ${availability.reason ?? 'no reason given'}`, 'ProviderUnavailable');
    }
    // An agent machine needs its CLIs, home and proxy socket mounted: pooled containers lack them.
    const row = await getMachine(db, input.machineId);
    // A shell machine with network needs the forwarder and its egress proxy's socket dir the same way.
    const mounts =
      row && providerId === 'container'
        ? row.type !== 'shell'
          ? containerAgentMounts(config, input.machineId)
          : row.network.mode !== 'none'
            ? containerNetworkMounts(config, input.machineId)
            : undefined
        : undefined;
    // A checkpoint with a disk snapshot brings its whole disk back: no warm instance has it.
    const disk = await restorableInstanceSnapshot({ db, log, providers }, checkpoint.id, providerId);
    const warm = providerId === 'local' || mounts || disk ? null : await claimFromPool(db, providerId, profile, machine, workspace);
    if (warm) {
      await checkoutWorkspace(project.repoPath, workspace, checkpoint.commit);
      await restoreCheckpointFiles({ db, config, log }, { checkpointId: checkpoint.id, workspace });
      // Remote files: a warm instance that keeps its own copy started without them.
      if (provider.deliverWorkspace) await provider.deliverWorkspace(warm, workspace, Date.now() + REMOTE_FILES_TIMEOUT_MS);
      return { workspace, instanceRef: warm.instanceRef, commit: checkpoint.commit, provider: providerId, instance: warm, warm: true };
    }
    for (const stale of (await provider.listInstances()).filter((i) => i.machineId === input.machineId)) await provider.terminate(stale);
    await checkoutWorkspace(project.repoPath, workspace, checkpoint.commit);
    // Files beyond git (ignored, untracked) come back from the checkpoint's snapshot.
    await restoreCheckpointFiles({ db, config, log }, { checkpointId: checkpoint.id, workspace });
    const request = {
      ...machine,
      profile,
      spot: input.spot ?? false,
      workspace,
      tags: { project: project.id, machine: input.machineId },
      ...(mounts ? { mounts } : {}),
    };
    const instance = disk && hasDiskSnapshots(provider) ? await provisionFromDisk(provider, request, disk) : await provider.provision(request);
    await recordInstanceSpotPrice(input.machineId, project.id, instance);
    return { workspace, instanceRef: instance.instanceRef, commit: checkpoint.commit, provider: providerId, instance, warm: false };
  }

  const activities = {
    /** Reserves the machine's money limit on the project budget, once per machine. */
    async reserveMachineBudget(input: {
      machineId: string;
      projectId: string;
      amount: string;
      type?: MachineTypeId;
      /** The n-th extension of a paused machine: reserved under its own key, on the same budgets. */
      extension?: number;
      /** Once reserved, mark the machine provisioning and started (what a separate `markMachine` did next). */
      markStarted?: boolean;
    }): Promise<ReservationOutcome> {
      const project = await projectOf(input.projectId);
      // A spend must fit every budget it falls under (the policy: domain/budget.ts spendScopes).
      const { project: budget, budgets } = await machineSpendBudgets(db, { project, machineId: input.machineId, type: input.type ?? null });
      const currency = project.currency;
      if (!budget) {
        return {
          ok: false,
          code: 'budget_not_set',
          currency,
          message: `project ${project.id} has no budget: set one with PUT /v1/projects/${project.id}/budget before starting machines`,
        };
      }
      const amount = parseAmount(input.amount, currency);
      const key = input.extension ? `machine:${input.machineId}:ext:${input.extension}` : `machine:${input.machineId}`;
      // Budgets in another currency hold the worst case converted now, rounded up to their minor unit.
      const perBudget: Record<string, { amount: bigint; fx: FxRecord | null }> = {};
      let hourlyPrice: string | undefined;
      try {
        for (const { budget: b } of budgets) {
          if (b.currency === currency) continue;
          const c = await fx.convert(amount, currency, b.currency, 'up', 'minor');
          perBudget[b.id] = { amount: c.amount, fx: { rate: c.rate, source: c.source, asOf: c.asOf } };
        }
        // The price of what runs (provider, region, profile, market), recorded on the machine once:
        // the reservation holds its worst case, settlement charges it. No price: refused, not guessed.
        const machine = await getMachine(db, input.machineId);
        let computePrice = machine?.computePrice ?? null;
        if (!computePrice) {
          const found = machineComputePrice(config, {
            provider: machine?.provider ?? 'local',
            profile: machine?.profile ?? 'lightweight',
            spot: machine?.spot ?? false,
          });
          if (!found.ok) return { ok: false, code: 'compute_price_missing', currency, message: found.message };
          computePrice = found.price;
          await setComputePrice(db, input.machineId, computePrice);
        }
        const price = hourlyUnits(computePrice.maxHourly);
        // Rounded up: the machine's time at its money limit is never overstated.
        hourlyPrice = formatAmount((await fx.convert(price, computePrice.currency, currency, 'up', 'ledger')).amount, currency);
      } catch (e) {
        if (!(e instanceof FxUnavailableError)) throw e;
        return { ok: false, code: 'fx_unavailable', currency, message: e.message };
      }
      const outcome = await reserve(db, {
        key,
        budgetIds: budgets.map((b) => b.budget.id),
        projectId: project.id,
        machineId: input.machineId,
        amount,
        currency,
        perBudget,
        now: new Date(),
      });
      if (outcome.ok) {
        await appendAudit(db, {
          actor: 'system',
          action: 'budget.reserved',
          subjectType: 'machine',
          subjectId: input.machineId,
          projectId: project.id,
          details: {
            amount: formatAmount(amount, currency),
            currency,
            budgets: budgets.map(({ budget: b }) => ({
              id: b.id,
              scope: b.scopeType,
              currency: b.currency,
              ...(perBudget[b.id] ? { amount: formatAmount(perBudget[b.id]!.amount, b.currency), fx: perBudget[b.id]!.fx } : {}),
            })),
          },
          idempotencyKey: `${key}:reserved`,
        });
        if (input.markStarted) await markMachine({ machineId: input.machineId, status: 'provisioning', started: true });
        return {
          ok: true,
          reservationId: outcome.reservationId,
          amount: formatAmount(outcome.amount, currency),
          currency,
          ...(hourlyPrice ? { hourlyPrice } : {}),
        };
      }
      const refusedBy = budgets.find((b) => b.budget.id === outcome.budgetId);
      const which = refusedBy?.label ?? 'budget';
      const bc = refusedBy?.budget.currency ?? currency;
      const asked = perBudget[outcome.budgetId] ? ` (${formatAmount(perBudget[outcome.budgetId]!.amount, bc)} ${bc})` : '';
      if (refusedBy?.budget.scopeType === BALANCE_SCOPE) {
        return {
          ok: false,
          code: 'budget_exceeded',
          currency: bc,
          remaining: formatAmount(outcome.remaining, bc),
          message: `prepaid balance too low: the machine's limit of ${formatAmount(amount, currency)} ${currency} does not fit in the ${formatAmount(outcome.remaining, bc)} ${bc} of the balance not held by running machines; top up with POST /v1/projects/${project.id}/topups`,
        };
      }
      return {
        ok: false,
        code: 'budget_exceeded',
        currency: bc,
        remaining: formatAmount(outcome.remaining, bc),
        message: `budget exceeded: the machine's limit of ${formatAmount(amount, currency)} ${currency}${asked} does not fit in the ${which} (${formatAmount(outcome.remaining, bc)} of ${formatAmount(outcome.limit, bc)} ${bc} left)`,
      };
    },

    markMachine,

    /**
     * Provisions the machine's sandbox (see `provision`); with `markRunning`, also marks the machine
     * running on it (what a separate `markMachine` did right after, in one call).
     */
    async provisionSandbox(input: Parameters<typeof provision>[0] & { markRunning?: boolean }): Promise<ProvisionedSandbox> {
      const { markRunning, ...rest } = input;
      const sandbox = await provision(rest);
      if (markRunning) await markMachine({ machineId: input.machineId, status: 'running', instanceRef: sandbox.instanceRef });
      // Taken from the provider's machine queue: this worker also serves its host queue, and the
      // workspace is on its disk, so the run, checkpoints and termination come here.
      if (currentTaskQueue() === machineQueue(config.taskQueue, sandbox.provider)) {
        const host = config.worker.host;
        return { ...sandbox, hostQueue: { host, queue: hostQueue(config.taskQueue, sandbox.provider, host), waitSeconds: config.worker.hostQueueWaitSeconds } };
      }
      return sandbox;
    },

    /**
     * Runs the command on the machine's instance from a clean copy of `baseCommit` (so a retry after
     * a crash starts over from the checkpoint), heartbeating every second. Stops at `deadline` with
     * the reason given, and on cancellation. Without an instance (histories from before providers)
     * it runs in the local sandbox.
     */
    async runCommand(input: {
      machineId: string;
      projectId: string;
      command: string;
      baseCommit: string;
      deadline: number;
      deadlineReason: string;
      instance?: Instance;
    }): Promise<RunCommandResult> {
      const project = await projectOf(input.projectId);
      const workspace = workspaceOf(input.machineId);
      const instance: Instance = input.instance ?? {
        provider: 'local',
        instanceRef: `local:${input.machineId}`,
        machineId: input.machineId,
        projectId: project.id,
        details: { workspace },
      };
      const provider = providerOf(providers, instance.provider);
      await provider.reset?.(instance); // a previous attempt's command, if its worker survived
      await resetWorkspace(project.repoPath, workspace, input.baseCommit);
      await restoreMachineStart({ db, config, log }, { machineId: input.machineId, baseCommit: input.baseCommit, workspace });
      if (Date.now() >= input.deadline) return { exitCode: null, stopReason: input.deadlineReason, outputTail: '' };
      // Remote files: a retried attempt starts from the base files again, as on local.
      if (Context.current().info.attempt > 1 && provider.deliverWorkspace) {
        await provider.deliverWorkspace(instance, workspace, Math.min(input.deadline, Date.now() + REMOTE_FILES_TIMEOUT_MS));
      }

      // Its network policy (README "Network"): none, or the way out through its own egress proxy.
      const row = await getMachine(db, input.machineId);
      const network = await openMachineNetwork(
        { db, config, log },
        {
          machineId: input.machineId,
          projectId: project.id,
          policy: row?.network ?? NO_NETWORK,
          provider: instance.provider,
          runDir: agentDirs(config, input.machineId).runDir,
          // A container's processes run unprivileged: the socket (0600) must be theirs to connect to.
          ...(instance.provider === 'container' ? { socketOwner: CONTAINER_USER } : {}),
        },
      );
      const sink = await openLogSink(db, log, { machineId: input.machineId, limitBytes: config.machineLogBytes });
      let result;
      try {
        result = await superviseExec(
          provider,
          instance,
          network
            ? {
                command: [SANDBOX_NODE, FORWARDER_TARGET, ...network.forward, '--', '/bin/sh', '-c', input.command],
                network: false,
                env: network.env,
                ...(instance.provider === 'local' ? { mounts: networkMounts(config, input.machineId) } : {}),
              }
            : { command: input.command, network: false },
          {
            logFile: logFileOf(input.machineId),
            sink,
            deadline: input.deadline,
            deadlineReason: input.deadlineReason,
            onResources: resourceSampler(db, log, { machineId: input.machineId, projectId: project.id }),
          },
        );
      } finally {
        await network?.close();
        await sink.close();
      }
      log.debug({ machineId: input.machineId, provider: instance.provider, exitCode: result.exitCode, stopReason: result.stopReason }, 'command ended');
      if (result.handedOver) {
        // The command starts over on the next worker from the clean starting checkpoint, as after a crash.
        await recordHandover(
          { db, temporal, log },
          { machineId: input.machineId, projectId: project.id, commit: input.baseCommit, type: 'shell', restart: 'command' },
        );
        log.info({ machineId: input.machineId }, 'worker shutting down: machine handed over');
        return { exitCode: null, stopReason: null, outputTail: result.outputTail, handedOver: true };
      }
      return {
        exitCode: result.exitCode,
        stopReason: result.stopReason,
        outputTail: result.outputTail,
        ...(result.interrupted ? { interrupted: true } : {}),
        ...(result.resourceLimit ? { resourceLimit: true as const } : {}),
      };
    },

    /** Records that the machine's instance vanished and that it goes on from `checkpointId` (a machine event). */
    async recordInterruption(input: { machineId: string; projectId: string; attempt: number; instanceRef: string; checkpointId: string }): Promise<void> {
      await appendAudit(db, {
        actor: 'system',
        action: 'machine.interrupted',
        subjectType: 'machine',
        subjectId: input.machineId,
        projectId: input.projectId,
        details: { attempt: input.attempt, instanceRef: input.instanceRef, resumeFrom: input.checkpointId },
        idempotencyKey: `machine:${input.machineId}:interrupted:${input.attempt}`,
      });
    },

    /** Commits the workspace as checkpoint `checkpointId` (same id → same commit and row). */
    async createCheckpoint(input: {
      checkpointId: string;
      machineId: string;
      projectId: string;
      parentCheckpointId: string;
      kind: CheckpointKind;
      trigger: string;
      at: string;
      /** Mark the machine checkpointing first (what a separate `markMachine` did before). */
      markCheckpointing?: boolean;
    }): Promise<{ checkpointId: string; commit: string }> {
      if (input.markCheckpointing) await markMachine({ machineId: input.machineId, status: 'checkpointing' });
      // Remote files: the instance's files replace the host workspace's first.
      await collectRemoteFiles(input.machineId, input.checkpointId);
      const result = (await checkpointWorkspace(db, await projectOf(input.projectId), workspaceOf(input.machineId), input, { config, log }))!;
      // The instance's whole disk too, where its provider keeps disk snapshots (a failure keeps the checkpoint).
      await takeInstanceSnapshot({ db, log, providers }, { checkpointId: result.checkpointId, machineId: input.machineId });
      return result;
    },

    /**
     * Terminates the machine's instance (the one given, the one on its row, any labelled with it)
     * and removes the workspace. Safe to repeat and on a vanished instance.
     */
    async terminateSandbox(input: { machineId: string; projectId: string; instance?: Instance }): Promise<void> {
      const project = await projectOf(input.projectId);
      const machine = await getMachine(db, input.machineId);
      const doomed: Instance[] = input.instance ? [input.instance] : [];
      if (machine && machine.provider !== 'local' && machine.instanceRef && !doomed.some((i) => i.instanceRef === machine.instanceRef)) {
        doomed.push({ provider: machine.provider as ProviderId, instanceRef: machine.instanceRef, machineId: machine.id, projectId: machine.projectId });
      }
      doomed.push({ provider: 'local', instanceRef: `local:${input.machineId}`, machineId: input.machineId, projectId: project.id });
      for (const instance of doomed) {
        const provider = providerOf(providers, instance.provider);
        await provider.terminate(instance);
        if (instance.provider !== 'local') {
          for (const left of (await provider.listInstances()).filter((i) => i.machineId === input.machineId)) await provider.terminate(left);
          await forgetWarm(db, instance.instanceRef);
        }
      }
      await removeWorkspace(project.repoPath, workspaceOf(input.machineId));
    },

    /**
     * Settles the machine's reservation to its runtime cost (never above the reservation) and
     * records exactly one cost event for it.
     */
    async settleMachineCost(input: {
      machineId: string;
      projectId: string;
      runtimeMs: number;
      hourlyPrice: string;
      priceCurrency: CurrencyCode;
      profile: string;
      /** Once settled, mark the machine ended with this status (what a separate `markMachine` did next). */
      end?: { status: MachineStatus; stopReason: string | null; error: string | null; exitCode: number | null };
    }): Promise<{ charged: string; currency: CurrencyCode }> {
      const project = await projectOf(input.projectId);
      const currency = project.currency;
      const key = `machine:${input.machineId}`;
      const machine = await getMachine(db, input.machineId);
      const provider = machine?.provider ?? 'local';
      // The price recorded on the machine (list, or the spot price its instance got); machines from
      // before prices were recorded are charged the price the workflow passes (the profile's).
      const computePrice = machine?.computePrice ?? null;
      const hourly = computePrice
        ? { price: computePrice.hourly, currency: computePrice.currency }
        : { price: input.hourlyPrice, currency: input.priceCurrency };
      const priceCurrency = hourly.currency;
      const priceCost = runtimeCost(input.runtimeMs, computePrice ? hourlyUnits(computePrice.hourly) : parseAmount(input.hourlyPrice, priceCurrency));
      // A price in another currency is converted at settlement time (half-even at the ledger unit).
      // Without a usable rate this throws and Temporal retries: the spend is never guessed.
      const priceRate = await fx.rate(priceCurrency, currency);
      const cost = priceRate.from === priceRate.to ? priceCost : convert(priceCost, priceRate.ratio, currency, 'half-even', 'ledger');
      // Model calls were recorded as they happened; the reservation settles to all of it.
      const apiCost = (await costTotals(db, { machineId: input.machineId })).api ?? 0n;
      // A paused machine that was extended holds more reservations: fill them in order.
      const keys = [key, ...(await extensionKeys(input.machineId))];
      let left = cost + apiCost;
      let charged = 0n;
      for (const k of keys) {
        const amount = await reservedInProjectCurrency(k);
        const part = left < amount ? left : amount;
        const held = await reservationBudgets(db, k);
        if (held.every((b) => b.currency === currency)) {
          charged += await settle(db, k, part);
        } else {
          // Budgets in another currency are charged the same spend converted now.
          const byBudget: Record<string, bigint> = {};
          for (const b of held) {
            byBudget[b.budgetId] = b.currency === currency ? part : (await fx.convert(part, currency, b.currency, 'half-even', 'ledger')).amount;
          }
          await settleEach(db, k, byBudget);
          charged += part;
        }
        left -= part;
      }
      const computeCharged = charged > apiCost ? charged - apiCost : 0n;
      const converted = priceRate.from !== priceRate.to;
      // The event in the price's own currency: the cost itself, or the capped charge converted back.
      const ownAmount =
        !converted || computeCharged === cost ? priceCost : convert(computeCharged, invert(priceRate.ratio), priceCurrency, 'half-even', 'ledger');
      await recordCost(db, {
        idempotencyKey: `${key}:compute`,
        projectId: project.id,
        machineId: input.machineId,
        category: 'infra',
        amount: converted ? ownAmount : computeCharged,
        currency: converted ? priceCurrency : currency,
        projectAmount: computeCharged,
        projectCurrency: currency,
        costCenterId: await machineCostCenterId(db, input.machineId, project),
        fx: converted ? { rate: priceRate.rate, source: priceRate.source, asOf: priceRate.asOf } : null,
        details: {
          runtimeMs: input.runtimeMs,
          hourlyPrice: hourly.price,
          profile: input.profile,
          provider,
          ...(computePrice ? { computePrice } : {}),
          ...(computeCharged < cost ? { cappedFrom: formatAmount(cost, currency) } : {}),
        },
      });
      await appendAudit(db, {
        actor: 'system',
        action: 'budget.settled',
        subjectType: 'machine',
        subjectId: input.machineId,
        projectId: project.id,
        details: { charged: formatAmount(charged, currency), currency, runtimeMs: input.runtimeMs },
        idempotencyKey: `${key}:settled`,
      });
      // The spend drew the balance down: an automatic top-up may be due (never fails the settlement).
      await triggerAutoTopup({ db, temporal, config, log, fx }, project.id).catch((err: Error) =>
        log.warn({ projectId: project.id, err: err.message }, 'automatic top-up check failed; the schedule checks again'),
      );
      if (input.end) await markMachine({ machineId: input.machineId, ...input.end, ended: true });
      return { charged: formatAmount(charged, currency), currency };
    },

    /** Reserves more money for a paused machine a human extended, on the same budgets as its first reservation. */
    async extendMachineBudget(input: { machineId: string; projectId: string; n: number; amount: string }): Promise<ReservationOutcome> {
      const machine = await getMachine(db, input.machineId);
      if (!machine) throw ApplicationFailure.nonRetryable(`machine ${input.machineId} not found`, 'NotFoundError');
      const type = machine.type as MachineTypeId;
      return activities.reserveMachineBudget({
        machineId: input.machineId,
        projectId: input.projectId,
        amount: input.amount,
        extension: input.n,
        ...(type !== 'shell' ? { type } : {}),
      });
    },

    /** Gives the reservation back when the machine never ran. */
    async releaseMachineBudget(input: { machineId: string }): Promise<void> {
      await release(db, `machine:${input.machineId}`);
    },
  };
  return activities;
}

import path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { type CurrencyCode, formatAmount, fromNumeric, parseAmount, runtimeCost, toNumeric } from '../domain/money.js';
import type { CheckpointKind, MachineStatus } from '../domain/machines.js';
import { machineTypeSpec, type MachineTypeId } from '../domain/machine-types.js';
import { appendAudit } from '../store/audit.js';
import { findBudget, release, reserve, settle } from '../store/budgets.js';
import { getCheckpoint, insertCheckpoint } from '../store/checkpoints.js';
import { costTotals, recordCost } from '../store/costs.js';
import { checkoutWorkspace, pinCheckpoint, removeWorkspace, resetWorkspace, snapshotWorkspace } from '../store/git.js';
import { getMachine, updateMachine, type MachineUsage } from '../store/machines.js';
import { getProject, type Project } from '../store/projects.js';
import { killSandboxes } from './compute/local-sandbox.js';
import { superviseSandbox } from './machines/supervise.js';
import { restoreCheckpointFiles, restoreMachineStart, snapshotCheckpoint } from './snapshots.js';
import type { ActivityDeps } from './deps.js';

export type ReservationOutcome =
  | { ok: true; reservationId: string; amount: string; currency: CurrencyCode }
  | { ok: false; code: 'budget_exceeded' | 'budget_not_set'; message: string; remaining?: string; currency: CurrencyCode };

export interface RunCommandResult {
  exitCode: number | null;
  stopReason: string | null;
  outputTail: string;
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
 */
export async function checkpointWorkspace(
  db: ActivityDeps['db'],
  project: Project,
  workspace: string,
  input: CheckpointRequest,
  /** Where the workspace's snapshot goes (chunk store); without it the scheduled backup stores the commit's files. */
  snapshots?: Pick<ActivityDeps, 'config' | 'log'>,
): Promise<{ checkpointId: string; commit: string }> {
  const deps = snapshots ? { db, ...snapshots } : null;
  const existing = await getCheckpoint(db, input.checkpointId);
  if (existing) {
    if (deps) await snapshotCheckpoint(deps, { checkpointId: existing.id, projectId: project.id, workspace });
    return { checkpointId: existing.id, commit: existing.commit };
  }
  const parent = await getCheckpoint(db, input.parentCheckpointId);
  if (!parent) throw ApplicationFailure.nonRetryable(`parent checkpoint ${input.parentCheckpointId} not found`, 'NotFoundError');
  const commit = await snapshotWorkspace(
    project.repoPath,
    workspace,
    parent.commit,
    `${input.kind} checkpoint ${input.checkpointId} of ${input.machineId} (${input.trigger})`,
    new Date(input.at),
  );
  await pinCheckpoint(project.repoPath, input.checkpointId, commit);
  await insertCheckpoint(db, {
    id: input.checkpointId,
    projectId: project.id,
    parentId: parent.id,
    machineId: input.machineId,
    commit,
    kind: input.kind,
    trigger: input.trigger,
  });
  await appendAudit(db, {
    actor: 'system',
    action: 'checkpoint.created',
    subjectType: 'checkpoint',
    subjectId: input.checkpointId,
    projectId: project.id,
    details: { machineId: input.machineId, parentId: parent.id, commit, kind: input.kind, trigger: input.trigger },
    idempotencyKey: `checkpoint:${input.checkpointId}`,
  });
  // The whole workspace (files beyond git too) into the chunk store, then its snapshot lifecycle.
  if (deps) await snapshotCheckpoint(deps, { checkpointId: input.checkpointId, projectId: project.id, workspace });
  return { checkpointId: input.checkpointId, commit };
}

/** Activities of one machine's life: every one is idempotent on the machine id it is given. */
export function createMachineRunActivities({ db, config, log }: ActivityDeps) {
  async function projectOf(projectId: string): Promise<Project> {
    const project = await getProject(db, projectId);
    if (!project) throw ApplicationFailure.nonRetryable(`project ${projectId} not found`, 'NotFoundError');
    return project;
  }
  async function extensionKeys(machineId: string): Promise<string[]> {
    const rows = await db('reservations').where('id', 'like', `machine:${machineId}:ext:%`).distinct('id');
    return rows.map((r) => r.id as string).sort((a, b) => Number(a.split(':').pop()) - Number(b.split(':').pop()));
  }

  /** The per-type daily budget of a project: the type's default until the project sets its own. */
  async function machineTypeBudget(project: Project, type: MachineTypeId) {
    const scopeId = `${project.id}:${type}`;
    const existing = await findBudget(db, 'machine-type', scopeId);
    if (existing) return existing;
    const dailyBudget = machineTypeSpec(type).dailyBudget;
    if (!dailyBudget) return null;
    await db('budgets')
      .insert({ id: `budget-${scopeId}`, scope_type: 'machine-type', scope_id: scopeId, period: 'daily', limit_amount: toNumeric(parseAmount(dailyBudget, 'USD')), currency: 'USD' })
      .onConflict(['scope_type', 'scope_id'])
      .ignore();
    return findBudget(db, 'machine-type', scopeId);
  }
  const workspaceOf = (machineId: string) => path.join(config.workspacesDir, machineId);
  const logFileOf = (machineId: string) => path.join(config.home, 'logs', `${machineId}.log`);

  const activities = {
    /** Reserves the machine's money limit on the project budget, once per machine. */
    async reserveMachineBudget(input: {
      machineId: string;
      projectId: string;
      amount: string;
      type?: MachineTypeId;
      /** The n-th extension of a paused machine: reserved under its own key, on the same budgets. */
      extension?: number;
    }): Promise<ReservationOutcome> {
      const project = await projectOf(input.projectId);
      const budget = await findBudget(db, 'project', project.id);
      const typeBudget = input.type ? await machineTypeBudget(project, input.type) : null;
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
      const outcome = await reserve(db, {
        key,
        budgetIds: typeBudget ? [budget.id, typeBudget.id] : [budget.id],
        projectId: project.id,
        machineId: input.machineId,
        amount,
        now: new Date(),
      });
      if (outcome.ok) {
        await appendAudit(db, {
          actor: 'system',
          action: 'budget.reserved',
          subjectType: 'machine',
          subjectId: input.machineId,
          projectId: project.id,
          details: { amount: formatAmount(amount, currency), currency },
          idempotencyKey: `${key}:reserved`,
        });
        return { ok: true, reservationId: outcome.reservationId, amount: formatAmount(outcome.amount, currency), currency };
      }
      const which = typeBudget && outcome.budgetId === typeBudget.id ? `${input.type} daily budget` : `${budget.period} budget`;
      return {
        ok: false,
        code: 'budget_exceeded',
        currency,
        remaining: formatAmount(outcome.remaining, currency),
        message: `budget exceeded: the machine's limit of ${formatAmount(amount, currency)} ${currency} does not fit in the ${which} (${formatAmount(outcome.remaining, currency)} of ${formatAmount(outcome.limit, currency)} ${currency} left)`,
      };
    },

    /** Records a status change of the machine, with its audit record. */
    async markMachine(input: {
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
    },

    /** Checks the parent checkpoint out into the machine's own worktree. */
    async provisionSandbox(input: { machineId: string; projectId: string; checkpointId: string }): Promise<{ workspace: string; instanceRef: string; commit: string }> {
      const project = await projectOf(input.projectId);
      const checkpoint = await getCheckpoint(db, input.checkpointId);
      if (!checkpoint || checkpoint.projectId !== project.id) {
        throw ApplicationFailure.nonRetryable(`checkpoint ${input.checkpointId} is not a checkpoint of project ${project.id}`, 'InputError');
      }
      const workspace = workspaceOf(input.machineId);
      await checkoutWorkspace(project.repoPath, workspace, checkpoint.commit);
      await restoreCheckpointFiles({ db, config, log }, { checkpointId: checkpoint.id, workspace });
      return { workspace, instanceRef: `local:${input.machineId}`, commit: checkpoint.commit };
    },

    /**
     * Runs the command in the sandbox from a clean copy of `baseCommit` (so a retry after a crash
     * starts over from the checkpoint), heartbeating every second. Stops at `deadline` with the
     * reason given, and on cancellation.
     */
    async runCommand(input: {
      machineId: string;
      projectId: string;
      command: string;
      baseCommit: string;
      deadline: number;
      deadlineReason: string;
    }): Promise<RunCommandResult> {
      const project = await projectOf(input.projectId);
      const workspace = workspaceOf(input.machineId);
      killSandboxes(input.machineId); // a previous attempt's sandbox, if its worker survived
      await resetWorkspace(project.repoPath, workspace, input.baseCommit);
      await restoreMachineStart({ db, config, log }, { machineId: input.machineId, baseCommit: input.baseCommit, workspace });
      if (Date.now() >= input.deadline) return { exitCode: null, stopReason: input.deadlineReason, outputTail: '' };

      const result = await superviseSandbox(
        { machineId: input.machineId, workspace, command: input.command, network: false },
        { logFile: logFileOf(input.machineId), deadline: input.deadline, deadlineReason: input.deadlineReason },
      );
      log.debug({ machineId: input.machineId, exitCode: result.exitCode, stopReason: result.stopReason }, 'sandbox exited');
      return { exitCode: result.exitCode, stopReason: result.stopReason, outputTail: result.outputTail };
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
    }): Promise<{ checkpointId: string; commit: string }> {
      return checkpointWorkspace(db, await projectOf(input.projectId), workspaceOf(input.machineId), input, { config, log });
    },

    /** Kills any sandbox left and removes the workspace. Safe to repeat. */
    async terminateSandbox(input: { machineId: string; projectId: string }): Promise<void> {
      const project = await projectOf(input.projectId);
      killSandboxes(input.machineId);
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
    }): Promise<{ charged: string; currency: CurrencyCode }> {
      const project = await projectOf(input.projectId);
      if (input.priceCurrency !== project.currency) {
        throw ApplicationFailure.nonRetryable(
          `price in ${input.priceCurrency} cannot be charged to a ${project.currency} project without a conversion rate`,
          'InputError',
        );
      }
      const key = `machine:${input.machineId}`;
      const cost = runtimeCost(input.runtimeMs, parseAmount(input.hourlyPrice, input.priceCurrency));
      // Model calls were recorded as they happened; the reservation settles to all of it.
      const apiCost = (await costTotals(db, { machineId: input.machineId })).api ?? 0n;
      // A paused machine that was extended holds more reservations: fill them in order.
      const keys = [key, ...(await extensionKeys(input.machineId))];
      let left = cost + apiCost;
      let charged = 0n;
      for (const k of keys) {
        const amount = fromNumeric((await db('reservations').where({ id: k }).first('amount')).amount);
        const part = left < amount ? left : amount;
        charged += await settle(db, k, part);
        left -= part;
      }
      const computeCharged = charged > apiCost ? charged - apiCost : 0n;
      const currency = project.currency;
      await recordCost(db, {
        idempotencyKey: `${key}:compute`,
        projectId: project.id,
        machineId: input.machineId,
        category: 'infra',
        amount: computeCharged,
        currency,
        projectAmount: computeCharged,
        projectCurrency: currency,
        details: {
          runtimeMs: input.runtimeMs,
          hourlyPrice: input.hourlyPrice,
          profile: input.profile,
          provider: 'local',
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

import { ScheduleAlreadyRunning, ScheduleOverlapPolicy, type Client } from '@temporalio/client';
import type { Config } from '../config/index.js';
import { SEARCH_ATTRIBUTES } from '../domain/search-attributes.js';
import type { AlertEvaluationInput, BudgetReallocationInput, ForecastRefreshInput, ReconcileInput } from '../workflows/index.js';

export const reconcileScheduleId = (config: Config) => `autovibe-reconcile-${config.taskQueue}`;

/**
 * The Temporal Schedule that runs `reconcileInstances` every `reconcileEverySeconds` (leaked
 * instances, warm pools). Creating it twice is harmless. Returns null when disabled (0 seconds).
 */
export async function ensureReconcileSchedule(client: Client, config: Config) {
  if (config.reconcileEverySeconds <= 0) return null;
  const scheduleId = reconcileScheduleId(config);
  const args: [ReconcileInput] = [{ minAgeSeconds: config.reconcileMinAgeSeconds }];
  try {
    await client.schedule.create({
      scheduleId,
      spec: { intervals: [{ every: `${config.reconcileEverySeconds}s` }] },
      action: {
        type: 'startWorkflow',
        workflowType: 'reconcileInstances',
        taskQueue: config.taskQueue,
        workflowId: `reconcile-${config.taskQueue}`,
        args,
        // Deployment-wide: no project, so no search attributes; the summary tells what it is in the Web UI.
        staticSummary: 'reconcile instances (leaked instances, warm pools) · deployment-wide',
      },
      policies: { overlap: ScheduleOverlapPolicy.SKIP },
    });
  } catch (err) {
    if (!(err instanceof ScheduleAlreadyRunning)) throw err;
  }
  return client.schedule.getHandle(scheduleId);
}

/**
 * The platform's Temporal Schedules (visible in the Web UI under Schedules). Ids carry the task
 * queue so several platforms sharing one Temporal namespace each keep their own.
 */
export function snapshotScheduleIds(config: Pick<Config, 'taskQueue'>) {
  return { backup: `${config.taskQueue}:snapshot-backup`, prune: `${config.taskQueue}:snapshot-prune` };
}

/** Creates the daily snapshot backup (replication catch-up) and prune schedules unless they exist. */
export async function ensureSnapshotSchedules(client: Client, config: Pick<Config, 'taskQueue'>): Promise<string[]> {
  const ids = snapshotScheduleIds(config);
  const wanted = [
    {
      scheduleId: ids.backup,
      workflowType: 'snapshotBackup',
      hour: 2,
      note: 'Stores and replicates checkpoint snapshots that are missing or not yet in every region.',
    },
    { scheduleId: ids.prune, workflowType: 'snapshotPrune', hour: 3, note: 'Applies the snapshot retention grid and frees unused chunks.' },
  ];
  const created: string[] = [];
  for (const s of wanted) {
    try {
      await client.schedule.create({
        scheduleId: s.scheduleId,
        spec: { calendars: [{ hour: s.hour, minute: 0, comment: 'daily (UTC)' }] },
        action: {
          type: 'startWorkflow',
          workflowType: s.workflowType,
          taskQueue: config.taskQueue,
          args: [{}],
          workflowId: s.scheduleId,
          staticSummary: `${s.workflowType} · deployment-wide`,
          staticDetails: s.note,
        },
        policies: { overlap: 'SKIP', catchupWindow: '1 day' },
        memo: { description: s.note },
      });
      created.push(s.scheduleId);
    } catch (err) {
      if (!(err instanceof ScheduleAlreadyRunning)) throw err;
    }
  }
  return created;
}

/** The platform backup schedule's id (per task queue, like the others). */
export const backupScheduleId = (config: Pick<Config, 'taskQueue'>) => `${config.taskQueue}:platform-backup`;

/**
 * Creates the platform backup schedule (every `AUTOVIBE_BACKUP_EVERY_HOURS`, none with 0) unless
 * it exists. Returns its id, or null when disabled.
 */
export async function ensureBackupSchedule(client: Client, config: Pick<Config, 'taskQueue' | 'backups'>): Promise<string | null> {
  if (config.backups.everyHours <= 0) return null;
  const scheduleId = backupScheduleId(config);
  const note = `Dumps the database and copies repositories and snapshot chunks to ${config.backups.dir}, verified into ${config.backups.replicaDir}; keeps ${config.backups.keep}.`;
  try {
    await client.schedule.create({
      scheduleId,
      spec: { intervals: [{ every: `${config.backups.everyHours}h` }] },
      action: {
        type: 'startWorkflow',
        workflowType: 'platformBackup',
        taskQueue: config.taskQueue,
        args: [{}],
        workflowId: scheduleId,
        staticSummary: 'platformBackup · deployment-wide',
        staticDetails: note,
      },
      policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 day' },
      memo: { description: note },
    });
  } catch (err) {
    if (!(err instanceof ScheduleAlreadyRunning)) throw err;
  }
  return scheduleId;
}

export const forecastScheduleId = (config: Pick<Config, 'taskQueue'>) => `${config.taskQueue}:forecast-refresh`;

/**
 * The `forecast-refresh` Temporal Schedule: every `AUTOVIBE_FORECAST_EVERY_S` (hourly by default)
 * it runs `forecastRefresh`, which computes and stores every scope's spend forecast. Creating it
 * twice is harmless; returns null when disabled (0 seconds). Its runs carry AutoVibeStatus
 * (running, then completed) when the namespace has the search attributes, and a memo.
 */
export async function ensureForecastSchedule(client: Client, config: Pick<Config, 'taskQueue' | 'forecast' | 'searchAttributes'>) {
  if (config.forecast.everySeconds <= 0) return null;
  const scheduleId = forecastScheduleId(config);
  const args: [ForecastRefreshInput] = [{ trigger: 'schedule' }];
  const note =
    'Spend forecasts (80 %/95 % intervals, budget exhaustion, recommendations) of every project, cost center and department; budget-forecast alerts.';
  try {
    await client.schedule.create({
      scheduleId,
      spec: { intervals: [{ every: `${config.forecast.everySeconds}s` }] },
      action: {
        type: 'startWorkflow',
        workflowType: 'forecastRefresh',
        taskQueue: config.taskQueue,
        workflowId: scheduleId,
        args,
        ...(config.searchAttributes ? { typedSearchAttributes: [{ key: SEARCH_ATTRIBUTES.status, value: 'running' }] } : {}),
        memo: { description: note },
        staticSummary: 'forecast-refresh · deployment-wide',
        staticDetails: note,
      },
      policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 hour' },
      memo: { description: note },
    });
  } catch (err) {
    if (!(err instanceof ScheduleAlreadyRunning)) throw err;
  }
  return client.schedule.getHandle(scheduleId);
}

export const reallocationScheduleId = (config: Pick<Config, 'taskQueue'>) => `${config.taskQueue}:budget-reallocation`;

/**
 * The `budget-reallocation` Temporal Schedule: daily at `AUTOVIBE_REALLOCATION_HOUR` UTC it runs
 * `budgetReallocation`, which moves budget between the projects of every cost center whose
 * reallocation is enabled. Creating it twice is harmless; returns null when disabled ("off").
 */
export async function ensureReallocationSchedule(client: Client, config: Pick<Config, 'taskQueue' | 'reallocationHour' | 'searchAttributes'>) {
  if (config.reallocationHour === null) return null;
  const scheduleId = reallocationScheduleId(config);
  const args: [BudgetReallocationInput] = [{ trigger: 'schedule' }];
  const note = "Moves budget between each enabled cost center's projects by ROI and use, in bounded steps, each move explained (or previews them).";
  try {
    await client.schedule.create({
      scheduleId,
      spec: { calendars: [{ hour: config.reallocationHour, minute: 0, comment: 'daily (UTC)' }] },
      action: {
        type: 'startWorkflow',
        workflowType: 'budgetReallocation',
        taskQueue: config.taskQueue,
        workflowId: scheduleId,
        args,
        ...(config.searchAttributes ? { typedSearchAttributes: [{ key: SEARCH_ATTRIBUTES.status, value: 'running' }] } : {}),
        memo: { description: note },
        staticSummary: 'budget-reallocation · deployment-wide',
        staticDetails: note,
      },
      policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 day' },
      memo: { description: note },
    });
  } catch (err) {
    if (!(err instanceof ScheduleAlreadyRunning)) throw err;
  }
  return client.schedule.getHandle(scheduleId);
}

export const alertScheduleId = (config: Pick<Config, 'taskQueue'>) => `${config.taskQueue}:alert-evaluation`;

/**
 * The `alert-evaluation` Temporal Schedule: every `AUTOVIBE_ALERTS_EVERY_S` (every minute by
 * default) it runs `alertEvaluation`, which raises the alert conditions that hold and resolves
 * the ones that cleared. Creating it twice is harmless; returns null when disabled (0 seconds).
 * Its runs carry AutoVibeStatus (running, then completed) when the namespace has the search
 * attributes, and a memo.
 */
export async function ensureAlertSchedule(client: Client, config: Pick<Config, 'taskQueue' | 'alerts' | 'searchAttributes'>) {
  if (config.alerts.everySeconds <= 0) return null;
  const scheduleId = alertScheduleId(config);
  const args: [AlertEvaluationInput] = [{ trigger: 'schedule' }];
  const note = 'Alert engine: raises time-limit, rate-limit, resource and alert-rule conditions; resolves every alert whose condition cleared.';
  try {
    await client.schedule.create({
      scheduleId,
      spec: { intervals: [{ every: `${config.alerts.everySeconds}s` }] },
      action: {
        type: 'startWorkflow',
        workflowType: 'alertEvaluation',
        taskQueue: config.taskQueue,
        workflowId: scheduleId,
        args,
        ...(config.searchAttributes ? { typedSearchAttributes: [{ key: SEARCH_ATTRIBUTES.status, value: 'running' }] } : {}),
        memo: { description: note },
        staticSummary: 'alert-evaluation · deployment-wide',
        staticDetails: note,
      },
      policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '5 minutes' },
      memo: { description: note },
    });
  } catch (err) {
    if (!(err instanceof ScheduleAlreadyRunning)) throw err;
  }
  return client.schedule.getHandle(scheduleId);
}

/**
 * Where a workflow's time goes, read from its recorded history (the profile issue 18 asks for
 * before any change): per activity type, how often it ran, the time from scheduled to started
 * (waiting for a worker slot and the task queue) and from started to completed (the activity's
 * own work); per workflow, the time its workflow tasks took (scheduled → completed: the worker
 * replaying and deciding) and the time spent in timers, child workflows and signals out.
 */
import type { Client } from '@temporalio/client';
import proto from '@temporalio/proto';
import { tsToMs } from '@temporalio/common/lib/time.js';
import type { Row } from './common.js';

const { temporal } = proto;
const T = temporal.api.enums.v1.EventType;

export interface SpanTotals {
  count: number;
  /** Scheduled → started (queue), summed. */
  queueMs: number;
  /** Started → closed (work), summed. */
  runMs: number;
}

export interface HistoryProfile {
  workflows: number;
  /** Each workflow's first event → its close event, summed. */
  wallMs: number;
  workflowTasks: SpanTotals;
  activities: Map<string, SpanTotals>;
  localActivities: Map<string, SpanTotals>;
  childWorkflowsMs: number;
  timersMs: number;
  signalsOutMs: number;
}

const empty = (): SpanTotals => ({ count: 0, queueMs: 0, runMs: 0 });
const add = (m: Map<string, SpanTotals>, key: string) => m.get(key) ?? m.set(key, empty()).get(key)!;

/** The profile of these workflows (their current runs), each history fetched whole. */
export async function profileWorkflows(client: Client, workflowIds: readonly string[]): Promise<HistoryProfile> {
  const p: HistoryProfile = {
    workflows: 0,
    wallMs: 0,
    workflowTasks: empty(),
    activities: new Map(),
    localActivities: new Map(),
    childWorkflowsMs: 0,
    timersMs: 0,
    signalsOutMs: 0,
  };
  for (const id of workflowIds) {
    const history = await client.workflow.getHandle(id).fetchHistory();
    const events = history.events ?? [];
    if (!events.length) continue;
    p.workflows++;
    const at = (e: proto.temporal.api.history.v1.IHistoryEvent) => tsToMs(e.eventTime);
    p.wallMs += at(events[events.length - 1]!) - at(events[0]!);
    const byId = new Map(events.map((e) => [Number(e.eventId), e]));
    const started = new Map<number, number>();
    for (const e of events) {
      switch (e.eventType) {
        case T.EVENT_TYPE_WORKFLOW_TASK_STARTED:
          started.set(Number(e.workflowTaskStartedEventAttributes!.scheduledEventId), at(e));
          break;
        case T.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
        case T.EVENT_TYPE_WORKFLOW_TASK_FAILED:
        case T.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT: {
          const a = e.workflowTaskCompletedEventAttributes ?? e.workflowTaskFailedEventAttributes ?? e.workflowTaskTimedOutEventAttributes!;
          const scheduled = byId.get(Number(a.scheduledEventId));
          const begun = started.get(Number(a.scheduledEventId));
          if (!scheduled || begun === undefined) break;
          p.workflowTasks.count++;
          p.workflowTasks.queueMs += begun - at(scheduled);
          p.workflowTasks.runMs += at(e) - begun;
          break;
        }
        case T.EVENT_TYPE_ACTIVITY_TASK_STARTED:
          started.set(Number(e.activityTaskStartedEventAttributes!.scheduledEventId), at(e));
          break;
        case T.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
        case T.EVENT_TYPE_ACTIVITY_TASK_FAILED:
        case T.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT:
        case T.EVENT_TYPE_ACTIVITY_TASK_CANCELED: {
          const a =
            e.activityTaskCompletedEventAttributes ??
            e.activityTaskFailedEventAttributes ??
            e.activityTaskTimedOutEventAttributes ??
            e.activityTaskCanceledEventAttributes!;
          const scheduled = byId.get(Number(a.scheduledEventId));
          if (!scheduled) break;
          const type = scheduled.activityTaskScheduledEventAttributes?.activityType?.name ?? '?';
          const begun = started.get(Number(a.scheduledEventId)) ?? at(scheduled);
          const s = add(p.activities, type);
          s.count++;
          s.queueMs += begun - at(scheduled);
          s.runMs += at(e) - begun;
          break;
        }
        case T.EVENT_TYPE_MARKER_RECORDED: {
          // Local activities: a marker carries the activity type and how long it ran.
          const m = e.markerRecordedEventAttributes!;
          if (m.markerName !== 'core_local_activity') break;
          const payload = m.details?.data?.payloads?.[0]?.data;
          let type = '?';
          let ranMs = 0;
          try {
            const data = JSON.parse(Buffer.from(payload ?? []).toString('utf8')) as {
              activity_type?: string;
              original_schedule_time?: unknown;
              complete_time?: unknown;
            };
            type = data.activity_type ?? '?';
            const from = markerTime(data.original_schedule_time);
            const to = markerTime(data.complete_time);
            if (from !== null && to !== null && to >= from) ranMs = to - from;
          } catch {
            // Unknown marker shape: counted under '?'.
          }
          const s = add(p.localActivities, type);
          s.count++;
          s.runMs += ranMs;
          break;
        }
        case T.EVENT_TYPE_TIMER_FIRED: {
          const scheduled = byId.get(Number(e.timerFiredEventAttributes!.startedEventId));
          if (scheduled) p.timersMs += at(e) - at(scheduled);
          break;
        }
        case T.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_COMPLETED:
        case T.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_FAILED: {
          const a = e.childWorkflowExecutionCompletedEventAttributes ?? e.childWorkflowExecutionFailedEventAttributes!;
          const initiated = byId.get(Number(a.initiatedEventId));
          if (initiated) p.childWorkflowsMs += at(e) - at(initiated);
          break;
        }
        case T.EVENT_TYPE_EXTERNAL_WORKFLOW_EXECUTION_SIGNALED: {
          const initiated = byId.get(Number(e.externalWorkflowExecutionSignaledEventAttributes!.initiatedEventId));
          if (initiated) p.signalsOutMs += at(e) - at(initiated);
          break;
        }
        default:
      }
    }
  }
  return p;
}

/** A timestamp in a local activity marker (`{ seconds, nanos }`, or an RFC 3339 string), in ms. */
function markerTime(t: unknown): number | null {
  if (typeof t === 'string') {
    const ms = Date.parse(t);
    return Number.isNaN(ms) ? null : ms;
  }
  if (t && typeof t === 'object' && 'seconds' in t) {
    const { seconds, nanos } = t as { seconds: number | string; nanos?: number };
    return Number(seconds) * 1000 + Math.floor((nanos ?? 0) / 1e6);
  }
  return null;
}

/** Bench rows of a profile, per step: `steps` is what the workflows together did (e.g. pipeline steps). */
export function profileRows(label: string, p: HistoryProfile, steps: number): Row[] {
  const per = (ms: number) => ms / steps;
  const rows: Row[] = [
    { label: `${label}: workflow wall time per step`, unit: 'ms', value: per(p.wallMs), decimals: 0 },
    {
      label: `${label}: workflow tasks per step (${(p.workflowTasks.count / steps).toFixed(1)}): queue`,
      unit: 'ms',
      value: per(p.workflowTasks.queueMs),
      decimals: 0,
    },
    { label: `${label}: workflow tasks per step: run`, unit: 'ms', value: per(p.workflowTasks.runMs), decimals: 0 },
  ];
  const sorted = [...p.activities.entries()].sort((a, b) => b[1].queueMs + b[1].runMs - (a[1].queueMs + a[1].runMs));
  for (const [type, s] of sorted) {
    rows.push({
      label: `${label}: activity ${type} ×${(s.count / steps).toFixed(1)}/step (queue ${per(s.queueMs).toFixed(0)} ms)`,
      unit: 'ms/step',
      value: per(s.queueMs + s.runMs),
      decimals: 0,
    });
  }
  const sortedLocal = [...p.localActivities.entries()].sort((a, b) => b[1].runMs - a[1].runMs);
  for (const [type, s] of sortedLocal) {
    rows.push({ label: `${label}: local activity ${type} ×${(s.count / steps).toFixed(1)}/step`, unit: 'ms/step', value: per(s.runMs), decimals: 0 });
  }
  if (p.timersMs) rows.push({ label: `${label}: timers per step`, unit: 'ms', value: per(p.timersMs), decimals: 0 });
  if (p.signalsOutMs) rows.push({ label: `${label}: signals to other workflows per step`, unit: 'ms', value: per(p.signalsOutMs), decimals: 0 });
  return rows;
}

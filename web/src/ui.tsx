import type { ComponentChildren } from 'preact';
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { ApiError } from './api.js';
import { temporalRunUrl, useSession } from './session.js';

/** Loads data for a view; `reload` fetches again (e.g. when a live event says it changed). */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[]): { data: T | null; error: Error | null; reload: () => void } {
  const [state, setState] = useState<{ data: T | null; error: Error | null }>({ data: null, error: null });
  const loadRef = useRef(load);
  loadRef.current = load;
  const generation = useRef(0);
  const reload = useCallback(() => {
    const mine = ++generation.current;
    loadRef.current().then(
      (data) => mine === generation.current && setState({ data, error: null }),
      (error: Error) => mine === generation.current && setState((s) => ({ data: s.data, error })),
    );
  }, []);
  useEffect(() => {
    setState({ data: null, error: null });
    reload();
  }, deps);
  return { ...state, reload };
}

/** Runs `fn` at most once per `ms`, with the last call winning (bursts of live events → one reload). */
export function useThrottled(fn: () => void, ms: number): () => void {
  const timer = useRef<ReturnType<typeof setTimeout> | null>(null);
  const fnRef = useRef(fn);
  fnRef.current = fn;
  useEffect(() => () => void (timer.current && clearTimeout(timer.current)), []);
  return useCallback(() => {
    if (timer.current) return;
    timer.current = setTimeout(() => {
      timer.current = null;
      fnRef.current();
    }, ms);
  }, [ms]);
}

export function ErrorNote({ error }: { error: Error | null }) {
  if (!error) return null;
  const status = error instanceof ApiError ? `${error.status} ` : '';
  return (
    <p class="error" role="alert">
      {status}
      {error.message}
    </p>
  );
}

export function Loading({ what }: { what: string }) {
  return (
    <p class="loading" role="status">
      Loading {what}…
    </p>
  );
}

const STATUS_TONE: Record<string, string> = {
  running: 'active',
  provisioning: 'active',
  checkpointing: 'active',
  pending: 'waiting',
  waiting: 'waiting',
  paused: 'attention',
  completed: 'good',
  succeeded: 'good',
  failed: 'bad',
  refused: 'bad',
  terminated: 'muted',
  cancelled: 'muted',
  skipped: 'muted',
  blocked: 'attention',
  manual_required: 'attention',
  approved: 'good',
  declined: 'bad',
  expired: 'bad',
};

/** The colour family of a status word (good, bad, attention, active, waiting, muted). */
export const toneOf = (status: string): string => STATUS_TONE[status] ?? 'muted';

/** A status as a word with a colour (the word carries the meaning; colour only helps). */
export function Status({ value }: { value: string }) {
  return <span class={`status tone-${toneOf(value)}`}>{value}</span>;
}

export function Money({ value }: { value: { amount: string; currency: string } | null | undefined }) {
  if (!value) return <span class="muted">—</span>;
  return (
    <span class="money">
      {value.amount} {value.currency}
    </span>
  );
}

/** A time, shown relative ("3 min ago") with the exact time in its title. */
export function When({ at }: { at: string | null | undefined }) {
  if (!at) return <span class="muted">—</span>;
  const seconds = Math.round((Date.now() - Date.parse(at)) / 1000);
  const text =
    seconds < 60
      ? `${Math.max(seconds, 0)} s ago`
      : seconds < 3600
        ? `${Math.round(seconds / 60)} min ago`
        : seconds < 86_400
          ? `${Math.round(seconds / 3600)} h ago`
          : new Date(at).toLocaleString();
  return (
    <time dateTime={at} title={new Date(at).toLocaleString()}>
      {text}
    </time>
  );
}

export function Section({ title, children, actions }: { title: string; children: ComponentChildren; actions?: ComponentChildren }) {
  return (
    <section class="card" aria-label={title}>
      <header class="card-head">
        <h2>{title}</h2>
        {actions ? <div class="actions">{actions}</div> : null}
      </header>
      {children}
    </section>
  );
}

/** A short id that still reads as one (the whole id is in the title and the link). */
export function Id({ id, href }: { id: string; href?: string }) {
  const short = id.length > 18 ? `${id.slice(0, 16)}…` : id;
  return href ? (
    <a href={href} title={id} class="id">
      {short}
    </a>
  ) : (
    <code title={id} class="id">
      {short}
    </code>
  );
}

/** A link to the workflow's run in the Temporal Web UI (none when the deployment does not say where it is). */
export function TemporalLink({ workflowId }: { workflowId: string }) {
  const url = temporalRunUrl(useSession().settings, workflowId);
  return url ? (
    <a href={url} target="_blank" rel="noreferrer">
      Temporal run ↗
    </a>
  ) : null;
}

import { useEffect, useRef, useState } from 'preact/hooks';
import { followLog, idempotencyKey, ok, type Machine as MachineData } from '../api.js';
import { useLiveEvents } from '../live.js';
import { can, useSession } from '../session.js';
import { ErrorNote, Id, Loading, Money, Section, Status, TemporalLink, useLoad, useThrottled, When } from '../ui.js';

const FINAL = ['completed', 'failed', 'terminated', 'refused'];
/** The log view keeps the newest text only: a chatty agent must not exhaust the tab. */
const LOG_KEEP_CHARS = 400_000;

/** One machine: status, money, its live log, its checkpoints and history, and what the caller may do to it. */
export function Machine({ id }: { id: string }) {
  const { api, me } = useSession();
  const { data: m, error, reload } = useLoad(() => ok(api.GET('/machines/{id}', { params: { path: { id } } })), [id]);
  const refresh = useThrottled(reload, 500);
  useLiveEvents((e) => e.subjectId === id, refresh);

  if (!m) return error ? <ErrorNote error={error} /> : <Loading what={`machine ${id}`} />;
  return (
    <>
      <Section title={`Machine ${m.id}`} actions={<TemporalLink workflowId={m.workflowId} />}>
        <ErrorNote error={error} />
        <dl class="facts">
          <dt>Status</dt>
          <dd>
            <Status value={m.status} /> {m.stopReason ? <span class="muted">({m.stopReason})</span> : null}
            {m.exitCode !== null ? <span class="muted"> exit code {m.exitCode}</span> : null}
          </dd>
          <dt>Project</dt>
          <dd>
            <a href={`#/projects/${m.projectId}`}>{m.projectId}</a>
          </dd>
          <dt>Type</dt>
          <dd>
            {m.type} on {m.provider}
            {m.spot ? ' (spot)' : ''}
          </dd>
          <dt>Cost</dt>
          <dd>
            <Money value={m.cost} /> of {m.limits.money} {m.cost.currency} limit, {m.limits.minutes} min
          </dd>
          <dt>Model use</dt>
          <dd>
            {m.usage.apiCalls} calls, {m.usage.inputTokens} in / {m.usage.outputTokens} out tokens
          </dd>
          <dt>Started</dt>
          <dd>
            <When at={m.startedAt} />{' '}
            {m.endedAt ? (
              <>
                · ended <When at={m.endedAt} />
              </>
            ) : null}
          </dd>
          <dt>{m.command ? 'Command' : 'Prompt'}</dt>
          <dd>
            <code class="wrap">{m.command ?? m.prompt}</code>
          </dd>
          {m.error ? (
            <>
              <dt>Error</dt>
              <dd class="error">{m.error}</dd>
            </>
          ) : null}
        </dl>
        {can(me, 'run') && !FINAL.includes(m.status) ? <Controls machine={m} onDone={reload} /> : null}
      </Section>
      <Section title="Log">
        <Log machineId={m.id} />
      </Section>
      <Section title="Checkpoints">
        {m.checkpoints.length === 0 ? (
          <p class="muted">
            None yet. Started from <Id id={m.parentCheckpointId} href={`#/projects/${m.projectId}/tree?checkpoint=${m.parentCheckpointId}`} />.
          </p>
        ) : (
          <ol class="checkpoints">
            {m.checkpoints.map((c) => (
              <li key={c}>
                <Id id={c} href={`#/projects/${m.projectId}/tree?checkpoint=${c}`} />
              </li>
            ))}
          </ol>
        )}
      </Section>
      <Section title="History">
        <ol class="history">
          {m.events.map((e, i) => (
            <li key={i}>
              <When at={e.at} /> <strong>{e.action}</strong> <span class="muted">by {e.actor}</span>
            </li>
          ))}
        </ol>
      </Section>
    </>
  );
}

/** Terminate, checkpoint now, extend: and, when the machine is paused at a limit, the decision it waits for. */
function Controls({ machine, onDone }: { machine: MachineData; onDone: () => void }) {
  const { api } = useSession();
  const [confirming, setConfirming] = useState(false);
  const [busy, setBusy] = useState<string | null>(null);
  const [error, setError] = useState<Error | null>(null);
  const [money, setMoney] = useState('');
  const [minutes, setMinutes] = useState('');
  const [calls, setCalls] = useState('');
  const params = { path: { id: machine.id } };
  const act = async (name: string, call: () => Promise<unknown>) => {
    setBusy(name);
    setError(null);
    try {
      await call();
      onDone();
    } catch (e) {
      setError(e as Error);
    } finally {
      setBusy(null);
      setConfirming(false);
    }
  };
  const headers = () => ({ 'idempotency-key': idempotencyKey() });
  const extend = (e: Event) => {
    e.preventDefault();
    const body = {
      ...(money.trim() ? { money: money.trim() } : {}),
      ...(minutes.trim() ? { minutes: Number(minutes) } : {}),
      ...(calls.trim() ? { apiCalls: Number(calls) } : {}),
    };
    void act('extend', () => ok(api.POST('/machines/{id}/extend', { params, body, headers: headers() })));
  };
  return (
    <div class="controls">
      {machine.status === 'paused' ? (
        <p class="attention" role="status">
          Paused at its limit{machine.stopReason ? ` (${machine.stopReason})` : ''}: extend it to go on, or terminate it.
        </p>
      ) : null}
      <div class="buttons">
        <button
          type="button"
          disabled={busy !== null || machine.status !== 'running'}
          onClick={() => void act('checkpoint', () => ok(api.POST('/machines/{id}/checkpoint', { params, headers: headers() })))}
        >
          {busy === 'checkpoint' ? 'Checkpointing…' : 'Checkpoint now'}
        </button>
        {confirming ? (
          <>
            <button
              type="button"
              class="danger"
              disabled={busy !== null}
              onClick={() => void act('terminate', () => ok(api.POST('/machines/{id}/terminate', { params, headers: headers() })))}
            >
              Confirm terminate
            </button>
            <button type="button" onClick={() => setConfirming(false)}>
              Keep running
            </button>
          </>
        ) : (
          <button type="button" class="danger" disabled={busy !== null} onClick={() => setConfirming(true)}>
            Terminate…
          </button>
        )}
      </div>
      <form class="extend" onSubmit={extend}>
        <fieldset>
          <legend>Extend limits</legend>
          <label>
            More money ({machine.cost.currency})
            <input name="money" inputMode="decimal" placeholder="0.50" value={money} onInput={(e) => setMoney(e.currentTarget.value)} />
          </label>
          <label>
            More minutes
            <input name="minutes" type="number" min="1" placeholder="10" value={minutes} onInput={(e) => setMinutes(e.currentTarget.value)} />
          </label>
          {machine.type !== 'shell' ? (
            <label>
              More model calls
              <input name="apiCalls" type="number" min="1" placeholder="20" value={calls} onInput={(e) => setCalls(e.currentTarget.value)} />
            </label>
          ) : null}
          <button type="submit" disabled={busy !== null || (!money.trim() && !minutes.trim() && !calls.trim())}>
            {busy === 'extend' ? 'Extending…' : 'Extend'}
          </button>
        </fieldset>
      </form>
      <ErrorNote error={error} />
    </div>
  );
}

/** The machine's stdout/stderr and agent turns, followed live while it runs. */
function Log({ machineId }: { machineId: string }) {
  const { key } = useSession();
  const [text, setText] = useState('');
  const [error, setError] = useState<Error | null>(null);
  const [ended, setEnded] = useState(false);
  const box = useRef<HTMLPreElement>(null);
  const stick = useRef(true);
  useEffect(() => {
    const stop = new AbortController();
    setText('');
    setEnded(false);
    followLog(key, machineId, (t) => setText((old) => (old + t).slice(-LOG_KEEP_CHARS)), stop.signal).then(
      () => setEnded(true),
      (e: Error) => e.name !== 'AbortError' && setError(e),
    );
    return () => stop.abort();
  }, [machineId]);
  useEffect(() => {
    const el = box.current;
    if (el && stick.current) el.scrollTop = el.scrollHeight;
  }, [text]);
  return (
    <>
      <ErrorNote error={error} />
      <pre
        ref={box}
        class="log"
        role="log"
        aria-label={`log of ${machineId}`}
        tabIndex={0}
        onScroll={(e) => {
          const el = e.currentTarget;
          stick.current = el.scrollTop + el.clientHeight >= el.scrollHeight - 20;
        }}
      >
        {text || (ended ? '(no output)' : '')}
      </pre>
      <p class="muted" role="status">
        {ended ? 'End of log.' : 'Following the log…'}
      </p>
    </>
  );
}

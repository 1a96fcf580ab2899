import { useState } from 'preact/hooks';
import { idempotencyKey, ok, type ItemOf } from '../api.js';
import { DagSvg } from '../graph.js';
import { useLiveEvents } from '../live.js';
import { queryOf, useRoute } from '../router.js';
import { can, useSession } from '../session.js';
import { ErrorNote, Id, Loading, Section, Status, TemporalLink, useLoad, useThrottled, When } from '../ui.js';

type Objective = ItemOf<'/projects/{id}/objectives'>;
const OPEN = ['waiting', 'paused', 'running'];
const percent = (p: number) => `${Math.round(p * 100)}%`;

/** Pause, resume and cancel of one objective, for operators and up (the API says whether it can). */
function Controls({ o, onDone }: { o: Objective; onDone: () => void }) {
  const { api, me } = useSession();
  const [busy, setBusy] = useState<string | null>(null);
  const [error, setError] = useState<Error | null>(null);
  const [requested, setRequested] = useState<{ action: string; status: string } | null>(null);
  if (!can(me, 'run') || !OPEN.includes(o.status)) return null;
  const act = async (action: 'pause' | 'resume' | 'cancel') => {
    setBusy(action);
    setError(null);
    try {
      const params = { path: { id: o.id } };
      const headers = { 'idempotency-key': idempotencyKey() };
      if (action === 'pause') await ok(api.POST('/objectives/{id}/pause', { params, headers }));
      else if (action === 'resume') await ok(api.POST('/objectives/{id}/resume', { params, headers }));
      else await ok(api.POST('/objectives/{id}/cancel', { params, headers }));
      setRequested({ action, status: o.status });
      onDone();
    } catch (e) {
      setError(e as Error);
    } finally {
      setBusy(null);
    }
  };
  return (
    <span class="row-actions">
      {o.status === 'paused' ? (
        <button type="button" disabled={!!busy} aria-label={`Resume ${o.title}`} onClick={() => void act('resume')}>
          Resume
        </button>
      ) : (
        <button type="button" disabled={!!busy} aria-label={`Pause ${o.title}`} onClick={() => void act('pause')}>
          Pause
        </button>
      )}
      <button type="button" class="danger" disabled={!!busy} aria-label={`Cancel ${o.title}`} onClick={() => void act('cancel')}>
        Cancel
      </button>
      <ErrorNote error={error} />
      {requested && requested.status === o.status ? (
        <span role="status" class="muted">
          {/* The objective's workflow takes the request at its next check; the status follows by the event feed. */}
          {requested.action} requested
        </span>
      ) : null}
    </span>
  );
}

/** The progress an objective has recorded (GET /objectives/:id/progress), newest last. */
function Progress({ o }: { o: Objective }) {
  const { api } = useSession();
  const { data, error, reload } = useLoad(() => ok(api.GET('/objectives/{id}/progress', { params: { path: { id: o.id } } })), [o.id]);
  const refresh = useThrottled(reload, 1000);
  useLiveEvents((e) => e.subjectId === o.id || o.machines.includes(e.subjectId), refresh);
  return (
    <Section title={`Objective ${o.title}`} actions={<TemporalLink workflowId={o.workflowId} />}>
      <dl class="facts">
        <dt>Status</dt>
        <dd>
          <Status value={o.status} /> {o.error ? <span class="error">{o.error}</span> : null}
        </dd>
        <dt>Progress</dt>
        <dd>
          <progress max={1} value={o.progress} aria-label={`Progress of ${o.title}`} /> {percent(o.progress)}
        </dd>
        <dt>Work</dt>
        <dd>
          {o.machineType}: <code class="wrap">{o.command ?? o.prompt}</code>
        </dd>
        <dt>Machines</dt>
        <dd>
          {o.machines.length ? (
            o.machines.map((m) => (
              <span key={m}>
                <Id id={m} href={`#/machines/${m}`} />{' '}
              </span>
            ))
          ) : (
            <span class="muted">none yet</span>
          )}
        </dd>
      </dl>
      <ErrorNote error={error} />
      {!data ? (
        <Loading what="progress" />
      ) : data.items.length === 0 ? (
        <p class="muted">No progress recorded yet.</p>
      ) : (
        <ol class="history" aria-label={`Progress of ${o.title} over time`}>
          {data.items.map((r) => (
            <li key={r.recordedAt}>
              {percent(r.progress)} <When at={r.recordedAt} />
              {r.note ? <span> — {r.note}</span> : null}
              {r.machineId ? (
                <>
                  {' '}
                  by <Id id={r.machineId} href={`#/machines/${r.machineId}`} />
                </>
              ) : null}
            </li>
          ))}
        </ol>
      )}
    </Section>
  );
}

/** `#/projects/:id/objectives`: the objectives as their dependency graph with status and progress, kept current live. */
export function Objectives({ projectId }: { projectId: string }) {
  const { api } = useSession();
  const selected = queryOf(useRoute()).get('objective');
  const { data, error, reload } = useLoad(async () => {
    const [dag, list] = await Promise.all([
      ok(api.GET('/projects/{id}/objectives/dag', { params: { path: { id: projectId } } })),
      ok(api.GET('/projects/{id}/objectives', { params: { path: { id: projectId }, query: { limit: '500' } } })),
    ]);
    return { dag, list: list.items };
  }, [projectId]);
  const refresh = useThrottled(reload, 700);
  useLiveEvents((e) => e.projectId === projectId && (e.kind.startsWith('objective.') || e.kind === 'machine.status'), refresh);
  if (!data) return error ? <ErrorNote error={error} /> : <Loading what="objectives" />;
  const byId = new Map(data.list.map((o) => [o.id, o]));
  const chosen = selected ? byId.get(selected) : undefined;
  const href = (id: string) => `#/projects/${projectId}/objectives?objective=${encodeURIComponent(id)}`;
  return (
    <>
      <Section title="Objectives" actions={<a href={`#/projects/${projectId}`}>project {projectId}</a>}>
        <ErrorNote error={error} />
        {data.dag.nodes.length === 0 ? (
          <p>No objectives yet: `npx autovibe objectives create`.</p>
        ) : (
          <>
            <DagSvg
              label={`Objectives of project ${projectId} and what each depends on`}
              nodes={data.dag.nodes.map((n) => ({ id: n.id, label: n.title, detail: `${percent(n.progress)} done`, status: n.status, href: href(n.id) }))}
              edges={data.dag.edges}
            />
            <table class="objectives">
              <caption class="sr-only">Objectives of project {projectId}</caption>
              <thead>
                <tr>
                  <th scope="col">Objective</th>
                  <th scope="col">Status</th>
                  <th scope="col">Progress</th>
                  <th scope="col">Depends on</th>
                  <th scope="col">Actions</th>
                </tr>
              </thead>
              <tbody>
                {data.dag.nodes.map((n) => {
                  const o = byId.get(n.id);
                  return (
                    <tr key={n.id} data-objective={n.id}>
                      <th scope="row">
                        <a href={href(n.id)} aria-current={selected === n.id ? 'true' : undefined}>
                          {n.title}
                        </a>
                      </th>
                      <td>
                        <Status value={n.status} />
                      </td>
                      <td>{percent(n.progress)}</td>
                      <td>{n.dependsOn.length ? n.dependsOn.map((d) => byId.get(d)?.title ?? d).join(', ') : <span class="muted">—</span>}</td>
                      <td>{o ? <Controls o={o} onDone={reload} /> : null}</td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </>
        )}
      </Section>
      {chosen ? <Progress key={chosen.id} o={chosen} /> : null}
    </>
  );
}

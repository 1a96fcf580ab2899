import { useState } from 'preact/hooks';
import { idempotencyKey, ok } from '../api.js';
import { DagSvg } from '../graph.js';
import { useLiveEvents } from '../live.js';
import { can, useSession } from '../session.js';
import { ErrorNote, Id, Loading, Section, Status, TemporalLink, useLoad, useThrottled, When } from '../ui.js';
import { PickedProjectPage } from './picker.js';

/** `#/pipelines/:id`: a pipeline drawn as its DAG, each step with its status and a link to its machine, kept current live. */
export function Pipeline({ id }: { id: string }) {
  const { api, me } = useSession();
  const { data: p, error, reload } = useLoad(() => ok(api.GET('/pipelines/{id}', { params: { path: { id } } })), [id]);
  const refresh = useThrottled(reload, 500);
  const machines = new Set((p?.steps ?? []).map((s) => s.machineId).filter(Boolean));
  useLiveEvents((e) => e.subjectId === id || (e.kind.startsWith('machine.') && (machines.has(e.subjectId) || e.projectId === p?.projectId)), refresh);
  const [cancelError, setCancelError] = useState<Error | null>(null);
  if (!p) return error ? <ErrorNote error={error} /> : <Loading what={`pipeline ${id}`} />;
  const cancel = async () => {
    setCancelError(null);
    try {
      await ok(api.POST('/pipelines/{id}/cancel', { params: { path: { id } }, headers: { 'idempotency-key': idempotencyKey() } }));
      reload();
    } catch (e) {
      setCancelError(e as Error);
    }
  };
  const done = p.steps.filter((s) => s.status === 'completed').length;
  return (
    <>
      <Section
        title={`Pipeline ${p.id}`}
        actions={
          <>
            <TemporalLink workflowId={p.workflowId} />
            {can(me, 'run') && p.status === 'running' ? (
              <button type="button" class="danger" onClick={() => void cancel()}>
                Cancel pipeline
              </button>
            ) : null}
          </>
        }
      >
        <ErrorNote error={error ?? cancelError} />
        <dl class="facts">
          <dt>Status</dt>
          <dd>
            <Status value={p.status} />{' '}
            <span class="muted">
              ({done} of {p.steps.length} steps completed)
            </span>
            {p.error ? <div class="error">{p.error}</div> : null}
          </dd>
          <dt>Project</dt>
          <dd>
            <a href={`#/projects/${p.projectId}`}>{p.projectId}</a>
          </dd>
          <dt>Started from</dt>
          <dd>
            <Id id={p.baseCheckpointId} href={`#/projects/${p.projectId}/tree`} />
          </dd>
          <dt>Started</dt>
          <dd>
            <When at={p.createdAt} />
            {p.endedAt ? (
              <>
                {' '}
                · ended <When at={p.endedAt} />
              </>
            ) : null}
          </dd>
        </dl>
        <DagSvg
          label={`Steps of pipeline ${p.id} and their dependencies`}
          nodes={p.steps.map((s) => ({ id: s.id, label: s.id, detail: s.type, status: s.status, href: s.machineId ? `#/machines/${s.machineId}` : undefined }))}
          edges={p.steps.flatMap((s) => s.dependsOn.map((d) => ({ from: d, to: s.id })))}
        />
      </Section>
      <Section title="Steps">
        <table class="steps">
          <caption class="sr-only">Steps of pipeline {p.id}</caption>
          <thead>
            <tr>
              <th scope="col">Step</th>
              <th scope="col">Status</th>
              <th scope="col">Depends on</th>
              <th scope="col">Machine</th>
              <th scope="col">Checkpoint</th>
              <th scope="col">Started</th>
            </tr>
          </thead>
          <tbody>
            {p.steps.map((s) => (
              <tr key={s.id} data-step={s.id}>
                <th scope="row">
                  {s.id} <span class="muted">{s.type}</span>
                </th>
                <td>
                  <Status value={s.status} />
                  {s.error ? <div class="error">{s.error}</div> : null}
                </td>
                <td>{s.dependsOn.length ? s.dependsOn.join(', ') : <span class="muted">—</span>}</td>
                <td>{s.machineId ? <Id id={s.machineId} href={`#/machines/${s.machineId}`} /> : <span class="muted">not started</span>}</td>
                <td>{s.checkpointId ? <Id id={s.checkpointId} /> : <span class="muted">—</span>}</td>
                <td>
                  <When at={s.startedAt} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </Section>
    </>
  );
}

/** A project's pipelines, newest first, kept current by pipeline events. */
export function ProjectPipelines({ projectId }: { projectId: string }) {
  const { api } = useSession();
  const { data, error, reload } = useLoad(
    () => ok(api.GET('/projects/{id}/pipelines', { params: { path: { id: projectId }, query: { limit: '50' } } })),
    [projectId],
  );
  const refresh = useThrottled(reload, 1000);
  useLiveEvents((e) => e.projectId === projectId && e.kind.startsWith('pipeline.'), refresh);
  if (!data) return error ? <ErrorNote error={error} /> : <Loading what="pipelines" />;
  if (data.items.length === 0) return <p class="muted">No pipelines yet.</p>;
  return (
    <table class="pipelines">
      <caption class="sr-only">Pipelines of project {projectId}, newest first</caption>
      <thead>
        <tr>
          <th scope="col">Pipeline</th>
          <th scope="col">Status</th>
          <th scope="col">Steps</th>
          <th scope="col">Started</th>
        </tr>
      </thead>
      <tbody>
        {data.items.map((p) => (
          <tr key={p.id} data-pipeline={p.id}>
            <th scope="row">
              <Id id={p.id} href={`#/pipelines/${p.id}`} />
            </th>
            <td>
              <Status value={p.status} />
            </td>
            <td>
              {p.steps.map((s, i) => (
                <span key={s.id}>
                  {i ? ' → ' : ''}
                  {s.id} <Status value={s.status} />
                </span>
              ))}
            </td>
            <td>
              <When at={p.createdAt} />
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** `#/pipelines?project=`: the pipelines of one project the caller picks. */
export function Pipelines() {
  return <PickedProjectPage title="Pipelines" route="/pipelines" show={(projectId) => <ProjectPipelines key={projectId} projectId={projectId} />} />;
}

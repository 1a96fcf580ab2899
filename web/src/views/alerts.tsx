import { useState } from 'preact/hooks';
import { ok, type ItemOf } from '../api.js';
import { useLiveEvents } from '../live.js';
import { queryOf, useRoute } from '../router.js';
import { useSession } from '../session.js';
import { ErrorNote, Id, Loading, Section, useLoad, useThrottled, When } from '../ui.js';

type Alert = ItemOf<'/alerts'>;
const SEVERITY_TONE: Record<Alert['severity'], string> = { info: 'muted', warning: 'attention', critical: 'bad' };

/** Where an alert's subject is shown. */
function subjectHref(a: Alert): string | undefined {
  if (a.subjectId.startsWith('machine-')) return `#/machines/${a.subjectId}`;
  if (a.subjectId.startsWith('project-')) return `#/projects/${a.subjectId}`;
  if (a.kind === 'payment_failed' && a.projectId) return `#/payments?project=${a.projectId}`;
  if (a.kind === 'budget_threshold' && a.projectId) return `#/projects/${a.projectId}`;
  return undefined;
}

/** `#/alerts` (or `?project=`): alerts newest first, open or resolved, new ones and resolutions arriving by `alert.*` events. */
export function Alerts() {
  const { api } = useSession();
  const projectId = queryOf(useRoute()).get('project') ?? undefined;
  const [more, setMore] = useState<{ items: Alert[]; cursor: string | null } | null>(null);
  const query = (cursor?: string) => ({ params: { query: { limit: '50', ...(projectId ? { projectId } : {}), ...(cursor ? { cursor } : {}) } } });
  const { data, error, reload } = useLoad(async () => {
    setMore(null);
    return ok(api.GET('/alerts', query()));
  }, [projectId]);
  const refresh = useThrottled(reload, 1000);
  useLiveEvents((e) => e.kind.startsWith('alert.') && (!projectId || e.projectId === projectId), refresh);
  const items = [...(data?.items ?? []), ...(more?.items ?? [])];
  const cursor = more ? more.cursor : (data?.nextCursor ?? null);
  const loadMore = async (c: string) => {
    const next = await ok(api.GET('/alerts', query(c)));
    setMore((m) => ({ items: [...(m?.items ?? []), ...next.items], cursor: next.nextCursor }));
  };
  return (
    <Section title={projectId ? `Alerts of ${projectId}` : 'Alerts'} actions={projectId ? <a href="#/alerts">all alerts</a> : null}>
      <ErrorNote error={error} />
      {!data ? (
        <Loading what="alerts" />
      ) : items.length === 0 ? (
        <p>No alerts.</p>
      ) : (
        <>
          <table class="alerts">
            <caption class="sr-only">Alerts, newest first</caption>
            <thead>
              <tr>
                <th scope="col">When</th>
                <th scope="col">Severity</th>
                <th scope="col">Status</th>
                <th scope="col">Alert</th>
                <th scope="col">Project</th>
                <th scope="col">About</th>
              </tr>
            </thead>
            <tbody>
              {items.map((a) => (
                <tr key={a.id} data-alert={a.id} data-kind={a.kind}>
                  <td>
                    <When at={a.at} />
                  </td>
                  <td>
                    <span class={`status tone-${SEVERITY_TONE[a.severity]}`}>{a.severity}</span>
                  </td>
                  <td data-status={a.status} title={a.resolution ?? undefined}>
                    {a.status === 'resolved' ? <span class="muted">resolved{a.resolution ? `: ${a.resolution}` : ''}</span> : 'open'}
                  </td>
                  <th scope="row">
                    {a.message} <span class="muted">({a.kind.replace(/_/g, ' ')})</span>
                  </th>
                  <td>{a.projectId ? <Id id={a.projectId} href={`#/projects/${a.projectId}`} /> : <span class="muted">deployment</span>}</td>
                  <td>
                    <Id id={a.subjectId} href={subjectHref(a)} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          {cursor ? (
            <button type="button" onClick={() => void loadMore(cursor)}>
              Load more alerts
            </button>
          ) : null}
        </>
      )}
    </Section>
  );
}

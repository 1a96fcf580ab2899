import { useState } from 'preact/hooks';
import { ok, type ItemOf } from '../api.js';
import { useLiveEvents } from '../live.js';
import { navigate, queryOf, useRoute } from '../router.js';
import { useSession } from '../session.js';
import { ErrorNote, Id, Loading, Money, Section, Status, useLoad, useThrottled, When } from '../ui.js';

type MachineItem = ItemOf<'/machines'>;
const STATUSES = ['pending', 'provisioning', 'running', 'checkpointing', 'paused', 'completed', 'failed', 'terminated', 'refused'] as const;
type StatusFilter = (typeof STATUSES)[number];

/** Machines of every project the caller sees (or one, `?project=`), kept current by the event feed. */
export function Machines() {
  const { api } = useSession();
  const query = queryOf(useRoute());
  const projectId = query.get('project') ?? undefined;
  const status = (query.get('status') ?? undefined) as StatusFilter | undefined;
  const [more, setMore] = useState<{ items: MachineItem[]; cursor: string | null } | null>(null);
  const pageAfter = (cursor?: string) =>
    ok(
      api.GET('/machines', {
        params: { query: { limit: '50', ...(cursor ? { cursor } : {}), ...(projectId ? { projectId } : {}), ...(status ? { status } : {}) } },
      }),
    );
  const { data, error, reload } = useLoad(async () => {
    setMore(null);
    return pageAfter();
  }, [projectId, status]);
  const refresh = useThrottled(reload, 700);
  useLiveEvents((e) => e.kind.startsWith('machine.') && (!projectId || e.projectId === projectId), refresh);

  const loadMore = async (cursor: string) => {
    const next = await pageAfter(cursor);
    setMore((m) => ({ items: [...(m?.items ?? []), ...next.items], cursor: next.nextCursor }));
  };
  const setFilter = (name: string, value: string) => {
    const q = queryOf(location.hash);
    if (value) q.set(name, value);
    else q.delete(name);
    navigate(`/machines${q.size ? `?${q.toString()}` : ''}`);
  };
  const items = [...(data?.items ?? []), ...(more?.items ?? [])];
  const cursor = more ? more.cursor : (data?.nextCursor ?? null);

  return (
    <Section
      title={projectId ? `Machines of ${projectId}` : 'Machines'}
      actions={
        <label>
          Status{' '}
          <select value={status ?? ''} onChange={(e) => setFilter('status', e.currentTarget.value)}>
            <option value="">any</option>
            {STATUSES.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </label>
      }
    >
      <ErrorNote error={error} />
      {!data ? (
        <Loading what="machines" />
      ) : items.length === 0 ? (
        <p>No machines{status ? ` that are ${status}` : ''} yet.</p>
      ) : (
        <>
          <table class="machines">
            <caption class="sr-only">Machines, newest first</caption>
            <thead>
              <tr>
                <th scope="col">Machine</th>
                <th scope="col">Status</th>
                <th scope="col">Type</th>
                <th scope="col">Project</th>
                <th scope="col">Cost</th>
                <th scope="col">Limit</th>
                <th scope="col">Started</th>
              </tr>
            </thead>
            <tbody>
              {items.map((m) => (
                <tr key={m.id} data-machine={m.id}>
                  <th scope="row">
                    <Id id={m.id} href={`#/machines/${m.id}`} />
                  </th>
                  <td>
                    <Status value={m.status} />
                  </td>
                  <td>{m.type}</td>
                  <td>
                    <Id id={m.projectId} href={`#/projects/${m.projectId}`} />
                  </td>
                  <td>
                    <Money value={m.cost} />
                  </td>
                  <td>
                    {m.limits.money} / {m.limits.minutes} min
                  </td>
                  <td>
                    <When at={m.startedAt ?? m.createdAt} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          {cursor ? (
            <button type="button" onClick={() => void loadMore(cursor)}>
              Load more
            </button>
          ) : null}
        </>
      )}
    </Section>
  );
}

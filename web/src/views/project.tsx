import { ok } from '../api.js';
import { useLiveEvents } from '../live.js';
import { useSession } from '../session.js';
import { ErrorNote, Loading, Section, useLoad, useThrottled, When } from '../ui.js';

/** One project: its budget and where to look next (machines, evolution tree). */
export function Project({ id }: { id: string }) {
  const { api } = useSession();
  const { data: p, error, reload } = useLoad(() => ok(api.GET('/projects/{id}', { params: { path: { id } } })), [id]);
  const refresh = useThrottled(reload, 1000);
  useLiveEvents((e) => e.projectId === id && (e.kind.startsWith('budget.') || e.kind === 'machine.status'), refresh);
  if (!p) return error ? <ErrorNote error={error} /> : <Loading what={`project ${id}`} />;
  return (
    <Section title={`Project ${p.name}`}>
      <dl class="facts">
        <dt>Id</dt>
        <dd>
          <code>{p.id}</code>
        </dd>
        <dt>Budget</dt>
        <dd>
          {p.budget ? (
            <>
              {p.budget.spent} spent, {p.budget.reserved} reserved of {p.budget.limit} {p.budget.currency} ({p.budget.period}); {p.budget.remaining} left
            </>
          ) : (
            <span class="muted">none set</span>
          )}
        </dd>
        <dt>When a machine hits a limit</dt>
        <dd>{p.limitPolicy.policy === 'pause' ? `pause for up to ${p.limitPolicy.pauseMinutes} min and ask` : 'stop'}</dd>
        <dt>Created</dt>
        <dd>
          <When at={p.createdAt} />
        </dd>
      </dl>
      <p class="links">
        <a href={`#/machines?project=${p.id}`}>Machines</a>
        <a href={`#/projects/${p.id}/tree`}>Evolution tree</a>
      </p>
    </Section>
  );
}

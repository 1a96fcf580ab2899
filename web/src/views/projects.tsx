import { ok, type ItemOf } from '../api.js';
import { useLiveEvents } from '../live.js';
import { useSession } from '../session.js';
import { ErrorNote, Id, Loading, Money, Section, useLoad, useThrottled, When } from '../ui.js';

type ProjectItem = ItemOf<'/projects'>;

/** The caller's projects with their budgets: the start page. */
export function Projects() {
  const { api } = useSession();
  const { data, error, reload } = useLoad(() => ok(api.GET('/projects', { params: { query: { limit: '100' } } })), []);
  const refresh = useThrottled(reload, 1000);
  useLiveEvents((e) => e.kind.startsWith('budget.') || e.kind === 'machine.status' || e.kind.startsWith('project.'), refresh);
  return (
    <Section title="Projects">
      <ErrorNote error={error} />
      {!data ? (
        <Loading what="projects" />
      ) : data.items.length === 0 ? (
        <p>No projects yet: `npx autovibe projects create --name demo`.</p>
      ) : (
        <table>
          <caption class="sr-only">Projects and their budgets</caption>
          <thead>
            <tr>
              <th scope="col">Project</th>
              <th scope="col">Budget spent</th>
              <th scope="col">Reserved</th>
              <th scope="col">Limit</th>
              <th scope="col">Created</th>
              <th scope="col">Views</th>
            </tr>
          </thead>
          <tbody>
            {data.items.map((p: ProjectItem) => (
              <tr key={p.id}>
                <th scope="row">
                  <a href={`#/projects/${p.id}`}>{p.name}</a> <Id id={p.id} />
                </th>
                <td>
                  <Money value={p.budget ? { amount: p.budget.spent, currency: p.budget.currency } : null} />
                </td>
                <td>
                  <Money value={p.budget ? { amount: p.budget.reserved, currency: p.budget.currency } : null} />
                </td>
                <td>{p.budget ? `${p.budget.limit} ${p.budget.currency} / ${p.budget.period}` : <span class="muted">no budget</span>}</td>
                <td>
                  <When at={p.createdAt} />
                </td>
                <td class="links">
                  <a href={`#/machines?project=${p.id}`}>machines</a>
                  <a href={`#/projects/${p.id}/tree`}>evolution tree</a>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Section>
  );
}

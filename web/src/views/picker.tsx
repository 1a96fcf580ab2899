import { ok, type ItemOf } from '../api.js';
import { navigate, queryOf, useRoute } from '../router.js';
import { useSession } from '../session.js';
import type { JSX } from 'preact';
import { ErrorNote, Loading, Section, useLoad } from '../ui.js';

export interface Picked {
  /** The project of `?project=`, else the caller's first; null while loading or when there is none. */
  projectId: string | null;
  projects: Array<ItemOf<'/projects'>>;
  error: Error | null;
  /** Whether the caller sees no project at all. */
  none: boolean;
}

/** The project a per-project page shows: `?project=` of the hash, or the first the caller sees. */
export function usePickedProject(): Picked {
  const { api } = useSession();
  const asked = queryOf(useRoute()).get('project');
  const { data, error } = useLoad(() => ok(api.GET('/projects', { params: { query: { limit: '100' } } })), []);
  const projects = data?.items ?? [];
  return { projectId: asked ?? projects[0]?.id ?? null, projects, error, none: !!data && projects.length === 0 };
}

/** A select of the caller's projects that moves the page to `route?project=<id>`. */
export function ProjectPicker({ picked, route }: { picked: Picked; route: string }) {
  if (!picked.projects.length) return null;
  return (
    <label>
      Project{' '}
      <select value={picked.projectId ?? ''} onChange={(e) => navigate(`${route}?project=${encodeURIComponent(e.currentTarget.value)}`)}>
        {picked.projects.map((p) => (
          <option key={p.id} value={p.id}>
            {p.name} ({p.id})
          </option>
        ))}
      </select>
    </label>
  );
}

/** A per-project page (`#<route>?project=`): the picker in its header, `show` of the picked project inside. */
export function PickedProjectPage({ title, route, show }: { title: string; route: string; show: (projectId: string) => JSX.Element }) {
  const picked = usePickedProject();
  return (
    <Section title={title} actions={<ProjectPicker picked={picked} route={route} />}>
      {picked.error ? (
        <ErrorNote error={picked.error} />
      ) : picked.projectId ? (
        show(picked.projectId)
      ) : picked.none ? (
        <p>No projects yet.</p>
      ) : (
        <Loading what="projects" />
      )}
    </Section>
  );
}

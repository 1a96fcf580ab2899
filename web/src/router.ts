import { useEffect, useState } from 'preact/hooks';

/** The dashboard's location is the URL hash (`#/machines/m-1`): links work, reloads keep the view, no server routes. */
export function currentPath(): string {
  return location.hash.replace(/^#/, '') || '/';
}

export function navigate(path: string) {
  location.hash = path;
}

export function useRoute(): string {
  const [path, setPath] = useState(currentPath());
  useEffect(() => {
    const update = () => setPath(currentPath());
    addEventListener('hashchange', update);
    return () => removeEventListener('hashchange', update);
  }, []);
  return path;
}

/** The named parts of `path` when it matches `pattern` (`/machines/:id`), else null. */
export function match(pattern: string, path: string): Record<string, string> | null {
  const [p, q] = [pattern.split('/'), path.split('?')[0]!.split('/')];
  if (p.length !== q.length) return null;
  const params: Record<string, string> = {};
  for (let i = 0; i < p.length; i++) {
    if (p[i]!.startsWith(':')) params[p[i]!.slice(1)] = decodeURIComponent(q[i]!);
    else if (p[i] !== q[i]) return null;
  }
  return params;
}

/** The `?a=b` part of the hash, e.g. `#/machines?project=p-1`. */
export function queryOf(path: string): URLSearchParams {
  return new URLSearchParams(path.split('?')[1] ?? '');
}

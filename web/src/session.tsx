import { createContext } from 'preact';
import { useContext } from 'preact/hooks';
import type { Api, Whoami } from './api.js';

export interface Session {
  key: string;
  api: Api;
  me: Whoami;
  settings: { temporalUiUrl?: string | null; temporalNamespace: string };
  logout(): void;
}

export const SessionContext = createContext<Session | null>(null);

/** The logged-in caller: their key, the typed client and who they are (role, projects). */
export function useSession(): Session {
  const s = useContext(SessionContext);
  if (!s) throw new Error('useSession outside a logged-in view');
  return s;
}

/**
 * Whether the caller's role may act (the API decides; this only hides buttons it would refuse):
 * `run` machines and checkpoints (operator and up), `configure` budgets and money (owner and up).
 */
export function can(me: Whoami, action: 'run' | 'configure'): boolean {
  if (action === 'run') return me.role === 'operator' || me.role === 'owner' || me.role === 'admin';
  return me.role === 'owner' || me.role === 'admin';
}

/** The run of a workflow in the Temporal Web UI, when the deployment says where that is. */
export function temporalRunUrl(settings: Session['settings'], workflowId: string): string | null {
  if (!settings.temporalUiUrl) return null;
  return `${settings.temporalUiUrl.replace(/\/$/, '')}/namespaces/${encodeURIComponent(settings.temporalNamespace)}/workflows/${encodeURIComponent(workflowId)}`;
}

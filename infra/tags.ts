import type { Settings } from './settings.js';

/** The components resources are tagged with. */
export type Component = 'network' | 'api' | 'worker' | 'database' | 'storage' | 'machines' | 'cluster' | 'secrets';

/** Tags every taggable resource carries: which project, which stack, which part of the platform. */
export function tagsFor(s: Settings, component: Component): Record<string, string> {
  return { project: s.project, environment: s.environment, component };
}

/** The name prefix of the stack's resources, e.g. `autovibe-prod`. */
export function prefix(s: Settings): string {
  return `${s.project}-${s.environment}`;
}

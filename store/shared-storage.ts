import type { Config } from '../config/index.js';
import type { Db } from './db.js';
import { objectStoreUnder, openObjectStore, type ObjectStore } from './object-store.js';
import type { Project } from './projects.js';
import { RepoMirror } from './repo-mirror.js';
import { ChunkStore, type RegionStores } from './snapshots.js';

/**
 * The object store every host shares (AUTOVIBE_OBJECT_STORE), opened once per configuration, or
 * null when this host's own directories are the only copy (the embedded default).
 */
const opened = new WeakMap<object, ObjectStore>();
export function sharedObjectStore(config: Pick<Config, 'objectStore'>): ObjectStore | null {
  const c = config.objectStore;
  if (!c) return null;
  let store = opened.get(c);
  if (!store) {
    store = openObjectStore(c);
    opened.set(c, store);
  }
  return store;
}

/**
 * Snapshot chunk regions: the primary is the shared store's `snapshots/` (this host's primary
 * directory caching it) when there is one, else the primary directory; the replica is its directory.
 */
export function snapshotStores(config: Pick<Config, 'objectStore' | 'snapshotRegions'>): RegionStores {
  const shared = sharedObjectStore(config);
  if (!shared) return config.snapshotRegions;
  return { primary: new ChunkStore(objectStoreUnder(shared, 'snapshots'), config.snapshotRegions.primary), replica: config.snapshotRegions.replica };
}

const mirrors = new WeakMap<object, RepoMirror>();
/** Project repositories in the shared store (`repos/`), this host's projects directory caching them; null without a shared store. */
export function repoMirror(config: Pick<Config, 'objectStore' | 'projectsDir'>): RepoMirror | null {
  const shared = sharedObjectStore(config);
  if (!shared) return null;
  let mirror = mirrors.get(shared);
  if (!mirror) {
    mirror = new RepoMirror(objectStoreUnder(shared, 'repos'), config.projectsDir);
    mirrors.set(shared, mirror);
  }
  return mirror;
}

/**
 * The path of a project's repository on this host, ready to use: without a shared store, the
 * project's own; with one, this host's copy, first fetching the checkpoints it lacks (none when
 * it has every commit of `commits` already).
 */
export async function projectRepo(
  db: Db,
  config: Pick<Config, 'objectStore' | 'projectsDir'>,
  project: Pick<Project, 'id' | 'repoPath'>,
  commits: string[] = [],
): Promise<string> {
  const mirror = repoMirror(config);
  return mirror ? mirror.hydrate(db, project.id, commits) : project.repoPath;
}

/** The project with `repoPath` this host's ready copy of its repository (see {@link projectRepo}). */
export async function withLocalRepo<P extends Pick<Project, 'id' | 'repoPath'>>(
  db: Db,
  config: Pick<Config, 'objectStore' | 'projectsDir'>,
  project: P,
  commits: string[] = [],
): Promise<P> {
  return { ...project, repoPath: await projectRepo(db, config, project, commits) };
}

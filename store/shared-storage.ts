import type { Config } from '../config/index.js';
import { objectStoreUnder, openObjectStore, type ObjectStore } from './object-store.js';
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

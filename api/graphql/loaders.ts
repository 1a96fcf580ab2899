import type { Checkpoint } from '../../store/checkpoints.js';
import { getCheckpoints } from '../../store/checkpoints.js';
import { costTotalsOfMachines } from '../../store/costs.js';
import { getMachines, type Machine } from '../../store/machines.js';
import { getProjects, type Project } from '../../store/projects.js';
import type { GraphqlContext } from './context.js';

/**
 * Loads by key, batched: every `load` made while a query resolves one level of its fields (the
 * same round of promise jobs) becomes one call of `loadMany`, and each key is read once per
 * request. The idea of DataLoader, small: a list of 50 machines asking for their project and cost
 * costs two queries, not a hundred.
 */
export class BatchLoader<K, V> {
  private readonly done = new Map<K, Promise<V | undefined>>();
  private queue: Array<{ key: K; resolve: (v: V | undefined) => void; reject: (e: unknown) => void }> | null = null;

  constructor(private readonly loadMany: (keys: K[]) => Promise<Map<K, V>>) {}

  load(key: K): Promise<V | undefined> {
    let p = this.done.get(key);
    if (p) return p;
    p = new Promise<V | undefined>((resolve, reject) => {
      if (!this.queue) {
        this.queue = [];
        // After the promise jobs already queued, so the loads of sibling resolvers join this batch.
        void Promise.resolve().then(() => process.nextTick(() => void this.dispatch()));
      }
      this.queue.push({ key, resolve, reject });
    });
    this.done.set(key, p);
    return p;
  }

  private async dispatch() {
    const batch = this.queue ?? [];
    this.queue = null;
    try {
      const found = await this.loadMany([...new Set(batch.map((b) => b.key))]);
      for (const b of batch) b.resolve(found.get(b.key));
    } catch (err) {
      for (const b of batch) b.reject(err);
    }
  }
}

export interface Loaders {
  project: BatchLoader<string, Project>;
  machine: BatchLoader<string, Machine>;
  checkpoint: BatchLoader<string, Checkpoint>;
  /** A machine's costs by category (absent: none yet). */
  machineCosts: BatchLoader<string, Record<string, bigint>>;
}

const perRequest = new WeakMap<GraphqlContext, Loaders>();

/** The loaders of one GraphQL request (made on first use, dropped with the request's context). */
export function loadersOf(ctx: GraphqlContext): Loaders {
  let l = perRequest.get(ctx);
  if (!l) {
    const db = ctx.api.db;
    l = {
      project: new BatchLoader((ids) => getProjects(db, ids)),
      machine: new BatchLoader((ids) => getMachines(db, ids)),
      checkpoint: new BatchLoader((ids) => getCheckpoints(db, ids)),
      machineCosts: new BatchLoader((ids) => costTotalsOfMachines(db, ids)),
    };
    perRequest.set(ctx, l);
  }
  return l;
}

/**
 * The whole evolution tree over the REST API: a project seeded with 10,000 checkpoints (a main
 * line with side branches: real commits through git fast-import, rows in one batched insert, see
 * test/support/seed-checkpoints.ts), then GET /v1/projects/:id/checkpoints/tree answered whole
 * (200, every node) and revalidated (If-None-Match → 304), sequentially.
 */
import { performance } from 'node:perf_hooks';
import { seedCheckpoints } from '../../test/support/seed-checkpoints.js';
import { startBenchPlatform } from './bench-platform.js';
import { summarize, type BenchOptions, type BenchOutput } from './common.js';

const CHECKPOINTS = 10_000;

export async function checkpointTree(opts: BenchOptions): Promise<BenchOutput> {
  const bench = await startBenchPlatform(opts, { label: 'checkpoint-tree' });
  try {
    const count = opts.quick ? 1_000 : CHECKPOINTS;
    const runs = opts.quick ? 5 : 30;
    opts.log(`seeding ${count} checkpoints`);
    const t0 = performance.now();
    await seedCheckpoints(bench.platform.db, bench.projectId, { count });
    const seedMs = performance.now() - t0;

    const url = `${bench.platform.apiUrl}/v1/projects/${bench.projectId}/checkpoints/tree`;
    const auth = { authorization: `Bearer ${bench.platform.adminKey}` };
    const whole: number[] = [];
    const revalidated: number[] = [];
    let bytes = 0;
    let etag = '';
    for (let i = 0; i < runs; i++) {
      const t = performance.now();
      const res = await fetch(url, { headers: auth });
      const body = (await res.json()) as { count: number };
      whole.push(performance.now() - t);
      if (res.status !== 200 || body.count !== count + 1) throw new Error(`GET tree: ${res.status}, ${body.count} nodes`);
      bytes = Number(res.headers.get('content-length') ?? 0);
      etag = res.headers.get('etag') ?? '';
    }
    for (let i = 0; i < runs; i++) {
      const t = performance.now();
      const res = await fetch(url, { headers: { ...auth, 'if-none-match': etag } });
      await res.arrayBuffer();
      revalidated.push(performance.now() - t);
      if (res.status !== 304) throw new Error(`If-None-Match: ${res.status}`);
    }
    return {
      rows: [
        { label: `seed ${count} checkpoints (fast-import + batched insert)`, unit: 's', value: seedMs / 1000, decimals: 2 },
        { label: `GET tree of ${count + 1} nodes, whole (200)`, unit: 'ms', stats: summarize(whole) },
        { label: 'GET tree, revalidated (If-None-Match → 304)', unit: 'ms', stats: summarize(revalidated) },
        { label: 'tree response size', unit: 'KiB', value: bytes / 1024, decimals: 0 },
      ],
      notes: ['Sequential requests from this process to the platform in it (api + worker), real PostgreSQL; no compression.'],
      details: { count, runs, whole, revalidated, bytes },
    };
  } finally {
    await bench.stop();
  }
}

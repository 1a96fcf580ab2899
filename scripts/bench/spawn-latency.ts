/**
 * Spawn latency per compute provider: from asking for an instance to the first byte of output of
 * a command running in it (`echo ready`), for `local` (bubblewrap) and `container` (podman over the
 * Docker API), cold (instance created now) and from the warm pool (instance started beforehand,
 * handed out through the Postgres-backed pool). The `local` provider has nothing to pre-start
 * (a sandbox is a process per command), so it has no warm figure.
 *
 * A private `podman system service` (scripts/services/podman.ts), embedded PGlite for the pool.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { createProviders } from '../../activities/compute/index.js';
import type { ComputeProvider, Instance } from '../../activities/compute/provider.js';
import { claimFromPool, fillPool, forgetWarm } from '../../activities/compute/warm-pool.js';
import { loadConfig } from '../../config/index.js';
import { createDb, migrateLatest } from '../../store/db.js';
import { startPodman } from '../services/podman.js';
import { summarize, type BenchOptions, type BenchOutput } from './common.js';

/** Runs `echo ready` and resolves at its first output, in ms after `t0`. */
async function firstOutput(provider: ComputeProvider, instance: Instance, t0: number): Promise<number> {
  let at = 0;
  const result = await provider.exec(instance, {
    command: 'echo ready',
    network: false,
    deadline: Date.now() + 30_000,
    onOutput: () => {
      if (!at) at = performance.now() - t0;
    },
  });
  if (result.exitCode !== 0 || !at) throw new Error(`${provider.id}: the command did not run (${JSON.stringify(result)})`);
  return at;
}

export async function spawnLatency(opts: BenchOptions): Promise<BenchOutput> {
  const runs = opts.quick ? 5 : 20;
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'autovibe-bench-spawn-'));
  const podman = await startPodman();
  const config = loadConfig({ AUTOVIBE_HOME: home, AUTOVIBE_CONTAINER_SOCKET: podman.socketPath, AUTOVIBE_CONTAINER_IMAGE: podman.image, LOG_LEVEL: 'warn' });
  const db = await createDb({ databaseUrl: undefined, home });
  try {
    await migrateLatest(db);
    const providers = createProviders(config);
    const samples: Record<string, number[]> = { 'local cold': [], 'container cold': [], 'container warm': [] };
    const workspace = () => {
      const ws = path.join(config.workspacesDir, `machine-${crypto.randomUUID()}`);
      fs.mkdirSync(ws, { recursive: true });
      return ws;
    };
    const machine = () => ({ machineId: `machine-${crypto.randomUUID()}`, projectId: 'project-bench' });

    for (let i = 0; i < runs + 1; i++) {
      const keep = i > 0; // the first round warms caches (image layers, binaries) and is dropped
      for (const id of ['local', 'container'] as const) {
        const provider = providers.get(id)!;
        const ws = workspace();
        const t0 = performance.now();
        const instance = await provider.provision({ ...machine(), profile: 'lightweight', spot: false, workspace: ws, tags: {} });
        const ms = await firstOutput(provider, instance, t0);
        if (keep) samples[`${id} cold`]!.push(ms);
        await provider.terminate(instance);
      }
      const container = providers.get('container')!;
      await fillPool(db, config, container, 'lightweight', 1); // before the clock starts: that is the point of a pool
      const ws = path.join(config.workspacesDir, `machine-${crypto.randomUUID()}`);
      const t0 = performance.now();
      const instance = await claimFromPool(db, 'container', 'lightweight', machine(), ws);
      if (!instance) throw new Error('the warm pool handed out nothing');
      const ms = await firstOutput(container, instance, t0);
      if (keep) samples['container warm']!.push(ms);
      await container.terminate(instance);
      await forgetWarm(db, instance.instanceRef);
      opts.log(`round ${i}/${runs} done`);
    }
    return {
      rows: Object.entries(samples).map(([label, s]) => ({ label: `${label}: request → first output`, unit: 'ms', stats: summarize(s), decimals: 1 })),
      notes: [
        'local has no warm pool: its instance is a workspace path and each command is a fresh bubblewrap sandbox',
        'container warm: the pool claim is a Postgres row lock (PGlite here) plus a directory rename; the container was started beforehand',
      ],
      details: { samples, runs },
    };
  } finally {
    await db.destroy();
    await podman.stop();
    fs.rmSync(home, { recursive: true, force: true });
  }
}

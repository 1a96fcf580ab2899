/**
 * Snapshot store: a chain of 50 checkpoints of a real repository (this project's own tracked
 * source plus the `knex` package from node_modules, copied into a scratch workspace), each after a
 * few small edits (lines inserted, a file added, a file removed), stored in the content-addressed
 * chunk store. Reports the bytes the store holds against the bytes of 50 full copies (dedup +
 * compression), what one edit step costs, and snapshot and restore throughput. The restored last
 * checkpoint is checked byte for byte against the workspace.
 */
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { ChunkStore, restoreTree, storeTree, TreeMemory, type ManifestEntry } from '../../store/snapshots.js';
import { summarize, type BenchOptions, type BenchOutput } from './common.js';
import { prng } from '../../test/support/prng.js';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const MB = 1024 * 1024;

function copyRepository(into: string): void {
  const tracked = execFileSync('git', ['ls-files', '-z'], { cwd: REPO_ROOT, encoding: 'utf8' }).split('\0').filter(Boolean);
  for (const rel of tracked) {
    const from = path.join(REPO_ROOT, rel);
    if (!fs.existsSync(from) || !fs.lstatSync(from).isFile()) continue;
    fs.mkdirSync(path.dirname(path.join(into, rel)), { recursive: true });
    fs.copyFileSync(from, path.join(into, rel));
  }
  fs.cpSync(path.join(REPO_ROOT, 'node_modules', 'knex'), path.join(into, 'node_modules', 'knex'), { recursive: true, dereference: true });
}

function listFiles(root: string): string[] {
  return (fs.readdirSync(root, { recursive: true }) as string[]).filter((f) => fs.lstatSync(path.join(root, f)).isFile()).sort();
}

/** A few small edits, as a machine's work between two checkpoints. */
function edit(root: string, step: number, rand: () => number): void {
  const files = listFiles(root).filter((f) => /\.(ts|js|md|json)$/.test(f));
  for (let i = 0; i < 3; i++) {
    const file = path.join(root, files[Math.floor(rand() * files.length)]!);
    const lines = fs.readFileSync(file, 'utf8').split('\n');
    lines.splice(Math.floor(rand() * lines.length), 0, `// step ${step}: change ${i} ${crypto.randomBytes(4).toString('hex')}`);
    fs.writeFileSync(file, lines.join('\n'));
  }
  if (step % 5 === 0) fs.writeFileSync(path.join(root, `notes/step-${step}.md`), `# Step ${step}\n\n${'Work done in this step. '.repeat(20)}\n`);
  if (step % 7 === 0) fs.rmSync(path.join(root, files[Math.floor(rand() * files.length)]!), { force: true });
}

function fingerprint(root: string): string {
  const h = crypto.createHash('sha256');
  for (const f of listFiles(root)) {
    const st = fs.statSync(path.join(root, f));
    h.update(`${f}\0${st.mode & 0o7777}\0`).update(fs.readFileSync(path.join(root, f)));
  }
  return h.digest('hex');
}

function dirBytes(dir: string): number {
  if (!fs.existsSync(dir)) return 0;
  return (fs.readdirSync(dir, { recursive: true }) as string[]).reduce((n, f) => {
    const st = fs.statSync(path.join(dir, f));
    return n + (st.isFile() ? st.size : 0);
  }, 0);
}

export async function snapshotStore(opts: BenchOptions): Promise<BenchOutput> {
  const checkpoints = opts.quick ? 10 : 50;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'autovibe-bench-snapshots-'));
  try {
    const ws = path.join(tmp, 'workspace');
    copyRepository(ws);
    fs.mkdirSync(path.join(ws, 'notes'));
    const store = new ChunkStore(path.join(tmp, 'store'));
    // Load the zstd WebAssembly module before any timing.
    fs.mkdirSync(path.join(tmp, 'warm-up'));
    fs.writeFileSync(path.join(tmp, 'warm-up', 'x'), 'x');
    await storeTree(path.join(tmp, 'warm-up'), new ChunkStore(path.join(tmp, 'warm-up-store')));
    // The checkout is older than a machine's first checkpoint: past the window in which a file
    // just written is never trusted as unchanged (store/snapshots.ts TreeMemory).
    await new Promise((r) => setTimeout(r, 2_100));
    const memory = new TreeMemory();
    const fullReadMBps: number[] = [];
    const rand = prng(42);
    let fullBytes = 0;
    let storedBytes = 0;
    const stepStored: number[] = [];
    const stepMBps: number[] = [];
    let first = { bytes: 0, stored: 0, seconds: 0 };
    let last: ManifestEntry[] = [];
    for (let i = 0; i < checkpoints; i++) {
      if (i > 0) edit(ws, i, rand);
      const t = performance.now();
      const result = await storeTree(ws, store, undefined, memory);
      const seconds = (performance.now() - t) / 1000;
      if (i > 0) {
        // The same step again reading every file (nothing new to store): what the memory saves.
        const tf = performance.now();
        await storeTree(ws, store);
        fullReadMBps.push(result.bytes / MB / ((performance.now() - tf) / 1000));
      }
      fullBytes += result.bytes;
      storedBytes += result.storedBytes;
      last = result.manifest;
      if (i === 0) first = { bytes: result.bytes, stored: result.storedBytes, seconds };
      else {
        stepStored.push(result.storedBytes);
        stepMBps.push(result.bytes / MB / seconds);
      }
      opts.log(`checkpoint ${i + 1}/${checkpoints}: ${(result.bytes / MB).toFixed(2)} MB, +${result.storedBytes} bytes stored`);
    }
    const onDisk = dirBytes(path.join(tmp, 'store'));

    const restoreSeconds: number[] = [];
    const runs = opts.quick ? 1 : 3;
    for (let r = 0; r < runs; r++) {
      const target = path.join(tmp, `restore-${r}`);
      const t = performance.now();
      await restoreTree(last, [store], target);
      restoreSeconds.push((performance.now() - t) / 1000);
      if (fingerprint(target) !== fingerprint(ws)) throw new Error('restored tree differs from the workspace');
      fs.rmSync(target, { recursive: true, force: true });
    }
    const lastBytes = last.reduce((n, e) => n + (e.type === 'file' ? e.size : 0), 0);
    const restoreMBps = restoreSeconds.map((s) => lastBytes / MB / s);
    const files = last.filter((e) => e.type === 'file').length;
    return {
      rows: [
        { label: `full copies of ${checkpoints} checkpoints`, unit: 'MB', value: fullBytes / MB, decimals: 1 },
        { label: 'chunk store after the chain (chunk payload)', unit: 'MB', value: storedBytes / MB, decimals: 2 },
        { label: 'stored / full copies', unit: '%', value: (100 * storedBytes) / fullBytes, decimals: 2 },
        { label: 'first checkpoint: stored / its bytes (compression + in-tree dedup)', unit: '%', value: (100 * first.stored) / first.bytes, decimals: 1 },
        { label: 'one edit step stored', unit: 'KB', stats: summarize(stepStored.map((b) => b / 1024)), decimals: 1 },
        { label: 'snapshot throughput, first checkpoint (every chunk new)', unit: 'MB/s', value: first.bytes / MB / first.seconds, decimals: 1 },
        { label: 'snapshot throughput, incremental checkpoints (unchanged files not read again)', unit: 'MB/s', stats: summarize(stepMBps), decimals: 1 },
        { label: 'snapshot throughput, incremental checkpoints reading every file', unit: 'MB/s', stats: summarize(fullReadMBps), decimals: 1 },
        { label: 'restore throughput (empty target, verified)', unit: 'MB/s', stats: summarize(restoreMBps), decimals: 1 },
        { label: 'restore rate (small files dominate this tree)', unit: 'files/s', stats: summarize(restoreSeconds.map((sec) => files / sec)), decimals: 0 },
      ],
      notes: [
        `snapshots: workspace of ${files} files, ${(lastBytes / MB).toFixed(2)} MB (this project's tracked files + node_modules/knex); zstd level 3, content-defined chunks of ~8 KiB; chunk files on disk: ${(onDisk / MB).toFixed(2)} MB (sum of file lengths)`,
      ],
      details: { checkpoints, fullBytes, storedBytes, onDisk, stepStored, restoreSeconds, files },
    };
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

/**
 * A machine's checkpoint of its workspace, phase by phase, as activities/machine-run.ts makes it:
 * the frozen copy of the live workspace, the git commit (store/git.ts commitFiles) and the
 * chunk-store snapshot of the copy. Measured for the first checkpoint (nothing known), for an
 * unchanged workspace (the stat cache vouches for every tracked file) next to the same commit
 * without the cache (every file hashed again, as before), and after one file changed.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { withFrozenCopy, defaultFreezeLimits } from '../../store/frozen-copy.js';
import { commitFiles, GitStatCache, initProjectRepo, treeOf, type CommitReport } from '../../store/git.js';
import { ChunkStore, storeTree } from '../../store/snapshots.js';
import { sleep, summarize, type BenchOptions, type BenchOutput, type Row } from './common.js';

const KiB = 1024;

interface Phases {
  copy: number;
  git: number;
  snapshot: number;
  total: number;
  added: number | null;
}

export async function checkpointOverhead(opts: BenchOptions): Promise<BenchOutput> {
  const files = opts.quick ? 1_000 : 4_000;
  const fileBytes = 8 * KiB;
  const reps = opts.quick ? 5 : 15;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'autovibe-bench-checkpoint-'));
  try {
    const repo = path.join(tmp, 'repo.git');
    const ws = path.join(tmp, 'workspace');
    const store = new ChunkStore(path.join(tmp, 'chunks'));
    const date = new Date('2026-12-07T00:00:00Z');
    let parent = await initProjectRepo(repo, date);
    opts.log(`workspace of ${files} files of ${fileBytes / KiB} KiB`);
    for (let i = 0; i < files; i++) {
      const file = path.join(ws, `pkg${i % 40}`, `file-${i}.txt`);
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, crypto.randomBytes(fileBytes / 2).toString('hex'));
    }
    // Files written within the racy margin of a copy are not trusted by the next one (store/git.ts).
    const cache = new GitStatCache();
    await sleep(cache.racyMarginMs + 200);

    const checkpoint = async (useCache: boolean, advance: boolean): Promise<Phases> => {
      const t0 = performance.now();
      let t1 = 0;
      let t2 = 0;
      const report: CommitReport = { added: null, reused: 0 };
      const commit = await withFrozenCopy(ws, defaultFreezeLimits(), async (copy) => {
        t1 = performance.now();
        const c = await commitFiles(repo, copy.root, parent, 'checkpoint', date, useCache ? { cache, workspace: ws, copy, report } : undefined);
        t2 = performance.now();
        await storeTree(copy.root, store);
        return c;
      });
      const t3 = performance.now();
      if (advance) parent = commit;
      return { copy: t1 - t0, git: t2 - t1, snapshot: t3 - t2, total: t3 - t0, added: useCache ? (report.added?.length ?? null) : null };
    };

    opts.log('first checkpoint (nothing known yet)');
    const first = await checkpoint(true, true);
    const unchanged: Phases[] = [];
    const uncached: Phases[] = [];
    opts.log(`${reps} checkpoints of the unchanged workspace, with and without the stat cache, alternating`);
    for (let i = 0; i < reps; i++) {
      uncached.push(await checkpoint(false, false));
      unchanged.push(await checkpoint(true, true));
    }
    const beforeChange = await treeOf(repo, parent);
    const changed: Phases[] = [];
    opts.log(`${reps} checkpoints after one file changed`);
    for (let i = 0; i < reps; i++) {
      fs.writeFileSync(path.join(ws, 'pkg0', 'file-0.txt'), crypto.randomBytes(fileBytes / 2).toString('hex'));
      changed.push(await checkpoint(true, true));
    }
    if ((await treeOf(repo, parent)) === beforeChange) throw new Error('the changed file did not reach the checkpoint');
    const addedUnchanged = unchanged.map((p) => p.added);
    if (addedUnchanged.some((n) => n !== 0)) throw new Error(`unchanged workspace handed files to git: ${addedUnchanged.join(',')}`);

    const col = (runs: Phases[], k: keyof Omit<Phases, 'added'>) => summarize(runs.map((r) => r[k]));
    const rows: Row[] = [
      { label: `first checkpoint (${files} files, nothing known): total`, unit: 'ms', value: first.total },
      { label: '  frozen copy', unit: 'ms', value: first.copy },
      { label: '  git commit (every file hashed)', unit: 'ms', value: first.git },
      { label: '  snapshot of the copy', unit: 'ms', value: first.snapshot },
      { label: 'unchanged workspace, stat cache: total', unit: 'ms', stats: col(unchanged, 'total') },
      { label: '  frozen copy', unit: 'ms', stats: col(unchanged, 'copy') },
      { label: '  git commit (no file handed to git)', unit: 'ms', stats: col(unchanged, 'git') },
      { label: '  snapshot of the copy', unit: 'ms', stats: col(unchanged, 'snapshot') },
      { label: 'unchanged workspace, without the cache: total', unit: 'ms', stats: col(uncached, 'total') },
      { label: '  git commit (every file hashed again)', unit: 'ms', stats: col(uncached, 'git') },
      { label: 'one file changed, stat cache: total', unit: 'ms', stats: col(changed, 'total') },
      { label: '  git commit', unit: 'ms', stats: col(changed, 'git') },
      {
        label: 'git commit, unchanged: without / with the cache',
        unit: 'ratio',
        value: col(uncached, 'git').median / col(unchanged, 'git').median,
        decimals: 1,
      },
    ];
    return {
      rows,
      notes: [
        `files handed to git per unchanged checkpoint: ${addedUnchanged.join(', ')} (of ${files}); after one change: ${changed.map((p) => p.added ?? 'all').join(', ')} ` +
          `(a file changed within ${cache.racyMarginMs} ms of the previous copy is not trusted, so it is handed again).`,
        'The frozen copy still copies every file (a reflink clone where the file system has them; a full copy on ext4), and the snapshot of the copy ' +
          'reads every file to chunk it (no chunk is written twice); the git side reads only what changed.',
      ],
      details: { files, fileBytes, reps, first, unchanged, uncached, changed },
    };
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

/**
 * Seeds a real project with many checkpoints quickly, for tests and benchmarks (importable from
 * scripts/bench): the commits go into the project's own bare repository through one
 * `git fast-import` (each pinned as `refs/checkpoints/<id>`, as store/checkpoints.ts
 * recordCheckpoint pins real ones), and the rows through one batched insert
 * (store/checkpoints.ts insertCheckpointBatch). The files and diff endpoints work on them.
 *
 * The shape is a main line with side branches forking off any earlier checkpoint (and so off
 * other branches), each branch one made-up machine: its checkpoints are `turn`s, its last one
 * `final`. No machine rows and no audit records are written.
 */
import { spawn, execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { CheckpointKind } from '../../domain/machines.js';
import { getCheckpoint, insertCheckpointBatch } from '../../store/checkpoints.js';
import type { Db } from '../../store/db.js';
import { getProject } from '../../store/projects.js';
import { prng } from './prng.js';

const run = promisify(execFile);

export interface SeedOptions {
  /** How many checkpoints to add (besides the root). */
  count: number;
  /** PRNG seed of the shape (the same seed, the same shape). */
  seed?: number;
  /** Every n-th checkpoint is a milestone (0: none). Default 250. */
  milestoneEvery?: number;
  /** When the first seeded checkpoint was made; the others follow a second apart. Default: `count` seconds ago. */
  start?: Date;
}

export interface SeededCheckpoint {
  id: string;
  parentId: string;
  machineId: string;
  commit: string;
  kind: CheckpointKind;
  milestone: boolean;
  /** 0 for the main line. */
  branch: number;
  createdAt: string;
}

export interface SeededTree {
  projectId: string;
  rootCheckpointId: string;
  /** In creation order (parents before children). */
  checkpoints: SeededCheckpoint[];
  /** How many branches besides the main line. */
  sideBranches: number;
}

/** Parent index (-1: the root checkpoint) and branch of each new checkpoint: a main line with side branches. */
export function treeShape(count: number, seed = 1): Array<{ parent: number; branch: number }> {
  const rand = prng(seed);
  const nodes: Array<{ parent: number; branch: number }> = [];
  let mainTip = -1;
  let branches = 0;
  while (nodes.length < count) {
    const main = 5 + Math.floor(rand() * 20);
    for (let i = 0; i < main && nodes.length < count; i++) {
      nodes.push({ parent: mainTip, branch: 0 });
      mainTip = nodes.length - 1;
    }
    if (nodes.length >= count) break;
    const branch = ++branches;
    let tip = Math.floor(rand() * nodes.length);
    const length = 1 + Math.floor(rand() * 15);
    for (let i = 0; i < length && nodes.length < count; i++) {
      nodes.push({ parent: tip, branch });
      tip = nodes.length - 1;
    }
  }
  return nodes;
}

/** Adds `opts.count` checkpoints to the project's evolution tree (below its root checkpoint). */
export async function seedCheckpoints(db: Db, projectId: string, opts: SeedOptions): Promise<SeededTree> {
  const project = await getProject(db, projectId);
  if (!project?.rootCheckpointId) throw new Error(`project ${projectId} not found, or without a root checkpoint`);
  const root = (await getCheckpoint(db, project.rootCheckpointId))!;
  const shape = treeShape(opts.count, opts.seed ?? 1);
  const milestoneEvery = opts.milestoneEvery ?? 250;
  const start = (opts.start ?? new Date(Date.now() - opts.count * 1000)).getTime();
  const branchMachine = new Map<number, string>();
  const lastOfBranch = new Map<number, number>();
  shape.forEach((n, i) => lastOfBranch.set(n.branch, i));
  const stepOfBranch = new Map<number, number>();

  const checkpoints: SeededCheckpoint[] = shape.map((n, i) => {
    if (!branchMachine.has(n.branch)) branchMachine.set(n.branch, `machine-${crypto.randomUUID()}`);
    return {
      id: `checkpoint-${crypto.randomUUID()}`,
      parentId: '',
      machineId: branchMachine.get(n.branch)!,
      commit: '',
      kind: lastOfBranch.get(n.branch) === i ? 'final' : 'turn',
      milestone: milestoneEvery > 0 && (i + 1) % milestoneEvery === 0,
      branch: n.branch,
      createdAt: new Date(start + i * 1000).toISOString(),
    };
  });
  checkpoints.forEach((c, i) => (c.parentId = shape[i]!.parent < 0 ? root.id : checkpoints[shape[i]!.parent]!.id));

  // One fast-import stream: commit i is mark :i+1, a child of its parent's mark (or the root's commit).
  const parts: string[] = [];
  const data = (text: string) => `data ${Buffer.byteLength(text)}\n${text}\n`;
  checkpoints.forEach((c, i) => {
    const step = (stepOfBranch.get(c.branch) ?? 0) + 1;
    stepOfBranch.set(c.branch, step);
    const when = `${Math.floor(Date.parse(c.createdAt) / 1000)} +0000`;
    const parent = shape[i]!.parent;
    parts.push(
      `commit refs/checkpoints/${c.id}\nmark :${i + 1}\n`,
      `author AutoVibe <machines@autovibe.local> ${when}\ncommitter AutoVibe <machines@autovibe.local> ${when}\n`,
      data(`${c.kind} checkpoint ${c.id} of ${c.machineId} (seeded)`),
      `from ${parent < 0 ? root.commit : `:${parent + 1}`}\n`,
      `M 100644 inline progress.txt\n`,
      data(`branch ${c.branch}, step ${step}\n`),
    );
    if (step === 1) parts.push(`M 100644 inline branches/${c.branch}.txt\n`, data(`branch ${c.branch} forked from ${c.parentId}\n`));
    parts.push('\n');
  });
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'autovibe-seed-'));
  try {
    const marks = path.join(dir, 'marks');
    await fastImport(project.repoPath, parts.join(''), marks);
    for (const line of (await fs.readFile(marks, 'utf8')).split('\n')) {
      const m = /^:(\d+) ([0-9a-f]+)$/.exec(line);
      if (m) checkpoints[Number(m[1]) - 1]!.commit = m[2]!;
    }
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
  const missing = checkpoints.find((c) => !c.commit);
  if (missing) throw new Error(`git fast-import left checkpoint ${missing.id} without a commit`);
  await run('git', ['--git-dir', project.repoPath, 'pack-refs', '--all']);

  await insertCheckpointBatch(
    db,
    checkpoints.map((c) => ({
      id: c.id,
      projectId,
      parentId: c.parentId,
      machineId: c.machineId,
      commit: c.commit,
      kind: c.kind,
      trigger: c.kind === 'final' ? 'completed' : 'turn',
      milestone: c.milestone,
      createdAt: c.createdAt,
    })),
  );
  return { projectId, rootCheckpointId: root.id, checkpoints, sideBranches: Math.max(...shape.map((n) => n.branch)) };
}

function fastImport(repoPath: string, stream: string, marksFile: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('git', ['--git-dir', repoPath, 'fast-import', '--quiet', `--export-marks=${marksFile}`], { stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`git fast-import exited with ${code}: ${stderr.trim()}`))));
    child.stdin.end(stream);
  });
}

import type { Knex } from 'knex';
import type { CheckpointKind, CheckpointStatus } from '../domain/machines.js';
import { appendAudit, type AuditEntry } from './audit.js';
import type { Db } from './db.js';
import { appendEvent, inTransaction } from './events.js';
import { pinCheckpoint } from './git.js';
import { keyOfRow, keyset, type CreatedKey, type KeysetPage } from './paging.js';
import type { RepoMirror } from './repo-mirror.js';

export interface Checkpoint {
  id: string;
  projectId: string;
  parentId: string | null;
  /** A merge's second parent (the checkpoint merged into `parentId`); null for every other checkpoint. */
  mergeParentId: string | null;
  machineId: string | null;
  commit: string;
  kind: CheckpointKind;
  trigger: string;
  status: CheckpointStatus;
  createdAt: string;
}

function toCheckpoint(r: Record<string, any>): Checkpoint {
  return {
    id: r.id,
    projectId: r.project_id,
    parentId: r.parent_id,
    mergeParentId: r.merge_parent_id ?? null,
    machineId: r.machine_id,
    commit: r.commit,
    kind: r.kind,
    trigger: r.trigger,
    status: r.status ?? 'ready',
    createdAt: new Date(r.created_at).toISOString(),
  };
}

/** What a new checkpoint is made of: a second parent and a status other than `ready` only for merges. */
export type NewCheckpoint = Omit<Checkpoint, 'createdAt' | 'mergeParentId' | 'status'> & Partial<Pick<Checkpoint, 'mergeParentId' | 'status'>>;

const checkpointRow = (c: NewCheckpoint) => ({
  id: c.id,
  project_id: c.projectId,
  parent_id: c.parentId,
  merge_parent_id: c.mergeParentId ?? null,
  machine_id: c.machineId,
  commit: c.commit,
  kind: c.kind,
  trigger: c.trigger,
  status: c.status ?? 'ready',
});

/** Inserts a checkpoint once; a repeat with the same id finds the stored one (`inserted` false). */
async function insertOnce(db: Db | Knex.Transaction, c: NewCheckpoint): Promise<{ checkpoint: Checkpoint; inserted: boolean }> {
  const inserted = (await db('checkpoints').insert(checkpointRow(c)).onConflict('id').ignore().returning('id')).length > 0;
  return { checkpoint: toCheckpoint(await db('checkpoints').where({ id: c.id }).first()), inserted };
}

/** Inserts a checkpoint once; a repeat with the same id returns the stored one. */
export async function insertCheckpoint(db: Db | Knex.Transaction, c: NewCheckpoint): Promise<Checkpoint> {
  return (await insertOnce(db, c)).checkpoint;
}

/**
 * The one way a checkpoint is recorded: its commit pinned as `refs/checkpoints/<id>` in the
 * project's repository (so git never collects it), its row, and its audit record — by default
 * `checkpoint.created` by the system; `audit` replaces fields of that record (a use case that
 * says more, e.g. `machine.inputs_placed`), and null leaves it to the caller's own record (a
 * project's root checkpoint, named in `project.created`). Idempotent on the checkpoint id: a
 * retry pins the same ref and finds the row and the record. The ref is pinned first (a ref
 * without a row is harmless, a row without its ref is not); the row and the record are written
 * together, in `db` when it is a transaction, so they commit with the caller's other writes.
 * With `mirror` (a shared object store), the checkpoint's git bundle is written after the ref and
 * before the row.
 */
export async function recordCheckpoint(
  db: Db | Knex.Transaction,
  repoPath: string,
  c: NewCheckpoint,
  audit: Partial<AuditEntry> | null = {},
  mirror: RepoMirror | null = null,
): Promise<Checkpoint> {
  await pinCheckpoint(repoPath, c.id, c.commit);
  // With a shared object store, the checkpoint's bundle is there before its row names it.
  await mirror?.publish(db, repoPath, { projectId: c.projectId, checkpointId: c.id, commit: c.commit, parentIds: [c.parentId, c.mergeParentId] });
  return inTransaction(db, async (trx) => {
    const { checkpoint: stored, inserted } = await insertOnce(trx, c);
    if (audit) {
      await appendAudit(trx, {
        actor: 'system',
        action: 'checkpoint.created',
        subjectType: 'checkpoint',
        subjectId: c.id,
        projectId: c.projectId,
        details: {
          machineId: c.machineId,
          parentId: c.parentId,
          ...(c.mergeParentId ? { mergeParentId: c.mergeParentId } : {}),
          ...(c.status && c.status !== 'ready' ? { status: c.status } : {}),
          commit: c.commit,
          kind: c.kind,
          trigger: c.trigger,
        },
        idempotencyKey: `checkpoint:${c.id}`,
        ...audit,
      });
    }
    // Watchers of the evolution tree (the dashboard, the event feed): once per checkpoint, not per retry.
    if (inserted) {
      await appendEvent(trx, {
        kind: 'checkpoint.created',
        projectId: c.projectId,
        subjectId: c.id,
        data: {
          parentId: c.parentId,
          machineId: c.machineId,
          kind: c.kind,
          trigger: c.trigger,
          ...(c.mergeParentId ? { mergeParentId: c.mergeParentId } : {}),
          ...(c.status && c.status !== 'ready' ? { status: c.status } : {}),
        },
      });
    }
    return stored;
  });
}

/**
 * Moves a checkpoint from status `from` to `to` (a proposed merge accepted or rejected): false when
 * it is not in `from` any more (someone else decided first). In `db`'s transaction when it is one.
 */
export async function setCheckpointStatus(db: Db | Knex.Transaction, id: string, from: CheckpointStatus, to: CheckpointStatus): Promise<boolean> {
  return (await db('checkpoints').where({ id, status: from }).update({ status: to })) > 0;
}

export async function getCheckpoint(db: Db, id: string): Promise<Checkpoint | null> {
  const row = await db('checkpoints').where({ id }).first();
  return row ? toCheckpoint(row) : null;
}

export async function listCheckpoints(db: Db, projectId: string): Promise<Checkpoint[]> {
  return (
    await db('checkpoints')
      .where({ project_id: projectId })
      .orderBy([{ column: 'created_at' }, { column: 'id' }])
  ).map(toCheckpoint);
}

/** A project's checkpoints oldest first, one page; optionally only a machine's, or a checkpoint's children. */
export async function pageCheckpoints(
  db: Db,
  projectId: string,
  page: KeysetPage & { machineId?: string; parentId?: string },
): Promise<Array<{ item: Checkpoint; key: CreatedKey }>> {
  const q = db('checkpoints').where('checkpoints.project_id', projectId);
  if (page.machineId) q.where('checkpoints.machine_id', page.machineId);
  if (page.parentId) q.where('checkpoints.parent_id', page.parentId);
  const rows = await keyset(q, 'checkpoints', page);
  return rows.map((r: any) => ({ item: toCheckpoint(r), key: keyOfRow(r) }));
}

export async function machineCheckpointIds(db: Db, machineId: string): Promise<string[]> {
  const rows = await db('checkpoints').where({ machine_id: machineId }).orderBy('created_at').select('id');
  return rows.map((r) => r.id);
}

/** `machineCheckpointIds` of several machines in one query (machines without checkpoints are absent). */
export async function checkpointIdsOfMachines(db: Db, machineIds: readonly string[]): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  if (!machineIds.length) return out;
  const rows = await db('checkpoints')
    .whereIn('machine_id', [...new Set(machineIds)])
    .orderBy('created_at')
    .select('id', 'machine_id');
  for (const r of rows) {
    const list = out.get(r.machine_id);
    if (list) list.push(r.id);
    else out.set(r.machine_id, [r.id]);
  }
  return out;
}

/** Checkpoints by id, one query (ids without a checkpoint are absent). */
export async function getCheckpoints(db: Db, ids: readonly string[]): Promise<Map<string, Checkpoint>> {
  const out = new Map<string, Checkpoint>();
  if (!ids.length) return out;
  for (const r of await db('checkpoints').whereIn('id', [...new Set(ids)])) out.set(r.id, toCheckpoint(r));
  return out;
}

/** The newest checkpoint a machine made, or null before its first. */
export async function latestCheckpointOfMachine(db: Db, machineId: string): Promise<string | null> {
  const row = await db('checkpoints').where({ machine_id: machineId }).orderBy('created_at', 'desc').first('id');
  return row?.id ?? null;
}

/** One checkpoint as the whole-tree read answers it: what a tree view draws, without files or commit. */
export interface CheckpointNode {
  id: string;
  parentId: string | null;
  mergeParentId: string | null;
  machineId: string | null;
  kind: CheckpointKind;
  trigger: string;
  status: CheckpointStatus;
  milestone: boolean;
  createdAt: string;
}

/**
 * Every checkpoint of a project in one query, parents before children (creation order; a child
 * stored in the same instant as its parent, or before it, is moved after it).
 */
export async function checkpointTree(db: Db, projectId: string): Promise<CheckpointNode[]> {
  const rows = await db('checkpoints')
    .where({ project_id: projectId })
    .orderBy([{ column: 'created_at' }, { column: 'id' }])
    .select('id', 'parent_id', 'merge_parent_id', 'machine_id', 'kind', 'trigger', 'status', 'milestone', 'created_at');
  return parentsFirst(
    rows.map((r) => ({
      id: r.id,
      parentId: r.parent_id,
      mergeParentId: r.merge_parent_id,
      machineId: r.machine_id,
      kind: r.kind,
      trigger: r.trigger,
      status: r.status,
      milestone: Boolean(r.milestone),
      createdAt: new Date(r.created_at).toISOString(),
    })),
  );
}

/**
 * What the project's tree is now, as one short string that changes whenever the tree does: how
 * many checkpoints it has and a hash of their ids with their milestone marks and statuses (a
 * checkpoint is never deleted; the mark and a proposed merge's status are all that change). One aggregate, no rows returned.
 */
export async function checkpointTreeVersion(db: Db, projectId: string): Promise<string> {
  const row = await db('checkpoints')
    .where({ project_id: projectId })
    .first(db.raw('count(*) as n'), db.raw(`md5(coalesce(string_agg(id || ':' || milestone::int || ':' || status, ',' order by id), '')) as h`));
  return `${row?.n ?? 0}-${row?.h ?? ''}`;
}

/** `nodes` in their order, except that a node whose parent (in the list) comes later waits for it. */
export function parentsFirst<T extends { id: string; parentId: string | null }>(nodes: T[]): T[] {
  const present = new Set(nodes.map((n) => n.id));
  const placed = new Set<string>();
  const waiting = new Map<string, T[]>();
  const out: T[] = [];
  const place = (n: T) => {
    const stack = [n];
    while (stack.length) {
      const x = stack.pop()!;
      out.push(x);
      placed.add(x.id);
      const kids = waiting.get(x.id);
      if (kids) {
        waiting.delete(x.id);
        stack.push(...kids.reverse());
      }
    }
  };
  for (const n of nodes) {
    if (n.parentId !== null && present.has(n.parentId) && !placed.has(n.parentId)) {
      const list = waiting.get(n.parentId) ?? [];
      list.push(n);
      waiting.set(n.parentId, list);
    } else place(n);
  }
  // A cycle cannot be stored (a parent exists before its child), but nothing is ever dropped.
  for (const list of waiting.values()) for (const n of list) if (!placed.has(n.id)) place(n);
  return out;
}

/**
 * Stores many checkpoint rows at once (seeded trees for tests and benchmarks), in chunks inside one
 * transaction; their commits must already be pinned in the project's repository. No audit records.
 */
export async function insertCheckpointBatch(db: Db, rows: Array<NewCheckpoint & { createdAt: string; milestone?: boolean }>): Promise<void> {
  await db.transaction(async (trx) => {
    for (let i = 0; i < rows.length; i += 2000) {
      await trx('checkpoints').insert(rows.slice(i, i + 2000).map((c) => ({ ...checkpointRow(c), milestone: c.milestone ?? false, created_at: c.createdAt })));
    }
  });
}

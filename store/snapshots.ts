import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { compress, decompress, init as initZstd } from '@bokuweb/zstd-wasm';
import { chunkEnds } from '../domain/chunking.js';
import type { Db } from './db.js';
import { DirObjectStore, getBytes, type ObjectStore } from './object-store.js';

/**
 * Checkpoint snapshots in a content-addressed chunk store on disk.
 *
 * A snapshot holds the machine's whole workspace tree — tracked, untracked and ignored files,
 * empty directories, symlinks and modes — as a manifest (path → chunk hashes + file hash) in
 * Postgres and zstd-compressed chunks named by the SHA-256 of their content under
 * `<region dir>/chunks/ab/<hash>.zst`. A chunk any earlier snapshot stored is never written again,
 * so a checkpoint costs only what changed since its parent. Every chunk and every file is checked
 * against its hash when read: a corrupt or missing chunk in one region is read from the other.
 */
const run = promisify(execFile);

export type RegionName = 'primary' | 'replica';
export type Regions = Record<RegionName, string>;
/** The regions as functions take them: directories, or chunk stores (an object store with a local cache). */
export type RegionStores = Record<RegionName, string | ChunkStore>;
export const REGION_NAMES: readonly RegionName[] = ['primary', 'replica'];

export type ManifestEntry =
  | { path: string; type: 'file'; mode: number; size: number; sha256: string; chunks: string[] }
  | { path: string; type: 'dir'; mode: number }
  | { path: string; type: 'symlink'; mode: number; target: string };

export type SnapshotStatus = 'stored' | 'replicated' | 'pruned';
export type ReplicaStatus = 'stored' | 'pending' | 'replicated' | 'failed' | 'deleted';

export interface SnapshotSummary {
  checkpointId: string;
  projectId: string;
  status: SnapshotStatus;
  source: 'workspace' | 'commit';
  files: number;
  chunks: number;
  bytes: number;
  storedBytes: number;
  createdAt: string;
  prunedAt: string | null;
  replicas: Array<{ region: RegionName; status: ReplicaStatus; copiedBytes: number; error: string | null; updatedAt: string }>;
}

export class SnapshotError extends Error {
  override name = 'SnapshotError';
}

/** A chunk or file whose bytes do not match their hash (or a chunk that is missing). */
export class SnapshotCorruptError extends SnapshotError {
  override name = 'SnapshotCorruptError';
}

/** The most a chunk can hold once decompressed; a frame claiming more is corrupt. */
const MAX_CHUNK_BYTES = 64 * 1024 * 1024;

/**
 * The content size a zstd frame's header declares, or null when the bytes are not a frame with
 * one (RFC 8878 §3.1.1.1). Checked before the WebAssembly decoder sees the bytes: it allocates
 * what the header claims without checking the allocation, so one damaged header would corrupt
 * its heap for every later (de)compression in the process.
 */
export function zstdFrameContentSize(frame: Uint8Array): number | null {
  if (frame.length < 6 || frame[0] !== 0x28 || frame[1] !== 0xb5 || frame[2] !== 0x2f || frame[3] !== 0xfd) return null;
  const descriptor = frame[4]!;
  const fcsFlag = descriptor >> 6;
  const singleSegment = (descriptor >> 5) & 1;
  if ((descriptor >> 3) & 1) return null; // reserved bit
  const dictIdBytes = [0, 1, 2, 4][descriptor & 3]!;
  const fcsBytes = [singleSegment ? 1 : 0, 2, 4, 8][fcsFlag]!;
  if (fcsBytes === 0) return null;
  const at = 5 + (singleSegment ? 0 : 1) + dictIdBytes;
  if (frame.length < at + fcsBytes) return null;
  let size = 0;
  for (let i = fcsBytes - 1; i >= 0; i--) size = size * 256 + frame[at + i]!;
  return fcsBytes === 2 ? size + 256 : size;
}

/** Decompresses one chunk, refusing any frame whose header is not one this store writes. */
function decompressChunk(compressed: Uint8Array): Uint8Array {
  const size = zstdFrameContentSize(compressed);
  if (size === null || size > MAX_CHUNK_BYTES) throw new Error('not a zstd frame of a chunk');
  return decompress(compressed, { defaultHeapSize: size });
}

// The decoder is one WebAssembly instance per process, set up once: a second init() would swap
// its memory under callers holding views of the first (tests use compressChunk, never init()).
let zstdReady: Promise<void> | undefined;
function zstd(): Promise<void> {
  zstdReady ??= initZstd();
  return zstdReady;
}

/** A chunk as this store writes it (zstd at the store's level). */
export async function compressChunk(raw: Uint8Array): Promise<Uint8Array> {
  await zstd();
  return compress(raw, ZSTD_LEVEL);
}

const sha256 = (b: Uint8Array) => crypto.createHash('sha256').update(b).digest('hex');
const ZSTD_LEVEL = 3;

/** Where a chunk lives in a region: `chunks/ab/<hash>.zst`. */
export const chunkKey = (hash: string) => `chunks/${hash.slice(0, 2)}/${hash}.zst`;

/**
 * One region's chunks: in a directory (`<dir>/chunks/ab/<hash>.zst`, the embedded default) or in
 * an object store every host shares, with this host's directory as a cache in front of it.
 * Chunks are named by their content, so two hosts writing the same chunk write the same bytes.
 */
export class ChunkStore {
  readonly objects: ObjectStore;
  readonly cache: DirObjectStore | null;
  /** Where the chunks are, for messages. */
  readonly dir: string;

  constructor(at: string | ObjectStore, cacheDir?: string) {
    this.objects = typeof at === 'string' ? new DirObjectStore(at) : at;
    this.cache = cacheDir && typeof at !== 'string' ? new DirObjectStore(cacheDir) : null;
    this.dir = typeof at === 'string' ? at : at.location;
  }

  /** The chunk's file in the local directory (the cache when the chunks live in an object store). */
  pathOf(hash: string): string {
    const local = this.cache ?? this.objects;
    if (!(local instanceof DirObjectStore)) throw new SnapshotError(`chunks in ${this.dir} have no local file`);
    return local.pathOf(chunkKey(hash));
  }

  async has(hash: string): Promise<boolean> {
    if (this.cache && (await this.cache.head(chunkKey(hash)))) return true;
    return (await this.objects.head(chunkKey(hash))) !== null;
  }

  /** Stores compressed bytes under `hash` (whole: a crash never leaves half a chunk). */
  async writeCompressed(hash: string, compressed: Uint8Array): Promise<void> {
    await this.objects.put(chunkKey(hash), compressed);
    await this.cache?.put(chunkKey(hash), compressed);
  }

  async readCompressed(hash: string): Promise<Buffer> {
    const cached = this.cache ? await getBytes(this.cache, chunkKey(hash)).catch(() => null) : null;
    if (cached) return cached;
    const bytes = await getBytes(this.objects, chunkKey(hash)).catch((err: Error) => {
      throw new SnapshotCorruptError(`chunk ${hash} could not be read from ${this.dir}: ${err.message}`);
    });
    if (!bytes) throw new SnapshotCorruptError(`chunk ${hash} is missing from ${this.dir}`);
    return bytes;
  }

  /** The chunk's bytes, verified against its hash (a damaged cached copy is dropped and read again from the store). */
  async read(hash: string): Promise<Buffer> {
    await zstd();
    try {
      return await this.readVerified(hash);
    } catch (err) {
      if (!this.cache || !(err instanceof SnapshotCorruptError)) throw err;
      await this.cache.delete(chunkKey(hash));
      return this.readVerified(hash);
    }
  }

  private async readVerified(hash: string): Promise<Buffer> {
    const compressed = await this.readCompressed(hash);
    let raw: Buffer;
    try {
      raw = Buffer.from(decompressChunk(compressed));
    } catch {
      throw new SnapshotCorruptError(`chunk ${hash} in ${this.dir} does not decompress`);
    }
    if (sha256(raw) !== hash) throw new SnapshotCorruptError(`chunk ${hash} in ${this.dir} does not match its hash`);
    if (this.cache && !(await this.cache.head(chunkKey(hash)))) await this.cache.put(chunkKey(hash), compressed);
    return raw;
  }

  /** Marks a reused chunk as in use now, so a concurrent garbage collection spares it. */
  async touch(hash: string): Promise<void> {
    await this.objects.touch(chunkKey(hash));
    await this.cache?.touch(chunkKey(hash));
  }

  /** When the chunk was last written or marked in use; null when it is not there. */
  async modifiedMs(hash: string): Promise<number | null> {
    return (await this.objects.head(chunkKey(hash)))?.modifiedMs ?? null;
  }

  async remove(hash: string): Promise<void> {
    await this.objects.delete(chunkKey(hash));
    await this.cache?.delete(chunkKey(hash));
  }
}

/** A region as configured: a directory, or a chunk store (an object store with a local cache). */
export const chunkStoreOf = (region: string | ChunkStore): ChunkStore => (typeof region === 'string' ? new ChunkStore(region) : region);

/**
 * Runs `fn`; on EACCES (the machine made the entry unreadable to its owner) lends the owner `bits` for the call.
 * chmod follows links: only for trees no machine is changing (frozen copies, a workspace being restored).
 */
async function withAccess<T>(abs: string, mode: number, bits: number, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EACCES') throw err;
    await fs.chmod(abs, mode | bits);
    try {
      return await fn();
    } finally {
      await fs.chmod(abs, mode);
    }
  }
}

/** For entries a live machine may delete while a checkpoint reads its workspace: ENOENT → null. */
function gone(err: NodeJS.ErrnoException): null {
  if (err.code === 'ENOENT') return null;
  throw err;
}

/** Every entry under `root` (the worktree's own `.git` link excluded), parents before children, sorted. */
export interface ScannedEntry {
  path: string;
  type: 'file' | 'dir' | 'symlink';
  mode: number;
  size: number;
  /** Identity of the inode's last change: a file whose stat is the same as at the last read is unchanged. */
  ino: number;
  ctimeMs: number;
  mtimeMs: number;
}

export async function scanTree(root: string): Promise<ScannedEntry[]> {
  const out: ScannedEntry[] = [];
  async function walk(rel: string): Promise<void> {
    const dir = path.join(root, rel);
    const st = await fs.lstat(dir).catch(gone);
    const listed = st && (await withAccess(dir, st.mode & 0o7777, 0o500, () => fs.readdir(dir)).catch(gone));
    if (!listed) return;
    const names = listed.sort();
    for (const name of names) {
      const relPath = rel ? `${rel}/${name}` : name;
      if (relPath === '.git') continue;
      const st = await fs.lstat(path.join(root, relPath)).catch(gone);
      if (!st) continue; // removed by the running machine since the listing
      const mode = st.mode & 0o7777;
      const ids = { ino: st.ino, ctimeMs: st.ctimeMs, mtimeMs: st.mtimeMs };
      if (st.isSymbolicLink()) out.push({ path: relPath, type: 'symlink', mode, size: 0, ...ids });
      else if (st.isDirectory()) {
        out.push({ path: relPath, type: 'dir', mode, size: 0, ...ids });
        await walk(relPath);
      } else if (st.isFile()) out.push({ path: relPath, type: 'file', mode, size: st.size, ...ids });
      // Sockets, fifos and devices are not part of a workspace's content.
    }
  }
  if (!(await fs.stat(root)).isDirectory()) throw new SnapshotError(`${root} is not a directory`);
  await walk('');
  return out;
}

interface StoreResult {
  manifest: ManifestEntry[];
  bytes: number;
  storedBytes: number;
  chunks: number;
}

/**
 * What the last snapshot of each workspace read, so the next one need not read files that did not
 * change (the way git's index skips unchanged files). A file counts as unchanged when its inode,
 * size, mode, mtime and ctime are those it had when it was read, and its ctime is older than the
 * start of that scan by more than the file system's timestamp granularity: a write in the same
 * instant as the read could otherwise leave every stat field the same ("racily clean"). ctime
 * cannot be set from user space, so restoring old mtimes (tar, cp -p) never hides a change.
 * Kept in this process only: after a restart the first snapshot reads everything again.
 */
export class TreeMemory {
  private readonly roots = new Map<string, { scanStartedAt: number; files: Map<string, { stat: ScannedEntry; entry: ManifestEntry }> }>();
  constructor(private readonly maxRoots = 32) {}

  /** The manifest entry read last time, when the file has not changed since. */
  unchanged(root: string, e: ScannedEntry): ManifestEntry | null {
    const seen = this.roots.get(root);
    const last = seen?.files.get(e.path);
    if (!seen || !last) return null;
    const s = last.stat;
    const same = s.ino === e.ino && s.size === e.size && s.mode === e.mode && s.mtimeMs === e.mtimeMs && s.ctimeMs === e.ctimeMs;
    return same && e.ctimeMs < seen.scanStartedAt - RACY_MARGIN_MS ? last.entry : null;
  }

  remember(root: string, scanStartedAt: number, files: Array<{ stat: ScannedEntry; entry: ManifestEntry }>): void {
    this.roots.delete(root); // re-inserted last: the least recently snapshotted root is evicted first
    this.roots.set(root, { scanStartedAt, files: new Map(files.map((f) => [f.stat.path, f])) });
    while (this.roots.size > this.maxRoots) this.roots.delete(this.roots.keys().next().value!);
  }

  forget(root: string): void {
    this.roots.delete(root);
  }
}

/** Wider than the coarsest timestamp granularity of the file systems a workspace lives on. */
const RACY_MARGIN_MS = 2_000;

/**
 * Splits every file into chunks, writing each chunk the store does not have yet. With `memory`,
 * files unchanged since the last snapshot of the same root reuse its chunk list without being read
 * (their chunks are still checked to exist and marked in use).
 */
export async function storeTree(root: string, store: ChunkStore, db?: Db, memory?: TreeMemory): Promise<StoreResult> {
  await zstd();
  const scanStartedAt = Date.now();
  const entries = await scanTree(root);
  const read: Array<{ stat: ScannedEntry; entry: ManifestEntry }> = [];
  const manifest: Array<ManifestEntry | null> = new Array(entries.length).fill(null);
  const newChunks: Array<{ hash: string; size: number; stored_size: number }> = [];
  // One store operation per distinct chunk, however many files share it.
  const chunkOps = new Map<string, Promise<void>>();
  let bytes = 0;
  let storedBytes = 0;
  const putChunk = (hash: string, piece: Uint8Array) => {
    let op = chunkOps.get(hash);
    if (!op) {
      op = (async () => {
        if (await store.has(hash)) return store.touch(hash);
        const compressed = compress(piece, ZSTD_LEVEL);
        await store.writeCompressed(hash, compressed);
        newChunks.push({ hash, size: piece.length, stored_size: compressed.length });
        storedBytes += compressed.length;
      })();
      chunkOps.set(hash, op);
    }
    return op;
  };
  await forEachLimit(entries, IO_CONCURRENCY, async (e, i) => {
    const abs = path.join(root, e.path);
    if (e.type === 'dir') manifest[i] = { path: e.path, type: 'dir', mode: e.mode };
    else if (e.type === 'symlink') {
      const target = await fs.readlink(abs).catch(gone);
      if (target !== null) manifest[i] = { path: e.path, type: 'symlink', mode: e.mode, target };
    } else {
      const known = memory?.unchanged(root, e);
      if (known?.type === 'file' && (await Promise.all(known.chunks.map((h) => store.has(h)))).every(Boolean)) {
        await Promise.all(known.chunks.map((h) => store.touch(h)));
        bytes += known.size;
        manifest[i] = known;
        read.push({ stat: e, entry: known });
        return;
      }
      const data = await withAccess(abs, e.mode, 0o400, () => fs.readFile(abs)).catch(gone);
      if (!data) return; // removed by the running machine since the scan
      const hashes: string[] = [];
      const writes: Promise<void>[] = [];
      let start = 0;
      for (const end of chunkEnds(data)) {
        const piece = data.subarray(start, end);
        start = end;
        const hash = sha256(piece);
        hashes.push(hash);
        writes.push(putChunk(hash, piece));
      }
      await Promise.all(writes);
      bytes += data.length;
      manifest[i] = { path: e.path, type: 'file', mode: e.mode, size: data.length, sha256: sha256(data), chunks: hashes };
      // Remembered only when what was read is what the scan saw (the file did not change in between).
      if (data.length === e.size) read.push({ stat: e, entry: manifest[i] });
    }
  });
  memory?.remember(root, scanStartedAt, read);
  if (db) {
    for (let i = 0; i < newChunks.length; i += 1000) {
      await db('snapshot_chunks')
        .insert(newChunks.slice(i, i + 1000))
        .onConflict('hash')
        .ignore();
    }
  }
  return { manifest: manifest.filter((m): m is ManifestEntry => m !== null), bytes, storedBytes, chunks: chunkOps.size };
}

/** File operations in flight at once: overlapping them hides the file system's latency. */
const IO_CONCURRENCY = 16;

/** Runs `fn` over `items` with at most `limit` calls in flight; rejects with the first failure. */
async function forEachLimit<T>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (next < items.length && !failed) {
      const i = next++;
      try {
        await fn(items[i]!, i);
      } catch (err) {
        failed = true; // the other workers stop taking items
        throw err;
      }
    }
  };
  // allSettled first: no worker is still writing when the failure is reported.
  const results = await Promise.allSettled(Array.from({ length: Math.min(limit, items.length) }, worker));
  const failure = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failure) throw failure.reason;
}

/**
 * Stores the tree at `root` as the snapshot of `checkpointId` in the primary region. Idempotent: a
 * checkpoint that already has a snapshot keeps it.
 */
export async function storeSnapshot(
  db: Db,
  regions: RegionStores,
  input: {
    checkpointId: string;
    projectId: string;
    /** A tree no machine can change: a frozen copy of a live workspace, or a commit's files. */
    root: string;
    source: 'workspace' | 'commit';
    /** What earlier snapshots of the same `root` read (only for a root that outlives one snapshot). */
    memory?: TreeMemory;
  },
): Promise<SnapshotSummary> {
  const existing = await getSnapshot(db, input.checkpointId);
  if (existing) return existing;
  const primary = chunkStoreOf(regions.primary);
  const result = await storeTree(input.root, primary, db, input.memory);
  // In a shared store the manifest is kept beside the chunks too (Postgres stays the authority).
  if (primary.cache) await primary.objects.put(`manifests/${input.checkpointId}.json`, Buffer.from(JSON.stringify(result.manifest)));
  await db.transaction(async (trx) => {
    const inserted = await trx('snapshots')
      .insert({
        checkpoint_id: input.checkpointId,
        project_id: input.projectId,
        status: 'stored',
        source: input.source,
        manifest: JSON.stringify(result.manifest),
        files: result.manifest.filter((e) => e.type === 'file').length,
        chunks: result.chunks,
        bytes: result.bytes,
        stored_bytes: result.storedBytes,
      })
      .onConflict('checkpoint_id')
      .ignore()
      .returning('checkpoint_id');
    if (!inserted.length) return;
    await trx('snapshot_replicas').insert([
      { checkpoint_id: input.checkpointId, region: 'primary', status: 'stored', copied_bytes: result.storedBytes },
      { checkpoint_id: input.checkpointId, region: 'replica', status: 'pending' },
    ]);
  });
  return (await getSnapshot(db, input.checkpointId))!;
}

/** Stores the files of a git commit (checkpoints made without a live workspace: roots, merges). */
export async function storeCommitSnapshot(
  db: Db,
  regions: RegionStores,
  input: { checkpointId: string; projectId: string; repoPath: string; commit: string },
): Promise<SnapshotSummary> {
  const existing = await getSnapshot(db, input.checkpointId);
  if (existing) return existing;
  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'autovibe-snapshot-'));
  try {
    const tar = path.join(tmp, 'tree.tar');
    await run('git', ['-c', 'tar.umask=0022', '--git-dir', input.repoPath, 'archive', '--format=tar', '-o', tar, input.commit]);
    const root = path.join(tmp, 'tree');
    await fs.mkdir(root);
    await run('tar', ['-xf', tar, '-C', root]);
    await fs.rm(tar);
    return await storeSnapshot(db, regions, { checkpointId: input.checkpointId, projectId: input.projectId, root, source: 'commit' });
  } finally {
    await fs.rm(tmp, { recursive: true, force: true });
  }
}

function toSummary(row: Record<string, any>, replicas: Array<Record<string, any>>): SnapshotSummary {
  return {
    checkpointId: row.checkpoint_id,
    projectId: row.project_id,
    status: row.status,
    source: row.source,
    files: row.files,
    chunks: row.chunks,
    bytes: Number(row.bytes),
    storedBytes: Number(row.stored_bytes),
    createdAt: new Date(row.created_at).toISOString(),
    prunedAt: row.pruned_at ? new Date(row.pruned_at).toISOString() : null,
    replicas: replicas.map((r) => ({
      region: r.region,
      status: r.status,
      copiedBytes: Number(r.copied_bytes),
      error: r.error,
      updatedAt: new Date(r.updated_at).toISOString(),
    })),
  };
}

export async function getSnapshot(db: Db, checkpointId: string): Promise<SnapshotSummary | null> {
  const row = await db('snapshots').where({ checkpoint_id: checkpointId }).first();
  if (!row) return null;
  const replicas = await db('snapshot_replicas').where({ checkpoint_id: checkpointId }).orderBy('region');
  return toSummary(row, replicas);
}

export async function getManifest(db: Db, checkpointId: string): Promise<ManifestEntry[] | null> {
  const row = await db('snapshots').where({ checkpoint_id: checkpointId }).first('manifest');
  if (!row?.manifest) return null;
  return (typeof row.manifest === 'string' ? JSON.parse(row.manifest) : row.manifest) as ManifestEntry[];
}

function chunkHashes(manifest: ManifestEntry[]): string[] {
  const set = new Set<string>();
  for (const e of manifest) if (e.type === 'file') for (const c of e.chunks) set.add(c);
  return [...set];
}

/**
 * Copies the snapshot's chunks the replica region lacks, each verified on the way, and records
 * the replica as `replicated`. Safe to repeat; a failure is recorded on the replica row.
 */
export async function replicateSnapshot(db: Db, regions: RegionStores, checkpointId: string): Promise<SnapshotSummary> {
  const manifest = await getManifest(db, checkpointId);
  if (!manifest) throw new SnapshotError(`checkpoint ${checkpointId} has no stored snapshot to replicate`);
  await zstd();
  const from = chunkStoreOf(regions.primary);
  const to = chunkStoreOf(regions.replica);
  let copied = 0;
  try {
    await forEachLimit(chunkHashes(manifest), IO_CONCURRENCY, async (hash) => {
      if (await to.has(hash)) {
        await to.touch(hash);
        return;
      }
      const compressed = await from.readCompressed(hash);
      let raw: Uint8Array;
      try {
        raw = decompressChunk(compressed);
      } catch {
        throw new SnapshotCorruptError(`chunk ${hash} in ${from.dir} does not decompress`);
      }
      if (sha256(raw) !== hash) throw new SnapshotCorruptError(`chunk ${hash} in ${from.dir} does not match its hash`);
      await to.writeCompressed(hash, compressed);
      copied += compressed.length;
    });
  } catch (err) {
    await db('snapshot_replicas')
      .where({ checkpoint_id: checkpointId, region: 'replica' })
      .update({ status: 'failed', error: (err as Error).message, updated_at: db.fn.now() });
    throw err;
  }
  await db.transaction(async (trx) => {
    await trx('snapshot_replicas')
      .insert({ checkpoint_id: checkpointId, region: 'replica', status: 'replicated', copied_bytes: copied })
      .onConflict(['checkpoint_id', 'region'])
      .merge({ status: 'replicated', error: null, updated_at: trx.fn.now(), copied_bytes: trx.raw('snapshot_replicas.copied_bytes + ?', [copied]) });
    await trx('snapshots').where({ checkpoint_id: checkpointId, status: 'stored' }).update({ status: 'replicated' });
  });
  return (await getSnapshot(db, checkpointId))!;
}

export interface RestoreResult {
  files: number;
  bytes: number;
  /** How many chunks were read from each region (a chunk the primary lost comes from the replica). */
  chunksFrom: Record<RegionName, number>;
}

/** Reads a chunk from the first region that has it intact. */
async function readChunk(stores: ChunkStore[], hash: string, counts: number[]): Promise<Buffer> {
  const problems: string[] = [];
  for (let i = 0; i < stores.length; i++) {
    try {
      const raw = await stores[i]!.read(hash);
      counts[i]! += 1;
      return raw;
    } catch (err) {
      if (!(err instanceof SnapshotCorruptError)) throw err;
      problems.push(err.message);
    }
  }
  throw new SnapshotCorruptError(`chunk ${hash} is not intact in any region: ${problems.join('; ')}`);
}

async function fileMatches(file: string, size: number, hash: string): Promise<boolean> {
  try {
    const st = await fs.lstat(file);
    if (!st.isFile() || st.size !== size) return false;
    return sha256(await fs.readFile(file)) === hash;
  } catch {
    return false;
  }
}

/**
 * Makes `target` hold exactly the snapshot's tree: files byte-identical (each verified by its
 * SHA-256), modes, symlinks and empty directories; anything else in it (but a top-level `.git`) is
 * removed. Files already there with the right content are kept. Returns null when the checkpoint
 * has no snapshot (never stored, or pruned).
 */
export async function restoreSnapshot(db: Db, regions: RegionStores, checkpointId: string, target: string): Promise<RestoreResult | null> {
  const manifest = await getManifest(db, checkpointId);
  if (!manifest) return null;
  const stores = REGION_NAMES.map((r) => chunkStoreOf(regions[r]));
  const counts = await restoreTree(manifest, stores, target, `checkpoint ${checkpointId}`);
  return {
    files: manifest.filter((e) => e.type === 'file').length,
    bytes: manifest.reduce((n, e) => n + (e.type === 'file' ? e.size : 0), 0),
    chunksFrom: { primary: counts[0]!, replica: counts[1]! },
  };
}

/**
 * Writes `manifest`'s tree into `target` from the first of `stores` holding each chunk intact.
 * Returns how many chunks were read from each store.
 */
export async function restoreTree(manifest: ManifestEntry[], stores: ChunkStore[], target: string, what = 'snapshot'): Promise<number[]> {
  const counts = stores.map(() => 0);
  await fs.mkdir(target, { recursive: true });

  // Remove what the snapshot does not have (and anything whose type changed).
  const wanted = new Map(manifest.map((e) => [e.path, e]));
  for (const e of (await scanTree(target)).reverse()) {
    const w = wanted.get(e.path);
    if (!w || w.type !== e.type) await fs.rm(path.join(target, e.path), { recursive: true, force: true });
  }

  // Directories first (parents before children), then files and links in parallel.
  const dirs: Array<{ abs: string; mode: number }> = [];
  for (const e of manifest) {
    if (e.type !== 'dir') continue;
    const abs = path.join(target, e.path);
    await fs.mkdir(abs, { recursive: true });
    await fs.chmod(abs, e.mode | 0o700); // writable while restoring; its own mode at the end
    dirs.push({ abs, mode: e.mode });
  }
  await forEachLimit(manifest, IO_CONCURRENCY, async (e) => {
    const abs = path.join(target, e.path);
    if (e.type === 'symlink') {
      const current = await fs.readlink(abs).catch(() => null);
      if (current !== e.target) {
        await fs.rm(abs, { force: true });
        await fs.symlink(e.target, abs);
      }
    } else if (e.type === 'file') {
      if (!(await fileMatches(abs, e.size, e.sha256))) {
        const parts: Buffer[] = [];
        for (const c of e.chunks) parts.push(await readChunk(stores, c, counts));
        const data = Buffer.concat(parts);
        if (data.length !== e.size || sha256(data) !== e.sha256) {
          throw new SnapshotCorruptError(`file ${e.path} of ${what} does not match its manifest hash`);
        }
        const tmp = `${abs}.autovibe-restore`;
        await fs.writeFile(tmp, data, { mode: 0o600 });
        await fs.rename(tmp, abs);
      }
      await fs.chmod(abs, e.mode);
    }
  });
  for (const d of dirs.reverse()) await fs.chmod(d.abs, d.mode);
  return counts;
}

/**
 * Drops a checkpoint's snapshot: its manifest goes (the row stays, marked `pruned`, for the
 * record); the chunks only it used are freed by {@link collectGarbage}.
 */
export async function pruneSnapshot(db: Db, checkpointId: string): Promise<boolean> {
  return db.transaction(async (trx) => {
    const n = await trx('snapshots')
      .where({ checkpoint_id: checkpointId })
      .whereNot({ status: 'pruned' })
      .update({ status: 'pruned', manifest: null, pruned_at: trx.fn.now() });
    if (n) await trx('snapshot_replicas').where({ checkpoint_id: checkpointId }).update({ status: 'deleted', updated_at: trx.fn.now() });
    return n > 0;
  });
}

/**
 * Deletes, in every region, the chunks no remaining manifest uses. A chunk touched within
 * `graceMs` is spared: a snapshot being stored right now may be reusing it.
 */
export async function collectGarbage(db: Db, regions: RegionStores, opts: { graceMs: number; now?: number }): Promise<{ chunks: number; bytes: number }> {
  const live = new Set<string>();
  const rows = await db('snapshots').whereNotNull('manifest').select('manifest');
  for (const r of rows) {
    const m = (typeof r.manifest === 'string' ? JSON.parse(r.manifest) : r.manifest) as ManifestEntry[];
    for (const h of chunkHashes(m)) live.add(h);
  }
  const now = opts.now ?? Date.now();
  const stores = REGION_NAMES.map((r) => chunkStoreOf(regions[r]));
  let chunks = 0;
  let bytes = 0;
  const all = (await db('snapshot_chunks').select('hash', 'stored_size')) as Array<{ hash: string; stored_size: number }>;
  for (const c of all) {
    if (live.has(c.hash)) continue;
    const modified = await stores[0]!.modifiedMs(c.hash);
    if (modified !== null && now - modified < opts.graceMs) continue;
    for (const s of stores) await s.remove(c.hash);
    await db('snapshot_chunks').where({ hash: c.hash }).delete();
    chunks += 1;
    bytes += c.stored_size;
  }
  return { chunks, bytes };
}

/** Checkpoints whose snapshot is missing or not yet in every region, oldest first. */
export async function snapshotBacklog(db: Db, limit: number): Promise<string[]> {
  const rows = await db('checkpoints as c')
    .leftJoin('snapshots as s', 's.checkpoint_id', 'c.id')
    .where((q) => q.whereNull('s.checkpoint_id').orWhere('s.status', 'stored'))
    .orderBy([{ column: 'c.created_at' }, { column: 'c.id' }])
    .limit(limit)
    .select('c.id');
  return rows.map((r) => r.id as string);
}

export interface RetentionInput {
  projectId: string;
  checkpoints: Array<{ id: string; parentId: string | null; createdAt: string; milestone: boolean; hasSnapshot: boolean }>;
  /** Checkpoints something live points at: running machines, objectives' results, pipelines. */
  referenced: Set<string>;
}

const LIVE_MACHINE_STATUSES = ['pending', 'provisioning', 'running', 'checkpointing', 'paused'];

/** What the retention decision needs, per project that has snapshots to consider. */
export async function retentionInputs(db: Db): Promise<RetentionInput[]> {
  const projects = (await db('snapshots').whereNot({ status: 'pruned' }).distinct('project_id')).map((r) => r.project_id as string);
  const out: RetentionInput[] = [];
  for (const projectId of projects) {
    const rows = await db('checkpoints as c')
      .leftJoin('snapshots as s', 's.checkpoint_id', 'c.id')
      .where('c.project_id', projectId)
      .select('c.id', 'c.parent_id', 'c.created_at', 'c.milestone', 's.status');
    const referenced = new Set<string>();
    const root = await db('projects').where({ id: projectId }).first('root_checkpoint_id');
    if (root?.root_checkpoint_id) referenced.add(root.root_checkpoint_id);
    // Live machines: where they started and what they wrote so far.
    const live = await db('machines').where({ project_id: projectId }).whereIn('status', LIVE_MACHINE_STATUSES).select('id', 'parent_checkpoint_id');
    for (const m of live) referenced.add(m.parent_checkpoint_id);
    if (live.length) {
      for (const c of await db('checkpoints')
        .whereIn(
          'machine_id',
          live.map((m) => m.id),
        )
        .select('id'))
        referenced.add(c.id);
    }
    // Objectives hand their machines' final checkpoints to the objectives that depend on them.
    const objectiveFinals = await db('checkpoints as c')
      .join('machines as m', 'm.id', 'c.machine_id')
      .where('m.project_id', projectId)
      .whereNotNull('m.objective_id')
      .where('c.kind', 'final')
      .select('c.id');
    for (const c of objectiveFinals) referenced.add(c.id);
    const pipelines = await db('pipelines').where({ project_id: projectId }).select('id', 'base_checkpoint_id');
    for (const p of pipelines) referenced.add(p.base_checkpoint_id);
    if (pipelines.length) {
      const steps = await db('pipeline_steps')
        .whereIn(
          'pipeline_id',
          pipelines.map((p) => p.id),
        )
        .whereNotNull('checkpoint_id')
        .select('checkpoint_id');
      for (const s of steps) referenced.add(s.checkpoint_id);
    }
    out.push({
      projectId,
      referenced,
      checkpoints: rows.map((r) => ({
        id: r.id,
        parentId: r.parent_id,
        createdAt: new Date(r.created_at).toISOString(),
        milestone: Boolean(r.milestone),
        hasSnapshot: r.status !== null && r.status !== undefined && r.status !== 'pruned',
      })),
    });
  }
  return out;
}

/** Marks or unmarks a checkpoint as a milestone (kept forever). */
export async function setMilestone(db: Db, checkpointId: string, milestone: boolean): Promise<void> {
  await db('checkpoints').where({ id: checkpointId }).update({ milestone });
}

/** Whether the checkpoint is a milestone. */
export async function isMilestone(db: Db, checkpointId: string): Promise<boolean> {
  const row = await db('checkpoints').where({ id: checkpointId }).first('milestone');
  return Boolean(row?.milestone);
}

/** One file of a checkpoint's snapshot, verified against its manifest hash; null when the snapshot has no such file. */
export async function readSnapshotFile(db: Db, regions: RegionStores, checkpointId: string, filePath: string): Promise<Buffer | null> {
  const manifest = await getManifest(db, checkpointId);
  const entry = manifest?.find((e) => e.path === filePath);
  if (!entry || entry.type !== 'file') return null;
  const stores = REGION_NAMES.map((r) => chunkStoreOf(regions[r]));
  const counts = stores.map(() => 0);
  const parts: Buffer[] = [];
  for (const c of entry.chunks) parts.push(await readChunk(stores, c, counts));
  const data = Buffer.concat(parts);
  if (sha256(data) !== entry.sha256) throw new SnapshotCorruptError(`file ${filePath} of checkpoint ${checkpointId} does not match its manifest hash`);
  return data;
}

import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import type { Db } from './db.js';
import { inTransaction, type Conn } from './events.js';

/**
 * A machine's artifacts (conversation history, tool output and report, declared files). Their
 * content is in Postgres (`artifact_blobs`, one copy per SHA-256), so any api host serves what any
 * worker wrote. Rows from before that keep only `path`, a file on the worker that wrote them, read
 * as a fallback where that file is reachable. Content over the size cap is not kept: the row
 * records its size and hash, and `notStored` says why.
 */
export interface Artifact {
  machineId: string;
  name: string;
  /** A file on the worker that wrote it: rows recorded before artifacts moved to the database only. */
  path: string | null;
  size: number;
  sha256: string;
  checkpointId: string | null;
  createdAt: string;
  /** Why the content was not kept (over the size cap); absent when it was. */
  notStored?: string;
}

interface ArtifactRow extends Artifact {
  blobSha256: string | null;
}

const sha256Of = (bytes: Uint8Array) => crypto.createHash('sha256').update(bytes).digest('hex');

/** Why content of `size` bytes is not kept under a cap of `maxBytes`, or null when it is kept. */
export function overCap(size: number, maxBytes: number): string | null {
  return size > maxBytes ? `${size} bytes is over the artifact size cap of ${maxBytes} bytes (AUTOVIBE_ARTIFACT_MAX_BYTES)` : null;
}

/**
 * Stores one artifact of a machine with its content (replacing one of the same name). Over
 * `maxBytes` the content is left out and the row says so. Returns what was recorded.
 */
export async function saveArtifact(
  db: Conn,
  a: { machineId: string; name: string; checkpointId: string | null; content: Uint8Array },
  maxBytes: number,
): Promise<{ size: number; sha256: string; notStored: string | null }> {
  const size = a.content.byteLength;
  const sha256 = sha256Of(a.content);
  const notStored = overCap(size, maxBytes);
  await inTransaction(db, async (trx) => {
    if (!notStored) {
      await trx('artifact_blobs')
        .insert({ sha256, size, content: Buffer.from(a.content) })
        .onConflict('sha256')
        .ignore();
    }
    await trx('machine_artifacts')
      .insert({
        machine_id: a.machineId,
        name: a.name,
        path: null,
        size,
        sha256,
        checkpoint_id: a.checkpointId,
        blob_sha256: notStored ? null : sha256,
        not_stored: notStored,
      })
      .onConflict(['machine_id', 'name'])
      .merge(['path', 'size', 'sha256', 'checkpoint_id', 'blob_sha256', 'not_stored']);
  });
  return { size, sha256, notStored };
}

/**
 * Records an artifact by the path of a file on the worker, without its content: how artifacts
 * were recorded before they moved to the database (kept for such rows and their tests).
 */
export async function putArtifact(db: Conn, a: Omit<Artifact, 'createdAt' | 'notStored'> & { path: string }): Promise<void> {
  await db('machine_artifacts')
    .insert({ machine_id: a.machineId, name: a.name, path: a.path, size: a.size, sha256: a.sha256, checkpoint_id: a.checkpointId })
    .onConflict(['machine_id', 'name'])
    .merge(['path', 'size', 'sha256', 'checkpoint_id']);
}

/** Gives `toMachineId` every artifact of `fromMachineId` (same content, no bytes copied), linked to `checkpointId`. */
export async function copyArtifacts(db: Conn, fromMachineId: string, toMachineId: string, checkpointId: string): Promise<void> {
  await db.raw(
    `INSERT INTO machine_artifacts (machine_id, name, path, size, sha256, checkpoint_id, blob_sha256, not_stored)
     SELECT ?, name, path, size, sha256, ?, blob_sha256, not_stored FROM machine_artifacts WHERE machine_id = ?
     ON CONFLICT (machine_id, name) DO UPDATE SET path = excluded.path, size = excluded.size, sha256 = excluded.sha256,
       checkpoint_id = excluded.checkpoint_id, blob_sha256 = excluded.blob_sha256, not_stored = excluded.not_stored`,
    [toMachineId, checkpointId, fromMachineId],
  );
}

const toRow = (r: Record<string, any>): ArtifactRow => ({
  machineId: r.machine_id,
  name: r.name,
  path: r.path,
  size: Number(r.size),
  sha256: r.sha256,
  checkpointId: r.checkpoint_id,
  createdAt: new Date(r.created_at).toISOString(),
  ...(r.not_stored ? { notStored: r.not_stored } : {}),
  blobSha256: r.blob_sha256,
});

const publicOf = ({ blobSha256: _blob, ...a }: ArtifactRow): Artifact => a;

export async function listArtifacts(db: Db, machineId: string): Promise<Artifact[]> {
  const rows = await db('machine_artifacts').where({ machine_id: machineId }).orderBy('name');
  return rows.map((r) => publicOf(toRow(r)));
}

export type ArtifactContent = { ok: true; content: Buffer } | { ok: false; reason: string };

/** The content of one artifact: from the database, or (rows from before that) the worker's file where it is reachable. */
export async function artifactContent(db: Db, machineId: string, name: string): Promise<ArtifactContent | null> {
  const row = await db('machine_artifacts as a')
    .leftJoin('artifact_blobs as b', 'b.sha256', 'a.blob_sha256')
    .where({ 'a.machine_id': machineId, 'a.name': name })
    .first('a.*', 'b.content');
  if (!row) return null;
  const a = toRow(row);
  if (a.blobSha256) return { ok: true, content: Buffer.from(row.content) };
  if (a.notStored) return { ok: false, reason: `artifact ${name} of machine ${machineId} was not stored: ${a.notStored}` };
  try {
    return { ok: true, content: await fs.readFile(a.path!) };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    return {
      ok: false,
      reason: `artifact ${name} of machine ${machineId} was recorded before artifacts moved to the database, as a file on the worker that wrote it, and that file is not on this host`,
    };
  }
}

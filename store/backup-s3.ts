import crypto from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { BackupError, readManifest, verifyBackup, type BackupManifest } from './backups.js';

/**
 * A backup replica in an S3 bucket (another region's, in production): the same layout as a
 * backup directory under `prefix` — `<id>/…` files, `<id>/manifest.json` last, `chunks/` shared.
 * Each upload is checked against the ETag S3 answers (the MD5 of a single-part upload).
 */
export interface S3BackupTarget {
  s3: S3Client;
  bucket: string;
  /** Key prefix, with a trailing slash or empty. */
  prefix: string;
}

/** `s3://bucket/some/prefix` → bucket and prefix (`some/prefix/`). */
export function parseS3Url(url: string): { bucket: string; prefix: string } {
  const m = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:\/(.*))?$/.exec(url);
  if (!m) throw new BackupError(`${url} is not an s3://bucket/prefix URL`);
  const prefix = (m[2] ?? '').replace(/^\/+|\/+$/g, '');
  return { bucket: m[1]!, prefix: prefix ? `${prefix}/` : '' };
}

async function md5File(file: string): Promise<string> {
  const hash = crypto.createHash('md5');
  await pipeline(createReadStream(file), hash);
  return hash.digest('hex');
}

async function put(t: S3BackupTarget, key: string, file: string): Promise<void> {
  const body = await fs.readFile(file);
  const res = await t.s3.send(new PutObjectCommand({ Bucket: t.bucket, Key: t.prefix + key, Body: body, ServerSideEncryption: 'AES256' }));
  const expected = await md5File(file);
  if (res.ETag && res.ETag.replace(/"/g, '') !== expected) throw new BackupError(`s3://${t.bucket}/${t.prefix}${key}: the stored copy differs from ${file}`);
}

async function keysUnder(t: S3BackupTarget, under: string): Promise<Map<string, number>> {
  const found = new Map<string, number>();
  let token: string | undefined;
  do {
    const page = await t.s3.send(new ListObjectsV2Command({ Bucket: t.bucket, Prefix: t.prefix + under, ContinuationToken: token }));
    for (const o of page.Contents ?? []) found.set(o.Key!.slice(t.prefix.length), o.Size ?? 0);
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return found;
}

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await fs.readdir(dir, { withFileTypes: true, recursive: true }).catch(() => []);
  return entries.filter((e) => e.isFile() && !e.name.endsWith('.tmp')).map((e) => path.relative(dir, path.join(e.parentPath, e.name)));
}

/** Uploads a complete, verified backup from `root` (chunks the bucket lacks, then the files, the manifest last). */
export async function uploadBackup(root: string, id: string, t: S3BackupTarget): Promise<BackupManifest> {
  const manifest = await verifyBackup(root, id);
  const have = await keysUnder(t, 'chunks/');
  for (const rel of await filesUnder(path.join(root, 'chunks'))) {
    const key = `chunks/${rel.split(path.sep).join('/')}`;
    const size = (await fs.stat(path.join(root, 'chunks', rel))).size;
    if (have.get(key) !== size) await put(t, key, path.join(root, 'chunks', rel));
  }
  for (const f of [...manifest.tables.map((x) => x.file), ...manifest.repositories.flatMap((r) => (r.file ? [r.file] : []))]) {
    await put(t, `${id}/${f.split(path.sep).join('/')}`, path.join(root, id, f));
  }
  await put(t, `${id}/manifest.json`, path.join(root, id, 'manifest.json'));
  return manifest;
}

async function get(t: S3BackupTarget, key: string, file: string): Promise<void> {
  const res = await t.s3.send(new GetObjectCommand({ Bucket: t.bucket, Key: t.prefix + key }));
  await fs.mkdir(path.dirname(file), { recursive: true });
  await pipeline(res.Body as Readable, createWriteStream(file));
}

/** The complete backups in the bucket (those with a manifest), newest first. */
export async function listS3Backups(t: S3BackupTarget): Promise<string[]> {
  const keys = await keysUnder(t, 'backup-');
  return [...keys.keys()]
    .filter((k) => k.endsWith('/manifest.json'))
    .map((k) => k.slice(0, -'/manifest.json'.length))
    .sort()
    .reverse();
}

/** Downloads a backup into the directory `root` (as a backup directory) and verifies it there. */
export async function downloadBackup(t: S3BackupTarget, id: string, root: string): Promise<BackupManifest> {
  await get(t, `${id}/manifest.json`, path.join(root, id, 'manifest.json.part'));
  await fs.rename(path.join(root, id, 'manifest.json.part'), path.join(root, id, 'manifest.json'));
  const manifest = await readManifest(root, id);
  for (const f of [...manifest.tables.map((x) => x.file), ...manifest.repositories.flatMap((r) => (r.file ? [r.file] : []))]) {
    await get(t, `${id}/${f.split(path.sep).join('/')}`, path.join(root, id, f));
  }
  for (const key of (await keysUnder(t, 'chunks/')).keys()) await get(t, key, path.join(root, ...key.split('/')));
  return verifyBackup(root, id);
}

/** The configured S3 replica (credentials from the AWS environment), or null. */
export function s3BackupTarget(s3: { url: string; region: string; endpoint: string | undefined } | null): S3BackupTarget | null {
  if (!s3) return null;
  const { bucket, prefix } = parseS3Url(s3.url);
  // Path-style addressing: a custom endpoint (moto, MinIO) has no per-bucket host names.
  return { s3: new S3Client({ region: s3.region, ...(s3.endpoint ? { endpoint: s3.endpoint, forcePathStyle: true } : {}) }), bucket, prefix };
}

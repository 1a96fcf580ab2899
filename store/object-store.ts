import crypto from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';

/**
 * Where repositories and snapshot chunks live so that any api or worker host can serve any
 * project: a directory (the embedded default) or a bucket with the S3 API. Keys are `/`-separated
 * relative paths; writers write whole objects (a reader never sees half of one), and every key
 * this platform writes is either content-addressed or written once, so two hosts writing the same
 * key at once is harmless.
 */
export interface ObjectStore {
  /** Where it is, for messages: `dir:/path` or `s3://bucket/prefix`. */
  readonly location: string;
  /** Writes the object whole (bytes, or a stream of `size` bytes). */
  put(key: string, body: Uint8Array | Readable, size?: number): Promise<void>;
  /** The object's bytes as a stream, or null when there is no such object. */
  get(key: string): Promise<Readable | null>;
  /** Its size and when it was last written, or null when there is no such object. */
  head(key: string): Promise<ObjectInfo | null>;
  /** Every object whose key starts with `prefix`, in key order. */
  list(prefix: string): AsyncIterable<ObjectInfo & { key: string }>;
  /** Removes the object (nothing when there is none). */
  delete(key: string): Promise<void>;
  /** Marks the object as used now, where the store can (a directory's mtime); a no-op elsewhere. */
  touch(key: string): Promise<void>;
}

export interface ObjectInfo {
  size: number;
  modifiedMs: number;
}

export class ObjectStoreError extends Error {
  override name = 'ObjectStoreError';
}

function checkKey(key: string): void {
  if (!key || key.startsWith('/') || key.split('/').some((p) => p === '' || p === '.' || p === '..')) {
    throw new ObjectStoreError(`object key ${JSON.stringify(key)} must be a relative path without empty, . or .. parts`);
  }
}

/** The whole object as bytes, or null when there is none. */
export async function getBytes(store: ObjectStore, key: string): Promise<Buffer | null> {
  const body = await store.get(key);
  if (!body) return null;
  const parts: Buffer[] = [];
  for await (const c of body) parts.push(Buffer.from(c as Uint8Array));
  return Buffer.concat(parts);
}

/** Uploads a file (streamed). */
export async function putFile(store: ObjectStore, key: string, file: string): Promise<void> {
  const { size } = await fs.stat(file);
  await store.put(key, createReadStream(file), size);
}

/** Downloads an object into a file (written beside it, then renamed); false when there is no such object. */
export async function getFile(store: ObjectStore, key: string, file: string): Promise<boolean> {
  const body = await store.get(key);
  if (!body) return false;
  await fs.mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.part`;
  try {
    await pipeline(body, createWriteStream(tmp));
    await fs.rename(tmp, file);
  } finally {
    await fs.rm(tmp, { force: true });
  }
  return true;
}

/** Objects as files under a directory: `<dir>/<key>`. */
export class DirObjectStore implements ObjectStore {
  readonly location: string;
  constructor(readonly dir: string) {
    this.location = `dir:${dir}`;
  }

  pathOf(key: string): string {
    checkKey(key);
    return path.join(this.dir, ...key.split('/'));
  }

  async put(key: string, body: Uint8Array | Readable): Promise<void> {
    const file = this.pathOf(key);
    await fs.mkdir(path.dirname(file), { recursive: true });
    // Written beside, then renamed: a crash never leaves half an object.
    const tmp = `${file}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.tmp`;
    try {
      if (body instanceof Uint8Array) await fs.writeFile(tmp, body);
      else await pipeline(body, createWriteStream(tmp));
      await fs.rename(tmp, file);
    } finally {
      await fs.rm(tmp, { force: true });
    }
  }

  async get(key: string): Promise<Readable | null> {
    const file = this.pathOf(key);
    const handle = await fs.open(file, 'r').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT' || err.code === 'EISDIR') return null;
      throw err;
    });
    return handle ? handle.createReadStream() : null;
  }

  async head(key: string): Promise<ObjectInfo | null> {
    const st = await fs.stat(this.pathOf(key)).catch(() => null);
    return st?.isFile() ? { size: st.size, modifiedMs: st.mtimeMs } : null;
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo & { key: string }> {
    const entries = await fs.readdir(this.dir, { withFileTypes: true, recursive: true }).catch(() => []);
    const keys = entries
      .filter((e) => e.isFile() && !e.name.endsWith('.tmp'))
      .map((e) => path.relative(this.dir, path.join(e.parentPath, e.name)).split(path.sep).join('/'))
      .filter((k) => k.startsWith(prefix))
      .sort();
    for (const key of keys) {
      const info = await this.head(key);
      if (info) yield { key, ...info };
    }
  }

  async delete(key: string): Promise<void> {
    await fs.rm(this.pathOf(key), { force: true });
  }

  async touch(key: string): Promise<void> {
    const now = new Date();
    await fs.utimes(this.pathOf(key), now, now).catch(() => undefined);
  }
}

export interface S3Location {
  /** s3://bucket/prefix */
  url: string;
  region: string;
  /** A local S3 (moto, MinIO): path-style addressing. */
  endpoint: string | undefined;
}

/** `s3://bucket/some/prefix` → bucket and prefix (`some/prefix/`). */
export function parseBucketUrl(url: string): { bucket: string; prefix: string } {
  const m = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:\/(.*))?$/.exec(url);
  if (!m) throw new ObjectStoreError(`${url} is not an s3://bucket/prefix URL`);
  const prefix = (m[2] ?? '').replace(/^\/+|\/+$/g, '');
  return { bucket: m[1]!, prefix: prefix ? `${prefix}/` : '' };
}

const notFound = (err: unknown) =>
  err instanceof S3ServiceException && (err.name === 'NoSuchKey' || err.name === 'NotFound' || err.$metadata?.httpStatusCode === 404);

/** Objects in a bucket under a prefix; credentials from the AWS environment (instance role, env vars). */
export class S3ObjectStore implements ObjectStore {
  readonly location: string;
  readonly bucket: string;
  readonly prefix: string;
  readonly s3: S3Client;

  constructor(at: S3Location) {
    const { bucket, prefix } = parseBucketUrl(at.url);
    this.bucket = bucket;
    this.prefix = prefix;
    this.location = `s3://${bucket}/${prefix}`;
    this.s3 = new S3Client({ region: at.region, ...(at.endpoint ? { endpoint: at.endpoint, forcePathStyle: true } : {}) });
  }

  private keyOf(key: string): string {
    checkKey(key);
    return this.prefix + key;
  }

  async put(key: string, body: Uint8Array | Readable, size?: number): Promise<void> {
    const Key = this.keyOf(key);
    const md5 = body instanceof Uint8Array ? crypto.createHash('md5').update(body).digest('base64') : undefined;
    await this.s3.send(
      new PutObjectCommand({
        Bucket: this.bucket,
        Key,
        Body: body,
        ...(size !== undefined ? { ContentLength: size } : {}),
        // S3 refuses bytes that arrive different from what was sent.
        ...(md5 ? { ContentMD5: md5 } : {}),
      }),
    );
  }

  async get(key: string): Promise<Readable | null> {
    try {
      const res = await this.s3.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.keyOf(key) }));
      return res.Body as Readable;
    } catch (err) {
      if (notFound(err)) return null;
      throw err;
    }
  }

  async head(key: string): Promise<ObjectInfo | null> {
    try {
      const res = await this.s3.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.keyOf(key) }));
      return { size: res.ContentLength ?? 0, modifiedMs: res.LastModified?.getTime() ?? 0 };
    } catch (err) {
      if (notFound(err)) return null;
      throw err;
    }
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo & { key: string }> {
    let token: string | undefined;
    do {
      const page = await this.s3.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.prefix + prefix, ContinuationToken: token }));
      for (const o of page.Contents ?? []) {
        yield { key: o.Key!.slice(this.prefix.length), size: o.Size ?? 0, modifiedMs: o.LastModified?.getTime() ?? 0 };
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  async delete(key: string): Promise<void> {
    await this.s3.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.keyOf(key) }));
  }

  async touch(): Promise<void> {
    // S3 cannot change an object's time without copying it; garbage collection's grace counts from the write.
  }
}

/** What AUTOVIBE_OBJECT_STORE says: a directory, or a bucket. */
export type ObjectStoreConfig = { kind: 'dir'; dir: string } | ({ kind: 's3' } & S3Location);

export function openObjectStore(c: ObjectStoreConfig): ObjectStore {
  return c.kind === 'dir' ? new DirObjectStore(c.dir) : new S3ObjectStore(c);
}

/** A view of `store` under `prefix/`. */
export function objectStoreUnder(store: ObjectStore, prefix: string): ObjectStore {
  const p = prefix.endsWith('/') ? prefix : `${prefix}/`;
  return {
    location: `${store.location.replace(/\/$/, '')}/${p}`,
    put: (k, b, s) => store.put(p + k, b, s),
    get: (k) => store.get(p + k),
    head: (k) => store.head(p + k),
    async *list(prefix2) {
      for await (const o of store.list(p + prefix2)) yield { ...o, key: o.key.slice(p.length) };
    },
    delete: (k) => store.delete(p + k),
    touch: (k) => store.touch(p + k),
  };
}

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { loadConfig } from '../../config/index.js';
import { startMoto, type MotoServer } from '../../scripts/services/moto.js';
import { DirObjectStore, getBytes, getFile, objectStoreUnder, ObjectStoreError, putFile, S3ObjectStore, type ObjectStore } from '../../store/object-store.js';
import { ChunkStore, chunkKey, restoreTree, storeTree } from '../../store/snapshots.js';

/** The same contract, checked against both implementations: a directory and a bucket on moto's S3. */
function contract(name: string, open: () => ObjectStore) {
  describe(name, () => {
    let store: ObjectStore;
    before(() => {
      store = open();
    });

    it('puts, heads, gets, lists and deletes whole objects, bytes or streamed', async () => {
      assert.equal(await store.head('a/missing.bin'), null);
      assert.equal(await store.get('a/missing.bin'), null);
      await store.put('a/one.bin', Buffer.from('one'));
      const big = Buffer.alloc(3 * 1024 * 1024, 7);
      await store.put('a/b/two.bin', Readable.from([big.subarray(0, 1024), big.subarray(1024)]), big.length);
      await store.put('c/three.bin', Buffer.from('three'));
      assert.equal((await store.head('a/one.bin'))?.size, 3);
      assert.ok((await store.head('a/one.bin'))!.modifiedMs > 0);
      assert.deepEqual(await getBytes(store, 'a/b/two.bin'), big);
      const listed: string[] = [];
      for await (const o of store.list('a/')) listed.push(`${o.key}:${o.size}`);
      assert.deepEqual(listed, [`a/b/two.bin:${big.length}`, 'a/one.bin:3']);
      // A second write of the same key replaces it whole.
      await store.put('a/one.bin', Buffer.from('uno!'));
      assert.equal((await getBytes(store, 'a/one.bin'))!.toString(), 'uno!');
      await store.delete('a/one.bin');
      await store.delete('a/one.bin');
      assert.equal(await store.head('a/one.bin'), null);
    });

    it('streams files in and out, and views a prefix', async () => {
      const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'objects-files-'));
      try {
        fs.writeFileSync(path.join(tmp, 'in.bin'), Buffer.alloc(100_000, 3));
        const under = objectStoreUnder(store, 'repos');
        await putFile(under, 'p/x.bundle', path.join(tmp, 'in.bin'));
        assert.equal((await store.head('repos/p/x.bundle'))?.size, 100_000);
        assert.equal(await getFile(under, 'p/x.bundle', path.join(tmp, 'out', 'x.bundle')), true);
        assert.deepEqual(fs.readFileSync(path.join(tmp, 'out', 'x.bundle')), fs.readFileSync(path.join(tmp, 'in.bin')));
        assert.equal(await getFile(under, 'p/none', path.join(tmp, 'none')), false);
        const keys: string[] = [];
        for await (const o of under.list('p/')) keys.push(o.key);
        assert.deepEqual(keys, ['p/x.bundle']);
      } finally {
        fs.rmSync(tmp, { recursive: true, force: true });
      }
    });

    it('refuses keys that would leave the store', async () => {
      for (const key of ['../x', '/abs', 'a//b', 'a/./b', '']) {
        await assert.rejects(store.put(key, Buffer.from('x')), ObjectStoreError, key);
      }
    });
  });
}

describe('object store', function () {
  this.timeout(60_000);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'objects-dir-'));
  let moto: MotoServer;
  const saved = { id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY };
  let s3: S3ObjectStore;

  before(async () => {
    moto = await startMoto();
    process.env.AWS_ACCESS_KEY_ID = moto.credentials.accessKeyId;
    process.env.AWS_SECRET_ACCESS_KEY = moto.credentials.secretAccessKey;
    s3 = new S3ObjectStore({ url: 's3://autovibe-objects/shared', region: 'us-east-1', endpoint: moto.endpoint });
    await s3.s3.send(new CreateBucketCommand({ Bucket: s3.bucket }));
  });
  after(async () => {
    for (const [k, v] of [
      ['AWS_ACCESS_KEY_ID', saved.id],
      ['AWS_SECRET_ACCESS_KEY', saved.secret],
    ] as const) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    await moto?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  contract('directory', () => new DirObjectStore(dir));
  contract('S3 (moto)', () => s3);

  it('stores snapshot chunks in the bucket from one host and restores them byte-identical on another, whose cache starts empty', async () => {
    const tree = path.join(dir, 'tree');
    fs.mkdirSync(path.join(tree, 'build'), { recursive: true });
    fs.writeFileSync(path.join(tree, 'build', 'blob.bin'), crypto.randomBytes(200_000), { mode: 0o600 });
    fs.writeFileSync(path.join(tree, 'a.txt'), 'hello\n');
    const shared = objectStoreUnder(s3, 'snapshots');
    const hostA = new ChunkStore(shared, path.join(dir, 'host-a-cache'));
    const stored = await storeTree(tree, hostA);
    assert.ok(stored.storedBytes > 150_000);
    // What host A wrote is in the bucket, and in host A's cache.
    const hashes = stored.manifest.flatMap((e) => (e.type === 'file' ? e.chunks : []));
    for (const h of hashes) {
      assert.ok(await s3.head(`snapshots/${chunkKey(h)}`), `chunk ${h} in the bucket`);
      assert.ok(fs.existsSync(hostA.pathOf(h)));
    }
    // Storing the same tree again from host B writes nothing new (content-addressed keys).
    const hostB = new ChunkStore(shared, path.join(dir, 'host-b-cache'));
    assert.equal((await storeTree(tree, hostB)).storedBytes, 0);
    fs.rmSync(path.join(dir, 'host-b-cache'), { recursive: true, force: true });
    const target = path.join(dir, 'restored');
    const counts = await restoreTree(stored.manifest, [hostB], target);
    assert.equal(counts[0], hashes.length);
    assert.deepEqual(fs.readFileSync(path.join(target, 'build', 'blob.bin')), fs.readFileSync(path.join(tree, 'build', 'blob.bin')));
    assert.equal(fs.statSync(path.join(target, 'build', 'blob.bin')).mode & 0o777, 0o600);
    // A damaged cached chunk is dropped and read again from the bucket.
    fs.writeFileSync(hostB.pathOf(hashes[0]!), 'garbage');
    fs.rmSync(target, { recursive: true, force: true });
    await restoreTree(stored.manifest, [hostB], target);
    assert.deepEqual(fs.readFileSync(path.join(target, 'build', 'blob.bin')), fs.readFileSync(path.join(tree, 'build', 'blob.bin')));
  });

  it('reads AUTOVIBE_OBJECT_STORE: unset, a directory or a bucket, and refuses anything else', () => {
    assert.equal(loadConfig({ AUTOVIBE_HOME: dir }).objectStore, null);
    assert.deepEqual(loadConfig({ AUTOVIBE_HOME: dir, AUTOVIBE_OBJECT_STORE: 'dir:/srv/objects' }).objectStore, { kind: 'dir', dir: '/srv/objects' });
    assert.deepEqual(
      loadConfig({
        AUTOVIBE_HOME: dir,
        AUTOVIBE_OBJECT_STORE: 's3://bucket-1/autovibe',
        AUTOVIBE_OBJECT_STORE_S3_REGION: 'eu-west-1',
        AUTOVIBE_OBJECT_STORE_S3_ENDPOINT: 'http://127.0.0.1:5000',
      }).objectStore,
      { kind: 's3', url: 's3://bucket-1/autovibe', region: 'eu-west-1', endpoint: 'http://127.0.0.1:5000' },
    );
    assert.throws(() => loadConfig({ AUTOVIBE_HOME: dir, AUTOVIBE_OBJECT_STORE: '/srv/objects' }), /dir:\/absolute\/path or s3:\/\/bucket\/prefix/);
  });
});

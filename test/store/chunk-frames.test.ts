import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ChunkStore, compressChunk, zstdFrameContentSize } from '../../store/snapshots.js';

const sha256 = (b: Uint8Array) => crypto.createHash('sha256').update(b).digest('hex');

/**
 * A damaged chunk on disk must be refused by itself, never poison the process's decoder: the
 * WebAssembly decoder allocates what a frame header claims without checking, so a header claiming
 * terabytes (or an error value) would corrupt its heap for every later chunk.
 */
describe('snapshot chunks: damaged zstd frames', () => {
  let dir: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'autovibe-frames-'));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('reads the content size from the frame header, and nothing from what is not a frame', async () => {
    for (const size of [0, 1, 255, 256, 300, 65_535, 65_536, 70_000]) {
      assert.equal(zstdFrameContentSize(await compressChunk(crypto.randomBytes(size))), size, `size ${size}`);
    }
    assert.equal(zstdFrameContentSize(Buffer.from('garbage')), null);
    assert.equal(zstdFrameContentSize(Buffer.from([0x28, 0xb5, 0x2f])), null);
  });

  it('refuses frames whose header claims too much or is cut, and decodes good chunks after them', async () => {
    const store = new ChunkStore(dir);
    const good = crypto.randomBytes(10_000);
    const goodHash = sha256(good);
    await store.writeCompressed(goodHash, await compressChunk(good));
    assert.ok((await store.read(goodHash)).equals(good), 'before');

    const frame = Buffer.from(await compressChunk(crypto.randomBytes(1000)));
    const huge = Buffer.concat([Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0xe0]), Buffer.from([0, 0, 0, 0, 0, 1, 0, 0]), frame.subarray(6)]);
    const bad = { huge, cut: frame.subarray(0, 5), empty: Buffer.alloc(0) };
    for (const [name, bytes] of Object.entries(bad)) {
      const hash = sha256(Buffer.from(name));
      fs.mkdirSync(path.dirname(store.pathOf(hash)), { recursive: true });
      fs.writeFileSync(store.pathOf(hash), bytes);
      await assert.rejects(store.read(hash), /does not decompress/, name);
    }
    for (let i = 0; i < 50; i++) assert.ok((await store.read(goodHash)).equals(good), `read ${i}`);
  });
});

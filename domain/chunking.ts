/**
 * Content-defined chunking (a gear rolling hash, as in FastCDC): chunk boundaries depend on the
 * bytes around them, not on offsets, so inserting a line near the start of a large file changes
 * one or two chunks instead of every chunk after it. Pure: same bytes, same boundaries.
 */

export interface ChunkingOptions {
  /** No chunk is shorter than this, except a file's last. */
  minSize: number;
  /** Target average size; a power of two. */
  avgSize: number;
  /** No chunk is longer than this. */
  maxSize: number;
}

export const DEFAULT_CHUNKING: ChunkingOptions = { minSize: 2048, avgSize: 8192, maxSize: 65536 };

/** 256 fixed pseudo-random 32-bit values (xorshift from a constant seed), as int32 so the hot loop stays in small integers. */
const GEAR: Int32Array = (() => {
  const table = new Int32Array(256);
  let x = 0x9e3779b9;
  for (let i = 0; i < 256; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    table[i] = x | 0;
  }
  return table;
})();

/** A mask of the top `bits` bits (as int32): the gear hash's top bits depend on the last 32 bytes. */
function topMask(bits: number): number {
  return bits <= 0 ? 0 : (0xffffffff << (32 - bits)) | 0;
}

/**
 * The end offsets of the chunks of `data` (the last is `data.length`; none for empty data).
 *
 * @example
 * chunkEnds(new Uint8Array(100_000)) // → [65536, 100000] (zeros never hit a boundary)
 */
export function chunkEnds(data: Uint8Array, opts: ChunkingOptions = DEFAULT_CHUNKING): number[] {
  const bits = Math.round(Math.log2(opts.avgSize));
  // Normalized chunking: harder to cut before the average size, easier after it.
  const strict = topMask(bits + 1);
  const loose = topMask(bits - 1);
  const ends: number[] = [];
  let start = 0;
  const n = data.length;
  while (start < n) {
    const remaining = n - start;
    if (remaining <= opts.minSize) {
      ends.push(n);
      break;
    }
    const limit = Math.min(remaining, opts.maxSize);
    const normal = Math.min(limit, opts.avgSize);
    let h = 0;
    let i = opts.minSize;
    let cut = limit;
    for (; i < normal; i++) {
      h = ((h << 1) + GEAR[data[start + i]!]!) | 0;
      if ((h & strict) === 0) {
        cut = i + 1;
        break;
      }
    }
    if (cut === limit && i >= normal) {
      for (; i < limit; i++) {
        h = ((h << 1) + GEAR[data[start + i]!]!) | 0;
        if ((h & loose) === 0) {
          cut = i + 1;
          break;
        }
      }
    }
    start += cut;
    ends.push(start);
  }
  return ends;
}

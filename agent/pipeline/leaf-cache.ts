import { leafHashesInto } from '../identity/merkle.js';
import { encodeReadingLeaves, type ReadingLeaves } from '../identity/reading-leaf.js';
import type { StoredReading } from '../types.js';

/**
 * Bounds of the cache. Readings: two of the largest batches (batch.max_readings ≤ 10,000) and
 * the largest commit (5,000, store/budget-shares.ts commitGroupLimit). Leaf bytes: 4 MiB, about
 * 80,000 bench readings (~50 bytes a leaf) or 10,000 of the longest ids (~400). Besides the
 * leaves each reading takes 53 bytes (hash 32, id 8, time 8, end 4, flag 1), and each commit
 * (chunk) its six arrays, ~1.5 KiB: at a low rate a commit holds one reading, so chunks are
 * bounded too (1,024; a high rate commits 64 or more at once). At most 4 MiB + 25,000 x 53 B +
 * 1,024 x 1.5 KiB ≈ 6.8 MiB, whatever the backlog.
 */
export const LEAF_CACHE_MAX_READINGS = 25_000;
export const LEAF_CACHE_MAX_BYTES = 4 * 1024 * 1024;
export const LEAF_CACHE_MAX_CHUNKS = 1024;

/** The leaves of one commit's readings, ids ascending. */
interface Chunk {
  ids: Float64Array;
  ts: Float64Array;
  flagged: Uint8Array;
  /** Leaf k is bytes[ends[k-1] .. ends[k]). */
  ends: Uint32Array;
  bytes: Uint8Array;
  hashes: Buffer;
}

/**
 * Each committed reading's Merkle leaf and leaf hash, made from the readings the commit already
 * has in memory (GroupCommitWriter.onCommittedReadings), so cutting a batch of them selects only
 * their ids and concatenates (store/batch-store.ts cutBatch). A batch whose readings are not all
 * here (a restart, a backlog past the bounds, a reading not committed through the writer) is cut
 * from the store as before: the bytes are the same either way (test/unit/leaf-cache.test.ts).
 *
 * A cached leaf stays right because a reading row never changes after its insert (only its
 * batch_seq) and ids are never reused (AUTOINCREMENT).
 */
export class ReadingLeafCache {
  private chunks: Chunk[] = [];
  private readings = 0;
  private bytes = 0;
  /** Cuts served from the cache, and cuts that fell back to the store. */
  hits = 0;
  misses = 0;

  constructor(
    private readonly maxReadings = LEAF_CACHE_MAX_READINGS,
    private readonly maxBytes = LEAF_CACHE_MAX_BYTES,
    private readonly maxChunks = LEAF_CACHE_MAX_CHUNKS,
  ) {}

  /** Readings just committed, with their ids (in commit order). */
  note(readings: readonly StoredReading[]): void {
    const n = readings.length;
    if (n === 0) return;
    const last = this.chunks[this.chunks.length - 1];
    const ids = new Float64Array(n);
    for (let k = 0; k < n; k++) {
      ids[k] = readings[k]!.id;
      // Out of order cannot happen with one writer; if it did, nothing cached before is trusted.
      if (k > 0 ? ids[k]! <= ids[k - 1]! : last !== undefined && ids[0]! <= last.ids[last.ids.length - 1]!) {
        this.clear();
        return;
      }
    }
    const encoded = encodeReadingLeaves(readings);
    if (!encoded || n > this.maxReadings || encoded.bytes.length > this.maxBytes) return;
    const ts = new Float64Array(n);
    const flagged = new Uint8Array(n);
    for (let k = 0; k < n; k++) {
      const r = readings[k]!;
      ts[k] = r.ts;
      flagged[k] = r.flags ? 1 : 0;
    }
    // Not from Buffer's shared pool: a kept slice of a pool slab would keep the whole 8 KiB slab.
    const hashes = Buffer.allocUnsafeSlow(32 * n);
    leafHashesInto(encoded.bytes, encoded.ends, hashes);
    this.chunks.push({ ids, ts, flagged, ends: encoded.ends, bytes: encoded.bytes, hashes });
    this.readings += n;
    this.bytes += encoded.bytes.length;
    // Oldest out first: in a backlog the newest readings are the ones cut soonest once it drains.
    while (this.readings > this.maxReadings || this.bytes > this.maxBytes || this.chunks.length > this.maxChunks) this.dropOldest();
  }

  /**
   * The leaves of exactly these readings (ids ascending, as the cut selected them), or undefined
   * when one is not cached. Chunks wholly below ids[0] are dropped: the cut has passed them.
   */
  take(ids: readonly number[]): ReadingLeaves | undefined {
    if (ids.length === 0) return undefined;
    while (this.chunks.length > 0 && lastId(this.chunks[0]!) < ids[0]!) this.dropOldest();
    const leafHashes = Buffer.allocUnsafe(32 * ids.length);
    const parts: Uint8Array[] = [];
    let t0 = Infinity;
    let t1 = -Infinity;
    let flagged = false;
    let ci = 0;
    let chunk = this.chunks[0];
    let p = chunk ? lowerBound(chunk.ids, ids[0]!) : 0;
    // The open run of consecutive positions in `chunk`: [runFrom, p), going to output position runOut.
    let runFrom = p;
    let runOut = 0;
    const closeRun = () => {
      if (!chunk || p === runFrom) return;
      parts.push(chunk.bytes.subarray(runFrom === 0 ? 0 : chunk.ends[runFrom - 1]!, chunk.ends[p - 1]!));
      chunk.hashes.copy(leafHashes, 32 * runOut, 32 * runFrom, 32 * p);
    };
    for (let k = 0; k < ids.length; k++) {
      const id = ids[k]!;
      // Cached readings the store no longer holds unbatched (held back, dropped) are skipped.
      while (chunk && (p === chunk.ids.length || chunk.ids[p]! < id)) {
        if (p < chunk.ids.length) {
          closeRun();
          p = lowerBound(chunk.ids, id);
        } else {
          closeRun();
          chunk = this.chunks[++ci];
          p = chunk ? lowerBound(chunk.ids, id) : 0;
        }
        runFrom = p;
        runOut = k;
      }
      if (!chunk || chunk.ids[p] !== id) {
        this.misses++;
        return undefined;
      }
      const t = chunk.ts[p]!;
      if (t < t0) t0 = t;
      if (t > t1) t1 = t;
      if (chunk.flagged[p]) flagged = true;
      p++;
    }
    closeRun();
    this.hits++;
    return { count: ids.length, parts, leafHashes, t0, t1, flagged };
  }

  /** Readings held now (for tests and status). */
  size(): { readings: number; bytes: number } {
    return { readings: this.readings, bytes: this.bytes };
  }

  clear(): void {
    this.chunks = [];
    this.readings = 0;
    this.bytes = 0;
  }

  private dropOldest(): void {
    const c = this.chunks.shift();
    if (!c) return;
    this.readings -= c.ids.length;
    this.bytes -= c.bytes.length;
  }
}

const lastId = (c: Chunk) => c.ids[c.ids.length - 1]!;

/** The first position in ascending `ids` whose id is ≥ id (ids.length when none). */
function lowerBound(ids: Float64Array, id: number): number {
  let lo = 0;
  let hi = ids.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (ids[mid]! < id) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

import { buildAnyBatchV3, buildAnyBatchV3FromLeaves, fitsWireLimits, type AnyBatch } from '../identity/batch-any.js';
import { buildBatch, buildBatchFromLeaves } from '../identity/batch-format.js';
import type { Identity } from '../identity/keys.js';
import type { BatchEncoder, UnsignedBatch } from '../store/batch-store.js';
import type { ReadingLeafCache } from './leaf-cache.js';

export interface EncodeOptions {
  bootCounter: number;
  clockSynced: boolean;
  /** The cut time, ms: the batch's created time and its row's created_at. */
  now: number;
  /** batch.format: 'auto' writes the lowest version that carries the batch; 3 always version 3. */
  format?: 'auto' | 3;
  /** uplink.encrypt_to: seal the data to this Ed25519 key (wire-format.md §12.6); implies version 3. */
  sealTo?: Uint8Array;
}

/**
 * The batch stage's own job: encode and sign the next batch of the chain, in the lowest version
 * that carries its contents unless `format` is 3 (docs/wire-format.md §12.12); a batch of drops
 * or events alone, flags, sensor attestations or sealing need version 3. The store hands the contents over and records
 * the result in the same transaction (store/batch-store.ts `cutBatch`), so it never signs.
 */
export function batchEncoder(identity: Identity, opts: EncodeOptions, leafCache?: ReadingLeafCache): BatchEncoder {
  return {
    now: opts.now,
    // A sealed batch's leaves carry salts (§12.6), which the cache does not hold: those are encoded from the rows.
    ...(leafCache && !opts.sealTo ? { leaves: leafCache } : {}),
    encode(contents: UnsignedBatch): AnyBatch | 'too-large' {
      const batch = encodeBatch(identity, opts, contents);
      return fitsWireLimits(batch) ? batch : 'too-large';
    },
  };
}

/** Version 1 or 2 when they carry the contents (smaller, understood by every receiver), else 3. */
function encodeBatch(identity: Identity, opts: EncodeOptions, { seq, prevHash, readings, leaves, verdicts, events, drops, attestations }: UnsignedBatch): AnyBatch {
  const head = { seq, prevHash, bootCounter: opts.bootCounter, clockSynced: opts.clockSynced, createdMs: opts.now };
  const readingCount = leaves ? leaves.count : readings.length;
  const needsV3 =
    opts.format === 3 ||
    opts.sealTo !== undefined ||
    events.length > 0 ||
    attestations.length > 0 ||
    (readingCount === 0 && verdicts.length === 0) ||
    (leaves ? leaves.flagged : readings.some((r) => r.flags)) ||
    verdicts.some((v) => v.flags);
  if (needsV3) {
    const rest = { verdicts, events, drops, attestations };
    // Leaves are never handed over with sealTo (batchEncoder): a sealed batch is built from rows.
    if (leaves) return buildAnyBatchV3FromLeaves(identity, head, leaves, rest);
    return buildAnyBatchV3(identity, head, { readings, ...rest }, opts.sealTo ? { sealTo: opts.sealTo } : {});
  }
  const header = { ...head, ...(drops.length > 0 ? { drops } : {}) };
  const batch = leaves ? buildBatchFromLeaves(identity, header, leaves, verdicts) : buildBatch(identity, header, readings, verdicts);
  return { ...batch, version: verdicts.length > 0 || drops.length > 0 ? 2 : 1, events: [], sealed: false, opened: true };
}

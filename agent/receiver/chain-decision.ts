import { hex, ZERO_HASH, type SignedBatch } from '../identity/batch-format.js';
import type { ConflictReason } from './receiver-types.js';

/** A batch a receiver already holds, as far as the chain rules need it. */
export interface HeldBatch {
  hash: Uint8Array;
  prev: Uint8Array;
  receipt: Uint8Array;
}

export type ChainDecision =
  | { kind: 'duplicate'; receipt: Uint8Array }
  | { kind: 'conflict'; reason: ConflictReason; detail: string }
  | { kind: 'accept'; gapBefore: boolean };

const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

/**
 * The receiver's chain rules (wire-format.md §7), given what is held at seq - 1, seq and seq + 1
 * of the batch's device: the same batch again is a duplicate (answered with the receipt sent
 * the first time); another batch at a held seq, or one whose links disagree with a held
 * neighbour, is a conflict; a missing seq - 1 is a gap, accepted and reported. Every backend
 * calls this inside the transaction that holds the device, so the decision and the insert are one.
 */
export function decideChain(batch: SignedBatch, held: { before?: HeldBatch | undefined; same?: HeldBatch | undefined; after?: HeldBatch | undefined }): ChainDecision {
  const b = batch.body;
  if (held.same) {
    if (same(held.same.hash, batch.hash)) return { kind: 'duplicate', receipt: held.same.receipt };
    return { kind: 'conflict', reason: 'seq-conflict', detail: `seq ${b.seq} is already held with hash ${hex(held.same.hash)}, not ${hex(batch.hash)}` };
  }
  let gapBefore = false;
  if (b.seq === 1) {
    if (!same(b.prev, ZERO_HASH)) return { kind: 'conflict', reason: 'chain-broken', detail: 'seq 1 must have prev = 32 zero bytes' };
  } else if (!held.before) gapBefore = true;
  else if (!same(held.before.hash, b.prev)) {
    return { kind: 'conflict', reason: 'chain-broken', detail: `prev ${hex(b.prev)} is not the hash of the held seq ${b.seq - 1} (${hex(held.before.hash)})` };
  }
  if (held.after && !same(held.after.prev, batch.hash)) {
    return { kind: 'conflict', reason: 'chain-broken', detail: `the held seq ${b.seq + 1} links to ${hex(held.after.prev)}, not to this batch ${hex(batch.hash)}` };
  }
  return { kind: 'accept', gapBefore };
}

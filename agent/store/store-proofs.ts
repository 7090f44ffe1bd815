import { verifyAnyBatchEnvelope } from '../identity/batch-any.js';
import { BatchProver, ProofUnavailable, rebuildSealedData } from '../identity/element-proof.js';
import type { Identity } from '../identity/keys.js';
import type { Proof } from '../identity/proof.js';
import { batchOfElement, storedBatchContents, type ElementKind } from './batch-contents.js';
import { BatchStore } from './batch-store.js';
import type { Db } from './database.js';

/**
 * Proofs (docs/wire-format.md §12.8) from an agent's own store. The device key is needed only for
 * sealed batches, whose data the agent rebuilds from its rows (it does not hold the network key),
 * so it is asked for lazily.
 */
export class StoreProofs {
  private readonly batches: BatchStore;
  private readonly cache = new Map<number, BatchProver>();

  constructor(
    private readonly db: Db,
    private readonly identity: () => Identity,
  ) {
    this.batches = new BatchStore(db);
  }

  /** The batch seq holding the element; throws ProofUnavailable naming why there is none. */
  batchOf(kind: ElementKind, id: number): number {
    const seq = batchOfElement(this.db, kind, id);
    if (seq === undefined) throw new ProofUnavailable('not-found', `no ${kind} ${id} in this store (never stored, or deleted with its delivered batch after store.retain_delivered_hours)`);
    if (seq === null) throw new ProofUnavailable('not-batched', `${kind} ${id} is not in a signed batch yet; prove it after the next batch is cut (batch.max_age_ms)`);
    return seq;
  }

  /** A prover for the verified batch `seq`, its data rebuilt when it is sealed (cached: an export proves many readings of one batch). */
  private prover(seq: number): BatchProver {
    const hit = this.cache.get(seq);
    if (hit) return hit;
    const row = this.batches.get(seq);
    if (!row) throw new ProofUnavailable('not-found', `batch ${seq} is not in this store`);
    const batch = verifyAnyBatchEnvelope(new Uint8Array(row.envelope));
    const data = batch.version === 3 && batch.v3 && !batch.v3.data ? rebuildSealedData(this.identity(), batch.v3, storedBatchContents(this.db, seq)) : undefined;
    const prover = new BatchProver(batch, data);
    // Readings come in id order, so batches are visited one after another: a small cache suffices.
    if (this.cache.size >= 8) this.cache.clear();
    this.cache.set(seq, prover);
    return prover;
  }

  prove(kind: ElementKind, id: number): { seq: number; proof: Proof } {
    const seq = this.batchOf(kind, id);
    return { seq, proof: this.prover(seq).prove(kind, id) };
  }
}

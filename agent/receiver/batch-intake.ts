import { verifyAnyBatchEnvelope, type AnyBatch } from '../identity/batch-any.js';
import { batchCidText } from '../identity/cid.js';
import type { Identity } from '../identity/keys.js';
import { signReceipt } from '../identity/receipt.js';

/**
 * What every receiver front end (HTTP, MQTT bridge) does with an envelope: verify it whatever its
 * version (wire-format.md §6.1, §12.9), opening sealed batches with the receiver's own key, and
 * sign the receipt of the matching version (§8, §12.10). `durability` is what the receipt promises.
 */
export class BatchIntake {
  private readonly boxKey: Uint8Array;

  constructor(
    private readonly identity: Identity,
    private readonly durability: 'disk' | 'quorum' = 'disk',
  ) {
    this.boxKey = identity.boxSecretKey();
  }

  /** Throws BatchVerificationError with the spec's reason. */
  verify(envelope: Uint8Array): AnyBatch {
    return verifyAnyBatchEnvelope(envelope, { openWith: this.boxKey });
  }

  receipt(batch: AnyBatch, receivedAt: number): Uint8Array {
    const fields = { dev: batch.body.dev, seq: batch.body.seq, hash: batch.hash, at: receivedAt };
    if (batch.version !== 3 || !batch.v3) return signReceipt(this.identity, fields);
    const h = batch.v3.header;
    return signReceipt(this.identity, fields, { dh: h.dh, ...(h.ch ? { ch: h.ch } : {}), cid: batchCidText(batch.envelope), dur: this.durability });
  }
}

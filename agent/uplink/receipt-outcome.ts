import { deviceIdFromPublicKey } from '../identity/device-id.js';
import { ReceiverKeyMismatchError, verifyReceipt } from '../identity/receipt.js';
import type { DeliveryOutcome, OutgoingBatch } from './uplink.js';

/** A receipt the receiver sent for `batch` (HTTP reply or MQTT reply topic), verified against uplink.receiver_key (wire-format.md §8). */
export function receiptOutcome(envelope: Uint8Array, batch: OutgoingBatch, receiverKey: Uint8Array): DeliveryOutcome {
  try {
    verifyReceipt(envelope, { receiverKey, device: batch.device, seq: batch.seq, batchHash: batch.hash, envelope: batch.envelope });
  } catch (err) {
    const mismatch = err instanceof ReceiverKeyMismatchError ? { receiverKeyMismatch: deviceIdFromPublicKey(err.signer) } : {};
    return { kind: 'retry', error: `receipt for batch ${batch.seq} rejected: ${(err as Error).message}`, ...mismatch };
  }
  return { kind: 'delivered', receipt: { envelope, receiverKey } };
}

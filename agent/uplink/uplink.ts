/**
 * The contract every uplink implements (HTTP now, MQTT later). An uplink makes one attempt
 * per call and says how it ended; ordering, retries and back-off belong to the forwarder,
 * so all uplinks share them.
 */
export interface OutgoingBatch {
  seq: number;
  hash: Uint8Array;
  device: Uint8Array;
  envelope: Uint8Array;
}

export type DeliveryOutcome =
  /** The network acknowledged the batch (with a verified receipt when a receiver key is configured). */
  | { kind: 'delivered'; receipt?: { envelope: Uint8Array; receiverKey: Uint8Array } }
  /** A passing failure (network, timeout, 5xx, 429): try the same batch again later. */
  | { kind: 'retry'; error: string }
  /** The network refused this batch for good (4xx): resending the same bytes cannot succeed. */
  | { kind: 'rejected'; error: string };

export interface Uplink {
  readonly description: string;
  deliver(batch: OutgoingBatch, signal: AbortSignal): Promise<DeliveryOutcome>;
}

/**
 * The contract every uplink implements (HTTP, MQTT). An uplink makes one attempt
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
  | { kind: 'retry'; error: string; retryAfterMs?: number; /** The receipt was validly signed by this other key (did:key): a config mismatch, not a passing failure. */ receiverKeyMismatch?: string }
  /** The network refused this batch for good (4xx): resending the same bytes cannot succeed. */
  | { kind: 'rejected'; error: string };

export interface Uplink {
  readonly description: string;
  /**
   * One attempt. A 'retry' may carry `retryAfterMs` (the network asked us to wait, e.g. HTTP 429
   * Retry-After): the forwarder waits at least that long before the next attempt.
   */
  deliver(batch: OutgoingBatch, signal: AbortSignal): Promise<DeliveryOutcome>;
  /** Releases connections (the MQTT session); called once when the agent stops. */
  close?(): Promise<void>;
}

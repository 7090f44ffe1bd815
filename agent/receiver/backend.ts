import type { SignedBatch } from '../identity/batch-format.js';
import type { AlertChange, DeviceBatch, IngestResult, ReceiverStats } from './receiver-store.js';

/**
 * Where the receiver keeps what it accepted: the embedded SQLite store (`ReceiverStore`, the
 * default) or the fleet backend (NATS JetStream + PostgreSQL, agent/receiver/fleet/). The HTTP
 * server and the MQTT bridge verify a batch (wire-format.md §6) and hand it here; the backend
 * decides the chain (§7) and returns the answer, with a receipt signed only once the batch is
 * durable where the backend promises.
 */
export interface ReceiverBackend {
  ingest(batch: SignedBatch, receivedAt: number, makeReceipt: () => Uint8Array): IngestResult | Promise<IngestResult>;
  countRejection(reason: string): void;
  stats(): ReceiverStats | Promise<ReceiverStats>;
  deviceBatches(device: string): DeviceBatch[] | undefined | Promise<DeviceBatch[] | undefined>;
  alertChanges(device: string): AlertChange[] | undefined | Promise<AlertChange[] | undefined>;
  close(): void | Promise<void>;
}

/**
 * The backend cannot take batches right now (its database or log is unreachable). Answered
 * 503 with Retry-After: nothing was stored and no receipt signed, the agent sends again.
 */
export class BackendUnavailableError extends Error {
  constructor(
    message: string,
    readonly retryAfterS = 2,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'BackendUnavailableError';
  }
}

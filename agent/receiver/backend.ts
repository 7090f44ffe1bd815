import type { AnyBatch } from '../identity/batch-any.js';
import type { SignedBatch } from '../identity/batch-format.js';
import type { Availability } from './availability.js';
import type { AlertChange, DeviceBatch, DeviceEvent, IngestResult, ReceiverStats } from './receiver-types.js';

/** A verified batch of any version (versions 1 and 2 carry no events and are never sealed). */
export type IngestBatch = SignedBatch & Partial<Pick<AnyBatch, 'version' | 'events' | 'sealed' | 'v3'>>;

/**
 * Where the receiver keeps what it accepted: the embedded SQLite store (`ReceiverStore`, the
 * default) or the fleet backend (NATS JetStream + PostgreSQL, agent/receiver/fleet/). The HTTP
 * server and the MQTT bridge verify a batch (wire-format.md §6) and hand it here; the backend
 * decides the chain (§7) and returns the answer, with a receipt signed only once the batch is
 * durable where the backend promises.
 */
export interface ReceiverBackend {
  ingest(batch: IngestBatch, receivedAt: number, makeReceipt: () => Uint8Array): IngestResult | Promise<IngestResult>;
  countRejection(reason: string): void;
  stats(): ReceiverStats | Promise<ReceiverStats>;
  deviceBatches(device: string): DeviceBatch[] | undefined | Promise<DeviceBatch[] | undefined>;
  alertChanges(device: string): AlertChange[] | undefined | Promise<AlertChange[] | undefined>;
  /** Events of a device with an id above `after`, oldest first, at most `limit` (wire-format.md §12). */
  deviceEvents(device: string, after?: number, limit?: number): DeviceEvent[] | undefined | Promise<DeviceEvent[] | undefined>;
  /** The envelope of the batch holding a device's reading, verdict or event `id` (for proofs, wire-format.md §12.8). */
  elementEnvelope(device: string, kind: 'reading' | 'verdict' | 'event', id: number): Uint8Array | undefined | Promise<Uint8Array | undefined>;
  /** Availability over [from, to] from the device's signed heartbeats (availability.ts). */
  availability(device: string, from: number | undefined, to: number): Availability | undefined | Promise<Availability | undefined>;
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

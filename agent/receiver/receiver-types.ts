/** What the receiver's stores (SQLite here, PostgreSQL in fleet/) report: shared by both backends. */

export type ConflictReason = 'seq-conflict' | 'chain-broken';

export type IngestResult =
  | { kind: 'accepted'; device: string; receipt: Uint8Array; gapBefore: boolean }
  | { kind: 'duplicate'; device: string; receipt: Uint8Array }
  | { kind: 'conflict'; device: string; reason: ConflictReason; detail: string };

export interface ReceiverStats {
  devices: number;
  batches: number;
  readings: number;
  verdicts: number;
  alerts_raised: number;
  rejected: number;
  gaps: number;
  rejected_by_reason: Record<string, number>;
  /** Readings devices reported dropped under their disk budget; by "DEVICE SENSOR". */
  dropped: number;
  dropped_by_sensor: Record<string, number>;
  /** Readings a sensor attestation covers (§12.7), the rest, and batches refused for their attestations (`bad-attestation`, `unknown-sensor-key`). */
  attested_readings: number;
  unattested_readings: number;
  refused_attestations: number;
}

/** A verdict that raised or cleared an alert, as the receiver lists it. */
export interface AlertChange {
  verdict_id: number;
  batch_seq: number;
  key: string;
  model: string;
  model_sha256: string;
  state: 'raised' | 'cleared';
  window_start: number;
  ts: number;
  reading_id: number | null;
  score: number | null;
  value: number;
  threshold: number;
  outputs: Record<string, number>;
}

/** An event a device reported (wire-format.md §12.5), as the receiver lists it. */
export interface DeviceEvent {
  event_id: number;
  batch_seq: number;
  ts: number;
  kind: string;
  key: string | null;
  detail: Record<string, string | number | boolean> | null;
}

export interface DeviceBatch {
  seq: number;
  hash: string;
  /** The envelope's CID (wire-format.md §12.11). */
  cid: string;
  version: number;
  sealed: boolean;
  received_at: number;
  readings: number;
}

import type { Reading } from '../types.js';

/**
 * The contract between a source and the stages after it (design.md, "Data flow"). A source hands
 * its readings to a `ReadingSink`; `submit` resolves only once they are committed (SQLite, WAL,
 * synchronous=FULL), and only then may the source acknowledge upstream (MQTT PUBACK, CoAP 2.04,
 * serial ACK). A rejection means nothing was committed: the source must not acknowledge.
 * Sources know this interface only, never the writer that implements it.
 */
export interface ReadingSink {
  submit(sub: Submission): Promise<SubmitResult>;
}

/** A sender-assigned message key a source may see again after a lost acknowledgement. */
export interface ResendGuard {
  /** The key the sender may resend under (MQTT packet id, CoAP message id...), per source. */
  key: string;
  /** Identifies the message's content (e.g. sha256 of the payload). */
  fingerprint: Uint8Array;
  /**
   * The sender says this is a resend (MQTT DUP flag [MQTT-3.3.1-1]): the submission is a duplicate
   * when the key's last committed fingerprint equals this one. Without it the key is simply reused.
   */
  resent: boolean;
}

/** A position in one of a source's input streams, committed in the same transaction as the readings. */
export interface StreamCursor {
  /** Which stream, named by the source (serial: device/session/sensor), at most 256 characters. */
  stream: string;
  /** The highest position now committed (serial: the sensor's sequence number). */
  position: number;
}

export interface Submission {
  /** Id of the source instance in the config. */
  source: string;
  readings: readonly Reading[];
  /** Set by sources whose sender may resend a message after a lost acknowledgement. */
  resend?: ResendGuard;
  /** Reasons of rejected payloads or records, counted in the same transaction. */
  rejected?: readonly string[];
  /** Count jumps in the readings' `seq` per sensor (counters seq_gaps, seq_rewinds). */
  trackSeq?: boolean;
  /** Positions to commit with the readings; read back through `SourceContext.cursors`. */
  cursors?: readonly StreamCursor[];
  /** Counters to add in the same transaction (serial: `serial_lost`, readings a device declared lost). */
  counts?: readonly { name: string; label: string; n: number }[];
  /**
   * Where inside the source the readings came from, for the guard stage's watches (agent/guard/):
   * an MQTT topic branch, a CoAP source address, a serial device session `session:UID/SESSION`.
   * At most 256 characters.
   */
  origin?: string;
  /** Payload bytes the readings were parsed from (the guard learns each origin's usual size). */
  bytes?: number;
  /** Readings dropped before the commit (guard budgets), per sensor: carried upstream in the next batch's drops (wire-format.md §4.5). */
  drops?: readonly { sensor: string; n: number }[];
  /**
   * For readings with `attestStream` (their sensor signs them, firmware-bridge/PROTOCOL.md §3.9):
   * the batcher holds such a reading back for up to `ms` until the attestation of its run
   * arrives, so both ride one batch.
   */
  attestWait?: { ms: number };
  /** Sensor attestations to check against the committed readings and carry into a batch (after `readings`). */
  attestations?: readonly AttestationClaim[];
  /**
   * The longest this submission may wait for its commit, for senders that resend after a timer
   * of their own (serial: PROTOCOL.md §4.2 resend_after 1 s; CoAP: RFC 7252 §4.8 ACK_TIMEOUT):
   * caps store.commit_interval_ms for it. Without it the interval applies (MQTT resends only on a
   * new connection [MQTT-4.4.0-1], so it can wait the whole interval).
   */
  commitWithinMs?: number;
}

/** commitWithinMs of the sources whose senders resend after a timer: a quarter of serial's 1 s resend_after (PROTOCOL.md §4.2). */
export const TIMED_RESEND_COMMIT_WITHIN_MS = 250;

/** A sensor's signature over its readings first_seq..last_seq of one stream (PROTOCOL.md §3.9). */
export interface AttestationClaim {
  /** As the readings' `attestStream`. */
  stream: string;
  /** The reading name of a one-value READING; a multi-value one is `sensor/0`, `sensor/1`, ... */
  sensor: string;
  /** The provisioned key of the device: the store checks `sig` under it. */
  key: Uint8Array;
  uid: Uint8Array;
  session: number;
  sensorIndex: number;
  firstSeq: number;
  lastSeq: number;
  sig: Uint8Array;
}

/**
 * What became of an attestation: stored (for the next batch), a duplicate of one stored before,
 * incomplete (its readings are not all committed and unbatched), bad-signature (it does not
 * verify under the provisioned key over the committed readings), or full (the store's share of
 * waiting attestations is used up).
 */
export type AttestationOutcome = 'stored' | 'duplicate' | 'incomplete' | 'bad-signature' | 'full';

export interface SubmitResult {
  accepted: number;
  duplicates: number;
  /** One per submitted attestation, in order. */
  attestations?: AttestationOutcome[];
}

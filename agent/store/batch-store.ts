import type { AnyBatch } from '../identity/batch-any.js';
import { ZERO_HASH, type BatchDrop } from '../identity/batch-format.js';
import { V3_LIMITS, type BatchAttestation } from '../identity/batch-v3.js';
import type { StoredVerdict } from '../identity/verdict-format.js';
import type { ReadingLeaves } from '../identity/reading-leaf.js';
import type { StoredReading } from '../types.js';
import { attestationsForCut, attestationStraddling, attestWaitLimit, markAttestationsBatched } from './attestation-store.js';
import { pendingEnvelopeBytes } from './batch-contents.js';
import type { Statement } from 'better-sqlite3';
import type { Db } from './database.js';
import { rowToReading } from './reading-store.js';
import { markEventsBatched, unbatchedEvents, type StoredEvent } from './event-store.js';
import { setMeta } from './meta.js';
import { statement } from './statements.js';
import { rowToVerdict, VERDICT_COLUMNS, type VerdictRow } from './verdict-store.js';

export type BatchState = 'pending' | 'delivered' | 'rejected';

export interface BatchRow {
  seq: number;
  hash: Buffer;
  prev_hash: Buffer;
  envelope: Buffer;
  reading_count: number;
  first_reading_id: number;
  last_reading_id: number;
  t0: number;
  t1: number;
  created_at: number;
  state: BatchState;
  attempts: number;
  delivered_at: number | null;
  last_error: string | null;
}

/** The next batch of the chain as the store hands it to the batch stage, to encode and sign. */
export interface UnsignedBatch {
  seq: number;
  prevHash: Uint8Array;
  /** The readings read from the store; empty when `leaves` holds them. */
  readings: StoredReading[];
  /** The readings as their cached leaves (BatchEncoder.leaves): then nothing was read of them but their ids. */
  leaves?: ReadingLeaves;
  verdicts: StoredVerdict[];
  events: StoredEvent[];
  drops: BatchDrop[];
  /** Sensor attestations of readings in this batch (wire-format.md §12.7): they need version 3. */
  attestations: BatchAttestation[];
}

/** What the batch stage gives `cutBatch`: the cut time and how to turn the contents into a signed batch (pipeline/batch-encoder.ts). */
export interface BatchEncoder {
  now: number;
  /** The leaves of exactly these readings (ids ascending) when they are all cached (pipeline/leaf-cache.ts), else undefined. */
  leaves?: { take(ids: readonly number[]): ReadingLeaves | undefined };
  /** The signed batch, or 'too-large' when its bytes would pass the wire format's limits: the store then hands over fewer readings. */
  encode(contents: UnsignedBatch): AnyBatch | 'too-large';
}

export interface UnbatchedSummary {
  count: number;
  oldestReceivedAt: number | null;
}

/** The columns of a reading a batch carries (store/reading-store.ts rowToReading). */
const SELECT_READINGS = 'SELECT id, sensor, ts, time_source, value, unit, seq, source, boot, flags FROM readings WHERE batch_seq IS NULL';

/** A batch's row with its envelope, which lives in batch_envelopes (migration 14: a mark must not rewrite it). */
const SELECT_BATCH = 'SELECT b.*, e.envelope FROM batches b JOIN batch_envelopes e ON e.seq = b.seq';

/** Hands the next batch's contents to the batch stage, records the signed batch, and tracks its delivery. */
export class BatchStore {
  constructor(private readonly db: Db) {}

  /** Statements of the cut, prepared once: preparing them per cut cost ~0.3 µs per reading (CPU profile, issue 13). */
  private sql(text: string): Statement {
    return statement(this.db, text);
  }

  unbatchedSummary(): UnbatchedSummary {
    const row = this.db
      .prepare('SELECT count(*) AS count, min(received_at) AS oldest FROM readings WHERE batch_seq IS NULL')
      .get() as { count: number; oldest: number | null };
    return { count: row.count, oldestReceivedAt: row.oldest };
  }

  unbatchedVerdicts(): number {
    return this.sql('SELECT count(*) FROM verdicts WHERE batch_seq IS NULL').pluck().get() as number;
  }

  lastBatch(): { seq: number; hash: Uint8Array } {
    const row = this.sql('SELECT seq, hash FROM batches ORDER BY seq DESC LIMIT 1').get() as { seq: number; hash: Buffer } | undefined;
    return row ? { seq: row.seq, hash: new Uint8Array(row.hash) } : { seq: 0, hash: ZERO_HASH };
  }

  /**
   * Takes up to `maxReadings` unbatched readings and as many unbatched verdicts (and up to 1,000
   * events), in acceptance order, has the batch stage encode and sign them as the next batch of
   * the chain (`encoder`), and records it, all in one transaction: a crash leaves either no batch
   * or a complete one whose contents are marked. With `maxReadings` 0 it is a batch of drops and
   * events alone (issue 20: when no reading batch can carry the drops).
   */
  cutBatch(maxReadings: number, encoder: BatchEncoder): AnyBatch | null {
    return this.db.transaction(() => {
      // Readings of a signing sensor wait (a bounded time) for their run's attestation, and so do the
      // ones after them: a batch stays a contiguous id range (PROTOCOL.md §3.9, attestation-store.ts).
      const below = attestWaitLimit(this.db, encoder.now) ?? Number.MAX_SAFE_INTEGER;
      // With a leaf cache only the ids are read; the rows only when a reading is not cached (a miss).
      // `ids` are the batch's readings in both cases (`readings[k].id === ids[k]` when read).
      const cache = encoder.leaves;
      let readings: StoredReading[] = [];
      let ids: number[];
      if (cache) {
        ids = this.sql('SELECT id FROM readings WHERE batch_seq IS NULL AND id < ? ORDER BY id LIMIT ?').pluck().all(below, maxReadings) as number[];
      } else {
        readings = (this.sql(`${SELECT_READINGS} AND id < ? ORDER BY id LIMIT ?`).all(below, maxReadings) as Parameters<typeof rowToReading>[0][]).map(rowToReading);
        ids = readings.map((r) => r.id);
      }
      const selected = ids.length;
      // A batch must not split a signed run: it ends before the run that would straddle its end.
      // A run that starts the batch waits for the rest of it (held back by another stream's wait),
      // unless the batch is full: a run longer than a whole batch is split, its attestation orphaned.
      const endBeforeSplitRun = (batchFull: boolean) => {
        if (ids.length === 0) return;
        const straddle = attestationStraddling(this.db, ids[0]!, ids[ids.length - 1]!);
        if (straddle === undefined || (straddle === ids[0]! && batchFull)) return;
        ids.length = ids.findIndex((id) => id >= straddle);
        if (readings.length > ids.length) readings.length = ids.length;
      };
      endBeforeSplitRun(selected >= maxReadings);
      let leaves: ReadingLeaves | undefined;
      const readingsOf = () => {
        leaves = cache?.take(ids);
        if (cache && !leaves && ids.length > 0) {
          readings = (this.sql(`${SELECT_READINGS} AND id BETWEEN ? AND ? ORDER BY id`).all(ids[0], ids[ids.length - 1]) as Parameters<typeof rowToReading>[0][]).map(rowToReading);
        }
      };
      readingsOf();
      const verdicts = (
        this.sql(`SELECT ${VERDICT_COLUMNS} FROM verdicts WHERE batch_seq IS NULL ORDER BY id LIMIT ?`).all(maxReadings) as VerdictRow[]
      ).map(rowToVerdict);
      const events = unbatchedEvents(this.db, V3_LIMITS.events);
      // Drops since the previous batch ride in this one and are cleared with it (wire-format.md §4.5).
      const drops = this.sql('SELECT sensor AS s, count AS n FROM drops_unreported WHERE count > 0 ORDER BY sensor LIMIT ?').all(V3_LIMITS.drops) as BatchDrop[];
      if (ids.length === 0 && verdicts.length === 0 && events.length === 0 && drops.length === 0) return null;
      const last = this.lastBatch();
      const seq = last.seq + 1;
      // Sensor attestations whose readings all ride in this batch (PROTOCOL.md §3.9, attestation-store.ts).
      const signedRuns = () => (ids.length > 0 ? attestationsForCut(this.db, new Set(ids), ids[ids.length - 1]!) : { att: [], rows: [] });
      let runs = signedRuns();
      const contents = () => ({ seq, prevHash: last.hash, readings, ...(leaves ? { leaves } : {}), verdicts, events, drops, attestations: runs.att });
      let batch = encoder.encode(contents());
      // Halving the contents until the batch fits (§6.3, §12.9): long sensor ids can make
      // max_readings readings pass the limits. One element of each is far below them, so this ends;
      // what is left over goes into the next batch.
      while (batch === 'too-large') {
        if (Math.max(ids.length, verdicts.length, events.length, drops.length) <= 1) {
          throw new Error(`batch ${seq}: one reading, verdict, event and drop pass the wire format's size limits (a bug: the field limits keep them far below)`);
        }
        for (const part of [ids, readings, verdicts, events, drops]) part.length = Math.ceil(part.length / 2);
        endBeforeSplitRun(true);
        if (leaves) readingsOf();
        runs = signedRuns();
        batch = encoder.encode(contents());
      }
      const attRows = runs.rows;
      if (drops.length > 0) {
        // More sensors than one batch may name (V3_LIMITS.drops, or the size limits) wait for the next batch.
        const clear = this.sql('DELETE FROM drops_unreported WHERE sensor = ?');
        for (const d of drops) clear.run(d.s);
        if (this.sql('SELECT count(*) FROM drops_unreported').pluck().get() === 0) this.sql("DELETE FROM meta WHERE key = 'drops_unreported_since'").run();
      }
      const now = encoder.now;
      // A batch of verdicts only has no reading range: 0..0 marks no reading.
      const firstId = ids[0] ?? 0;
      const lastId = ids[ids.length - 1] ?? 0;
      this
        .sql(
          `INSERT INTO batches (seq, hash, prev_hash, reading_count, first_reading_id, last_reading_id, t0, t1, created_at, state)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending')`,
        )
        .run(seq, batch.hash, last.hash, ids.length, firstId, lastId, batch.body.t0, batch.body.t1, now);
      this.sql('INSERT INTO batch_envelopes (seq, envelope) VALUES (?, ?)').run(seq, batch.envelope);
      if (ids.length > 0) this.sql('UPDATE readings SET batch_seq = ? WHERE batch_seq IS NULL AND id BETWEEN ? AND ?').run(seq, firstId, lastId);
      if (verdicts.length > 0) {
        this.sql('UPDATE verdicts SET batch_seq = ? WHERE batch_seq IS NULL AND id BETWEEN ? AND ?').run(seq, verdicts[0]!.id, verdicts[verdicts.length - 1]!.id);
      }
      if (events.length > 0) markEventsBatched(this.db, seq, events[0]!.id, events[events.length - 1]!.id);
      if (attRows.length > 0) markAttestationsBatched(this.db, seq, attRows);
      return batch;
    })();
  }

  /** Events waiting for a batch (a quiet agent still cuts one for them). */
  unbatchedEvents(): number {
    return this.sql('SELECT count(*) FROM events WHERE batch_seq IS NULL').pluck().get() as number;
  }

  /** Readings dropped under the budget and not yet carried by a batch, and since when (ms, wall clock). */
  unreportedDrops(): { readings: number; sensors: number; since: number | null } {
    const row = this.sql('SELECT coalesce(sum(count), 0) AS readings, count(*) AS sensors FROM drops_unreported').get() as { readings: number; sensors: number };
    const since = this.sql("SELECT value FROM meta WHERE key = 'drops_unreported_since'").pluck().get() as string | undefined;
    return { ...row, since: row.readings > 0 ? Number(since ?? Date.now()) : null };
  }

  /** Bytes of the signed envelopes waiting for the uplink (the batcher also stops at a byte share). */
  pendingEnvelopeBytes(): number {
    return pendingEnvelopeBytes(this.db);
  }

  /** Signed batches waiting for the uplink (the batcher stops cutting at batch.max_pending). */
  pendingCount(): number {
    return this.sql("SELECT count(*) FROM batches WHERE state = 'pending'").pluck().get() as number;
  }

  /** Age of the oldest batch waiting for the uplink (by its cut time), ms; 0 when none waits. */
  oldestPendingAgeMs(now: number): number {
    const at = this.sql("SELECT min(created_at) FROM batches WHERE state = 'pending'").pluck().get() as number | null;
    return at === null ? 0 : Math.max(0, now - at);
  }

  nextPending(): BatchRow | undefined {
    return this.sql(`${SELECT_BATCH} WHERE b.state = 'pending' ORDER BY b.seq LIMIT 1`).get() as BatchRow | undefined;
  }

  get(seq: number): BatchRow | undefined {
    return this.sql(`${SELECT_BATCH} WHERE b.seq = ?`).get(seq) as BatchRow | undefined;
  }

  all(): BatchRow[] {
    return this.sql(`${SELECT_BATCH} ORDER BY b.seq`).all() as BatchRow[];
  }

  /**
   * The uplink's outcomes below record what `status` shows about the uplink (meta uplink_last_*)
   * in the same transaction: one fsync per attempt, not two or three (flash wear, issue 13).
   */
  markDelivered(seq: number, at: number, receipt?: { envelope: Uint8Array; receiverKey: Uint8Array }): void {
    this.db.transaction(() => {
      this.sql("UPDATE batches SET state = 'delivered', delivered_at = ?, attempts = attempts + 1, last_error = NULL WHERE seq = ?").run(at, seq);
      if (receipt) {
        this.db
          .prepare('INSERT OR REPLACE INTO receipts (batch_seq, envelope, receiver_key, received_at) VALUES (?, ?, ?, ?)')
          .run(seq, receipt.envelope, receipt.receiverKey, at);
      }
      setMeta(this.db, 'uplink_last_success_at', String(at));
    })();
  }

  markAttemptFailed(seq: number, error: string, at = Date.now()): void {
    this.db.transaction(() => {
      this.sql('UPDATE batches SET attempts = attempts + 1, last_error = ? WHERE seq = ?').run(error, seq);
      this.noteUplinkError(error, at);
    })();
  }

  /** The receiver refused the batch for good (4xx): it will never be accepted, so stop resending it. */
  markRejected(seq: number, error: string, at = Date.now()): void {
    this.db.transaction(() => {
      this.sql("UPDATE batches SET state = 'rejected', attempts = attempts + 1, last_error = ? WHERE seq = ?").run(error, seq);
      this.noteUplinkError(error, at);
    })();
  }

  private noteUplinkError(error: string, at: number): void {
    setMeta(this.db, 'uplink_last_error', error);
    setMeta(this.db, 'uplink_last_error_at', String(at));
  }

  receipt(seq: number): { envelope: Buffer; receiver_key: Buffer; received_at: number } | undefined {
    return this.sql('SELECT envelope, receiver_key, received_at FROM receipts WHERE batch_seq = ?').get(seq) as
      | { envelope: Buffer; receiver_key: Buffer; received_at: number }
      | undefined;
  }

  countsByState(): Record<BatchState, number> {
    const out: Record<BatchState, number> = { pending: 0, delivered: 0, rejected: 0 };
    for (const row of this.sql('SELECT state, count(*) AS n FROM batches GROUP BY state').all() as { state: BatchState; n: number }[]) {
      out[row.state] = row.n;
    }
    return out;
  }
}

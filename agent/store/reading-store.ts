import type { Reading, StoredReading, TimeSource } from '../types.js';
import { TIME_SOURCES } from '../types.js';
import type { Submission, SubmitResult } from '../contracts/reading-sink.js';
import { AttestationStore } from './attestation-store.js';
import { CommitRiders } from './commit-riders.js';
import type { Db } from './database.js';
import { HELD } from './held-readings.js';
import { SensorSeqShare } from './keyed-tables.js';

export type { AttestationClaim, AttestationOutcome, ReadingSink, ResendGuard, StreamCursor, Submission, SubmitResult } from '../contracts/reading-sink.js';

interface ReadingRow {
  id: number;
  sensor: string;
  ts: number;
  time_source: number;
  value: number;
  unit: string | null;
  seq: number | null;
  source: string;
  boot: number;
  flags?: number | null;
}

export function rowToReading(row: ReadingRow): StoredReading {
  const r: StoredReading = {
    id: row.id,
    sensor: row.sensor,
    ts: row.ts,
    timeSource: TIME_SOURCES[row.time_source]!,
    value: row.value,
    source: row.source,
    boot: row.boot,
  };
  if (row.unit !== null) r.unit = row.unit;
  if (row.seq !== null) r.seq = row.seq;
  if (row.flags) r.flags = row.flags;
  return r;
}

/**
 * A literal with one fixed shape: `{...r, id, ...}` made objects whose fields read ~40x slower
 * (349 vs 8 ns measured), and every committed reading is read by the inference stage and metrics.
 */
function storedReadingOf(r: Reading, id: number, source: string, boot: number): StoredReading {
  return { id, sensor: r.sensor, ts: r.ts, timeSource: r.timeSource, value: r.value, unit: r.unit, seq: r.seq, source, boot, flags: r.flags };
}

/**
 * A submission whose every reading carries its sensor's own time, and nothing else that a second
 * copy would count again (drops, counts, cursors, attestations): committing a redelivered copy
 * inserts nothing (INSERT OR IGNORE on the unique (ts, sensor) index) and counts its readings as
 * duplicates, which is what the resend guard would have done.
 */
function deduplicatedByTime(sub: Submission): boolean {
  if (sub.readings.length === 0 || sub.drops?.length || sub.counts?.length || sub.cursors?.length || sub.attestations?.length || sub.attestWait) return false;
  for (const r of sub.readings) if (r.timeSource !== 'sensor') return false;
  return true;
}

const TIME_SOURCE_INDEX = new Map<TimeSource, number>(TIME_SOURCES.map((t, i) => [t, i]));

/** The readings buffer: group-committed inserts with de-duplication, and the unbatched queue. */
export class ReadingStore {
  /** Summary mode (store/held-readings.ts): readings of these sensors are committed kept, not for the next batch. */
  private hold: ((sensor: string) => boolean) | undefined;
  private readonly insert;
  private readonly resendGet;
  private readonly resendPut;
  private readonly resendDelete;
  private readonly counterAdd;
  private readonly commitGroup;
  private readonly cursorPut;
  private readonly seqGet;
  private readonly seqPut;
  private readonly seqShare;
  private readonly attest;
  private readonly dropAdd;
  private readonly dropsSince;
  /** Writes that ride in the next reading commit instead of an fsync of their own (store/commit-riders.ts). */
  readonly riders: CommitRiders;

  constructor(
    private readonly db: Db,
    private readonly bootCounter: number,
  ) {
    this.insert = db.prepare(
      `INSERT OR IGNORE INTO readings (sensor, ts, time_source, value, unit, seq, source, received_at, boot, flags, batch_seq)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.resendGet = db.prepare('SELECT fingerprint FROM source_resend_guard WHERE source = ? AND message_key = ?').pluck();
    this.resendDelete = db.prepare('DELETE FROM source_resend_guard WHERE source = ? AND message_key = ?');
    this.resendPut = db.prepare('INSERT OR REPLACE INTO source_resend_guard (source, message_key, fingerprint, seen_at) VALUES (?, ?, ?, ?)');
    this.counterAdd = db.prepare(
      'INSERT INTO counters (name, label, value) VALUES (?, ?, ?) ON CONFLICT (name, label) DO UPDATE SET value = value + excluded.value',
    );
    this.cursorPut = db.prepare(
      `INSERT INTO source_cursors (source, stream, position, updated_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (source, stream) DO UPDATE SET position = excluded.position, updated_at = excluded.updated_at`,
    );
    this.dropAdd = db.prepare(
      'INSERT INTO drops_unreported (sensor, count) VALUES (?, ?) ON CONFLICT (sensor) DO UPDATE SET count = count + excluded.count',
    );
    this.dropsSince = db.prepare("INSERT INTO meta (key, value) VALUES ('drops_unreported_since', ?) ON CONFLICT (key) DO NOTHING");
    this.seqGet = db.prepare('SELECT last_seq FROM sensor_seq WHERE source = ? AND sensor = ?').pluck();
    this.seqPut = db.prepare(
      'INSERT INTO sensor_seq (source, sensor, last_seq, updated_at) VALUES (?, ?, ?, ?) ON CONFLICT (source, sensor) DO UPDATE SET last_seq = excluded.last_seq, updated_at = excluded.updated_at',
    );
    this.seqShare = new SensorSeqShare(db);
    this.attest = new AttestationStore(db);
    this.riders = new CommitRiders(db);
    this.commitGroup = db.transaction((subs: readonly Submission[], receivedAt: number, stored?: StoredReading[]) => {
      const results = subs.map((s) => this.apply(s, receivedAt, stored));
      this.riders.runInside();
      return results;
    });
  }

  /** Summary mode: `hold(sensor)` true commits that reading kept (batch_seq 0) instead of waiting for a batch. */
  holdWhen(hold: (sensor: string) => boolean): void {
    this.hold = hold;
  }

  /**
   * Commits all submissions in one transaction (one fsync): the group commit. With `stored`,
   * the readings actually inserted (not duplicates) are appended to it with their new ids.
   */
  commit(subs: readonly Submission[], receivedAt = Date.now(), stored?: StoredReading[]): SubmitResult[] {
    const results = this.commitGroup(subs, receivedAt, stored);
    // Only now are the riders written; a failed commit leaves them waiting for the next one.
    this.riders.committed();
    return results;
  }

  private apply(sub: Submission, receivedAt: number, stored: StoredReading[] | undefined): SubmitResult {
    for (const reason of sub.rejected ?? []) this.countIn('rejected', `${sub.source}: ${reason}`, 1);
    const guard = sub.resend;
    if (guard && deduplicatedByTime(sub)) {
      // The unique (ts, sensor) index already makes a redelivered copy a duplicate, so no guard row
      // is written (two SQLite pages per commit less: flash wear, issue 13). A row left for this
      // key by an earlier message is removed, so the key's row never describes an older message.
      if (this.resendGet.get(sub.source, guard.key) !== undefined) this.resendDelete.run(sub.source, guard.key);
    } else if (guard) {
      const previous = this.resendGet.get(sub.source, guard.key) as Buffer | undefined;
      if (guard.resent && previous && previous.equals(guard.fingerprint)) {
        this.countIn('duplicates', sub.source, sub.readings.length);
        return { accepted: 0, duplicates: sub.readings.length };
      }
      this.resendPut.run(sub.source, guard.key, guard.fingerprint, receivedAt);
    }
    let accepted = 0;
    const wait = sub.attestWait;
    const signed = wait || sub.attestations ? new Map<string, StoredReading[]>() : undefined;
    for (const r of sub.readings) {
      const info = this.insert.run(
        r.sensor,
        r.ts,
        TIME_SOURCE_INDEX.get(r.timeSource)!,
        r.value,
        r.unit ?? null,
        r.seq ?? null,
        sub.source,
        receivedAt,
        this.bootCounter,
        r.flags || null,
        this.hold?.(r.sensor) ? HELD : null,
      );
      accepted += info.changes;
      if (stored && info.changes === 1) stored.push(storedReadingOf(r, Number(info.lastInsertRowid), sub.source, this.bootCounter));
      const stream = r.attestStream;
      if (wait && signed && stream !== undefined && info.changes === 1) {
        // PROTOCOL.md §3.9: held back from batches until its run's attestation arrives (attestation-store.ts).
        const id = Number(info.lastInsertRowid);
        this.attest.wait(sub.source, stream, id, receivedAt + wait.ms);
        signed.set(stream, [...(signed.get(stream) ?? []), storedReadingOf(r, id, sub.source, this.bootCounter)]);
      }
      if (sub.trackSeq && r.seq !== undefined && info.changes > 0) this.noteSeq(sub.source, r.sensor, r.seq, receivedAt);
    }
    for (const c of sub.cursors ?? []) this.cursorPut.run(sub.source, c.stream, c.position, receivedAt);
    for (const c of sub.counts ?? []) this.countIn(c.name, c.label, c.n);
    for (const d of sub.drops ?? []) this.dropAdd.run(d.sensor, d.n);
    // Starts the clock of a drops-only batch (wire-format.md §12.12) as the store budget's drops do.
    if (sub.drops && sub.drops.length > 0) this.dropsSince.run(String(receivedAt));
    const duplicates = sub.readings.length - accepted;
    if (duplicates > 0) this.countIn('duplicates', sub.source, duplicates);
    if (!sub.attestations) return { accepted, duplicates };
    const attestations = sub.attestations.map((c) => {
      const outcome = this.attest.claim(sub.source, c, receivedAt, wait?.ms, signed?.get(c.stream) ?? []);
      this.countIn('attestations', `${sub.source}: ${outcome}`, 1);
      return outcome;
    });
    return { accepted, duplicates, attestations };
  }

  /**
   * A sensor's seq should go up by one per reading. A jump forward counts the readings missing
   * (lost before they reached us: a sensor-side buffer, or a broker queue limit); a step back is a
   * sensor restart (or a reordering) and is counted apart, without a gap.
   */
  private noteSeq(source: string, sensor: string, seq: number, now: number): void {
    const last = this.seqGet.get(source, sensor) as number | undefined;
    if (last !== undefined) {
      if (seq > last + 1) this.countIn('seq_gaps', sensor, seq - last - 1);
      else if (seq <= last) this.countIn('seq_rewinds', sensor, 1);
    }
    this.seqPut.run(source, sensor, seq, now);
    if (last !== undefined) return;
    // A new sensor: the table is held to its share (store/keyed-tables.ts), the longest silent forgotten first.
    const forgotten = this.seqShare.added(source, sensor);
    if (forgotten > 0) this.countIn('seq_forgotten', source, forgotten);
  }

  private countIn(name: string, label: string, n: number): void {
    this.counterAdd.run(name, label, n);
  }

  /** Several counter increments in one transaction (the rate watch's gaps of one commit). */
  addCounters(rows: readonly { name: string; label: string; n: number }[]): void {
    this.db.transaction(() => {
      for (const r of rows) this.counterAdd.run(r.name, r.label, r.n);
    })();
  }

  addCounter(name: string, label: string, n = 1): void {
    this.counterAdd.run(name, label, n);
  }
}

export function readCounters(db: Db): { name: string; label: string; value: number }[] {
  return db.prepare('SELECT name, label, value FROM counters ORDER BY name, label').all() as { name: string; label: string; value: number }[];
}

/** A source's committed stream positions whose stream name starts with `prefix` (all when ''). */
export function readCursors(db: Db, source: string, prefix: string): Map<string, number> {
  const rows = db
    .prepare("SELECT stream, position FROM source_cursors WHERE source = ? AND substr(stream, 1, length(?)) = ?")
    .all(source, prefix, prefix) as { stream: string; position: number }[];
  return new Map(rows.map((r) => [r.stream, r.position]));
}

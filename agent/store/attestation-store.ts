import type { AttestationClaim, AttestationOutcome } from '../contracts/reading-sink.js';
import type { BatchAttestation } from '../identity/batch-v3.js';
import { V3_LIMITS } from '../identity/batch-v3.js';
import { verifySignature } from '../identity/keys.js';
import { attestationDigest, encodeAttestationMessage, type AttestedReading } from '../identity/sensor-attestation.js';
import type { StoredReading } from '../types.js';
import { ATTESTATIONS_WAITING_MAX } from './budget-shares.js';
import type { Db } from './database.js';
import { statement } from './statements.js';

/**
 * Sensor attestations (firmware-bridge/PROTOCOL.md §3.9) on their way into batches
 * (docs/wire-format.md §12.7 `att`). An attestation is checked when it arrives, against the
 * readings the store committed: the digest is rebuilt from their seq and values, and the
 * signature must verify under the key provisioned for the device. Only then is it stored, to ride
 * in the batch that holds all its readings. The batcher holds a signing stream's readings back
 * until the attestation of their run arrives (at most `attest_wait_ms`), so that run and
 * attestation are cut together; a reading is never held longer, and never lost for want of one.
 */

/** At most this many attestations wait for a batch: what one batch may carry (§12.9); their budget share is budget-shares.ts's. */
export const MAX_UNBATCHED_ATTESTATIONS = Math.min(V3_LIMITS.attestations, ATTESTATIONS_WAITING_MAX);

/** The readings of one run as the store holds them, newest copy of each (reading name, seq). */
interface RunRow {
  id: number;
  sensor: string;
  seq: number;
  value: number;
}

/** Groups a run's rows by seq into what the digest takes (§3.9): one value as `sensor`, several as `sensor/0`, `sensor/1`... */
function runOf(rows: readonly RunRow[], sensor: string, first: number, last: number): { readings: AttestedReading[]; ids: number[] } | undefined {
  const bySeq = new Map<number, Map<string, RunRow>>();
  for (const r of rows) {
    const names = bySeq.get(r.seq) ?? new Map<string, RunRow>();
    if (!names.has(r.sensor)) names.set(r.sensor, r); // rows come newest first: keep the newest copy
    bySeq.set(r.seq, names);
  }
  const readings: AttestedReading[] = [];
  const ids: number[] = [];
  for (let seq = first; seq <= last; seq++) {
    const names = bySeq.get(seq);
    if (!names) return undefined;
    const one = names.get(sensor);
    const parts = [...names.values()].filter((r) => r.sensor !== sensor);
    let row: RunRow[];
    if (one && parts.length === 0) row = [one];
    else if (!one && parts.length > 0) {
      row = [];
      for (let k = 0; k < parts.length; k++) {
        const part = names.get(`${sensor}/${k}`);
        if (!part) return undefined;
        row.push(part);
      }
    } else return undefined;
    readings.push({ seq, values: row.map((r) => r.value) });
    ids.push(...row.map((r) => r.id));
  }
  return { readings, ids: ids.sort((a, b) => a - b) };
}

export class AttestationStore {
  private readonly waitPut;
  private readonly waitClear;
  private readonly known;
  private readonly waiting;
  private readonly run;
  private readonly insert;
  private readonly nextOfStream;

  constructor(private readonly db: Db) {
    this.waitPut = db.prepare('INSERT OR IGNORE INTO attest_wait (source, stream, first_id, until) VALUES (?, ?, ?, ?)');
    this.waitClear = db.prepare('DELETE FROM attest_wait WHERE source = ? AND stream = ?');
    this.known = db.prepare('SELECT 1 FROM attestations WHERE run_key = ?').pluck();
    this.waiting = db.prepare('SELECT count(*) FROM attestations WHERE batch_seq IS NULL').pluck();
    this.run = db.prepare(
      `SELECT id, sensor, seq, value FROM readings
       WHERE source = ? AND batch_seq IS NULL AND seq BETWEEN ? AND ? AND (sensor = ? OR substr(sensor, 1, ?) = ?)
       ORDER BY id DESC LIMIT ?`,
    );
    // The stream's first reading after a run, committed before the run's ATTEST arrived.
    this.nextOfStream = db
      .prepare('SELECT min(id) FROM readings WHERE source = ? AND batch_seq IS NULL AND seq > ? AND (sensor = ? OR substr(sensor, 1, ?) = ?)')
      .pluck();
    this.insert = db.prepare(
      `INSERT INTO attestations (source, run_key, sensor_key, msg, sig, reading_ids, first_reading_id, last_reading_id, received_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
  }

  /** A committed reading of a signing stream: the stream's first waiting reading, unless one waits already. */
  wait(source: string, stream: string, readingId: number, until: number): void {
    this.waitPut.run(source, stream, readingId, until);
  }

  /**
   * Checks and stores one attestation (inside the commit's transaction). `later` are the readings
   * of its stream this commit inserted: those after the run wait for the next attestation.
   */
  claim(source: string, c: AttestationClaim, now: number, waitMs: number | undefined, later: readonly StoredReading[]): AttestationOutcome {
    const runKey = `${source}/${c.stream}/${c.firstSeq}-${c.lastSeq}`;
    if (this.known.get(runKey) !== undefined) return 'duplicate'; // §3.9: the ATTEST follows each resend of its last reading
    if ((this.waiting.get() as number) >= MAX_UNBATCHED_ATTESTATIONS) return 'full';
    const n = c.lastSeq - c.firstSeq + 1;
    const rows = this.run.all(source, c.firstSeq, c.lastSeq, c.sensor, c.sensor.length + 1, `${c.sensor}/`, n * 8 * 2) as RunRow[];
    const run = runOf(rows, c.sensor, c.firstSeq, c.lastSeq);
    if (!run) return 'incomplete';
    const msg = encodeAttestationMessage({ uid: c.uid, session: c.session, sensor: c.sensorIndex, firstSeq: c.firstSeq, lastSeq: c.lastSeq, digest: attestationDigest(run.readings) });
    const verified = verifySignature(c.key, msg, c.sig);
    if (verified) this.insert.run(source, runKey, c.key, msg, c.sig, JSON.stringify(run.ids), run.ids[0], run.ids[run.ids.length - 1], now);
    // Either way the run is settled: its readings wait no longer (unattested when the signature failed).
    this.waitClear.run(source, c.stream);
    // The next run waits from its first reading: one in this commit, or (under load, when the
    // ATTEST came after readings of the next run were committed) one already in the store, whose
    // own wait was not recorded because this run's wait held the stream's row.
    const next = later.find((r) => r.seq !== undefined && r.seq > c.lastSeq)?.id;
    const stored = this.nextOfStream.get(source, c.lastSeq, c.sensor, c.sensor.length + 1, `${c.sensor}/`) as number | null;
    const first = Math.min(next ?? Infinity, stored ?? Infinity);
    if (first !== Infinity && waitMs !== undefined) this.waitPut.run(source, c.stream, first, now + waitMs);
    return verified ? 'stored' : 'bad-signature';
  }
}

/**
 * For the batch cut: the id below which readings may go into a batch now (undefined: no limit).
 * Waits that ran out are given up (their readings go unattested) and counted per source.
 */
export function attestWaitLimit(db: Db, now: number): number | undefined {
  const expired = statement(db, 'SELECT source, count(*) AS n FROM attest_wait WHERE until <= ? GROUP BY source').all(now) as { source: string; n: number }[];
  if (expired.length > 0) {
    const count = statement(db, 'INSERT INTO counters (name, label, value) VALUES (?, ?, ?) ON CONFLICT (name, label) DO UPDATE SET value = value + excluded.value');
    for (const e of expired) count.run('attestations', `${e.source}: missing (no ATTEST within attest_wait_ms)`, e.n);
    statement(db, 'DELETE FROM attest_wait WHERE until <= ?').run(now);
  }
  const min = statement(db, 'SELECT min(first_id) FROM attest_wait').pluck().get() as number | null;
  return min ?? undefined;
}

/** The first reading of an attestation's run that starts in `firstId..lastId` and runs past `lastId`: the cut should end before it. */
export function attestationStraddling(db: Db, firstId: number, lastId: number): number | undefined {
  return (statement(db, 'SELECT min(first_reading_id) FROM attestations WHERE batch_seq IS NULL AND first_reading_id >= ? AND first_reading_id <= ? AND last_reading_id > ?').pluck().get(firstId, lastId, lastId) as number | null) ?? undefined;
}

interface AttestationRow {
  id: number;
  source: string;
  sensor_key: Buffer;
  msg: Buffer;
  sig: Buffer;
  reading_ids: string;
}

/**
 * The attestations a batch of `readingIds` (up to `lastId`) carries, and the ids of their rows.
 * One naming a reading the batch does not hold (dropped under the budget, or cut before it
 * arrived) can never ride with its readings: it is deleted and counted, never sent malformed.
 */
export function attestationsForCut(db: Db, readingIds: ReadonlySet<number>, lastId: number): { att: BatchAttestation[]; rows: number[] } {
  const rows = statement(db, 'SELECT id, source, sensor_key, msg, sig, reading_ids FROM attestations WHERE batch_seq IS NULL AND last_reading_id <= ? ORDER BY id LIMIT ?')
    .all(lastId, MAX_UNBATCHED_ATTESTATIONS) as AttestationRow[];
  const att: BatchAttestation[] = [];
  const taken: number[] = [];
  const orphan = statement(db, 'DELETE FROM attestations WHERE id = ?');
  const count = statement(db, 'INSERT INTO counters (name, label, value) VALUES (?, ?, 1) ON CONFLICT (name, label) DO UPDATE SET value = value + 1');
  for (const row of rows) {
    const ids = JSON.parse(row.reading_ids) as number[];
    if (!ids.every((id) => readingIds.has(id))) {
      orphan.run(row.id);
      count.run('attestations', `${row.source}: orphaned (a reading of its run left in another batch or was dropped)`);
      continue;
    }
    att.push({ k: new Uint8Array(row.sensor_key), msg: new Uint8Array(row.msg), sig: new Uint8Array(row.sig), r: ids });
    taken.push(row.id);
  }
  return { att, rows: taken };
}

export function markAttestationsBatched(db: Db, seq: number, rows: readonly number[]): void {
  const mark = statement(db, 'UPDATE attestations SET batch_seq = ? WHERE id = ?');
  for (const id of rows) mark.run(seq, id);
}

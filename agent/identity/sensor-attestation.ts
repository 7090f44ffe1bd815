import { createHash } from 'node:crypto';
import type { BatchAttestation, BatchDataV3 } from './batch-v3.js';

/**
 * Sensor attestations of the firmware bridge (firmware-bridge/PROTOCOL.md §3.9, carried as
 * docs/wire-format.md §12.7 `att`): the 61-byte message a sensor board signs over a run of its
 * readings, and the check that a batch's readings are the ones the message binds. The signature
 * itself is checked by the batch verifier (§12.9 step 10); this is the "knowing the source
 * protocol" part of §12.7.
 */
export const ATTESTATION_TAG = 'EA-ATT/1';
export const ATTESTATION_MESSAGE_BYTES = 61;
/** PROTOCOL.md §3.9: at most this many readings per attestation (the §12.7 `r` limit). */
export const ATTESTATION_MAX_READINGS = 10_000;

export interface AttestationMessage {
  uid: Uint8Array;
  session: number;
  sensor: number;
  firstSeq: number;
  lastSeq: number;
  digest: Uint8Array;
}

/** One sensor reading as the digest sees it: its sequence number and its values (f32). */
export interface AttestedReading {
  seq: number;
  values: readonly number[];
}

const TAG = new TextEncoder().encode(ATTESTATION_TAG);

/** digest = SHA-256 over `seq u32 | count u8 | values f32…` per reading, in sequence order (§3.9). */
export function attestationDigest(readings: readonly AttestedReading[]): Uint8Array {
  const h = createHash('sha256');
  for (const r of readings) {
    const b = Buffer.alloc(5 + 4 * r.values.length);
    b.writeUInt32LE(r.seq >>> 0, 0);
    b.writeUInt8(r.values.length, 4);
    r.values.forEach((v, k) => b.writeFloatLE(v, 5 + 4 * k));
    h.update(b);
  }
  return new Uint8Array(h.digest());
}

export function encodeAttestationMessage(m: AttestationMessage): Uint8Array {
  if (m.uid.length !== 8 || m.digest.length !== 32) throw new Error('attestation message: uid is 8 bytes, digest 32');
  const b = Buffer.alloc(ATTESTATION_MESSAGE_BYTES);
  Buffer.from(TAG).copy(b, 0);
  Buffer.from(m.uid).copy(b, 8);
  b.writeUInt32LE(m.session >>> 0, 16);
  b.writeUInt8(m.sensor, 20);
  b.writeUInt32LE(m.firstSeq >>> 0, 21);
  b.writeUInt32LE(m.lastSeq >>> 0, 25);
  Buffer.from(m.digest).copy(b, 29);
  return new Uint8Array(b);
}

/** The message's fields, or undefined when `msg` is not a firmware-bridge attestation (another source's layout). */
export function decodeAttestationMessage(msg: Uint8Array): AttestationMessage | undefined {
  if (msg.length !== ATTESTATION_MESSAGE_BYTES || !Buffer.from(msg.subarray(0, 8)).equals(Buffer.from(TAG))) return undefined;
  const b = Buffer.from(msg.buffer, msg.byteOffset, msg.byteLength);
  return { uid: msg.slice(8, 16), session: b.readUInt32LE(16), sensor: b.readUInt8(20), firstSeq: b.readUInt32LE(21), lastSeq: b.readUInt32LE(25), digest: msg.slice(29, 61) };
}

/**
 * The readings an attestation names, grouped per sensor sequence number as the digest takes them:
 * readings `id` or `id/0`, `id/1`… with the same `n` are the values of one READING (PROTOCOL.md §3.2).
 */
function attestedFrom(data: BatchDataV3, att: BatchAttestation): AttestedReading[] | string {
  const byId = new Map(data.r.map((r) => [r.i, r]));
  const bySeq = new Map<number, { s: string; v: number }[]>();
  for (const id of att.r) {
    const r = byId.get(id) as { s: string; v: number; n?: number } | undefined;
    if (!r) return `names reading ${id}, not in the batch`;
    if (r.n === undefined) return `reading ${id} carries no sensor sequence number n`;
    bySeq.set(r.n, [...(bySeq.get(r.n) ?? []), { s: r.s, v: r.v }]);
  }
  return [...bySeq.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([seq, rs]) => ({ seq, values: rs.sort((a, b) => (a.s < b.s ? -1 : a.s > b.s ? 1 : 0)).map((x) => x.v) }));
}

/**
 * Checks every firmware-bridge attestation of a batch's data against the readings it names:
 * the digest recomputed from their `n` and `v` must be the signed message's, and the sequence
 * numbers exactly first_seq..last_seq. Returns the problems (empty: all bind); attestations of
 * other layouts are skipped.
 */
export function checkAttestationBindings(data: BatchDataV3): string[] {
  const problems: string[] = [];
  (data.att ?? []).forEach((att, k) => {
    const m = decodeAttestationMessage(att.msg);
    if (!m) return;
    const where = `attestation ${k + 1} (sensor key ${Buffer.from(att.k).toString('hex').slice(0, 16)}…)`;
    const readings = attestedFrom(data, att);
    if (typeof readings === 'string') return void problems.push(`${where} ${readings}`);
    const seqs = readings.map((r) => r.seq);
    if (seqs[0] !== m.firstSeq || seqs[seqs.length - 1] !== m.lastSeq || seqs.length !== m.lastSeq - m.firstSeq + 1) {
      return void problems.push(`${where} covers sequence numbers ${m.firstSeq}..${m.lastSeq}, the batch names ${seqs[0]}..${seqs[seqs.length - 1]} (${seqs.length})`);
    }
    if (!Buffer.from(attestationDigest(readings)).equals(Buffer.from(m.digest))) {
      problems.push(`${where}: the readings ${seqs[0]}..${seqs[seqs.length - 1]} are not what the sensor signed (a value was changed after the sensor measured it)`);
    }
  });
  return problems;
}

/** How many distinct readings of a batch's data some attestation names (the receiver's `attested_readings`). */
export function attestedReadingCount(data: BatchDataV3 | undefined): number {
  const ids = new Set<number>();
  for (const att of data?.att ?? []) for (const id of att.r) ids.add(id);
  return ids.size;
}

import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { verifyAnyBatchEnvelope } from '../../agent/identity/batch-any.js';
import { Identity } from '../../agent/identity/keys.js';
import { attestationDigest, checkAttestationBindings, encodeAttestationMessage } from '../../agent/identity/sensor-attestation.js';
import { batchEncoder } from '../../agent/pipeline/batch-encoder.js';
import { BatchStore } from '../../agent/store/batch-store.js';
import { openDatabase } from '../../agent/store/database.js';
import { readCounters, ReadingStore, type AttestationClaim, type Submission } from '../../agent/store/reading-store.js';

/**
 * The store's side of sensor attestations (PROTOCOL.md §3.9, wire-format.md §12.7) through its
 * public interfaces: what a serial source submits, and the batches the cut makes of it.
 */
const board = Identity.fromSeed(Uint8Array.from({ length: 32 }, (_, k) => 0x41 + k));
const gateway = Identity.generate();
const uid = Uint8Array.from([0x51, 0x4d, 0, 0, 0, 0, 0, 1]);
const STREAM = '514d000000000001/7/0';

function setup() {
  const db = openDatabase(join(mkdtempSync(join(tmpdir(), 'ea-att-')), 'edge-agent.db'));
  return { db, readings: new ReadingStore(db, 1), batches: new BatchStore(db) };
}

/** Readings seq from..to of sensor sim/s0 as the serial source submits them for a board with a key. */
function run(from: number, to: number, now: number, extra: Partial<Submission> = {}): Submission {
  const readings = Array.from({ length: to - from + 1 }, (_, k) => ({ sensor: 'sim/s0', ts: now, timeSource: 'gateway-synced' as const, value: (from + k) * 0.25, seq: from + k, attestStream: STREAM }));
  return { source: 'serial', readings, attestWait: { ms: 60_000 }, ...extra };
}

function claim(first: number, last: number, signer = board, values = (seq: number) => seq * 0.25, sensor = 0): AttestationClaim {
  const digest = attestationDigest(Array.from({ length: last - first + 1 }, (_, k) => ({ seq: first + k, values: [values(first + k)] })));
  const sig = signer.sign(encodeAttestationMessage({ uid, session: 7, sensor, firstSeq: first, lastSeq: last, digest }));
  return { stream: `514d000000000001/7/${sensor}`, sensor: `sim/s${sensor}`, key: board.publicKey, uid, session: 7, sensorIndex: sensor, firstSeq: first, lastSeq: last, sig };
}

/** Readings seq from..to of two signing sensors sim/s0 and sim/s1, interleaved as a board with two sensors sends them. */
function interleaved(from: number, to: number, now: number): Submission {
  const readings = Array.from({ length: to - from + 1 }, (_, k) => [0, 1].map((s) => ({ sensor: `sim/s${s}`, ts: now, timeSource: 'gateway-synced' as const, value: (from + k) * 0.25, seq: from + k, attestStream: `514d000000000001/7/${s}` }))).flat();
  return { source: 'serial', readings, attestWait: { ms: 60_000 } };
}

const cut = (batches: BatchStore, now: number, max = 100) => batches.cutBatch(max, batchEncoder(gateway, { bootCounter: 1, clockSynced: true, now }));

describe('sensor attestations in the store (PROTOCOL.md §3.9)', () => {
  it('holds a run back until its attestation arrives, then cuts run and attestation into one version-3 batch that binds', () => {
    const { readings, batches } = setup();
    const t = 1_000_000;
    readings.commit([run(0, 7, t)], t);
    expect(cut(batches, t + 1000)).toBeNull(); // waiting for the ATTEST
    const [r] = readings.commit([{ ...run(8, 9, t + 2000), attestations: [claim(0, 7)] }], t + 2000);
    expect(r!.attestations).toEqual(['stored']);
    const b = cut(batches, t + 2500)!;
    // Readings 8 and 9 wait for the next run's attestation; the batch holds exactly the signed run.
    expect(b.body.r.map((x) => x.n)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    const v = verifyAnyBatchEnvelope(b.envelope);
    expect(v.version).toBe(3);
    expect(v.v3!.data!.att).toHaveLength(1);
    expect(checkAttestationBindings(v.v3!.data!)).toEqual([]);
    // A resend of the same ATTEST is a duplicate, even once its readings are batched.
    expect(readings.commit([{ source: 'serial', readings: [], attestations: [claim(0, 7)] }], t + 3000)[0]!.attestations).toEqual(['duplicate']);
  });

  it('refuses what it cannot vouch for: readings not all held (incomplete), another key or other values (bad-signature, and the run waits no longer)', () => {
    const { db, readings, batches } = setup();
    const t = 2_000_000;
    readings.commit([run(0, 5, t)], t);
    const out = readings.commit([{ source: 'serial', readings: [], attestations: [claim(0, 7), claim(0, 5, Identity.generate()), claim(0, 5, board, (s) => s)] }], t + 10)[0]!;
    expect(out.attestations).toEqual(['incomplete', 'bad-signature', 'bad-signature']);
    const b = cut(batches, t + 20)!;
    expect(b.body.n).toBe(6); // released at once, unattested
    expect(verifyAnyBatchEnvelope(b.envelope).v3?.data?.att ?? []).toEqual([]);
    const counts = Object.fromEntries(readCounters(db).filter((c) => c.name === 'attestations').map((c) => [c.label, c.value]));
    expect(counts).toEqual({ 'serial: incomplete': 1, 'serial: bad-signature': 2 });
  });

  it('gives up waiting after attest_wait_ms, counted; drops (counted) an attestation whose readings cannot all ride with it', () => {
    const { db, readings, batches } = setup();
    const t = 3_000_000;
    readings.commit([run(0, 3, t)], t);
    expect(cut(batches, t + 59_999)).toBeNull();
    const late = cut(batches, t + 60_000)!; // the wait ran out: the readings go, unattested
    expect(late.body.n).toBe(4);
    readings.commit([{ ...run(4, 7, t + 61_000), attestations: [] }], t + 61_000);
    expect(readings.commit([{ source: 'serial', readings: [], attestations: [claim(4, 7)] }], t + 61_001)[0]!.attestations).toEqual(['stored']);
    // The disk budget drops one reading of the run before the cut (oldest unbatched first).
    db.prepare("DELETE FROM readings WHERE seq = 5 AND batch_seq IS NULL").run();
    const b = cut(batches, t + 61_002)!;
    expect(b.body.n).toBe(3);
    expect(verifyAnyBatchEnvelope(b.envelope).v3?.data?.att ?? []).toEqual([]); // never a batch naming a reading it lacks
    const labels = readCounters(db).filter((c) => c.name === 'attestations').map((c) => c.label);
    expect(labels).toEqual(expect.arrayContaining(['serial: missing (no ATTEST within attest_wait_ms)', 'serial: orphaned (a reading of its run left in another batch or was dropped)']));
  });

  it('never splits a signed run at the start of a batch: with two signing streams interleaved, the run whose ATTEST came first waits for the other', () => {
    // The run of sim/s0 (ids 1, 3, ... 15) is attested while that of sim/s1 (ids 2, 4, ... 16) still
    // waits: a cut then may take nothing, not reading 1 alone (which would orphan s0's attestation).
    const { db, readings, batches } = setup();
    const t = 4_000_000;
    readings.commit([interleaved(0, 7, t)], t);
    expect(readings.commit([{ source: 'serial', readings: [], attestations: [claim(0, 7)] }], t + 10)[0]!.attestations).toEqual(['stored']);
    expect(cut(batches, t + 20)?.body.r ?? []).toEqual([]);
    expect(readings.commit([{ source: 'serial', readings: [], attestations: [claim(0, 7, board, (s) => s * 0.25, 1)] }], t + 30)[0]!.attestations).toEqual(['stored']);
    const b = cut(batches, t + 40)!;
    expect(b.body.n).toBe(16);
    const v = verifyAnyBatchEnvelope(b.envelope);
    expect(v.v3!.data!.att).toHaveLength(2);
    expect(checkAttestationBindings(v.v3!.data!)).toEqual([]);
    expect(readCounters(db).filter((c) => c.name === 'attestations').map((c) => c.label)).toEqual(['serial: stored']);
  });
});

import { describe, expect, it } from 'vitest';
import { BatchVerificationError, ZERO_HASH } from '../../agent/identity/batch-format.js';
import { buildBatchV3, isV3Envelope, READING_FLAGS, verifyBatchV3Envelope, type BatchContentV3 } from '../../agent/identity/batch-v3.js';
import { canonicalDecode, canonicalEncode } from '../../agent/identity/canonical.js';
import { Identity } from '../../agent/identity/keys.js';
import type { StoredReading } from '../../agent/types.js';

const device = Identity.fromSeed(Uint8Array.from({ length: 32 }, (_, i) => i + 1));
const network = Identity.fromSeed(Uint8Array.from({ length: 32 }, (_, i) => i + 33));
const head = { seq: 7, prevHash: new Uint8Array(32).fill(9), bootCounter: 2, clockSynced: true, createdMs: 1_763_000_100_000 };
const reading = (id: number, over: Partial<StoredReading> = {}): StoredReading => ({ id, boot: 2, sensor: `pump1/temp`, ts: 1_763_000_000_000 + id, timeSource: 'sensor', value: 20 + id / 10, source: 'mqtt', ...over });
const content: BatchContentV3 = {
  readings: [reading(1), reading(2, { flags: READING_FLAGS.stuck | READING_FLAGS.gap_before }), reading(3)],
  events: [{ id: 4, ts: 1_763_000_000_500, kind: 'clock.step', key: '', detail: { step_ms: -86_400_000 } }],
  drops: [{ s: 'b', n: 2 }, { s: 'a', n: 1 }],
};

function reasonOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof BatchVerificationError) return err.reason;
    throw err;
  }
  return 'valid';
}

/** Decodes the envelope, lets `change` alter one part, re-encodes: a tampered but well-formed envelope. */
function tamper(envelope: Uint8Array, change: (env: Record<string, Uint8Array>) => void): Uint8Array {
  const env = canonicalDecode(envelope, 'envelope') as Record<string, Uint8Array>;
  change(env);
  return canonicalEncode(env);
}

describe('wire format version 3 (docs/wire-format.md §12)', () => {
  it('round-trips readings with flags, events and drops, and is told apart from versions 1 and 2', () => {
    const batch = buildBatchV3(device, head, content);
    expect(isV3Envelope(batch.envelope)).toBe(true);
    const again = verifyBatchV3Envelope(batch.envelope);
    expect(Buffer.from(again.hash)).toEqual(Buffer.from(batch.hash));
    expect(again.data!.r[1]!.f).toBe(READING_FLAGS.stuck | READING_FLAGS.gap_before);
    expect(again.data!.r[0]!.f).toBeUndefined();
    expect(again.data!.ev).toEqual([{ i: 4, t: 1_763_000_000_500, k: 'clock.step', d: { step_ms: -86_400_000 } }]);
    expect(again.data!.drops).toEqual([{ s: 'a', n: 1 }, { s: 'b', n: 2 }]);
    expect(again.header).toMatchObject({ n: 3, nv: 0, ne: 1, t0: 1_763_000_000_001, t1: 1_763_000_000_500 });
  });

  it('cuts a batch of drops alone, timed at its creation', () => {
    const batch = buildBatchV3(device, { ...head, prevHash: ZERO_HASH, seq: 1 }, { readings: [], drops: [{ s: 'x', n: 5 }] });
    expect(verifyBatchV3Envelope(batch.envelope).header).toMatchObject({ n: 0, t0: head.createdMs, t1: head.createdMs });
  });

  it('rejects each kind of tampering with the reason the spec gives', () => {
    const batch = buildBatchV3(device, head, content);
    const data = batch.dataBytes!;
    const flipped = Uint8Array.from(data);
    flipped[flipped.length - 1] ^= 1;
    expect(reasonOf(() => verifyBatchV3Envelope(tamper(batch.envelope, (e) => (e.data = flipped))))).toBe('bad-data-hash');
    const otherSig = buildBatchV3(network, head, content).signature;
    expect(reasonOf(() => verifyBatchV3Envelope(tamper(batch.envelope, (e) => (e.sig = otherSig))))).toBe('bad-signature');
    // A header re-signed by the device over a wrong count still fails the count check.
    const hdr = canonicalDecode(batch.headerBytes, 'h') as Record<string, unknown>;
    hdr.n = 4;
    const badHdr = canonicalEncode(hdr);
    expect(reasonOf(() => verifyBatchV3Envelope(canonicalEncode({ hdr: badHdr, sig: device.sign(badHdr), data })))).toBe('bad-count');
    hdr.n = 3;
    hdr.root = new Uint8Array(32);
    const badRoot = canonicalEncode(hdr);
    expect(reasonOf(() => verifyBatchV3Envelope(canonicalEncode({ hdr: badRoot, sig: device.sign(badRoot), data })))).toBe('bad-merkle-root');
    hdr.root = batch.header.root;
    hdr.extra = 1;
    const unknownKey = canonicalEncode(hdr);
    expect(reasonOf(() => verifyBatchV3Envelope(canonicalEncode({ hdr: unknownKey, sig: device.sign(unknownKey), data })))).toBe('malformed');
  });

  it('refuses unknown flag bits and ids out of order as malformed', () => {
    const bad = buildBatchV3(device, head, { readings: [reading(1, { flags: 1024 })] });
    expect(reasonOf(() => verifyBatchV3Envelope(bad.envelope))).toBe('malformed');
    const unordered = buildBatchV3(device, head, { readings: [reading(2), reading(1)] });
    expect(reasonOf(() => verifyBatchV3Envelope(unordered.envelope))).toBe('malformed');
  });

  it('seals the data to the network key: a relay checks origin without reading, the recipient opens and verifies', () => {
    const batch = buildBatchV3(device, head, content, { sealTo: network.publicKey });
    const wire = Buffer.from(batch.envelope);
    expect(wire.includes(Buffer.from('pump1/temp'))).toBe(false);
    const relay = verifyBatchV3Envelope(batch.envelope);
    expect(relay.sealed).toBe(true);
    expect(relay.data).toBeUndefined();
    const opened = verifyBatchV3Envelope(batch.envelope, { openWith: network.boxSecretKey() });
    expect(opened.data!.r.map((r) => r.s)).toEqual(['pump1/temp', 'pump1/temp', 'pump1/temp']);
    expect(opened.data!.r.every((r) => r.z?.length === 16)).toBe(true);
    expect(reasonOf(() => verifyBatchV3Envelope(batch.envelope, { openWith: device.boxSecretKey() }))).toBe('undecryptable');
    const env = canonicalDecode(batch.envelope, 'e') as { sealed: Uint8Array };
    const flipped = Uint8Array.from(env.sealed);
    flipped[20] ^= 1;
    expect(reasonOf(() => verifyBatchV3Envelope(tamper(batch.envelope, (e) => (e.sealed = flipped)), { openWith: network.boxSecretKey() }))).toBe('bad-data-hash');
  });

  it('checks sensor attestations', () => {
    const sensor = Identity.fromSeed(new Uint8Array(32).fill(7));
    const msg = Buffer.from('digest of readings 1..2');
    const good = buildBatchV3(device, head, { ...content, attestations: [{ k: sensor.publicKey, msg, sig: sensor.sign(msg), r: [1, 2] }] });
    expect(reasonOf(() => verifyBatchV3Envelope(good.envelope))).toBe('valid');
    const forged = buildBatchV3(device, head, { ...content, attestations: [{ k: sensor.publicKey, msg, sig: device.sign(msg), r: [1, 2] }] });
    expect(reasonOf(() => verifyBatchV3Envelope(forged.envelope))).toBe('bad-attestation');
    const stray = buildBatchV3(device, head, { ...content, attestations: [{ k: sensor.publicKey, msg, sig: sensor.sign(msg), r: [99] }] });
    expect(reasonOf(() => verifyBatchV3Envelope(stray.envelope))).toBe('malformed');
  });
});
